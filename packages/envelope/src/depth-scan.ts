/**
 * Nesting-depth and content scans that run on the raw bytes/text BEFORE parsing.
 *
 * Parsers cope with deep input in time and memory proportional to the depth, and both are
 * large for a hostile frame: JSON.parse of a 20 MB `[[[[…` takes seconds, and the MessagePack
 * decoder keeps one pooled state object per level for the life of the (shared) decoder, so one
 * 20 MB frame of `0x91` bytes would pin gigabytes. Width costs too: a 3 MB frame of 100 000
 * commands took seconds to decode and check against its schema, and a 20 MB frame of small
 * integers is 20 million values. These scans refuse such frames first — too deep, too many
 * values in total, or more commands than a request may hold — with no allocation and a
 * fixed-size work area, and can still read a top-level string `u` so the error reply is
 * correlated. Strings and binaries need no limit of their own: each is one value and one
 * allocation, bounded by the frame size.
 */

/** Which content limit a frame broke. */
export type ScanLimit = "depth" | "elements" | "commands";

/** Limits of {@link scanMsgpackFrame} and {@link scanJsonFrame}. */
export interface ScanLimits {
  /** Deepest nesting of containers (the root is level 1). */
  maxDepth: number;
  /** Most values in the frame: every container, scalar, map key and map value counts one. */
  maxElements: number;
  /** Most items of the array under the root key `cmds`. */
  maxCommands: number;
}

/** Outcome of a frame scan: within the limits, or the limit broken (with the root `u` when readable). */
export type FrameScanResult = { ok: true } | { ok: false; limit: ScanLimit; u: string | null };

/** Outcome of a depth-only scan: within the limit, or too deep (with the root `u` when it was readable). */
export type ScanResult = { tooDeep: false } | { tooDeep: true; u: string | null };

const WITHIN: ScanResult = Object.freeze({ tooDeep: false });
const FRAME_OK: FrameScanResult = Object.freeze({ ok: true });
const NO_LIMIT = Number.POSITIVE_INFINITY;
// Result codes of the scanners (no objects on the hot path).
const OK = 0;
const TOO_DEEP = 1;
const TOO_MANY_ELEMENTS = 2;
const TOO_MANY_COMMANDS = 3;
const LIMIT_NAMES: readonly (ScanLimit | null)[] = [null, "depth", "elements", "commands"];
const utf8 = new TextDecoder("utf-8", { fatal: false });

// Items still expected in each open MessagePack container. Float64: a map32 holds 2 * 2^32 - 2.
let remaining = new Float64Array(72);

/**
 * Scans MessagePack `bytes` and reports whether containers nest deeper than `maxDepth` (the
 * root container is level 1). Malformed or truncated input is reported as within the limit:
 * the decoder then refuses it with its own message.
 */
export function scanMsgpackDepth(bytes: Uint8Array, maxDepth: number): ScanResult {
  // The common case (within the limit) runs without the `u` bookkeeping; only a refused frame
  // is scanned a second time to find its `u`.
  return scanMsgpack(bytes, maxDepth, NO_LIMIT, NO_LIMIT, false) !== OK ? { tooDeep: true, u: readMsgpackRootU(bytes, maxDepth) } : WITHIN;
}

/**
 * Scans MessagePack `bytes` against every content limit. Malformed or truncated input is
 * reported as within the limits: the decoder then refuses it with its own message. A refused
 * frame's `u` is read from before the point where the limit was passed.
 */
export function scanMsgpackFrame(bytes: Uint8Array, limits: ScanLimits): FrameScanResult {
  const code = scanMsgpack(bytes, limits.maxDepth, limits.maxElements, limits.maxCommands, false);
  if (code === OK) return FRAME_OK;
  uFound = null;
  scanMsgpack(bytes, limits.maxDepth, limits.maxElements, limits.maxCommands, true);
  return { ok: false, limit: LIMIT_NAMES[code] as ScanLimit, u: uFound };
}

