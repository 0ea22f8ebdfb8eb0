import { describe, expect, it } from "vitest";
import { decodeFrame, encodeFrame, type Encoding } from "./codec.js";
import { FRAME_SCHEMAS, FRAME_VALIDATORS, ROLES, isRole, type Frame, type Role } from "./schemas.js";

const ENCODINGS: Encoding[] = ["msgpack", "json"];

const header = {
  correlation_id: "c",
  trace_id: "t",
  source_node: "n1",
  source_cluster: "c1",
  routing_path: ["n1"],
  federation_path: ["c1"],
  hops_remaining: 8,
  priority: 0,
};

/** One hand-written example of each role, minimal and full, as the protocol describes them. */
const EXAMPLES: { [R in Role]: Frame[] } = {
  rpc: [
    { role: "rpc", u: "01J", cmds: [{ name: "a", fun: "echo" }] },
    {
      role: "rpc",
      u: "01J",
      cmds: [
        { name: "a", fun: "math.add", args: [1, 2], kwargs: { x: { y: [1] } }, locs: ["gpu"], function_id: "add", version_constraint: ">=1.0.0, <2", target_cluster: "eu" },
        { name: "b", fun: "echo", args: ["a.result.0"] },
      ],
      timeout_ms: 3_600_000,
      return_all: true,
      return_intermediate_results: true,
      include_execution_summary: true,
      stream_progress: false,
    },
  ],
  "rpc-response": [
    { role: "rpc-response", u: "01J", r: { b: 3 }, error: null },
    { role: "rpc-response", u: null, r: null, error: { code: 1002, message: "bad", details: { reason: "bad" } } },
    {
      role: "rpc-response",
      u: "01J",
      r: {},
      error: null,
      intermediate_results: [{ level_index: 0, level_results: { a: 1 }, accumulated_results: { a: 1 }, total_levels: 2, completed_levels: 1, execution_time_ms: 1.5, timestamp: 1_700_000_000_000 }],
      execution_summary: { total_execution_time_ms: 3, total_levels: 2, level_execution_times: [1, 2], bottleneck_level_index: 1, commands_executed: 2, remote_commands: 0, cross_cluster_commands: 0 },
    },
  ],
  "rpc-progress": [
    { role: "rpc-progress", u: "01J", intermediate_result: { level_index: 0, level_results: {}, accumulated_results: {}, total_levels: 1, completed_levels: 1, execution_time_ms: 0, timestamp: 1 } },
  ],
  "pubsub-publish": [
    { role: "pubsub-publish", u: "p", message: { topic: "a.b", payload: null } },
    { role: "pubsub-publish", u: "p", message: { topic: "a.b", payload: { x: 1 }, headers: { k: "v" }, message_id: "m1" } },
  ],
  "pubsub-subscribe": [
    { role: "pubsub-subscribe", u: "s", subscription: { patterns: ["a.*", "b.#"] } },
    { role: "pubsub-subscribe", u: "s", subscription: { subscription_id: "sub1", patterns: ["#"], backlog: { seconds: 60, max: 100 } } },
    { role: "pubsub-subscribe", u: "s", subscription: { patterns: ["a.*"], batch: true } },
  ],
  "pubsub-unsubscribe": [{ role: "pubsub-unsubscribe", u: "x", subscription_id: "sub1" }],
  "pubsub-ack": [
    { role: "pubsub-ack", u: "p", success: true, message_id: "m1" },
    { role: "pubsub-ack", u: "s", success: true, error: null, subscription_id: "sub1" },
    { role: "pubsub-ack", u: "s", success: false, error: { code: 1001, message: "no", details: { reason: "no" } } },
    { role: "pubsub-ack", u: "b", success: true, message_ids: ["m1", "m2"] },
  ],
  "pubsub-publish-batch": [
    { role: "pubsub-publish-batch", u: "b", messages: [{ topic: "a.b", payload: 1 }] },
    { role: "pubsub-publish-batch", u: "b", messages: [{ topic: "a.b", payload: 1 }, { topic: "a.c", payload: null, headers: { h: 1 }, message_id: "m2" }] },
  ],
  "pubsub-notification-batch": [
    { role: "pubsub-notification-batch", subscription_id: "sub1", messages: [{ topic: "a.b", payload: [1], headers: {}, message_id: "m1", publisher: "n1", timestamp: 1 }] },
  ],
  "pubsub-notification": [
    { role: "pubsub-notification", subscription_id: "sub1", message: { topic: "a.b", payload: [1], headers: {}, message_id: "m1", publisher: "n1", timestamp: 1 } },
  ],
  "queue-delivery": [
    { role: "queue-delivery", subscription_id: "q1", message: { message_id: "m", receipt: "r", body: "x", receive_count: 1, sent_at: 5 } },
    { role: "queue-delivery", subscription_id: "q1", message: { message_id: "m", receipt: "r", body: {}, receive_count: 2, sent_at: 5, group_id: "g", priority: 9 } },
    {
      role: "queue-delivery",
      subscription_id: "q1",
      message: {
        message_id: "m",
        receipt: "r",
        body: 1,
        receive_count: 1,
        sent_at: 5,
        dead_letter: { reason: "max_receives", source_queue: "jobs", receive_count: 3, last_return: "nack", dead_lettered_at: 9 },
      },
    },
  ],
  "kv-event": [
    { role: "kv-event", watch_id: "w1", events: [{ type: "put", key: "a", value: { x: 1 }, mod_revision: 3 }, { type: "delete", key: "b", mod_revision: 3 }] },
    { role: "kv-event", watch_id: "w1", events: [], error: { code: 1002, message: "compacted", details: { reason: "compacted", compact_revision: 9 } } },
  ],
  "peer-hello": [
    { role: "peer-hello", node_id: "n1", cluster_id: "c1", region: "", urls: [], protocol_version: 1, nonce: "x" },
    { role: "peer-hello", node_id: "n1", cluster_id: "c1", region: "eu", urls: ["ws://127.0.0.1:1"], protocol_version: 1, nonce: "x", mac: "ab" },
  ],
  "peer-welcome": [{ role: "peer-welcome", node_id: "n2", cluster_id: "c1", region: "eu", urls: ["ws://h:2"], protocol_version: 1, nonce: "y", mac: "cd" }],
  "fabric-gossip": [
    { role: "fabric-gossip", payload: null },
    { role: "fabric-gossip", payload: { kind: "delta", items: [1, 2] } },
  ],
  "fabric-message": [
    { role: "fabric-message", payload: { message_id: "m", topic: "mpreg.rpc", message_type: "rpc", delivery: "fire_and_forget", payload: { cmd: "x" }, timestamp: 1, headers: header } },
    { role: "fabric-message", payload: { message_id: "m", topic: "", message_type: "control", delivery: "quorum", payload: null, timestamp: 1, headers: { ...header, target_cluster: "c2", target_node: "n9", hops_remaining: 0 } } },
  ],
  "peer-goodbye": [{ role: "peer-goodbye" }, { role: "peer-goodbye", reason: "shutdown" }],
  "peer-confirm": [{ role: "peer-confirm" }, { role: "peer-confirm", mac: "ab" }],
};

