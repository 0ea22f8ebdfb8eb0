import { ErrorCode, MpregError, type ServiceBuiltin } from "@mpreg/envelope";
import type { ServicePort } from "@mpreg/fabric";
import type { Dispatcher } from "./executor.js";

/** Options of {@link forwardToOwner}. */
export interface OwnerForwardingOptions {
  port: ServicePort;
  /** Carries a call to the owner node (the node's `RemoteDispatcher`). */
  dispatcher: Dispatcher;
  /** Which catalog entries name the owners: `queue` (by queue name) or `cache` (by namespace). */
  kind: "queue" | "cache";
  /** True when the named object lives on this node (then the call runs here). */
  isLocal: (name: string) => boolean;
  /** How long a forwarded call may take at most. Default 60 s (a long-poll receive waits up to 20 s). */
  timeoutMs?: number;
}

/** Built-ins that never name an object in `args[0]` (they act on this node). */
const NOT_NAMED = new Set(["mpreg.queue.list", "mpreg.queue.unsubscribe"]);

/**
 * Wraps a service's built-ins so that a call naming an object (a queue, by `args[0]`) that lives
 * on another node runs on that node: forwarded through the dispatcher to the owner advertised in
 * the catalog. A call for an object no node advertises runs here (e.g. `create` makes it here;
 * others answer 1001). An owner that is advertised but unreachable is 1005 with the reason.
 * Connection-bound calls (`subscribe`) cannot push from the owner to the caller's connection:
 * forwarded, the owner refuses them (1002); `relaySubscriptions` of @mpreg/queue runs such a
 * subscription on the caller's node instead (docs/queue.md).
 */
export function forwardToOwner(builtins: readonly ServiceBuiltin[], opts: OwnerForwardingOptions): ServiceBuiltin[] {
  const { port, dispatcher, kind } = opts;
  const timeoutMs = opts.timeoutMs ?? 60_000;
  return builtins.map((b) => ({
    ...b,
    run: (args, ctx) => {
      const name = args[0];
      if (NOT_NAMED.has(b.name) || typeof name !== "string" || opts.isLocal(name)) return b.run(args, ctx);
      const owner = port.owner(kind, name);
      if (owner === undefined) {
        const advertised = kind === "queue" ? port.catalog.queues({ name, now: Date.now() }) : port.catalog.caches({ namespace: name, now: Date.now() });
        const others = advertised.filter((e) => e.node_id !== port.nodeId);
        if (others.length === 0) return b.run(args, ctx);
        throw new MpregError(ErrorCode.UNREACHABLE, `${kind} ${name} lives on ${others.map((e) => e.node_id).join(", ")}, which cannot be reached`, {
          reason: "owner unreachable",
          node_id: others[0]!.node_id,
          command: b.name,
        });
      }
      if (owner === port.nodeId) return b.run(args, ctx);
      return dispatcher.dispatch({
        command: { name: b.name, fun: b.name, args: [...args] },
        node_id: owner,
        cluster_id: port.clusterId,
        request_id: ctx.request_id,
        signal: ctx.signal,
        deadline: Date.now() + timeoutMs,
      });
    },
  }));
}
