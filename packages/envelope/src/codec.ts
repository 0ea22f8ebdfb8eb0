/**
 * The codec: frames to bytes (MessagePack, binary WebSocket frames) or text (JSON, text frames)
 * and back, with validation against the compiled schema of the frame's role.
 *
 * `decodeFrame` never throws: any input, however hostile, becomes either a typed frame or an
 * MpregError 1002 (plus the request's `u` when one could be read) for the error reply.
 */
import { Decoder, Encoder } from "@msgpack/msgpack";
import { readJsonRootU, readMsgpackRootU, scanJsonFrame, scanMsgpackFrame, type ScanLimit, type ScanLimits } from "./depth-scan.js";
import { ErrorCode, MpregError } from "./errors.js";
import { decodePubsubTemplate } from "./pubsub-decode.js";
import { FRAME_VALIDATORS, MAX_COMMANDS_PER_REQUEST, isRole, type Frame, type Role, type RpcResponse, type PubsubAck } from "./schemas.js";

/** The two encodings of the protocol: MessagePack on binary frames, JSON on text frames. */
export type Encoding = "msgpack" | "json";

/** The outcome of {@link decodeFrame}: a valid frame, or the error for the reply. */
export type DecodeResult =
  | { ok: true; frame: Frame }
  | { ok: false; error: MpregError; u: string | null };

/**
 * Deepest nesting of objects and arrays accepted in a frame (the frame object itself is level
 * 1). Deeper frames are error 1002. The limit keeps every later recursive walk (validation,
 * reference substitution, re-encoding) far from the stack limit.
 */
export const MAX_NESTING_DEPTH = 64;

/**
 * Most values in one frame: every container, scalar, map key and map value counts one (a
 * string or a binary is one value whatever its length). More is error 1002, decided by a scan
 * of the raw input before anything is decoded. A million values is far above any request a
 * client writes by hand (1000 commands with 100 arguments each is about 300 000); bulk numeric
 * data should travel as binary.
 */
export const MAX_FRAME_ELEMENTS = 1_000_000;

/** Content limits of {@link decodeFrame}; each defaults to the constant of the same meaning. */
export interface DecodeLimits {
  /** Most values in one frame. Default {@link MAX_FRAME_ELEMENTS}. */
  maxElements?: number;
}

/** JSON texts longer than this are depth-scanned before JSON.parse (see depth-scan.ts). */
const JSON_SCAN_MIN_LENGTH = 4096;

const DEFAULT_SCAN_LIMITS: ScanLimits = Object.freeze({
  maxDepth: MAX_NESTING_DEPTH,
  maxElements: MAX_FRAME_ELEMENTS,
  maxCommands: MAX_COMMANDS_PER_REQUEST,
});

function scanLimits(limits: DecodeLimits | undefined): ScanLimits {
  const maxElements = limits?.maxElements;
  if (maxElements === undefined) return DEFAULT_SCAN_LIMITS;
  if (!(Number.isSafeInteger(maxElements) && maxElements > 0)) {
    throw MpregError.invalid(`maxElements must be a positive integer, got ${String(maxElements)}`, "maxElements");
  }
  return { ...DEFAULT_SCAN_LIMITS, maxElements };
}

/** Roles a client connection may send. */
export const CLIENT_ROLES = Object.freeze([
  "rpc",
  "pubsub-publish",
  "pubsub-subscribe",
  "pubsub-unsubscribe",
  "pubsub-publish-batch",
] as const);
export type ClientRole = (typeof CLIENT_ROLES)[number];

/** Roles accepted only on a node-to-node link (after the handshake, except `peer-hello`). */
export const PEER_ROLES = Object.freeze([
  "peer-hello",
  "peer-welcome",
  "peer-confirm",
  "fabric-gossip",
  "fabric-message",
  "peer-goodbye",
] as const);
export type PeerRole = (typeof PEER_ROLES)[number];

const clientRoleSet: ReadonlySet<string> = new Set(CLIENT_ROLES);
const peerRoleSet: ReadonlySet<string> = new Set(PEER_ROLES);