describe("schemas", () => {
  it("has one compiled validator per role", () => {
    expect(Object.keys(FRAME_VALIDATORS).sort()).toEqual([...ROLES].sort());
    expect(Object.keys(FRAME_SCHEMAS).sort()).toEqual([...ROLES].sort());
    for (const role of ROLES) expect(FRAME_VALIDATORS[role].IsAccelerated()).toBe(true);
    expect(ROLES).toHaveLength(18);
    expect(isRole("rpc")).toBe(true);
    expect(isRole("__proto__")).toBe(false);
    expect(isRole("constructor")).toBe(false);
  });

  for (const role of ROLES) {
    it.each(ENCODINGS)(`accepts the ${role} examples and round-trips them (%s)`, (enc) => {
      for (const frame of EXAMPLES[role]) {
        expect(decodeFrame(encodeFrame(frame, enc), enc)).toEqual({ ok: true, frame });
        // Unknown fields are ignored, not refused.
        expect(decodeFrame(encodeFrame({ ...frame, x_future: [1] }, enc), enc).ok).toBe(true);
      }
    });

    it(`refuses a ${role} frame missing each required field`, () => {
      const frame = EXAMPLES[role][0] as Record<string, unknown>;
      const required = ((FRAME_SCHEMAS[role] as { required?: string[] }).required ?? []).filter((k) => k !== "role");
      if (role !== "peer-goodbye" && role !== "peer-confirm") expect(required.length).toBeGreaterThan(0);
      for (const key of required) {
        const copy = { ...frame };
        delete copy[key];
        const res = decodeFrame(JSON.stringify(copy), "json");
        expect(res.ok, `${role} without ${key}`).toBe(false);
        if (!res.ok) {
          expect(res.error.code).toBe(1002);
          expect(res.error.details.path).toBe(`/${key}`);
        }
      }
    });
  }

  it("refuses a kv-event with an unknown event type or a negative revision", () => {
    const ev = (e: object) => JSON.stringify({ role: "kv-event", watch_id: "w", events: [e] });
    expect(decodeFrame(ev({ type: "put", key: "k", value: 1, mod_revision: 1 }), "json").ok).toBe(true);
    expect(decodeFrame(ev({ type: "touch", key: "k", mod_revision: 1 }), "json").ok).toBe(false);
    expect(decodeFrame(ev({ type: "delete", key: "k", mod_revision: -1 }), "json").ok).toBe(false);
    expect(decodeFrame(ev({ type: "delete", mod_revision: 1 }), "json").ok).toBe(false);
  });

  it("refuses a goodbye with a non-string reason and gossip without payload", () => {
    expect(decodeFrame('{"role":"peer-goodbye","reason":1}', "json").ok).toBe(false);
    expect(decodeFrame('{"role":"fabric-gossip"}', "json").ok).toBe(false);
  });
});
