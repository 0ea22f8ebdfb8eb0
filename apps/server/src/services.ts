import { join } from "node:path";
import { CacheService, cacheBuiltins, replicateOverFabric } from "@mpreg/cache";
import type { Fabric } from "@mpreg/fabric";
import { openBackend, type StorageBackend } from "@mpreg/persistence";
import { QueueService, advertiseQueues, queueBuiltins, relaySubscriptions } from "@mpreg/queue";
import { forwardToOwner, type FunctionRegistry, type RpcService } from "@mpreg/rpc";
import type { NodeConfig } from "./config.js";
import { registerServiceBuiltins, type BuiltinCaller } from "./service-builtins.js";

/** The queue and cache services of a node, with their storage. */
export interface NodeServices {
  readonly queues: QueueService;
  readonly cache: CacheService;
  /** A connection closed: its leases, consumers and subscriptions end. */
  closeOwner(owner: string): void;
  close(): Promise<void>;
}

/**
 * Opens the queue and cache services (durable under `<dataDir>/queues` and `<dataDir>/cache`
 * with a data directory, memory without), plugs them into the fabric and registers their
 * built-ins (queue calls forwarded to the queue's owner node).
 */
export async function openServices<S extends BuiltinCaller>(opts: {
  config: NodeConfig;
  nodeId: string;
  fabric: Fabric;
  rpc: RpcService<S>;
  registry: FunctionRegistry<S>;
  push: (session: S, frame: object) => void;
}): Promise<NodeServices> {
  const { config, fabric } = opts;
  const storage = (name: string): Promise<StorageBackend | undefined> =>
    config.dataDir === undefined ? Promise.resolve(undefined) : openBackend({ backend: "file", dir: join(config.dataDir, name), fsync: "batch", repair: config.repairWal });
  const queueStore = await storage("queues");
  const queues = await QueueService.open({ ...(queueStore ? { backend: queueStore } : {}) });
  const cacheStore = await storage("cache");
  const cache = await CacheService.open({ nodeId: opts.nodeId, config: cacheConfig(config), ...(cacheStore ? { backend: cacheStore } : {}) });
  const detach = [advertiseQueues(queues, fabric), replicateOverFabric(cache, fabric)];
  const isLocal = (name: string): boolean => queues.names().includes(name);
  const forwarded = forwardToOwner(queueBuiltins(queues), { port: fabric, dispatcher: opts.rpc.dispatcher, kind: "queue", isLocal });
  // A subscription to another node's queue is run here, for the connection (docs/queue.md).
  const relayed = relaySubscriptions(forwarded, { isLocal });
  registerServiceBuiltins(opts.registry, relayed.builtins, opts.push);
  registerServiceBuiltins(opts.registry, cacheBuiltins(cache), opts.push);
  return {
    queues,
    cache,
    closeOwner: (owner) => {
      relayed.closeOwner(owner);
      void queues.closeOwner(owner);
    },
    close: async () => {
      relayed.close();
      for (const d of detach) d();
      await queues.close();
      await cache.close();
      await queueStore?.close();
      await cacheStore?.close();
    },
  };
}

/** The node's cache config; with a data directory the default namespace keeps an L2 there. */
function cacheConfig(config: NodeConfig): unknown {
  const given = (config.cache ?? {}) as { namespaces?: Record<string, unknown> };
  if (config.dataDir === undefined || given.namespaces?.default !== undefined) return given;
  return { ...given, namespaces: { ...(given.namespaces ?? {}), default: { l2: true } } };
}