/**
 * The string value of key `u` in a root MessagePack map, read without decoding the frame (for
 * the error reply to a frame the decoder refuses). Null when absent, not a complete string, or
 * not before the point where the input is malformed or nests deeper than `maxDepth`.
 */
export function readMsgpackRootU(bytes: Uint8Array, maxDepth: number): string | null {
  uFound = null;
  scanMsgpack(bytes, maxDepth, NO_LIMIT, NO_LIMIT, true);
  return uFound;
}

// Set by scanMsgpack when called with wantU (keeps the hot path free of result objects).
let uFound: string | null = null;

/**
 * A result code (OK, TOO_DEEP, TOO_MANY_ELEMENTS, TOO_MANY_COMMANDS). With `wantU`, also
 * records the root map's string `u` in `uFound`.
 */
function scanMsgpack(bytes: Uint8Array, maxDepth: number, maxElements: number, maxCommands: number, wantU: boolean): number {
  if (remaining.length < maxDepth + 1) remaining = new Float64Array(maxDepth + 1);
  const len = bytes.length;
  let pos = 0;
  let depth = 0;
  let elements = 0;
  // Root-map bookkeeping to recover `u` and to find `cmds`.
  let rootIsMap = false;
  let rootItems = 0;
  let keyIsU = false;
  let keyIsCmds = false;
  while (pos < len) {
    const b = bytes[pos] as number;
    if (++elements > maxElements) return TOO_MANY_ELEMENTS;
    // Position of this item inside the root map (keys even, values odd), when at level 1.
    const rootIndex = depth === 1 && rootIsMap ? rootItems - (remaining[0] as number) : -1;
    let items = -1; // > -1: a container with that many items follows
    let isMap = false;
    let strStart = -1;
    let strLen = 0;
    if (b <= 0x7f || b >= 0xe0 || b === 0xc0 || b === 0xc2 || b === 0xc3) {
      pos += 1;
    } else if (b <= 0x8f) {
      items = (b & 0x0f) * 2;
      isMap = true;
      pos += 1;
    } else if (b <= 0x9f) {
      items = b & 0x0f;
      pos += 1;
    } else if (b <= 0xbf) {
      strStart = pos + 1;
      strLen = b & 0x1f;
      pos += 1 + strLen;
    } else {
      switch (b) {
        case 0xc4: // bin 8
        case 0xd9: // str 8
          if (pos + 2 > len) return OK;
          strLen = bytes[pos + 1] as number;
          strStart = pos + 2;
          pos += 2 + strLen;
          break;
        case 0xc5: // bin 16
        case 0xda: // str 16
          if (pos + 3 > len) return OK;
          strLen = u16(bytes, pos + 1);
          strStart = pos + 3;
          pos += 3 + strLen;
          break;
        case 0xc6: // bin 32
        case 0xdb: // str 32
          if (pos + 5 > len) return OK;
          strLen = u32(bytes, pos + 1);
          strStart = pos + 5;
          pos += 5 + strLen;
          break;
        case 0xc7: // ext 8
          if (pos + 2 > len) return OK;
          pos += 3 + (bytes[pos + 1] as number);
          break;
        case 0xc8: // ext 16
          if (pos + 3 > len) return OK;
          pos += 4 + u16(bytes, pos + 1);
          break;
        case 0xc9: // ext 32
          if (pos + 5 > len) return OK;
          pos += 6 + u32(bytes, pos + 1);
          break;
        case 0xca: // float 32
        case 0xce: // uint 32
        case 0xd2: // int 32
          pos += 5;
          break;
        case 0xcb: // float 64
        case 0xcf: // uint 64
        case 0xd3: // int 64
          pos += 9;
          break;
        case 0xcc: // uint 8
        case 0xd0: // int 8
          pos += 2;
          break;
        case 0xcd: // uint 16
        case 0xd1: // int 16
          pos += 3;
          break;
        case 0xd4: // fixext 1
          pos += 3;
          break;
        case 0xd5: // fixext 2
          pos += 4;
          break;
        case 0xd6: // fixext 4
          pos += 6;
          break;
        case 0xd7: // fixext 8
          pos += 10;
          break;
        case 0xd8: // fixext 16
          pos += 18;
          break;
        case 0xdc: // array 16
          if (pos + 3 > len) return OK;
          items = u16(bytes, pos + 1);
          pos += 3;
          break;
        case 0xdd: // array 32
          if (pos + 5 > len) return OK;
          items = u32(bytes, pos + 1);
          pos += 5;
          break;
        case 0xde: // map 16
          if (pos + 3 > len) return OK;
          items = u16(bytes, pos + 1) * 2;
          isMap = true;
          pos += 3;
          break;
        case 0xdf: // map 32
          if (pos + 5 > len) return OK;
          items = u32(bytes, pos + 1) * 2;
          isMap = true;
          pos += 5;
          break;
        default: // 0xc1: never used; the decoder reports it
          return OK;
      }
    }
    if (rootIndex >= 0) {
      if (rootIndex % 2 === 0) {
        keyIsU = wantU && strLen === 1 && strStart >= 0 && b === 0xa1 && bytes[strStart] === 0x75; // "u"
        // fixstr, or a str 8/16/32 that a hand-made encoder may use for the same key
        keyIsCmds = strLen === 4 && strStart >= 0 && (b === 0xa4 || b >= 0xd9) && strStart + 4 <= len && isCmds(bytes, strStart);
      } else {
        if (keyIsU && strStart >= 0 && b >= 0xa0 && (b <= 0xbf || b >= 0xd9)) {
          if (strStart + strLen <= len) uFound = utf8.decode(bytes.subarray(strStart, strStart + strLen));
        }
        // Refused at the array's header, before a single command is read.
        if (keyIsCmds && items > maxCommands && !isMap) return TOO_MANY_COMMANDS;
        keyIsU = false;
        keyIsCmds = false;
      }
    }
    if (items >= 0) {
      if (depth + 1 > maxDepth) {
        return TOO_DEEP;
      }
      if (depth === 0) {
        rootIsMap = isMap;
        rootItems = items;
      }
      if (items > 0) {
        remaining[depth] = items;
        depth++;
        continue;
      }
    }
    // A value is complete: close every container it completes.
    if (depth === 0) return OK;
    for (;;) {
      const left = (remaining[depth - 1] as number) - 1;
      remaining[depth - 1] = left;
      if (left > 0) break;
      depth--;
      if (depth === 0) return OK;
    }
  }
  return OK;
}