/** True for the roles a client may send (`rpc` and the three pub/sub requests). */
export function isClientRole(role: unknown): role is ClientRole {
  return typeof role === "string" && clientRoleSet.has(role);
}

/** True for the node-to-node roles (refused with 1002 on a client connection). */
export function isPeerRole(role: unknown): role is PeerRole {
  return typeof role === "string" && peerRoleSet.has(role);
}

// The stock decoder builds plain `{}` objects for maps and refuses a `__proto__` key.
const decoder = new Decoder();
const utf8 = new TextDecoder("utf-8", { fatal: true });

/** @internal True when the shared decoder took the fast string path (for a test). */
export let fastStringsActive = false;
/** @internal True when the encoders took the fast string path (for a test). */
export let fastEncoderStringsActive = false;

/** The encoder's own state that `fastEncoderStrings` uses (@msgpack/msgpack 3.x). */
interface EncoderInternals {
  bytes: Uint8Array;
  pos: number;
  ensureBufferSizeToWrite(n: number): void;
  encodeString(s: string): void;
}

/**
 * Makes `e` write short ASCII strings (map keys above all) in one pass, header and bytes,
 * instead of the library's UTF-8 count then encode: the same bytes. Other strings, and an
 * encoder whose internals are not the expected ones, keep the library's path.
 *
 * @internal
 */
export function fastEncoderStrings(e: Encoder): Encoder {
  const internal = e as unknown as EncoderInternals;
  const original = internal.encodeString;
  if (typeof original !== "function" || typeof internal.ensureBufferSizeToWrite !== "function" || !("pos" in internal)) return e;
  internal.encodeString = function (this: EncoderInternals, str: string): void {
    const n = str.length;
    if (n >= 32) return original.call(this, str);
    this.ensureBufferSizeToWrite(1 + n);
    const b = this.bytes;
    const at = this.pos;
    for (let i = 0; i < n; i++) {
      const c = str.charCodeAt(i);
      // Not ASCII: the library's path writes the string over what was written here.
      if (c > 0x7f) return original.call(this, str);
      b[at + 1 + i] = c;
    }
    b[at] = 0xa0 | n;
    this.pos = at + 1 + n;
  };
  fastEncoderStringsActive = true;
  return e;
}

// One encoder and one decoder for the process: they keep their buffers and key caches warm.
// Both are re-entrancy safe (a nested call clones), and both reset their state on each call.
const encoder = fastEncoderStrings(
  new Encoder({
    ignoreUndefined: true,
    // Leaves sit one level below their container, so +1 lets through exactly what decodes.
    maxDepth: MAX_NESTING_DEPTH + 1,
  }),
);

/** The decoder's own state that `fastStrings` reads (@msgpack/msgpack 3.x). */
interface DecoderInternals {
  bytes: Uint8Array;
  pos: number;
  keyDecoder: { decode(bytes: Uint8Array, offset: number, length: number): string } | null;
  decodeUtf8String(byteLength: number, headerOffset: number): string;
}

/** Strings at most this long (in bytes) take the fast path of `fastStrings`. */
const FAST_STRING_MAX = 64;

/**
 * Makes `d` decode short strings faster (same results): up to 16 bytes from the key cache
 * the decoder already keeps for map keys (values such as topics, node ids and `message_type`
 * repeat in every frame), and ASCII ones up to FAST_STRING_MAX bytes (ids) with one
 * `String.fromCharCode` over the bytes instead of the library's array of code units, which it
 * spreads into the call. Decoding strings was the largest single cost of decoding a
 * notification or a fabric message. Anything else, and a decoder whose internals are not the
 * expected ones, keeps the library's path (`fastStringsActive` tells which; a test checks it).
 */
