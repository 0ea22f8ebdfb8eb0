import type { ServicePort } from "@mpreg/fabric";
import type { QueueService } from "./queue-service.js";

/**
 * Advertises the queues of `service` in the catalog through the fabric port (one `queue` entry
 * per queue, owned by this node), kept in step as queues are created and deleted, so calls on
 * other nodes are forwarded here. Returns the detach function.
 */
export function advertiseQueues(service: QueueService, port: ServicePort): () => void {
  const announced = new Map<string, string>();
  const sync = (names: readonly string[]) => {
    const now = new Set(names);
    for (const name of now) if (!announced.has(name)) announced.set(name, port.announce({ kind: "queue", name }));
    for (const [name, key] of [...announced]) {
      if (now.has(name)) continue;
      port.withdraw(key);
      announced.delete(name);
    }
  };
  sync(service.names());
  return service.onQueuesChanged(sync);
}
