/**
 * Versioned records: one schema-version byte, then MessagePack. Decoding an older version runs
 * the registered migrations one version at a time, then validates against the TypeBox schema.
 */

import { Decoder, Encoder } from "@msgpack/msgpack";
import type { Static, TSchema } from "typebox";
import { Compile } from "typebox/compile";
import { storageError } from "./errors.js";

export interface RecordCodec<T> {
  /** The version byte written by `encode` (1..255). */
  readonly version: number;
  encode(value: T): Uint8Array;
  /** Decodes, migrating older versions; throws an `invalid` storage error on bad bytes. */
  decode(bytes: Uint8Array): T;
}

export interface RecordCodecOptions<S extends TSchema> {
  schema: S;
  /** The current version, 1..255. */
  version: number;
  /** `migrations[v]` turns a decoded version-`v` value into a version-`v+1` value. */
  migrations?: Record<number, (old: unknown) => unknown>;
  /** Validate on encode too (default true). */
  validateOnEncode?: boolean;
}

const encoder = new Encoder({ ignoreUndefined: true });
const decoder = new Decoder();

export function createRecordCodec<S extends TSchema>(opts: RecordCodecOptions<S>): RecordCodec<Static<S>> {
  const { version } = opts;
  if (!Number.isInteger(version) || version < 1 || version > 255) {
    throw storageError("invalid", "record codec version must be an integer in 1..255");
  }
  const check = Compile(opts.schema);
  const validateOnEncode = opts.validateOnEncode ?? true;
  const invalid = (value: unknown, when: string) => {
    const e = [...check.Errors(value)].sort((a, b) => b.instancePath.length - a.instancePath.length)[0];
    return storageError("invalid", `record ${when} does not match its schema at ${e?.instancePath || "(root)"}: ${e?.message ?? "invalid"}`, {
      version,
    });
  };
  return {
    version,
    encode(value) {
      if (validateOnEncode && !check.Check(value)) throw invalid(value, "to encode");
      const body = encoder.encode(value);
      const out = new Uint8Array(body.length + 1);
      out[0] = version;
      out.set(body, 1);
      return out;
    },
    decode(bytes) {
      if (!(bytes instanceof Uint8Array) || bytes.length < 2) throw storageError("invalid", "record is too short");
      let v = bytes[0]!;
      if (v === 0 || v > version) {
        throw storageError("invalid", `record has version ${v}, this code reads up to ${version}`, { version: v });
      }
      let value: unknown;
      try {
        value = decoder.decode(bytes.subarray(1));
      } catch (e) {
        throw storageError("invalid", `record is not valid MessagePack: ${(e as Error).message}`);
      }
      for (; v < version; v++) {
        const m = opts.migrations?.[v];
        if (m === undefined) throw storageError("invalid", `no migration from record version ${v} to ${v + 1}`, { version: v });
        value = m(value);
      }
      if (!check.Check(value)) throw invalid(value, "decoded");
      return value as Static<S>;
    },
  };
}
