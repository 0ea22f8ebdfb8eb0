import { createLogger } from "@mpreg/envelope";
import { FEDERATED_CACHE_SCOPE, type ServicePort, type ServiceTag } from "@mpreg/fabric";
import { cacheServiceName } from "@mpreg/router";
import type { CacheService } from "./cache-service.js";
import { CACHE_REPLICATION_TOPIC } from "./replication-message.js";

const log = createLogger("cache");

/**
 * Carries the replication of `cache` over the fabric port: its outbound messages go to every
 * reachable member or to one node (topic `mpreg.cache.replication`), messages from peers are fed
 * to it, and membership changes start catch-up (`up`) or end a peer's sync (`down`). Returns the
 * detach function. Needed only when a namespace is `replicated`; harmless otherwise.
 *
 * Namespaces with `federate: true` also cross clusters (when the node federates): this node
 * announces a catalog entry `{kind: "cache", namespace, scope: "federated"}` for each, which
 * federation exports to other clusters as far as the policies let the topic
 * `mpreg.cache.<namespace>` through; the holders of the namespace in other clusters (the
 * foreign catalog) get every write and invalidation and take part in anti-entropy. A message of
 * another cluster is accepted only for a namespace federated here, from a node known here as a
 * holder (this cluster's route to it offers the namespace) and when this cluster's export
 * policy lets it through to the neighbour it came from: a namespace crosses between two
 * clusters only when the routes both ways offer it.
 */
export function replicateOverFabric(cache: CacheService, port: ServicePort): () => void {
  const federated = new Set(Object.entries(cache.config.namespaces).filter(([, c]) => c.federate).map(([n]) => n));
  const tagOf = (namespace: unknown): ServiceTag | undefined =>
    typeof namespace === "string" && federated.has(namespace) ? { kind: "topic", name: cacheServiceName(namespace) } : undefined;

  const detach = [
    cache.onOutbound((out) => {
      const msg = port.message({ topic: CACHE_REPLICATION_TOPIC, message_type: "cache", payload: out.message });
      const tag = tagOf(out.message.namespace);
      try {
        if (out.to === "node") port.send(out.node, msg, tag);
        else {
          port.broadcast(msg);
          if (tag !== undefined) {
            for (const node of cache.replication.remotePeers(out.message.namespace)) sendRemote(node, msg, tag);
          }
        }
      } catch (e) {
        // Too large for a peer frame: anti-entropy cannot carry it either; the entry stays local.
        log.warn(`cache replication message not sent: ${(e as Error).message}`);
      }
    }),
    port.handle(
      CACHE_REPLICATION_TOPIC,
      (msg) => {
        try {
          cache.receive(msg.headers.source_node, msg.payload);
        } catch (e) {
          log.warn(`dropped a malformed cache message from ${msg.headers.source_node}: ${(e as Error).message}`);
        }
      },
      // Another cluster's message only for a namespace federated here, from a node this node
      // knows as a holder of it (so this cluster's route back offers it too: a deny on either
      // direction keeps the namespace apart both ways), and checked by the fabric against this
      // cluster's export to the neighbour it came from.
      {
        acceptForeign: (msg) => {
          const namespace = (msg.payload as { namespace?: unknown } | null)?.namespace;
          const tag = tagOf(namespace);
          if (tag === undefined || !cache.replication.remotePeers(namespace as string).has(msg.headers.source_node)) return false;
          return tag;
        },
      },
    ),
    port.onMembership((e) => (e.type === "up" ? cache.memberJoined(e.nodeId) : cache.memberLeft(e.nodeId))),
  ];
  for (const id of port.members()) cache.memberJoined(id);

  function sendRemote(node: string, msg: Parameters<ServicePort["send"]>[1], tag: ServiceTag): void {
    try {
      port.send(node, msg, tag);
    } catch (e) {
      // No route or denied now: anti-entropy repairs it once the route is back.
      log.debug(`cache replication to ${node} not sent: ${(e as Error).message}`);
    }
  }

  if (federated.size > 0 && port.foreign !== undefined) {
    const foreign = port.foreign;
    const keys = [...federated].map((namespace) => port.announce({ kind: "cache", namespace, scope: FEDERATED_CACHE_SCOPE }));
    /** Aligns each namespace's remote peers with the holders in the foreign catalog. */
    const syncRemote = () => {
      for (const namespace of federated) {
        const holders = new Set(foreign.caches({ namespace }).filter((e) => e.scope === FEDERATED_CACHE_SCOPE).map((e) => e.node_id));
        for (const node of [...cache.replication.remotePeers(namespace)]) if (!holders.has(node)) cache.replication.remotePeerLeft(namespace, node);
        for (const node of holders) cache.replication.remotePeerJoined(namespace, node);
      }
    };
    detach.push(
      port.onCatalogChange((c) => {
        if (c.entry.kind === "cache" && c.entry.cluster_id !== port.clusterId) syncRemote();
      }),
      () => {
        for (const k of keys) port.withdraw(k);
      },
    );
    syncRemote();
  }
  return () => {
    for (const d of detach) d();
  };
}
