/**
 * @mpreg/gateway: the client side of an MPREG node. It turns the listener's connections into
 * sessions, decodes and checks their frames, admits `rpc` requests and writes their replies, and
 * hands `pubsub-*` frames to the pub/sub service and `peer-hello` connections to the fabric.
 */
export { ClientGateway, PUSH_HIGH_WATER_BYTES, type ClientGatewayOptions, type GatewayMetrics } from "./client-gateway.js";
export type { ClientSession } from "./client-session.js";