function fastStrings(d: Decoder): Decoder {
  const internal = d as unknown as DecoderInternals;
  const original = internal.decodeUtf8String;
  if (typeof original !== "function" || !("pos" in internal) || !("keyDecoder" in internal) || internal.keyDecoder === null) return d;
  internal.decodeUtf8String = function (this: DecoderInternals, byteLength: number, headerOffset: number): string {
    const bytes = this.bytes;
    const at = this.pos + headerOffset;
    const end = at + byteLength;
    if (byteLength === 0 || byteLength > FAST_STRING_MAX || bytes.byteLength < end) return original.call(this, byteLength, headerOffset);
    let s: string;
    if (byteLength <= 16) {
      s = this.keyDecoder!.decode(bytes, at, byteLength);
    } else {
      for (let i = at; i < end; i++) if (bytes[i]! > 0x7f) return original.call(this, byteLength, headerOffset);
      s = String.fromCharCode.apply(null, bytes.subarray(at, end) as unknown as number[]);
    }
    this.pos = end;
    return s;
  };
  fastStringsActive = true;
  return d;
}
fastStrings(decoder);

/**
 * Encoded frames up to POOLED_MAX bytes are copied into slices of a shared slab instead of
 * each getting a new ArrayBuffer (what `Encoder.encode`'s `Uint8Array.slice` does): an
 * ArrayBuffer is an off-heap allocation the GC tracks separately, a visible per-frame cost at
 * tens of thousands of frames per second. Bound: a frame still referenced keeps at most one
 * SLAB_BYTES slab alive. Larger frames get their own buffer.
 */
const SLAB_BYTES = 16 * 1024;
const POOLED_MAX = 2 * 1024;
let slab = new ArrayBuffer(SLAB_BYTES);
let slabOffset = 0;

/** @internal A slice of the shared slab (or a new buffer past POOLED_MAX) for an encoded frame. */
export function allocOut(n: number): Uint8Array {
  if (n > POOLED_MAX) return new Uint8Array(n);
  if (slabOffset + n > SLAB_BYTES) {
    slab = new ArrayBuffer(SLAB_BYTES);
    slabOffset = 0;
  }
  const out = new Uint8Array(slab, slabOffset, n);
  // 8-byte aligned starts, like Node's own buffer pool.
  slabOffset = (slabOffset + n + 7) & ~7;
  return out;
}

function copyOut(view: Uint8Array): Uint8Array {
  const out = allocOut(view.length);
  out.set(view);
  return out;
}

/**
 * Encodes a frame: MessagePack gives a `Uint8Array` (a fresh copy, safe to hand to a socket),
 * JSON gives a `string`. Fields whose value is `undefined` are omitted in both encodings.
 *
 * Plain data (objects, arrays, strings, finite numbers, booleans, null, `Uint8Array`) always
 * encodes. A value that cannot be encoded (a BigInt, a cycle, a function in MessagePack,
 * nesting deeper than {@link MAX_NESTING_DEPTH} in MessagePack) throws an MpregError with code
 * 1002 (`details.reason` says why); the caller decides what to send instead, typically an
 * error reply built with {@link rpcErrorReply}.
 *
 * @throws {MpregError} code 1002 when the frame cannot be encoded.
 */
export function encodeFrame(frame: object, encoding: "msgpack"): Uint8Array;
export function encodeFrame(frame: object, encoding: "json"): string;
export function encodeFrame(frame: object, encoding: Encoding): Uint8Array | string;
export function encodeFrame(frame: object, encoding: Encoding): Uint8Array | string {
  try {
    if (encoding === "msgpack") {
      // A view of the encoder's own buffer, copied out at once (the next encode reuses it).
      return copyOut(encoder.encodeSharedRef(frame));
    }
    const text = JSON.stringify(frame) as string | undefined;
    if (typeof text !== "string") throw new Error("not a JSON value");
    return text;
  } catch (e) {
    const reason = `frame cannot be encoded as ${encoding}: ${errorText(e)}`;
    throw new MpregError(ErrorCode.INVALID_REQUEST, reason, { reason });
  }
}

