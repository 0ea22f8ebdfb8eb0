export {
  Fabric,
  GOSSIP_RELAY_TOPIC,
  PEER_UPGRADE_HEADER,
  DEFAULT_HANDSHAKE_TIMEOUT_MS,
  PEER_COALESCE_MAX_FRAMES,
  type DialedConnection,
  type FabricOptions,
  type FabricStats,
  type NodeView,
} from "./fabric.js";
export type { FabricMessageHandler, MembershipEvent, OutboundMessage, ServicePort } from "./service-port.js";
export { PEER_PROTOCOL_VERSION, confirmMac, helloMac, macOk, newNonce, welcomeMac } from "./handshake.js";
export { PeerLinks } from "./peer-links.js";
