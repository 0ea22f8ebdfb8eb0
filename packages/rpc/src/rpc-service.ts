import { entryKey, type FunctionQuery } from "@mpreg/catalog";
import type { ServicePort, ServiceTag } from "@mpreg/fabric";
import { Executor } from "./executor.js";
import { createCatalogLocator } from "./locator.js";
import type { FunctionRegistry, RegisteredFunction } from "./registry.js";
import { RPC_CALL_TOPIC, RPC_CALLS_TOPIC, RemoteCallHandler, RemoteDispatcher } from "./remote.js";

/**
 * The service a remote call is for, as federation policies name it: the queue for a queue
 * built-in that names one (`mpreg.queue.send("jobs", ...)`), else the function.
 */
function callService(payload: unknown): ServiceTag | false {
  const cmd = (payload as { command?: { fun?: unknown; args?: unknown } } | null)?.command;
  if (typeof cmd?.fun !== "string") return false;
  const first = Array.isArray(cmd.args) ? (cmd.args as unknown[])[0] : undefined;
  if (cmd.fun.startsWith("mpreg.queue.") && typeof first === "string") return { kind: "queue", name: first };
  return { kind: "function", name: cmd.fun };
}

/** Topic prefix of every RPC message on the fabric (`mpreg.rpc.call`, `.result`, `.cancel`). */
export const RPC_TOPIC_PREFIX = "mpreg.rpc";

/** Options of {@link RpcService}. */
export interface RpcServiceOptions<Ctx> {
  /** The node's fabric (or any other implementation of the service port). */
  port: ServicePort;
  registry: FunctionRegistry<Ctx>;
  /** In-flight requests on this node (its own load, as its locator sees it). */
  localLoad: () => number;
  /** Request timeout when a request names none. */
  defaultTimeoutMs: number;
  /** Random source of the locator's tie-breaks. Default `Math.random`. */
  random?: () => number;
}

/**
 * RPC as a fabric service: announces the registry's functions in the catalog, locates each
 * command with the catalog (this node first, then the least loaded reachable one), runs local
 * commands and sends the others as `mpreg.rpc.call` messages through the port, serves the
 * calls other nodes send here, and fails calls waiting on a node that becomes unreachable.
 */
export class RpcService<Ctx> {
  readonly executor: Executor<Ctx>;
  readonly dispatcher: RemoteDispatcher;
  readonly callHandler: RemoteCallHandler<Ctx>;
  private readonly detach: (() => void)[] = [];

  constructor(opts: RpcServiceOptions<Ctx>) {
    const { port, registry } = opts;
    const send = (nodeId: string, msg: Parameters<ServicePort["send"]>[1]) => port.send(nodeId, msg);
    const foreign = port.foreign;
    // Calls to one node in one turn travel as one message, except on a federating node: the
    // export policy of a route to another cluster is checked per function, which a batch of
    // several functions cannot carry (as for pub/sub deliveries).
    const canSend = foreign === undefined && port.canSend !== undefined ? (nodeId: string) => port.canSend!(nodeId) : undefined;
    this.dispatcher = new RemoteDispatcher({ nodeId: port.nodeId, clusterId: port.clusterId, send, canSend, maxHops: port.maxHops });
    // With federation, other clusters' functions are candidates too (ranked after this cluster's).
    const catalog = foreign === undefined ? port.catalog : { queryFunctions: (q: FunctionQuery) => [...port.catalog.queryFunctions(q), ...foreign.queryFunctions(q)] };
    // Counts catalog changes: the locator remembers single-candidate remote choices until one.
    let catalogGeneration = 0;
    this.detach.push(port.onCatalogChange(() => void catalogGeneration++));
    const locate = createCatalogLocator({
      catalog,
      registry,
      selfNodeId: port.nodeId,
      selfClusterId: port.clusterId,
      load: (id) => (id === port.nodeId ? opts.localLoad() : this.dispatcher.pendingTo(id)),
      random: opts.random ?? Math.random,
      now: () => Date.now(),
      exclude: () => port.unreachable(),
      catalogGeneration: () => catalogGeneration,
    });
    this.executor = new Executor<Ctx>({
      registry,
      locate,
      dispatcher: this.dispatcher,
      nodeId: port.nodeId,
      clusterId: port.clusterId,
      defaultTimeoutMs: opts.defaultTimeoutMs,
    });
    this.callHandler = new RemoteCallHandler({ executor: this.executor, nodeId: port.nodeId, clusterId: port.clusterId, send, maxHops: port.maxHops });
    this.detach.push(
      port.handle(
        RPC_TOPIC_PREFIX,
        (msg) => {
          if (!this.dispatcher.handleResult(msg)) this.callHandler.handle(msg);
        },
        // From another cluster: a call only for what this cluster offers to the cluster it came
        // through (export policy); results and cancels answer calls made from here.
        // A call batch never comes from another cluster (federating nodes do not batch).
        { acceptForeign: (msg) => (msg.topic === RPC_CALL_TOPIC ? callService(msg.payload) : msg.topic !== RPC_CALLS_TOPIC) },
      ),
      // Calls in flight to a node that can no longer be reached fail now (not retried: the
      // handler may have run), instead of at their deadline.
      port.onMembership((e) => {
        if (e.type === "down") this.dispatcher.nodeGone(e.nodeId, e.reason);
      }),
      // A call a relay could not carry to another cluster fails now, with the relay's reason.
      port.onUndeliverable?.((n) => {
        if (n.topic === RPC_CALL_TOPIC) this.dispatcher.fail(n.correlation_id, n.error);
      }) ?? (() => undefined),
    );
    for (const fn of registry.list()) port.announce(this.functionEntry(fn));
    this.detach.push(
      registry.onChange((e) => {
        if (e.type === "registered") port.announce(this.functionEntry(e.fn));
        else port.withdraw(entryKey({ ...this.functionEntry(e.fn), node_id: port.nodeId, cluster_id: port.clusterId }));
      }),
    );
  }

  /** Stops serving: fails waiting calls, aborts running ones, unregisters from the port. */
  close(reason = "node is shutting down"): void {
    for (const d of this.detach.splice(0)) d();
    this.callHandler.close();
    this.dispatcher.close(reason);
  }

  private functionEntry(fn: RegisteredFunction<Ctx>) {
    return {
      kind: "function" as const,
      name: fn.name,
      function_id: fn.function_id,
      version: fn.version,
      resources: [...fn.resources],
      ...(fn.description ? { description: fn.description } : {}),
    };
  }
}
