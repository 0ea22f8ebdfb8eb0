import { MpregError } from "@mpreg/envelope";
import { decodeJson, encodeJson } from "./codec.js";
import type { StateMachine } from "./node.js";

/** A command of the replicated key-value store. */
export type KvCommand =
  | { op: "put"; key: string; value: string }
  | { op: "delete"; key: string }
  /** Writes only when the key's version equals `version` (0 = the key must not exist). */
  | { op: "cas"; key: string; version: number; value: string };

/** The result of applying a command (the same on every replica). */
export type KvResult =
  | { op: "put"; version: number }
  | { op: "delete"; deleted: boolean }
  | { op: "cas"; ok: boolean; version: number }
  | { op: "error"; reason: "too_many_keys" | "value_too_large" | "store_full" | "bad_command" };

/** A stored value and its version: 1 on creation, +1 on each write, gone on delete. */
export interface KvValue {
  value: string;
  version: number;
}

export interface KvLimits {
  /** Most keys; a write creating a key beyond it fails with `too_many_keys`. Default 100,000. */
  maxKeys?: number;
  /** Longest key + value in UTF-16 units; longer writes fail with `value_too_large`. Default 1 MiB. */
  maxEntryLength?: number;
  /**
   * Most bytes the whole store may hold, counted as its snapshot holds them (UTF-8 of the
   * JSON-encoded key and value, plus 32 per entry); a write past it fails with `store_full`.
   * Default 8 MiB, so that a snapshot (sent to a lagging follower in one message) stays well
   * under a peer link's default 20 MiB frame limit.
   */
  maxBytes?: number;
}

/** What one entry costs in a snapshot (UTF-8 of its JSON key and value, plus structure). */
function entryBytes(key: string, value: string): number {
  return Buffer.byteLength(JSON.stringify(key)) + Buffer.byteLength(JSON.stringify(value)) + 32;
}

/**
 * The replicated key-value state machine. Deterministic: the same commands in the same order
 * give the same state and results on every replica; limits are enforced the same way everywhere.
 */
export class KvStateMachine implements StateMachine {
  private readonly data = new Map<string, KvValue>();
  private readonly maxKeys: number;
  private readonly maxEntryLength: number;
  private readonly maxBytes: number;
  private bytes = 0;

  constructor(limits: KvLimits = {}) {
    this.maxKeys = limits.maxKeys ?? 100_000;
    this.maxEntryLength = limits.maxEntryLength ?? 1 << 20;
    this.maxBytes = limits.maxBytes ?? 8 * 1024 * 1024;
  }

  /** Bytes held, as counted for `maxBytes`. */
  get byteSize(): number {
    return this.bytes;
  }

  get(key: string): KvValue | undefined {
    const v = this.data.get(key);
    return v ? { value: v.value, version: v.version } : undefined;
  }

  get size(): number {
    return this.data.size;
  }

  apply(data: Uint8Array): KvResult {
    let cmd: KvCommand;
    try {
      cmd = decodeJson<KvCommand>(data);
    } catch {
      return { op: "error", reason: "bad_command" };
    }
    if (!isKvCommand(cmd)) return { op: "error", reason: "bad_command" };
    const cur = this.data.get(cmd.key);
    switch (cmd.op) {
      case "put":
      case "cas": {
        if (cmd.op === "cas" && (cur?.version ?? 0) !== cmd.version) {
          return { op: "cas", ok: false, version: cur?.version ?? 0 };
        }
        if (cmd.key.length + cmd.value.length > this.maxEntryLength) return { op: "error", reason: "value_too_large" };
        if (!cur && this.data.size >= this.maxKeys) return { op: "error", reason: "too_many_keys" };
        const bytes = this.bytes - (cur ? entryBytes(cmd.key, cur.value) : 0) + entryBytes(cmd.key, cmd.value);
        if (bytes > this.maxBytes && bytes > this.bytes) return { op: "error", reason: "store_full" };
        const version = (cur?.version ?? 0) + 1;
        this.data.set(cmd.key, { value: cmd.value, version });
        this.bytes = bytes;
        return cmd.op === "put" ? { op: "put", version } : { op: "cas", ok: true, version };
      }
      case "delete":
        if (cur) this.bytes -= entryBytes(cmd.key, cur.value);
        return { op: "delete", deleted: this.data.delete(cmd.key) };
    }
  }

  snapshot(): Uint8Array {
    return encodeJson([...this.data.entries()]);
  }

  restore(snapshot: Uint8Array): void {
    const rows = decodeJson<[string, KvValue][]>(snapshot);
    if (!Array.isArray(rows)) throw MpregError.invalid("raft kv: snapshot is not an entry list", "snapshot");
    this.data.clear();
    this.bytes = 0;
    for (const [k, v] of rows) {
      this.data.set(k, { value: v.value, version: v.version });
      this.bytes += entryBytes(k, v.value);
    }
  }
}

export function encodeKvCommand(cmd: KvCommand): Uint8Array {
  if (!isKvCommand(cmd)) throw MpregError.invalid("raft kv: malformed command", "command");
  return encodeJson(cmd);
}

function isKvCommand(c: unknown): c is KvCommand {
  const x = c as Record<string, unknown>;
  if (typeof x !== "object" || x === null || typeof x.key !== "string") return false;
  switch (x.op) {
    case "put":
      return typeof x.value === "string";
    case "delete":
      return true;
    case "cas":
      return typeof x.value === "string" && Number.isInteger(x.version) && (x.version as number) >= 0;
    default:
      return false;
  }
}
