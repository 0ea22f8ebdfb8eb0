/**
 * Hostile input against a running node: thousands of generated frames (random bytes, random
 * JSON, valid envelopes with wrong field types, huge nesting, oversized frames). The node never
 * crashes, answers every decodable frame with 1002, and a well-behaved client on another
 * connection keeps getting correct answers throughout.
 */
import { encode } from "@msgpack/msgpack";
import type { NodeProcess } from "@mpreg/testkit";
import { waitFor } from "@mpreg/testkit";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestNode } from "./node-harness.js";
import { RawClient } from "./raw-client.js";

let node: NodeProcess;
let good: RawClient;
let goodSeq = 0;

beforeAll(async () => {
  node = await startTestNode(["--max-frame-bytes", String(1024 * 1024)]);
  good = await RawClient.open(node.url, "msgpack");
});
afterAll(async () => {
  good?.close();
  await node?.stop();
});

async function goodCallWorks(): Promise<void> {
  const n = ++goodSeq;
  const r = await good.request({
    role: "rpc",
    u: `good-${n}`,
    cmds: [
      { name: "a", fun: "add", args: [n, 1] },
      { name: "b", fun: "echo", args: ["a"] },
    ],
  });
  expect(r.r).toEqual({ b: n + 1 });
}

/** Sends frames on a fresh connection and waits for one reply per frame. */
async function blast(frames: (string | Uint8Array)[], encoding: "json" | "msgpack"): Promise<RawClient> {
  const c = await RawClient.open(node.url, encoding);
  for (const f of frames) c.sendRaw(f);
  await waitFor(() => c.all.length >= frames.length || c.closed !== undefined, { timeoutMs: 20_000 });
  return c;
}

const wrongTyped = fc.oneof(
  fc.record({ role: fc.constant("rpc"), u: fc.string(), cmds: fc.anything() }),
  fc.record({ role: fc.constant("rpc"), u: fc.string(), cmds: fc.array(fc.record({ name: fc.anything(), fun: fc.anything() }), { maxLength: 3 }) }),
  fc.record({ role: fc.constant("rpc"), u: fc.string(), cmds: fc.constant([{ name: "a", fun: "echo" }]), timeout_ms: fc.oneof(fc.string(), fc.double(), fc.constant(-1)) }),
  fc.record({ role: fc.constantFrom("pubsub-publish", "pubsub-subscribe", "rpc-response", "peer-hello", "fabric-gossip", "x"), u: fc.string(), message: fc.anything() }),
  fc.record({ role: fc.anything(), u: fc.string() }),
  fc.record({ u: fc.string(), cmds: fc.anything() }),
);

describe("hostile input", () => {
  it("random bytes on binary frames: 1002 for each, never a crash", async () => {
    const frames = fc.sample(fc.uint8Array({ minLength: 0, maxLength: 256 }), { numRuns: 1500, seed: 42 });
    const c = await blast(frames, "msgpack");
    for (const m of c.all) expect((m as any).error.code).toBe(1002);
    expect(c.all.length).toBe(frames.length);
    c.close();
    await goodCallWorks();
  });

  it("random strings and random JSON values on text frames all get 1002", async () => {
    const frames = [
      ...fc.sample(fc.string({ maxLength: 200 }), { numRuns: 700, seed: 7 }),
      ...fc.sample(fc.json(), { numRuns: 700, seed: 8 }),
    ];
    const c = await blast(frames, "json");
    expect(c.all.length).toBe(frames.length);
    for (const m of c.all) expect((m as any).error.code).toBe(1002);
    c.close();
    await goodCallWorks();
  });

  it("valid envelopes with wrong field types get 1002 carrying their u", async () => {
    const values = fc.sample(wrongTyped, { numRuns: 1500, seed: 3 });
    const frames = values.map((v, i) => (i % 2 === 0 ? JSON.stringify(v) : encode(v, { ignoreUndefined: true })));
    const c = await RawClient.open(node.url, "json");
    let sent = 0;
    for (const f of frames) {
      try {
        c.sendRaw(f);
        sent++;
      } catch {
        /* JSON.stringify of a value that cannot be a frame: skip */
      }
    }
    await waitFor(() => c.all.length >= sent, { timeoutMs: 20_000 });
    for (const m of c.all) {
      if ((m as any).error === null) continue; // a generated frame that happens to be valid
      expect((m as any).error.code, JSON.stringify(m).slice(0, 200)).toBe(1002);
    }
    // Every frame whose u could be read is answered with that u.
    const answered = new Set(c.all.map((m) => (m as any).u));
    for (const v of values) if (typeof (v as any).u === "string") expect(answered.has((v as any).u)).toBe(true);
    c.close();
    await goodCallWorks();
  });

  it("huge nesting is refused with 1002, not a stack overflow", async () => {
    const depth = 100_000;
    const json = `{"role":"rpc","u":"deep","cmds":[{"name":"a","fun":"echo","args":[${"[".repeat(depth)}${"]".repeat(depth)}]}]}`;
    const c = await RawClient.open(node.url, "json");
    c.sendRaw(json);
    expect((await c.reply("deep")).error.code).toBe(1002);
    // Built byte by byte: encoding 3000 nested arrays with the msgpack encoder recurses and can
    // overflow the test's own stack on a machine with a smaller one.
    const str = (s: string) => encode(s);
    const deepFrame = Buffer.concat([
      Buffer.from([0x83]),
      str("role"), str("rpc"), str("u"), str("deep2"), str("cmds"),
      Buffer.from([0x91, 0x83]),
      str("name"), str("a"), str("fun"), str("echo"), str("args"),
      Buffer.alloc(3000, 0x91),
      Buffer.from([0x90]),
    ]);
    c.sendRaw(new Uint8Array(deepFrame));
    expect((await c.reply("deep2")).error.code).toBe(1002);
    c.close();
    await goodCallWorks();
  });

  it("an oversized frame closes only that connection with 1009", async () => {
    const c = await RawClient.open(node.url, "msgpack");
    c.sendRaw(new Uint8Array(2 * 1024 * 1024));
    await waitFor(() => c.closed !== undefined);
    expect(c.closed?.code).toBe(1009);
    await goodCallWorks();
  });

  it("keeps answering a well-behaved client while another connection floods garbage", async () => {
    const bad = await RawClient.open(node.url, "msgpack");
    const garbage = fc.sample(fc.uint8Array({ minLength: 1, maxLength: 64 }), { numRuns: 3000, seed: 99 });
    let i = 0;
    const flood = setInterval(() => {
      for (let k = 0; k < 100 && i < garbage.length; k++) bad.sendRaw(garbage[i++] as Uint8Array);
    }, 1);
    try {
      for (let k = 0; k < 50; k++) await goodCallWorks();
    } finally {
      clearInterval(flood);
    }
    bad.close();
    expect(node.exited()).toBeUndefined();
  });
});