// Encodes the `args` of encodeCallRequest. They sit 3 levels below the frame (frame, cmds,
// command), so this encoder's depth limit is 3 lower: exactly what encodeFrame accepts.
const argsEncoder = fastEncoderStrings(new Encoder({ ignoreUndefined: true, maxDepth: MAX_NESTING_DEPTH + 1 - 3 }));
/** One byte per character (the templates hold MessagePack bytes, not UTF-8 text). */
const latin1 = (s: string): Uint8Array => Uint8Array.from(s, (c) => c.charCodeAt(0));
const CALL_HEAD = latin1("\x84\xa4role\xa3rpc\xa1u"); // map(4), "role": "rpc", "u"
const CALL_CMDS = latin1("\xa4cmds\x91\x83\xa4name"); // "cmds": [map(3) "name"
const CALL_FUN = latin1("\xa3fun");
const CALL_ARGS = latin1("\xa4args");
const CALL_TIMEOUT = latin1("\xaatimeout_ms");

/** True for strings MessagePack writes as a fixstr of one byte per character. */
function isShortAscii(s: string): boolean {
  if (s.length > 31) return false;
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0x7f) return false;
  return true;
}

function putFixstr(out: Uint8Array, at: number, s: string): number {
  out[at++] = 0xa0 | s.length;
  for (let i = 0; i < s.length; i++) out[at++] = s.charCodeAt(i);
  return at;
}

/**
 * Encodes `{role: "rpc", u, cmds: [{name, fun, args}], timeout_ms}` as MessagePack: the same
 * bytes as `encodeFrame(frame, "msgpack")`, but the constant keys come from templates. This is
 * the frame of every plain `MpregClient.call`, and the generic encoder spent most of its time
 * UTF-8 counting and encoding those keys. Strings that are not short ASCII, and anything the
 * fast path cannot encode, go through `encodeFrame` (same result, same errors).
 *
 * @throws {MpregError} code 1002 when the frame cannot be encoded (as encodeFrame).
 */
export function encodeCallRequest(u: string, name: string, fun: string, args: unknown[], timeoutMs: number): Uint8Array {
  const generic = () => encodeFrame({ role: "rpc", u, cmds: [{ name, fun, args }], timeout_ms: timeoutMs }, "msgpack");
  if (!(isShortAscii(u) && isShortAscii(name) && isShortAscii(fun))) return generic();
  if (!(Number.isInteger(timeoutMs) && timeoutMs >= 0 && timeoutMs <= 0xffff_ffff) || args === undefined) return generic();
  let argBytes: Uint8Array;
  try {
    argBytes = argsEncoder.encodeSharedRef(args);
  } catch {
    return generic();
  }
  // The smallest unsigned form, as the generic encoder picks it.
  const intBytes = timeoutMs < 0x80 ? 1 : timeoutMs < 0x100 ? 2 : timeoutMs < 0x10000 ? 3 : 5;
  const n =
    CALL_HEAD.length + 1 + u.length + CALL_CMDS.length + 1 + name.length + CALL_FUN.length + 1 + fun.length +
    CALL_ARGS.length + argBytes.length + CALL_TIMEOUT.length + intBytes;
  const out = allocOut(n);
  out.set(CALL_HEAD, 0);
  let at = putFixstr(out, CALL_HEAD.length, u);
  out.set(CALL_CMDS, at);
  at = putFixstr(out, at + CALL_CMDS.length, name);
  out.set(CALL_FUN, at);
  at = putFixstr(out, at + CALL_FUN.length, fun);
  out.set(CALL_ARGS, at);
  at += CALL_ARGS.length;
  out.set(argBytes, at);
  at += argBytes.length;
  out.set(CALL_TIMEOUT, at);
  at += CALL_TIMEOUT.length;
  if (intBytes === 1) {
    out[at] = timeoutMs;
  } else if (intBytes === 2) {
    out[at] = 0xcc;
    out[at + 1] = timeoutMs;
  } else if (intBytes === 3) {
    out[at] = 0xcd;
    out[at + 1] = timeoutMs >>> 8;
    out[at + 2] = timeoutMs & 0xff;
  } else {
    out[at] = 0xce;
    out[at + 1] = timeoutMs >>> 24;
    out[at + 2] = (timeoutMs >>> 16) & 0xff;
    out[at + 3] = (timeoutMs >>> 8) & 0xff;
    out[at + 4] = timeoutMs & 0xff;
  }
  return out;
}

