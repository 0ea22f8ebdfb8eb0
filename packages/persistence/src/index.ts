export type * from "./interfaces.js";
export { MemoryBackend, MemoryVolume, type MemoryBackendOptions } from "./memory.js";
export { storageError, storageErrorKind, type StorageErrorKind } from "./errors.js";
export { crc32c } from "./crc32c.js";
export { compareBytes, prefixEnd } from "./bytes.js";
export { MAX_KEY_BYTES, MAX_VALUE_BYTES, MAX_SNAPSHOT_BYTES, MAX_NAMESPACE_LENGTH } from "./validate.js";
export {
  complianceCases,
  runComplianceSuite,
  type ComplianceCase,
  type ComplianceHarness,
  type ComplianceTestApi,
} from "./compliance.js";
export { nodeFileSystem, type FileSystem, type FileSystemHandle, type FileSystemStats, type OpenFlags } from "./file-system.js";
export { FileBackend, type FileBackendOptions, type FsyncPolicy, type RecoveryReport } from "./file.js";
export { SqliteBackend, type SqliteBackendOptions } from "./sqlite.js";
export { StorageConfigSchema, parseStorageConfig, openBackend, type StorageConfig } from "./config.js";
export { createRecordCodec, type RecordCodec, type RecordCodecOptions } from "./record-codec.js";
export { TypedKV, PersistentState, type PersistentStateOptions } from "./persistent-state.js";