/** True when the 4 bytes at `at` are "cmds". */
function isCmds(b: Uint8Array, at: number): boolean {
  return b[at] === 0x63 && b[at + 1] === 0x6d && b[at + 2] === 0x64 && b[at + 3] === 0x73;
}

function u16(b: Uint8Array, at: number): number {
  return ((b[at] as number) << 8) | (b[at + 1] as number);
}

function u32(b: Uint8Array, at: number): number {
  return (b[at] as number) * 0x1000000 + (((b[at + 1] as number) << 16) | ((b[at + 2] as number) << 8) | (b[at + 3] as number));
}

/**
 * Scans JSON `text` and reports whether arrays/objects nest deeper than `maxDepth`. Malformed
 * text is reported as within the limit (JSON.parse then refuses it). When too deep, a string
 * value of a top-level key `u` seen before that point is returned.
 */
export function scanJsonDepth(text: string, maxDepth: number): ScanResult {
  jsonU = null;
  if (scanJson(text, maxDepth, NO_LIMIT, NO_LIMIT) === OK) return WITHIN;
  return { tooDeep: true, u: jsonU };
}

/**
 * Scans JSON `text` against every content limit (values are counted as in MessagePack: every
 * container, scalar, object key and object value). Malformed text is reported as within the
 * limits (JSON.parse then refuses it). When refused, a string value of a top-level key `u`
 * seen before that point is returned.
 */
