export {
  Fabric,
  GOSSIP_RELAY_TOPIC,
  PEER_UPGRADE_HEADER,
  DEFAULT_HANDSHAKE_TIMEOUT_MS,
  UNDELIVERABLE_TOPIC,
  PEER_COALESCE_MAX_FRAMES,
  type DialedConnection,
  type FabricOptions,
  type FabricStats,
  type NodeView,
} from "./fabric.js";
export type { FabricMessageHandler, MembershipEvent, OutboundMessage, ServicePort, UndeliverableNotice } from "./service-port.js";
export {
  FEDERATION_CONTROL_PREFIX,
  FederationDriver,
  ROUTE_ADJACENCY_TOPIC,
  ROUTE_CATALOG_TOPIC,
  ROUTE_KEY_TOPIC,
  ROUTE_RESYNC_TOPIC,
  ROUTE_UPDATE_TOPIC,
  type FederationDecision,
  type FederationHost,
  type FederationMode,
  type FederationOptions,
  type FederationReloadReport,
  type FederationStats,
  type ServiceTag,
} from "./federation-driver.js";
export {
  EMPTY_GATEWAY,
  EXPORTED_KINDS,
  FEDERATED_CACHE_SCOPE,
  GATEWAY_KEY_PREFIX,
  isExportedEntry,
  validateClusterEntries,
  validateGatewayAnnouncement,
  type ClusterCatalog,
  type GatewayAnnouncement,
  type GatewayLimits,
  type GatewayRoute,
} from "./gateway-announcement.js";
export { ForeignCatalog, type ForeignCatalogStats } from "./foreign-catalog.js";
export { PEER_PROTOCOL_VERSION, confirmMac, helloMac, macOk, newNonce, welcomeMac } from "./handshake.js";
export { PeerLinks } from "./peer-links.js";