// Encodes the `r` of encodeRpcResult, one level below the frame.
const resultEncoder = fastEncoderStrings(new Encoder({ ignoreUndefined: true, maxDepth: MAX_NESTING_DEPTH + 1 - 1 }));
const REPLY_HEAD = latin1("\x84\xa4role\xacrpc-response\xa1u"); // map(4), "role": "rpc-response", "u"
const REPLY_R = latin1("\xa1r");
const REPLY_TAIL = latin1("\xa5error\xc0"); // "error": nil

/**
 * Encodes the successful reply `{role: "rpc-response", u, r, error: null}` as MessagePack: the
 * same bytes as `encodeFrame(reply, "msgpack")`, with the constant parts from templates (the
 * node's reply to every request without intermediate results or summary). A `u` that is not
 * short ASCII, and anything the fast path cannot encode, goes through `encodeFrame` (same
 * result, same errors).
 *
 * @throws {MpregError} code 1002 when the reply cannot be encoded (as encodeFrame).
 */
export function encodeRpcResult(u: string, r: Record<string, unknown>): Uint8Array {
  const generic = () => encodeFrame({ role: "rpc-response", u, r, error: null }, "msgpack");
  if (!isShortAscii(u) || r === undefined) return generic();
  let rBytes: Uint8Array;
  try {
    rBytes = resultEncoder.encodeSharedRef(r);
  } catch {
    return generic();
  }
  const out = allocOut(REPLY_HEAD.length + 1 + u.length + REPLY_R.length + rBytes.length + REPLY_TAIL.length);
  out.set(REPLY_HEAD, 0);
  let at = putFixstr(out, REPLY_HEAD.length, u);
  out.set(REPLY_R, at);
  at += REPLY_R.length;
  out.set(rBytes, at);
  out.set(REPLY_TAIL, at + rBytes.length);
  return out;
}

/**
 * Decodes and validates one frame. Never throws.
 *
 * Steps: scan the raw input (MessagePack always, JSON above 4096 characters) for nesting
 * deeper than {@link MAX_NESTING_DEPTH}, more than `limits.maxElements` values
 * ({@link MAX_FRAME_ELEMENTS}) or a `cmds` array longer than {@link MAX_COMMANDS_PER_REQUEST},
 * so that a hostile frame is refused before a parser spends time and memory on it; parse (MessagePack, or JSON from a string or UTF-8 bytes); refuse `__proto__`
 * keys (and, for JSON, check depth on the parsed value); require an object with a string `role`
 * of the protocol; check it against that role's compiled schema. Every failure is error 1002
 * with `details.reason` (and `details.path`, a JSON pointer such as `/cmds/0/fun`, when the
 * fault has a place); `u` is the frame's `u` when it is a string (read from the raw input when
 * parsing failed), else null.
 */
export function decodeFrame(data: Uint8Array | string, encoding: Encoding, limits?: DecodeLimits): DecodeResult {
  // The pub/sub frames sent once per message (plain publish, its ack, the notification) are
  // read by a template decoder when they have the template encoders' layout: the same frame
  // as below, without the scan, the generic decoder and the schema check (pubsub-decode.ts).
  // Custom limits always take the generic path.
  if (limits === undefined && encoding === "msgpack" && typeof data !== "string") {
    const frame = decodePubsubTemplate(data);
    if (frame !== undefined) return { ok: true, frame };
  }
  return decodeFrameGeneric(data, encoding, limits);
}

/**
 * `decodeFrame` without the template decoders of pubsub-decode.ts (the reference the tests
 * compare them with).
 *
 * @internal
 */
