import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { decodeFrame, encodeFrame } from "./codec.js";
import { MpregError } from "./errors.js";
import { unifiedMessage } from "./frame-arbitraries.js";
import {
  DEFAULT_MAX_HOPS,
  createUnifiedMessage,
  forwardStep,
  hasVisited,
  peerHelloSigningString,
  peerWelcomeSigningString,
  type PeerHelloFields,
} from "./headers.js";
import { MAX_HOPS, isUnifiedMessage, type UnifiedMessage } from "./schemas.js";

const nodeId = fc.constantFrom("n1", "n2", "n3", "n4", "n5", "n6");
const clusterId = fc.constantFrom("c1", "c2", "c3");

/** Messages whose paths are drawn from a small alphabet, so self-in-path happens often. */
const smallWorldMessage = fc
  .tuple(unifiedMessage, fc.array(nodeId, { maxLength: 5 }), fc.array(clusterId, { maxLength: 4 }), fc.integer({ min: 0, max: 10 }))
  .map(([m, path, fed, hops]): UnifiedMessage => ({
    ...m,
    headers: { ...m.headers, routing_path: path, federation_path: fed, hops_remaining: hops },
  }));

describe("createUnifiedMessage", () => {
  it("fills ids, time, paths and the default hop budget", () => {
    const m = createUnifiedMessage({
      topic: "mpreg.rpc.call",
      message_type: "rpc",
      payload: { x: 1 },
      headers: { source_node: "n1", source_cluster: "c1" },
    });
    expect(m.message_id).toMatch(/^[0-9A-HJKMNP-TV-Z]{26}$/);
    expect(m.headers.correlation_id).toBe(m.message_id);
    expect(m.headers.trace_id).toMatch(/^[0-9A-HJKMNP-TV-Z]{26}$/);
    expect(m.headers.trace_id).not.toBe(m.message_id);
    expect(m.delivery).toBe("fire_and_forget");
    expect(m.headers.routing_path).toEqual(["n1"]);
    expect(m.headers.federation_path).toEqual(["c1"]);
    expect(m.headers.hops_remaining).toBe(DEFAULT_MAX_HOPS);
    expect(m.headers.priority).toBe(0);
    expect("target_node" in m.headers).toBe(false);
    expect(typeof m.timestamp).toBe("number");
    expect(isUnifiedMessage(m)).toBe(true);
  });

  it("keeps what the originator gives (trace across hops, targets, injected id and time)", () => {
    const m = createUnifiedMessage({
      topic: "t",
      message_type: "queue",
      delivery: "quorum",
      payload: null,
      headers: { source_node: "n1", source_cluster: "c1", correlation_id: "corr", trace_id: "trace", target_cluster: "c9", target_node: "n9", priority: 5 },
      maxHops: 3,
      message_id: "mid",
      timestamp: 42,
    });
    expect(m).toEqual({
      message_id: "mid",
      topic: "t",
      message_type: "queue",
      delivery: "quorum",
      payload: null,
      timestamp: 42,
      headers: { correlation_id: "corr", trace_id: "trace", source_node: "n1", source_cluster: "c1", target_cluster: "c9", target_node: "n9", routing_path: ["n1"], federation_path: ["c1"], hops_remaining: 3, priority: 5 },
    });
    const res = decodeFrame(encodeFrame({ role: "fabric-message", payload: m }, "msgpack"), "msgpack");
    expect(res).toEqual({ ok: true, frame: { role: "fabric-message", payload: m } });
  });

  it.each([-1, 1.5, MAX_HOPS + 1, Number.NaN])("refuses maxHops %s with 1002", (maxHops) => {
    expect(() =>
      createUnifiedMessage({ topic: "t", message_type: "data", payload: 1, headers: { source_node: "n", source_cluster: "c" }, maxHops }),
    ).toThrow(MpregError);
  });
});