export function scanJsonFrame(text: string, limits: ScanLimits): FrameScanResult {
  jsonU = null;
  const code = scanJson(text, limits.maxDepth, limits.maxElements, limits.maxCommands);
  return code === OK ? FRAME_OK : { ok: false, limit: LIMIT_NAMES[code] as ScanLimit, u: jsonU };
}

/**
 * The string value of a top-level key `u` in JSON `text`, read without parsing (for the error
 * reply to text JSON.parse refuses). Null when absent or not a complete string before the
 * point where the text nests deeper than `maxDepth`.
 */
export function readJsonRootU(text: string, maxDepth: number): string | null {
  jsonU = null;
  scanJson(text, maxDepth, NO_LIMIT, NO_LIMIT);
  return jsonU;
}

let jsonU: string | null = null;

/** A result code (as scanMsgpack); records the top-level `u` in `jsonU` when seen. */
function scanJson(text: string, maxDepth: number, maxElements: number, maxCommands: number): number {
  const len = text.length;
  let depth = 0;
  // `u` recovery at level 1: the last string closed there, and whether `"u":` was just read.
  let lastStrStart = -1;
  let lastStrEnd = -1;
  let expectU = false;
  // Values: the root, the first item of each non-empty container, one per `,` and one per `:`.
  let elements = 1;
  let justOpened = false;
  // `cmds`: whether `"cmds":` was just read at level 1, and the items of its array so far.
  let expectCmds = false;
  let cmdsDepth = -1;
  let commands = 0;
  for (let i = 0; i < len; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) continue;
    if (justOpened) {
      justOpened = false;
      if (c !== 0x5d /* ] */ && c !== 0x7d /* } */) {
        if (++elements > maxElements) return TOO_MANY_ELEMENTS;
        if (depth === cmdsDepth && ++commands > maxCommands) return TOO_MANY_COMMANDS;
      }
    }
    if (c === 0x22 /* " */) {
      const start = i + 1;
      i++;
      while (i < len) {
        const d = text.charCodeAt(i);
        if (d === 0x5c /* \ */) i += 2;
        else if (d === 0x22) break;
        else i++;
      }
      if (depth === 1 && i < len) {
        if (expectU) {
          const u = jsonString(text.slice(start, i));
          if (u !== null) jsonU = u;
          expectU = false;
        } else {
          lastStrStart = start;
          lastStrEnd = i;
        }
      }
      continue;
    }
    if (c === 0x2c /* , */ || c === 0x3a /* : */) {
      if (++elements > maxElements) return TOO_MANY_ELEMENTS;
      if (c === 0x2c && depth === cmdsDepth && ++commands > maxCommands) return TOO_MANY_COMMANDS;
    }
    if (depth === 1) {
      if (c === 0x3a /* : */) {
        expectU = lastStrEnd - lastStrStart === 1 && text.charCodeAt(lastStrStart) === 0x75; // "u"
        expectCmds = lastStrEnd - lastStrStart === 4 && text.startsWith("cmds", lastStrStart);
        lastStrStart = lastStrEnd = -1;
        continue;
      }
      if (c === 0x5b /* [ */ && expectCmds) cmdsDepth = 2;
      expectU = false;
      expectCmds = false;
      lastStrStart = lastStrEnd = -1;
    }
    if (c === 0x5b /* [ */ || c === 0x7b /* { */) {
      depth++;
      if (depth > maxDepth) return TOO_DEEP;
      justOpened = true;
    } else if (c === 0x5d /* ] */ || c === 0x7d /* } */) {
      if (depth === cmdsDepth) cmdsDepth = -1;
      depth--;
    }
  }
  return OK;
}

function jsonString(raw: string): string | null {
  try {
    const v: unknown = JSON.parse(`"${raw}"`);
    return typeof v === "string" ? v : null;
  } catch {
    return null;
  }
}
