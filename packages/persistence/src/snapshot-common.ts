/** Checks shared by every SnapshotStore implementation. */

import { decode, encode } from "@msgpack/msgpack";
import { MAX_SNAPSHOT_BYTES, checkIndex, checkValue } from "./validate.js";
import { storageError } from "./errors.js";
import { copyBytes } from "./bytes.js";

export interface SnapshotInput {
  index: number;
  meta: Record<string, unknown>;
  metaBytes: Uint8Array;
  data: Uint8Array;
}

/** Validates a save() argument; metadata must be MessagePack-encodable (plain data). */
export function checkSnapshotInput(s: unknown): SnapshotInput {
  if (typeof s !== "object" || s === null) throw storageError("invalid", "snapshot must be an object");
  const o = s as { index?: unknown; meta?: unknown; data?: unknown };
  const index = checkIndex(o.index, "snapshot index", 0);
  const data = copyBytes(checkValue(o.data, "snapshot data", MAX_SNAPSHOT_BYTES));
  const meta = o.meta ?? {};
  if (typeof meta !== "object" || meta === null || Array.isArray(meta)) {
    throw storageError("invalid", "snapshot meta must be a plain object");
  }
  let metaBytes: Uint8Array;
  try {
    metaBytes = encode(meta);
  } catch (e) {
    throw storageError("invalid", `snapshot meta is not encodable: ${(e as Error).message}`);
  }
  return { index, meta: decode(metaBytes) as Record<string, unknown>, metaBytes, data };
}