describe("forwardStep", () => {
  it("forwards across a cluster boundary and drops a loop", () => {
    const m = createUnifiedMessage({ topic: "t", message_type: "data", payload: 1, headers: { source_node: "a", source_cluster: "c1" }, maxHops: 2 });
    const s1 = forwardStep(m, "b", "c1");
    expect(s1.action).toBe("forward");
    if (s1.action !== "forward") return;
    expect(s1.message.headers).toMatchObject({ routing_path: ["a", "b"], federation_path: ["c1"], hops_remaining: 1 });
    const s2 = forwardStep(s1.message, "c", "c2");
    expect(s2.action === "forward" && s2.message.headers).toMatchObject({ routing_path: ["a", "b", "c"], federation_path: ["c1", "c2"], hops_remaining: 0 });
    if (s2.action !== "forward") return;
    expect(forwardStep(s2.message, "d", "c2")).toEqual({ action: "drop", reason: "hops_exhausted" });
    expect(forwardStep(s2.message, "b", "c1")).toEqual({ action: "drop", reason: "loop" });
    expect(forwardStep(m, "a", "c1")).toEqual({ action: "drop", reason: "loop" });
  });

  it("never forwards when self is already in the path", () => {
    fc.assert(
      fc.property(smallWorldMessage, nodeId, clusterId, (m, self, cluster) => {
        fc.pre(m.headers.routing_path.includes(self));
        expect(forwardStep(m, self, cluster)).toEqual({ action: "drop", reason: "loop" });
      }),
    );
  });

  it("appends self, decrements hops by one, keeps the input unchanged, stays schema-valid", () => {
    fc.assert(
      fc.property(smallWorldMessage, nodeId, clusterId, (m, self, cluster) => {
        fc.pre(!m.headers.routing_path.includes(self));
        const before = structuredClone(m);
        const d = forwardStep(m, self, cluster);
        expect(m).toEqual(before);
        if (m.headers.hops_remaining === 0) {
          expect(d).toEqual({ action: "drop", reason: "hops_exhausted" });
          return;
        }
        expect(d.action).toBe("forward");
        if (d.action !== "forward") return;
        const h = d.message.headers;
        expect(h.hops_remaining).toBe(m.headers.hops_remaining - 1);
        expect(h.routing_path).toEqual([...m.headers.routing_path, self]);
        const fed = m.headers.federation_path;
        expect(h.federation_path).toEqual(fed[fed.length - 1] === cluster ? fed : [...fed, cluster]);
        expect(h.federation_path[h.federation_path.length - 1]).toBe(cluster);
        expect(hasVisited(d.message, self)).toBe(true);
        expect({ ...d.message, headers: undefined }).toEqual({ ...m, headers: undefined });
        expect(isUnifiedMessage(d.message)).toBe(true);
      }),
    );
  });

  it("a relay chain visits each node at most once and at most maxHops relays happen", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 12 }),
        fc.array(fc.tuple(fc.constantFrom("a", "b", "c", "d", "e", "f", "g", "h"), clusterId), { maxLength: 30 }),
        (maxHops, relays) => {
          let msg = createUnifiedMessage({ topic: "t", message_type: "data", payload: 0, headers: { source_node: "a", source_cluster: "c1" }, maxHops });
          let forwarded = 0;
          for (const [node, cluster] of relays) {
            const d = forwardStep(msg, node, cluster);
            if (d.action === "drop") continue;
            forwarded++;
            expect(d.message.headers.hops_remaining).toBeLessThan(msg.headers.hops_remaining);
            msg = d.message;
          }
          expect(forwarded).toBeLessThanOrEqual(maxHops);
          expect(new Set(msg.headers.routing_path).size).toBe(msg.headers.routing_path.length);
          expect(msg.headers.routing_path.length).toBe(forwarded + 1);
          expect(msg.headers.hops_remaining).toBe(maxHops - forwarded);
          const fed = msg.headers.federation_path;
          for (let i = 1; i < fed.length; i++) expect(fed[i]).not.toBe(fed[i - 1]);
        },
      ),
    );
  });
});

describe("peer handshake signing strings", () => {
  const hello: PeerHelloFields = { node_id: "n1", cluster_id: "c1", region: "eu", urls: ["ws://a:1"], protocol_version: 1, nonce: "abc" };

  it("does not depend on key order or on role/mac", () => {
    const reordered = { nonce: "abc", urls: ["ws://a:1"], protocol_version: 1, region: "eu", cluster_id: "c1", node_id: "n1" };
    expect(peerHelloSigningString(reordered)).toBe(peerHelloSigningString(hello));
    expect(peerHelloSigningString({ ...hello, role: "peer-hello", mac: "ff" } as PeerHelloFields)).toBe(peerHelloSigningString(hello));
  });

  it("changes when any signed field changes", () => {
    const base = peerHelloSigningString(hello);
    const variants: PeerHelloFields[] = [
      { ...hello, node_id: "n2" },
      { ...hello, cluster_id: "c2" },
      { ...hello, region: "us" },
      { ...hello, urls: ["ws://a:2"] },
      { ...hello, urls: ["ws://a:1", ""] },
      { ...hello, protocol_version: 2 },
      { ...hello, nonce: "abd" },
      // Shifting text between fields must not collide.
      { ...hello, node_id: "n1\",\"c1", cluster_id: "" },
    ];
    for (const v of variants) expect(peerHelloSigningString(v)).not.toBe(base);
  });

  it("separates hello from welcome and binds the welcome to the hello nonce", () => {
    expect(peerWelcomeSigningString(hello, "x")).not.toBe(peerHelloSigningString(hello));
    expect(peerWelcomeSigningString(hello, "x")).not.toBe(peerWelcomeSigningString(hello, "y"));
    expect(peerWelcomeSigningString(hello, "x")).toBe(peerWelcomeSigningString({ ...hello }, "x"));
  });
});