export function decodeFrameGeneric(data: Uint8Array | string, encoding: Encoding, limits?: DecodeLimits): DecodeResult {
  let scan: ScanLimits;
  try {
    scan = scanLimits(limits);
  } catch (e) {
    return fail(e as MpregError, null);
  }
  if (encoding === "msgpack") {
    if (typeof data === "string") return fail(MpregError.invalid("a MessagePack frame must be binary"), null);
    // The scan bounds depth before the decoder allocates per level; the decoder itself refuses
    // `__proto__` keys, so the decoded value needs no structural walk afterwards.
    let value: unknown;
    try {
      const scanned = scanMsgpackFrame(data, scan);
      if (!scanned.ok) return fail(overLimit(scanned.limit, scan), scanned.u);
      value = decoder.decode(data);
    } catch (e) {
      return fail(undecodable(encoding, e), safeU(() => readMsgpackRootU(data, MAX_NESTING_DEPTH)));
    }
    return validateParsed(value, false);
  }
  let text: string;
  try {
    text = typeof data === "string" ? data : utf8.decode(data);
  } catch (e) {
    return fail(undecodable(encoding, e), null);
  }
  let value: unknown;
  try {
    // Small texts cannot nest deep enough to be costly to parse; the walk after parsing checks
    // them. Large ones are scanned first.
    if (text.length > JSON_SCAN_MIN_LENGTH || scan.maxElements < JSON_SCAN_MIN_LENGTH) {
      const scanned = scanJsonFrame(text, scan);
      if (!scanned.ok) return fail(overLimit(scanned.limit, scan), scanned.u);
    }
    value = JSON.parse(text);
  } catch (e) {
    // Includes a RangeError from extreme nesting inside the parser.
    return fail(undecodable(encoding, e), safeU(() => readJsonRootU(text, MAX_NESTING_DEPTH)));
  }
  return validateParsed(value, true);
}

function undecodable(encoding: Encoding, e: unknown): MpregError {
  return MpregError.invalid(`undecodable ${encoding} frame: ${errorText(e)}`);
}

/** Best-effort `u` of a frame that failed to parse; never throws. */
function safeU(read: () => string | null): string | null {
  try {
    return read();
  } catch {
    return null;
  }
}

/**
 * Validates an already parsed value as a frame (the second half of {@link decodeFrame}), for
 * transports that carry objects rather than bytes: nesting depth, `__proto__` keys, role and
 * schema. Never throws.
 */
export function validateFrame(value: unknown): DecodeResult {
  return validateParsed(value, true);
}

function validateParsed(value: unknown, walk: boolean): DecodeResult {
  try {
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      return fail(MpregError.invalid("a frame must be an object"), null);
    }
    const obj = value as Record<string, unknown>;
    const uField = obj.u;
    const u = typeof uField === "string" ? uField : null;
    const role = obj.role;
    if (typeof role !== "string") return fail(MpregError.invalid("missing role", "/role"), u);
    if (!isRole(role)) {
      return fail(new MpregError(ErrorCode.INVALID_REQUEST, `unknown role "${clip(role)}"`, {
        reason: "unknown role",
        path: "/role",
      }), u);
    }
    if (walk) {
      const structural = checkStructure(obj);
      if (structural !== null) return fail(structural, u);
    }
    const validator = FRAME_VALIDATORS[role];
    if (validator.Check(obj)) return { ok: true, frame: obj as Frame };
    return fail(schemaError(role, validator, obj), u);
  } catch (e) {
    // Only reachable with exotic objects (getters that throw, proxies) handed to validateFrame.
    return fail(MpregError.invalid(`invalid frame: ${errorText(e)}`), null);
  }
}

/** The `rpc-response` that carries an error: `r` is null. */
export function rpcErrorReply(u: string | null, err: MpregError): RpcResponse {
  return { role: "rpc-response", u, r: null, error: err.toWire() };
}

/** The `pubsub-ack` that carries an error: `success` is false. */
export function pubsubErrorAck(u: string, err: MpregError): PubsubAck {
  return { role: "pubsub-ack", u, success: false, error: err.toWire() };
}

// ---------------------------------------------------------------------------------------------
// Internals
// ---------------------------------------------------------------------------------------------

function tooDeep(): MpregError {
  return MpregError.invalid(`frame nesting deeper than ${MAX_NESTING_DEPTH} levels`);
}

