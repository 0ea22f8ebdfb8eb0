/**
 * Trace ids (W3C Trace Context): 32 lowercase hex digits, never all zeros. A request that
 * arrives with a `traceparent` keeps its trace id across every hop; one without gets a new one.
 */

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;
const ZERO_TRACE = "0".repeat(32);
const ZERO_PARENT = "0".repeat(16);

/**
 * The trace id of a W3C `traceparent` header, or undefined when it is absent or malformed (the
 * caller then starts a new trace, as the spec asks). Version `ff` and all-zero ids are invalid;
 * a version other than `00` may carry more fields after the fourth.
 */
export function traceIdFromTraceparent(traceparent: unknown): string | undefined {
  if (typeof traceparent !== "string" || traceparent.length > 256) return undefined;
  const m = TRACEPARENT.exec(traceparent.trim());
  if (m === null) return undefined;
  const [, version, traceId, parentId, , rest] = m;
  if (version === "ff" || traceId === ZERO_TRACE || parentId === ZERO_PARENT) return undefined;
  if (version === "00" && rest !== undefined) return undefined;
  return traceId;
}

// Random per process, then a counter: unique, and cheap enough for every request.
// globalThis.crypto: the envelope also runs in browsers.
const prefix = Array.from(globalThis.crypto.getRandomValues(new Uint8Array(8)), (b) => b.toString(16).padStart(2, "0")).join("");
let counter = 0;

/** A new trace id: 16 random hex digits fixed per process, then a 16-digit counter. */
export function newTraceId(): string {
  counter = (counter + 1) % Number.MAX_SAFE_INTEGER;
  return prefix + counter.toString(16).padStart(16, "0");
}
