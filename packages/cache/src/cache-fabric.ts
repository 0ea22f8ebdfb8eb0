import { createLogger } from "@mpreg/envelope";
import type { ServicePort } from "@mpreg/fabric";
import type { CacheService } from "./cache-service.js";
import { CACHE_REPLICATION_TOPIC } from "./replication-message.js";

const log = createLogger("cache");

/**
 * Carries the replication of `cache` over the fabric port: its outbound messages go to every
 * reachable member or to one node (topic `mpreg.cache.replication`), messages from peers are fed
 * to it, and membership changes start catch-up (`up`) or end a peer's sync (`down`). Returns the
 * detach function. Needed only when a namespace is `replicated`; harmless otherwise.
 */
export function replicateOverFabric(cache: CacheService, port: ServicePort): () => void {
  const detach = [
    cache.onOutbound((out) => {
      const msg = port.message({ topic: CACHE_REPLICATION_TOPIC, message_type: "cache", payload: out.message });
      try {
        if (out.to === "all") port.broadcast(msg);
        else port.send(out.node, msg);
      } catch (e) {
        // Too large for a peer frame: anti-entropy cannot carry it either; the entry stays local.
        log.warn(`cache replication message not sent: ${(e as Error).message}`);
      }
    }),
    port.handle(CACHE_REPLICATION_TOPIC, (msg) => {
      try {
        cache.receive(msg.headers.source_node, msg.payload);
      } catch (e) {
        log.warn(`dropped a malformed cache message from ${msg.headers.source_node}: ${(e as Error).message}`);
      }
    }),
    port.onMembership((e) => (e.type === "up" ? cache.memberJoined(e.nodeId) : cache.memberLeft(e.nodeId))),
  ];
  for (const id of port.members()) cache.memberJoined(id);
  return () => {
    for (const d of detach) d();
  };
}
