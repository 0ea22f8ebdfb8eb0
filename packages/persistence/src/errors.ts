/**
 * Storage failures are MpregErrors with `details.kind` saying what went wrong, so callers can
 * branch on it without parsing messages.
 */

import { ErrorCode, MpregError } from "@mpreg/envelope";

/** What kind of storage failure an error reports (`details.kind`). */
export type StorageErrorKind =
  | "config" // invalid configuration, missing or unusable directory
  | "invalid" // a bad argument (key, value, index, namespace)
  | "closed" // the backend was closed
  | "full" // the size cap (`maxBytes`) would be exceeded; nothing was written
  | "busy" // too many writes queued; nothing was written
  | "corrupt" // a file on disk is damaged beyond the recoverable torn tail
  | "io" // the operating system refused an operation
  | "failed"; // an earlier I/O failure stopped the backend; reopen it to recover

/** Builds a storage MpregError. */
export function storageError(
  kind: StorageErrorKind,
  message: string,
  details: Record<string, unknown> = {},
): MpregError {
  const code =
    kind === "invalid" || kind === "config"
      ? ErrorCode.INVALID_REQUEST
      : kind === "full" || kind === "busy"
        ? ErrorCode.OVERLOADED
        : ErrorCode.EXECUTION_FAILED;
  return new MpregError(code, message, { ...details, kind, reason: message });
}

/** The storage error kind of `e`, if it is one. */
export function storageErrorKind(e: unknown): StorageErrorKind | undefined {
  if (e instanceof MpregError) return e.details["kind"] as StorageErrorKind | undefined;
  return undefined;
}

/** Wraps an operating-system error (ENOSPC, EACCES, ...) into a storage error. */
export function ioError(what: string, e: unknown, details: Record<string, unknown> = {}): MpregError {
  const err = e as NodeJS.ErrnoException;
  return storageError("io", `${what}: ${err?.message ?? String(e)}`, { ...details, errno: err?.code });
}
