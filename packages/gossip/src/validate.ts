import { MpregError } from "@mpreg/envelope";
import type { GossipItem, GossipMessage, MemberUpdate } from "./types.js";

const STATUSES = new Set(["alive", "suspect", "dead", "left"]);
const MAX_ID = 512;
const MAX_KEY = 1024;

function fail(reason: string, path: string): never {
  throw MpregError.invalid(`gossip message: ${reason}`, path);
}

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function str(v: unknown, path: string, max = MAX_ID): string {
  if (typeof v !== "string" || v.length === 0 || v.length > max) fail(`${path} must be a non-empty string of at most ${max} chars`, path);
  return v;
}

function num(v: unknown, path: string): number {
  if (typeof v !== "number" || !Number.isFinite(v) || v < 0) fail(`${path} must be a finite number >= 0`, path);
  return v;
}

/** Incarnations are counters: a float or an integer past 2^53 could never be refuted by `+ 1`. */
function incarnation(v: unknown, path: string): number {
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0) fail(`${path} must be a safe integer >= 0`, path);
  return v;
}

function arr(v: unknown, path: string, max: number): unknown[] {
  if (!Array.isArray(v)) fail(`${path} must be an array`, path);
  if (v.length > max) fail(`${path} has ${v.length} entries, limit ${max}`, path);
  return v;
}

/**
 * Checks one membership fact and returns a clean copy. `null` for the optional `meta`/`by`
 * counts as absent (MessagePack turns `undefined` into nil).
 */
export function checkMember(v: unknown, path: string): MemberUpdate {
  if (!isObj(v)) fail(`${path} must be an object`, path);
  const id = str(v.id, `${path}.id`);
  const inc = incarnation(v.inc, `${path}.inc`);
  if (typeof v.status !== "string" || !STATUSES.has(v.status)) fail(`${path}.status must be alive|suspect|dead|left`, `${path}.status`);
  const u: MemberUpdate = { id, inc, status: v.status as MemberUpdate["status"] };
  if (v.meta !== undefined && v.meta !== null) u.meta = v.meta;
  if (v.by !== undefined && v.by !== null) u.by = str(v.by, `${path}.by`);
  return u;
}

/** Checks one item and returns a clean copy (`data` may be anything, null included). */
export function checkItem(v: unknown, path: string): GossipItem {
  if (!isObj(v)) fail(`${path} must be an object`, path);
  const key = str(v.key, `${path}.key`, MAX_KEY);
  const version = num(v.version, `${path}.version`);
  if (!("data" in v)) fail(`${path}.data is missing`, `${path}.data`);
  return { key, version, data: v.data };
}

/** Limits on list lengths accepted from the wire (so one message cannot blow up memory). */
export interface WireLimits {
  maxMembers: number;
  maxItems: number;
  maxDigest: number;
}

/**
 * Checks a message received from the network and returns a clean copy holding only the known
 * fields. Throws MpregError INVALID_REQUEST naming the offending path.
 */
export function checkMessage(v: unknown, limits: WireLimits): GossipMessage {
  if (!isObj(v)) fail("must be an object", "msg");
  const t = v.type;
  const members = (): MemberUpdate[] => arr(v.members, "msg.members", limits.maxMembers).map((m, i) => checkMember(m, `msg.members[${i}]`));
  const items = (): GossipItem[] => arr(v.items, "msg.items", limits.maxItems).map((m, i) => checkItem(m, `msg.items[${i}]`));
  const window = (): { full: boolean; start: string; end: string | null } => {
    if (typeof v.full !== "boolean") fail("msg.full must be a boolean", "msg.full");
    if (typeof v.start !== "string" || v.start.length > MAX_KEY) fail("msg.start must be a string", "msg.start");
    if (v.end !== null && (typeof v.end !== "string" || v.end.length > MAX_KEY)) fail("msg.end must be a string or null", "msg.end");
    return { full: v.full, start: v.start, end: v.end as string | null };
  };
  switch (t) {
    case "ping":
    case "ack":
    case "nack":
    case "ping-req":
      return { type: t, seq: num(v.seq, "msg.seq"), target: str(v.target, "msg.target"), members: members(), items: items() };
    case "gossip":
      return { type: t, members: members(), items: items() };
    case "sync-req": {
      const w = window();
      const digest = arr(v.digest, "msg.digest", limits.maxDigest).map((d, i): [string, number] => {
        if (!Array.isArray(d) || d.length !== 2) fail(`msg.digest[${i}] must be [key, version]`, `msg.digest[${i}]`);
        return [str(d[0], `msg.digest[${i}][0]`, MAX_KEY), num(d[1], `msg.digest[${i}][1]`)];
      });
      return { type: t, ...w, digest, members: members() };
    }
    case "sync": {
      const w = window();
      const want = arr(v.want, "msg.want", limits.maxDigest).map((k, i) => str(k, `msg.want[${i}]`, MAX_KEY));
      if (typeof v.more !== "boolean") fail("msg.more must be a boolean", "msg.more");
      return { type: t, ...w, items: items(), want, more: v.more, members: members() };
    }
    case "sync-push":
      return { type: t, items: items() };
    default:
      fail(`unknown type ${JSON.stringify(t)}`, "msg.type");
  }
}