/** The 1002 for a frame refused by the scan, naming the limit it passed. */
function overLimit(limit: ScanLimit, scan: ScanLimits): MpregError {
  switch (limit) {
    case "depth":
      return tooDeep();
    case "elements":
      return MpregError.invalid(`frame holds more than ${scan.maxElements} values (limit maxElements, default MAX_FRAME_ELEMENTS)`);
    case "commands":
      return MpregError.invalid(`/cmds must not have more than ${scan.maxCommands} items (limit MAX_COMMANDS_PER_REQUEST)`, "/cmds");
  }
}

function fail(error: MpregError, u: string | null): DecodeResult {
  return { ok: false, error, u };
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

function clip(s: string): string {
  return s.length > 64 ? `${s.slice(0, 64)}…` : s;
}

// Reused work stacks of checkStructure (decoding is synchronous, so one pair suffices). Slots
// are cleared as they are popped, so no frame is retained; a stack that grew past
// STACK_KEEP_LIMIT for one huge frame is released afterwards instead of being kept.
const stackValues: unknown[] = [];
const stackDepths: number[] = [];
const STACK_KEEP_LIMIT = 4096;
const hasOwn = Object.prototype.hasOwnProperty;

/**
 * Iterative walk of the parsed frame: refuses nesting deeper than MAX_NESTING_DEPTH and own
 * `__proto__` keys (JSON.parse creates them as plain properties; later merges with
 * `Object.assign` would turn them into prototype changes). No recursion, so a 100k-deep
 * input costs about MAX_NESTING_DEPTH steps and cannot exhaust the call stack.
 */
function checkStructure(root: object): MpregError | null {
  const values = stackValues;
  const depths = stackDepths;
  values[0] = root;
  depths[0] = 1;
  let top = 1;
  let highWater = 1;
  let result: MpregError | null = null;
  while (top > 0) {
    top--;
    const v = values[top] as object;
    const depth = depths[top] as number;
    values[top] = undefined;
    if (depth > MAX_NESTING_DEPTH) {
      result = tooDeep();
      break;
    }
    if (Array.isArray(v)) {
      for (let i = 0; i < v.length; i++) {
        const c: unknown = v[i];
        if (typeof c === "object" && c !== null) {
          values[top] = c;
          depths[top++] = depth + 1;
        }
      }
    } else if (!ArrayBuffer.isView(v)) {
      if (hasOwn.call(v, "__proto__")) {
        result = MpregError.invalid('the key "__proto__" is not allowed');
        break;
      }
      for (const k in v) {
        const c: unknown = (v as Record<string, unknown>)[k];
        if (typeof c === "object" && c !== null) {
          values[top] = c;
          depths[top++] = depth + 1;
        }
      }
    }
    if (top > highWater) highWater = top;
  }
  if (highWater > STACK_KEEP_LIMIT) {
    values.length = 0;
    depths.length = 0;
  } else if (top > 0) {
    values.fill(undefined, 0, top);
  }
  return result;
}

type Validator = (typeof FRAME_VALIDATORS)[Role];

/** Builds the 1002 for a frame that failed its schema, from the first reported error. */
function schemaError(role: Role, validator: Validator, frame: Record<string, unknown>): MpregError {
  if (role === "rpc" && Array.isArray(frame.cmds) && frame.cmds.length === 0) {
    return MpregError.invalid("cmds must not be empty", "/cmds");
  }
  const first = validator.Errors(frame)[0];
  if (first === undefined) return MpregError.invalid(`invalid ${role} frame`);
  let path = first.instancePath;
  let reason: string;
  if (first.keyword === "required") {
    const missing = (first.params as { requiredProperties?: string[] }).requiredProperties ?? [];
    if (missing[0] !== undefined) path = `${path}/${escapePointer(missing[0])}`;
    reason = `${path} is required`;
  } else {
    reason = `${path === "" ? "frame" : path} ${first.message}`;
  }
  // The JSON pointer of the whole frame is "", which says nothing: omit it then.
  const details = path === "" ? { reason } : { reason, path };
  return new MpregError(ErrorCode.INVALID_REQUEST, `invalid ${role} frame: ${reason}`, details);
}

function escapePointer(key: string): string {
  return key.replace(/~/g, "~0").replace(/\//g, "~1");
}
