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

function arr(v: unknown, path: string, max: number): unknown[] {
  if (!Array.isArray(v)) fail(`${path} must be an array`, path);
  if (v.length > max) fail(`${path} has ${v.length} entries, limit ${max}`, path);
  return v;
}

export function checkMember(v: unknown, path: string): MemberUpdate {
  if (!isObj(v)) fail(`${path} must be an object`, path);
  str(v.id, `${path}.id`);
  num(v.inc, `${path}.inc`);
  if (typeof v.status !== "string" || !STATUSES.has(v.status)) fail(`${path}.status must be alive|suspect|dead|left`, `${path}.status`);
  if (v.by !== undefined) str(v.by, `${path}.by`);
  return v as unknown as MemberUpdate;
}

export function checkItem(v: unknown, path: string): GossipItem {
  if (!isObj(v)) fail(`${path} must be an object`, path);
  str(v.key, `${path}.key`, MAX_KEY);
  num(v.version, `${path}.version`);
  if (!("data" in v)) fail(`${path}.data is missing`, `${path}.data`);
  return v as unknown as GossipItem;
}

/** Limits on list lengths accepted from the wire (so one message cannot blow up memory). */
export interface WireLimits {
  maxMembers: number;
  maxItems: number;
  maxDigest: number;
}

/**
 * Checks the shape of a message received from the network. Throws MpregError INVALID_REQUEST
 * naming the offending path; never returns a partially checked value.
 */
export function checkMessage(v: unknown, limits: WireLimits): GossipMessage {
  if (!isObj(v)) fail("must be an object", "msg");
  const t = v.type;
  const piggyback = (): void => {
    arr(v.members, "msg.members", limits.maxMembers).forEach((m, i) => checkMember(m, `msg.members[${i}]`));
    arr(v.items, "msg.items", limits.maxItems).forEach((m, i) => checkItem(m, `msg.items[${i}]`));
  };
  switch (t) {
    case "ping":
    case "ack":
    case "ping-req":
      num(v.seq, "msg.seq");
      str(v.target, "msg.target");
      piggyback();
      break;
    case "gossip":
      piggyback();
      break;
    case "sync-req":
    case "sync": {
      if (typeof v.full !== "boolean") fail("msg.full must be a boolean", "msg.full");
      if (typeof v.start !== "string") fail("msg.start must be a string", "msg.start");
      if (v.end !== null && typeof v.end !== "string") fail("msg.end must be a string or null", "msg.end");
      arr(v.members, "msg.members", limits.maxMembers).forEach((m, i) => checkMember(m, `msg.members[${i}]`));
      if (t === "sync-req") {
        arr(v.digest, "msg.digest", limits.maxDigest).forEach((d, i) => {
          if (!Array.isArray(d) || d.length !== 2) fail(`msg.digest[${i}] must be [key, version]`, `msg.digest[${i}]`);
          str(d[0], `msg.digest[${i}][0]`, MAX_KEY);
          num(d[1], `msg.digest[${i}][1]`);
        });
      } else {
        arr(v.items, "msg.items", limits.maxItems).forEach((m, i) => checkItem(m, `msg.items[${i}]`));
        arr(v.want, "msg.want", limits.maxDigest).forEach((k, i) => str(k, `msg.want[${i}]`, MAX_KEY));
        if (typeof v.more !== "boolean") fail("msg.more must be a boolean", "msg.more");
      }
      break;
    }
    case "sync-push":
      arr(v.items, "msg.items", limits.maxItems).forEach((m, i) => checkItem(m, `msg.items[${i}]`));
      break;
    default:
      fail(`unknown type ${JSON.stringify(t)}`, "msg.type");
  }
  return v as unknown as GossipMessage;
}
