import type { GossipMessage } from "./types.js";

/**
 * Whether a message is as useful to any member as to its addressee, so that a node without a
 * route to the addressee may hand it to a neighbour instead: a push of updates and an
 * anti-entropy request (the answer goes back to the sender, whoever receives it). Pings, acks
 * and ping-reqs name their target; sync replies and sync pushes answer a request.
 */
export function redirectable(msg: GossipMessage): boolean {
  return msg.type === "gossip" || msg.type === "sync-req";
}
