import { isMpregError } from "@mpreg/envelope";
import { afterEach, describe, expect, it } from "vitest";
import type { Connection, FrameData } from "./connection.js";

/** Two connected ends and a cleanup that releases whatever the factory created. */
export interface ConnectedPair {
  a: Connection;
  b: Connection;
  cleanup(): Promise<void>;
}

/** Polls `cond` until it holds or `ms` passed (no fixed sleeps in tests). */
export async function waitFor(cond: () => boolean, ms = 5000, what = "condition"): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

interface Received {
  data: FrameData;
  isBinary: boolean;
}

function collect(c: Connection): Received[] {
  const got: Received[] = [];
  c.onMessage((data, isBinary) => got.push({ data, isBinary }));
  return got;
}

function closed(c: Connection): Promise<{ code: number; reason: string }> {
  return new Promise((resolve) => c.onClose((code, reason) => resolve({ code, reason })));
}

/**
 * The one behaviour suite every `Connection` implementation passes. `makePair` returns two
 * ends that are already connected to each other.
 */
export function connectionCompliance(name: string, makePair: () => Promise<ConnectedPair>): void {
  describe(`Connection compliance: ${name}`, () => {
    let pair: ConnectedPair | null = null;
    const setup = async (): Promise<ConnectedPair> => {
      pair = await makePair();
      return pair;
    };
    afterEach(async () => {
      if (pair !== null) await pair.cleanup();
      pair = null;
    });

    it("both ends are open with distinct ids and a meta map", async () => {
      const { a, b } = await setup();
      expect(a.open).toBe(true);
      expect(b.open).toBe(true);
      expect(a.id).not.toBe(b.id);
      a.meta.set("k", 1);
      expect(a.meta.get("k")).toBe(1);
    });

    it("preserves order in both directions", async () => {
      const { a, b } = await setup();
      const atB = collect(b);
      const atA = collect(a);
      const n = 2000;
      for (let i = 0; i < n; i++) {
        a.send(`m${i}`);
        b.send(new Uint8Array([i & 0xff, (i >> 8) & 0xff]));
      }
      await waitFor(() => atB.length === n && atA.length === n, 10_000, "all messages");
      atB.forEach((m, i) => expect(m.data).toBe(`m${i}`));
      atA.forEach((m, i) => {
        const d = m.data as Uint8Array;
        expect(d[0]! | (d[1]! << 8)).toBe(i);
      });
    });

    it("keeps binary and text apart", async () => {
      const { a, b } = await setup();
      const got = collect(b);
      a.send(new Uint8Array([1, 2, 3]));
      a.send("héllo ✓");
      a.send(new Uint8Array(0));
      a.send("");
      await waitFor(() => got.length === 4);
      expect(got[0]!.isBinary).toBe(true);
      expect(got[0]!.data).toBeInstanceOf(Uint8Array);
      expect(Array.from(got[0]!.data as Uint8Array)).toEqual([1, 2, 3]);
      expect(got[1]).toEqual({ data: "héllo ✓", isBinary: false });
      expect(got[2]!.isBinary).toBe(true);
      expect((got[2]!.data as Uint8Array).byteLength).toBe(0);
      expect(got[3]).toEqual({ data: "", isBinary: false });
    });

    it("close propagates with its code and reason to both sides", async () => {
      const { a, b } = await setup();
      const atA = closed(a);
      const atB = closed(b);
      a.close(4000, "bye now");
      expect(a.open).toBe(false);
      expect(await atB).toEqual({ code: 4000, reason: "bye now" });
      expect(await atA).toEqual({ code: 4000, reason: "bye now" });
      expect(b.open).toBe(false);
      // A handler registered after the close still hears about it.
      expect(await closed(a)).toEqual({ code: 4000, reason: "bye now" });
    });

    it("messages sent before close arrive before the close", async () => {
      const { a, b } = await setup();
      const got = collect(b);
      let countAtClose = -1;
      b.onClose(() => {
        countAtClose = got.length;
      });
      for (let i = 0; i < 10; i++) a.send(`x${i}`);
      a.close(1000, "done");
      await waitFor(() => countAtClose >= 0);
      expect(countAtClose).toBe(10);
    });

    it("send after close is a clear error (1005) on both ends", async () => {
      const { a, b } = await setup();
      const atB = closed(b);
      a.close();
      let err: unknown;
      try {
        a.send("late");
      } catch (e) {
        err = e;
      }
      expect(isMpregError(err)).toBe(true);
      expect((err as { code: number }).code).toBe(1005);
      expect((err as Error).message).toMatch(/closed/);
      await atB;
      expect(() => b.send(new Uint8Array([1]))).toThrow(/closed/);
    });

    it("close is idempotent and close handlers run once", async () => {
      const { a, b } = await setup();
      let calls = 0;
      a.onClose(() => calls++);
      const atB = closed(b);
      a.close(1000);
      a.close(4001);
      await atB;
      await waitFor(() => calls === 1);
      a.close();
      await new Promise((r) => setTimeout(r, 20));
      expect(calls).toBe(1);
    });

    it("refuses a close code that cannot be sent", async () => {
      const { a } = await setup();
      expect(() => a.close(1006)).toThrow(/close code/);
      expect(a.open).toBe(true);
    });

    it("carries large frames intact", async () => {
      const { a, b } = await setup();
      const got = collect(b);
      const big = new Uint8Array(4 * 1024 * 1024);
      for (let i = 0; i < big.length; i += 4096) big[i] = (i / 4096) & 0xff;
      big[big.length - 1] = 42;
      const text = "z".repeat(1024 * 1024);
      a.send(big);
      a.send(text);
      await waitFor(() => got.length === 2, 10_000);
      const d = got[0]!.data as Uint8Array;
      expect(d.byteLength).toBe(big.byteLength);
      expect(Buffer.from(d.buffer, d.byteOffset, d.byteLength).equals(Buffer.from(big))).toBe(true);
      expect(got[1]!.data).toBe(text);
    });

    it("a throwing handler does not break the connection or other handlers", async () => {
      const { a, b } = await setup();
      const got: FrameData[] = [];
      b.onMessage(() => {
        throw new Error("handler bug");
      });
      b.onMessage((d) => got.push(d));
      a.send("1");
      a.send("2");
      await waitFor(() => got.length === 2);
      expect(b.open).toBe(true);
    });

    it("unsubscribed handlers stop receiving", async () => {
      const { a, b } = await setup();
      const first: FrameData[] = [];
      const second: FrameData[] = [];
      const off = b.onMessage((d) => first.push(d));
      b.onMessage((d) => second.push(d));
      a.send("one");
      await waitFor(() => second.length === 1);
      off();
      a.send("two");
      await waitFor(() => second.length === 2);
      expect(first).toEqual(["one"]);
    });
  });
}
