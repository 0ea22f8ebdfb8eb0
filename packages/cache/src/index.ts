export { CacheService, type CacheServiceOptions, type InvalidateOptions, type NamespaceOption, type PutOptions } from "./cache-service.js";
export { cacheBuiltins } from "./cache-builtins.js";
export {
  DEFAULT_NAMESPACE,
  MAX_NAMESPACES,
  parseCacheConfig,
  type CacheConfig,
  type NamespaceConfig,
  type ReplicationConfig,
  type Scope,
} from "./cache-config.js";
export { CacheNamespace, type NamespaceStats, type ReadResult, type ReplicaEntry } from "./cache-namespace.js";
export { CacheReplicator, type CacheReplicatorOptions, type Outbound, type ReplicationStats } from "./cache-replicator.js";
export {
  CACHE_REPLICATION_TOPIC,
  DIGEST_BUCKETS,
  MAX_TOMB_KEYS,
  validateReplicationMessage,
  type PutMessage,
  type ReplicationMessage,
  type SyncEntry,
  type SyncRequestMessage,
  type SyncResponseMessage,
  type TombMessage,
} from "./replication-message.js";
export { HybridClock, compareStamps, stampText, DEFAULT_MAX_DRIFT_MS, type HybridClockOptions, type Stamp } from "./hybrid-clock.js";
export {
  MemoryCache,
  DEFAULT_MAX_BYTES,
  DEFAULT_MAX_ENTRIES,
  MAX_KEY_LENGTH,
  type MemoryCacheOptions,
  type MemoryCacheStats,
  type RemovalReason,
  type SetOptions,
} from "./memory-cache.js";
export { CacheEntry } from "./cache-entry.js";
export { POLICY_NAMES, type EvictionPolicy, type PolicyLimits, type PolicyName } from "./eviction-policy.js";
export { createPolicy } from "./create-policy.js";
export { TinyLfuPolicy, WINDOW_FRACTION, PROTECTED_FRACTION } from "./tinylfu-policy.js";
export { S4lruPolicy, S4LRU_SEGMENTS } from "./s4lru-policy.js";
export { LruPolicy } from "./lru-policy.js";
export { LfuPolicy } from "./lfu-policy.js";
export { CostPolicy } from "./cost-policy.js";
export { TtlPolicy } from "./ttl-policy.js";
export { FrequencySketch } from "./frequency-sketch.js";
export { DependencyGraph, MAX_DEPENDENCIES } from "./dependency-graph.js";
export { ENTRY_OVERHEAD_BYTES, entrySize, estimateValueSize, msgpackValueSize, type Sizing } from "./value-size.js";
export {
  policyComplianceCases,
  runPolicyComplianceSuite,
  type PolicyComplianceCase,
  type PolicyComplianceHarness,
  type PolicyComplianceTestApi,
} from "./compliance.js";
export { replicateOverFabric } from "./cache-fabric.js";
