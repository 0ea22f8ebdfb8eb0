import http from "node:http";
import net from "node:net";
import { isMpregError } from "@mpreg/envelope";
import { afterEach, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { waitFor } from "./connection.compliance.js";
import type { Connection } from "./connection.js";
import type { WsConnection } from "./ws-connection.js";
import { connectWs } from "./client-connection.js";
import { CLOSE_FIRST_FRAME_TIMEOUT, createWsListener, type UpgradeInfo, type WsListener, type WsListenerOptions } from "./ws-listener.js";

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

async function start(opts: WsListenerOptions = {}): Promise<{ listener: WsListener; url: string; conns: Connection[]; infos: UpgradeInfo[] }> {
  const listener = createWsListener({ pingIntervalMs: 0, ...opts });
  const conns: Connection[] = [];
  const infos: UpgradeInfo[] = [];
  listener.onConnection((c, info) => {
    conns.push(c);
    infos.push(info);
  });
  const { url } = await listener.listen({ port: 0 });
  cleanups.push(() => listener.close());
  return { listener, url, conns, infos };
}

function rawClient(url: string, opts: WebSocket.ClientOptions = {}): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { perMessageDeflate: false, ...opts });
    ws.once("open", () => resolve(ws));
    ws.once("error", reject);
    cleanups.push(() => ws.terminate());
  });
}

function closeOf(ws: WebSocket): Promise<{ code: number; reason: string }> {
  return new Promise((resolve) => ws.once("close", (code, reason) => resolve({ code, reason: reason.toString() })));
}

function upgradeStatus(url: string, headers: Record<string, string> = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers });
    ws.on("unexpected-response", (_req, res) => {
      resolve(res.statusCode ?? 0);
      ws.terminate();
    });
    ws.on("open", () => {
      resolve(101);
      ws.terminate();
    });
    ws.on("error", (e) => {
      if (!/401|429|503/.test(String(e))) reject(e);
    });
  });
}

describe("WsListener", () => {
  it("binds port 0, reports the real port and the upgrade path, query and headers", async () => {
    const { listener, url, infos } = await start();
    expect(url).toMatch(/^ws:\/\/127\.0\.0\.1:\d+$/);
    expect(listener.address!.port).toBeGreaterThan(0);
    const ws = await rawClient(`${url}/peer?x=1`, { headers: { "x-test": "yes" } });
    await waitFor(() => infos.length === 1);
    expect(infos[0]!.path).toBe("/peer");
    expect(infos[0]!.query.get("x")).toBe("1");
    expect(infos[0]!.headers["x-test"]).toBe("yes");
    expect(listener.connections.size).toBe(1);
    ws.close();
    await waitFor(() => listener.connections.size === 0);
  });

  it("answers plain HTTP with 426", async () => {
    const { listener } = await start();
    const status = await new Promise<number>((resolve, reject) => {
      http.get(`http://127.0.0.1:${listener.address!.port}/`, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      }).on("error", reject);
    });
    expect(status).toBe(426);
  });

  it("closes only the connection that sent a frame over maxFrameBytes, with 1009", async () => {
    const { url, conns } = await start({ maxFrameBytes: 1024 });
    const bad = await connectWs(url, { reconnect: false });
    const good = await connectWs(url, { reconnect: false });
    cleanups.push(() => bad.close(), () => good.close());
    await waitFor(() => conns.length === 2);
    const got: string[] = [];
    conns[1]!.onMessage((d) => got.push(d as string));
    const closed = new Promise<number>((resolve) => bad.onClose((code) => resolve(code)));
    bad.send(new Uint8Array(1024)); // exactly the limit: accepted
    bad.send(new Uint8Array(1025));
    expect(await closed).toBe(1009);
    good.send("still fine");
    await waitFor(() => got.length === 1);
    expect(good.open).toBe(true);
  });

  it("keeps an idle client that answers pings", async () => {
    const { url, conns } = await start({ pingIntervalMs: 25 });
    const ws = await rawClient(url);
    let pings = 0;
    ws.on("ping", () => pings++);
    // Eight ping periods: a client answering pings survives every one of them.
    await waitFor(() => pings >= 8, 10_000, "eight pings");
    expect(ws.readyState).toBe(WebSocket.OPEN);
    expect(conns[0]!.open).toBe(true);
  });

  it("pings only a connection that sent no message since the previous tick", async () => {
    const { url, conns } = await start({ pingIntervalMs: 0 });
    const ws = await rawClient(url);
    let pings = 0;
    ws.on("ping", () => pings++);
    const got: unknown[] = [];
    await waitFor(() => conns.length === 1);
    const conn = conns[0]! as WsConnection;
    conn.onMessage((d) => got.push(d));
    ws.send("busy");
    await waitFor(() => got.length === 1);
    expect(conn.pingTick()).toBe(true); // heard from it this period: no ping
    expect(conn.pingTick()).toBe(true); // silent since: ping
    const done = new Promise((resolve) => ws.once("message", resolve));
    conn.send("done");
    await done;
    // Frames arrive in order: a ping from the first tick would have come before "done".
    expect(pings).toBe(1);
  });

  it("terminates a client that leaves two pings in a row unanswered", async () => {
    const { url, conns } = await start({ pingIntervalMs: 10 });
    const ws = await rawClient(url, { autoPong: false });
    const clientClosed = closeOf(ws);
    await waitFor(() => conns.length === 1);
    const serverClosed = new Promise<[number, string]>((resolve) => conns[0]!.onClose((c, r) => resolve([c, r])));
    expect(await serverClosed).toEqual([1006, "ping timeout"]);
    expect((await clientClosed).code).toBe(1006);
  });

  describe("authentication", () => {
    it("accepts a bearer token header and a ?token= query, refuses the rest with 401", async () => {
      const { url, conns } = await start({ authTokens: ["s3cret", "other"] });
      const c = await connectWs(url, { token: "s3cret", reconnect: false });
      cleanups.push(() => c.close());
      const q = await rawClient(`${url}/?token=other`);
      await waitFor(() => conns.length === 2);
      expect(q.readyState).toBe(WebSocket.OPEN);

      expect(await upgradeStatus(url)).toBe(401);
      expect(await upgradeStatus(`${url}/?token=wrong`)).toBe(401);
      expect(await upgradeStatus(url, { authorization: "Bearer s3cre" })).toBe(401);
      expect(await upgradeStatus(url, { authorization: "Basic s3cret" })).toBe(401);
      let err: unknown;
      try {
        await connectWs(url, { token: "nope", reconnect: false });
      } catch (e) {
        err = e;
      }
      expect(isMpregError(err)).toBe(true);
      expect((err as { code: number }).code).toBe(1006);
      // No connection was ever created for the refused upgrades.
      expect(conns.length).toBe(2);
    });
  });

  it("refuses upgrades past maxConnections with 503", async () => {
    const { url, conns } = await start({ maxConnections: 1 });
    await rawClient(url);
    await waitFor(() => conns.length === 1);
    expect(await upgradeStatus(url)).toBe(503);
  });

  it("coalesces the frames of one event-loop turn into one socket write", async () => {
    const { url, conns } = await start();
    const c = await connectWs(url, { reconnect: false });
    cleanups.push(() => c.close());
    let got = 0;
    c.onMessage(() => got++);
    await waitFor(() => conns.length === 1);
    // The client's ping on open has been answered (its pong is a write of its own).
    await waitFor(() => (conns[0] as WsConnection).heardFromPeer);
    const socket = (conns[0] as unknown as { socket: Record<string, (...a: unknown[]) => unknown> }).socket;
    const calls: string[] = [];
    for (const m of ["_write", "_writev"]) {
      const orig = socket[m]!;
      socket[m] = function (this: unknown, ...a: unknown[]) {
        calls.push(m);
        return orig.apply(this, a);
      };
    }
    // Ten frames, half of them from promise continuations of the same turn.
    for (let i = 0; i < 5; i++) conns[0]!.send(new Uint8Array([i]));
    for (let i = 5; i < 10; i++) void Promise.resolve().then(() => conns[0]!.send(`t${i}`));
    await waitFor(() => got === 10);
    expect(calls).toEqual(["_writev"]);
  });

  it("writes a long turn out every coalesceMaxFrames frames, in order", async () => {
    const { url, conns } = await start({ coalesceMaxFrames: 16 });
    const c = await connectWs(url, { reconnect: false });
    cleanups.push(() => c.close());
    const got: number[] = [];
    c.onMessage((d) => got.push((d as Uint8Array)[0]!));
    await waitFor(() => conns.length === 1);
    // The client's ping on open has been answered (its pong is a write of its own).
    await waitFor(() => (conns[0] as WsConnection).heardFromPeer);
    const socket = (conns[0] as unknown as { socket: Record<string, (...a: unknown[]) => unknown> }).socket;
    const writes: number[] = [];
    const orig = socket._writev!;
    socket._writev = function (this: unknown, ...a: unknown[]) {
      writes.push((a[0] as unknown[]).length);
      return orig.apply(this, a);
    };
    for (let i = 0; i < 40; i++) conns[0]!.send(new Uint8Array([i]));
    await waitFor(() => got.length === 40);
    expect(got).toEqual(Array.from({ length: 40 }, (_, i) => i));
    // Server-side ws writes a frame as two buffers (header, payload): 16 + 16 + 8 frames.
    expect(writes).toEqual([32, 32, 16]);
  });

  it("setCoalesceMaxFrames changes the batch of a connection that is already open", async () => {
    const { url, conns } = await start({ coalesceMaxFrames: 16 });
    const c = await connectWs(url, { reconnect: false });
    cleanups.push(() => c.close());
    const got: number[] = [];
    c.onMessage((d) => got.push((d as Uint8Array)[0]!));
    await waitFor(() => conns.length === 1);
    await waitFor(() => (conns[0] as WsConnection).heardFromPeer);
    (conns[0] as WsConnection).setCoalesceMaxFrames(64);
    const socket = (conns[0] as unknown as { socket: Record<string, (...a: unknown[]) => unknown> }).socket;
    const writes: number[] = [];
    const orig = socket._writev!;
    socket._writev = function (this: unknown, ...a: unknown[]) {
      writes.push((a[0] as unknown[]).length);
      return orig.apply(this, a);
    };
    for (let i = 0; i < 100; i++) conns[0]!.send(new Uint8Array([i]));
    await waitFor(() => got.length === 100);
    expect(got).toEqual(Array.from({ length: 100 }, (_, i) => i));
    expect(writes).toEqual([128, 72]);
  });

  describe("backpressure", () => {
    const limits = { highWaterMarkBytes: 64 * 1024, maxBufferedBytes: 1024 * 1024 };
    const frame = new Uint8Array(64 * 1024);

    it("a reading client gets everything through the bounded queue", async () => {
      const { url, conns } = await start(limits);
      const c = await connectWs(url, { reconnect: false });
      cleanups.push(() => c.close());
      let bytes = 0;
      c.onMessage((d) => {
        bytes += (d as Uint8Array).byteLength;
      });
      await waitFor(() => conns.length === 1);
      const s = conns[0]!;
      // 16 MiB in turns of 8 frames (512 KiB, below maxBufferedBytes per turn).
      for (let turn = 0; turn < 32; turn++) {
        for (let i = 0; i < 8; i++) s.send(frame);
        await new Promise((r) => setImmediate(r));
      }
      await waitFor(() => bytes === 32 * 8 * frame.byteLength, 20_000, "all bytes");
      expect(s.open).toBe(true);
    });

    it("closes a slow consumer with 1008", async () => {
      const { url, conns } = await start({ ...limits, closeTimeoutMs: 200 });
      const ws = await rawClient(url);
      await waitFor(() => conns.length === 1);
      // Stop reading: kernel buffers fill, then the server's buffers.
      (ws as unknown as { _socket: { pause(): void } })._socket.pause();
      const s = conns[0]!;
      const closed = new Promise<[number, string]>((resolve) => s.onClose((c, r) => resolve([c, r])));
      let sent = 0;
      // Bounded: 512 MiB at most, far beyond kernel buffers plus maxBufferedBytes.
      while (s.open && sent < 8192) {
        for (let i = 0; i < 4 && s.open; i++) {
          s.send(frame);
          sent++;
        }
        await new Promise((r) => setImmediate(r));
      }
      expect(await closed).toEqual([1008, "slow consumer"]);
      expect(() => s.send(frame)).toThrow(/closed/);
    });
  });

  describe("limits under abuse", () => {
    it("validates the options once, naming the option", () => {
      const bad: [WsListenerOptions, string][] = [
        [{ maxConnectionsPerAddress: -1 }, "maxConnectionsPerAddress"],
        [{ firstFrameTimeoutMs: 1.5 }, "firstFrameTimeoutMs"],
        [{ maxTotalBufferedBytes: -5 }, "maxTotalBufferedBytes"],
        [{ maxConnections: 0 }, "maxConnections"],
        [{ maxConnections: 10, reservedPeerSlots: 10 }, "reservedPeerSlots"],
        [{ probationTimeoutMs: 0 }, "probationTimeoutMs"],
        [{ maxFrameBytes: 0 }, "maxFrameBytes"],
        [{ maxBufferedBytes: "big" as never }, "maxBufferedBytes"],
      ];
      for (const [opts, path] of bad) {
        expect(() => createWsListener(opts), path).toThrowError(expect.objectContaining({ code: 1002, details: expect.objectContaining({ path }) }));
      }
      // 0 switches the optional bounds off.
      const off = createWsListener({ maxConnectionsPerAddress: 0, firstFrameTimeoutMs: 0, maxTotalBufferedBytes: 0, reservedPeerSlots: 0 });
      expect(off.outboundBudget).toBeNull();
      expect(createWsListener().outboundBudget?.limitBytes).toBe(256 * 1024 * 1024);
    });

    it("refuses connections past maxConnectionsPerAddress with 429, and takes them again once one closes", async () => {
      const { listener, url, conns } = await start({ maxConnectionsPerAddress: 2 });
      const a = await rawClient(url);
      await rawClient(url);
      await waitFor(() => conns.length === 2);
      expect(await upgradeStatus(url)).toBe(429);
      expect(listener.stats.refusedPerAddress).toBe(1);
      a.close();
      await waitFor(() => listener.connections.size === 1);
      expect(await upgradeStatus(url)).toBe(101);
    });

    it("closes a connection that sends nothing within firstFrameTimeoutMs with 4408; a frame or a ping keeps it", async () => {
      const { listener, url, conns } = await start({ firstFrameTimeoutMs: 150 });
      const silent = await rawClient(url);
      const talker = await rawClient(url);
      const pinger = await rawClient(url);
      const client = await connectWs(url, { reconnect: false }); // idle @mpreg/transport client: pings on open
      cleanups.push(() => client.close());
      talker.send("hello");
      pinger.ping();
      const closed = await closeOf(silent);
      expect(closed).toEqual({ code: CLOSE_FIRST_FRAME_TIMEOUT, reason: "first frame timeout" });
      await new Promise((r) => setTimeout(r, 300));
      expect([talker.readyState, pinger.readyState]).toEqual([WebSocket.OPEN, WebSocket.OPEN]);
      expect(client.open).toBe(true);
      expect(listener.stats.firstFrameTimeouts).toBe(1);
      expect(conns.filter((c) => c.open)).toHaveLength(3);
    });

    it("drops an upgrade request that dribbles its headers after firstFrameTimeoutMs", async () => {
      const { listener } = await start({ firstFrameTimeoutMs: 200 });
      expect(listener.httpServer.headersTimeout).toBe(200);
      const sock = net.connect(listener.address!.port, "127.0.0.1");
      cleanups.push(() => void sock.destroy());
      const t0 = Date.now();
      await new Promise<void>((resolve) => sock.once("connect", () => resolve()));
      sock.write("GET / HTTP/1.1\r\nHost: x\r\n");
      sock.on("data", () => {});
      await new Promise<void>((resolve) => sock.once("close", () => resolve()));
      expect(Date.now() - t0).toBeLessThan(3000);
    });

    it("reserves peer slots: past the client share a connection must show itself a peer on its first frame", async () => {
      const { listener, url, conns } = await start({ maxConnections: 3, reservedPeerSlots: 1, firstFrameTimeoutMs: 0 });
      listener.onConnection((c) => {
        conns.push(c);
        c.onMessage((d) => {
          if (d === "peer-hello") listener.markPeer(c);
        });
      });
      const c1 = await rawClient(url);
      await rawClient(url);
      await waitFor(() => conns.length === 2);
      // The client share (3 - 1) is full: the next connection is on probation.
      const intruder = await rawClient(url);
      intruder.send("client-frame");
      expect(await closeOf(intruder)).toEqual({ code: 1013, reason: "client connection limit" });
      expect(listener.stats.probationRefused).toBe(1);
      const peer = await rawClient(url);
      peer.send("peer-hello");
      await waitFor(() => conns.length === 4);
      await new Promise((r) => setTimeout(r, 100));
      expect(peer.readyState).toBe(WebSocket.OPEN);
      expect(await upgradeStatus(url)).toBe(503); // 3 open: full
      expect(listener.stats.refusedFull).toBe(1);
      // A client leaves: the client share has room again, no probation.
      c1.close();
      await waitFor(() => listener.connections.size === 2);
      const c3 = await rawClient(url);
      c3.send("client-frame");
      await new Promise((r) => setTimeout(r, 100));
      expect(c3.readyState).toBe(WebSocket.OPEN);
    });

    it("a connection on probation that stays silent is closed after probationTimeoutMs", async () => {
      const { listener, url, conns } = await start({ maxConnections: 2, reservedPeerSlots: 1, probationTimeoutMs: 150, firstFrameTimeoutMs: 0 });
      await rawClient(url);
      await waitFor(() => conns.length === 1);
      const silent = await rawClient(url);
      expect(await closeOf(silent)).toEqual({ code: CLOSE_FIRST_FRAME_TIMEOUT, reason: "first frame timeout" });
      expect(listener.stats.firstFrameTimeouts).toBe(1);
    });

    it("a node-wide outbound budget cuts off the slow readers (1008) and keeps the one that reads", async () => {
      const limit = 8 * 1024 * 1024;
      const { listener, url, conns } = await start({ highWaterMarkBytes: 64 * 1024, maxBufferedBytes: 1024 * 1024 * 1024, maxTotalBufferedBytes: limit, closeTimeoutMs: 200 });
      const budget = listener.outboundBudget!;
      const slow = await Promise.all([0, 1, 2, 3].map(() => rawClient(url)));
      for (const ws of slow) (ws as unknown as { _socket: { pause(): void } })._socket.pause();
      const reader = await connectWs(url, { reconnect: false });
      cleanups.push(() => reader.close());
      let read = 0;
      reader.onMessage((d) => {
        read += (d as Uint8Array).byteLength;
      });
      await waitFor(() => conns.length === 5);
      const serverReader = conns[4]!;
      const closes: [number, string][] = [];
      for (const c of conns.slice(0, 4)) c.onClose((code, reason) => closes.push([code, reason]));
      const frame = new Uint8Array(64 * 1024);
      let sentToReader = 0;
      let peak = 0;
      // Bounded: at most 8192 rounds (2 GiB per slow socket if nothing ever cut it off).
      for (let round = 0; round < 8192 && closes.length < 4; round++) {
        for (const c of conns.slice(0, 4)) for (let i = 0; i < 4 && c.open; i++) c.send(frame);
        serverReader.send(frame);
        sentToReader += frame.byteLength;
        peak = Math.max(peak, budget.usedBytes);
        await new Promise((r) => setImmediate(r));
      }
      expect(closes).toEqual(Array(4).fill([1008, "slow consumer"]));
      expect(peak).toBeLessThanOrEqual(limit);
      expect(budget.cutOffs).toBe(4);
      await waitFor(() => read === sentToReader, 20_000, "the reader gets everything");
      expect(serverReader.open).toBe(true);
      expect(listener.stats.slowConsumers).toBe(4);
      await waitFor(() => budget.usedBytes === 0);
    });

    it("a dialed connection shares the budget (connectWs({outboundBudget})): a peer that stops reading is cut off too", async () => {
      const { listener, url, conns } = await start({ maxTotalBufferedBytes: 4 * 1024 * 1024 });
      const budget = listener.outboundBudget!;
      const dialed = await connectWs(url, { reconnect: false, outboundBudget: budget, highWaterMarkBytes: 64 * 1024, maxBufferedBytes: 1024 * 1024 * 1024 });
      cleanups.push(() => dialed.close());
      await waitFor(() => conns.length === 1);
      // The accepting side stops reading: the dialer's buffers fill.
      (conns[0] as unknown as { socket: { pause(): void } }).socket.pause();
      const closed = new Promise<[number, string]>((resolve) => dialed.onClose((code, reason) => resolve([code, reason])));
      const frame = new Uint8Array(64 * 1024);
      for (let round = 0; round < 8192 && dialed.open; round++) {
        for (let i = 0; i < 4 && dialed.open; i++) dialed.send(frame);
        expect(budget.usedBytes).toBeLessThanOrEqual(4 * 1024 * 1024);
        await new Promise((r) => setImmediate(r));
      }
      expect(await closed).toEqual([1008, "slow consumer"]);
      expect(budget.cutOffs).toBe(1);
    });
  });

  it("close() closes every connection with 1001 and stops accepting", async () => {
    const { listener, url, conns } = await start();
    const a = await rawClient(url);
    const b = await connectWs(url, { reconnect: false });
    await waitFor(() => conns.length === 2);
    const ca = closeOf(a);
    const cb = new Promise<number>((resolve) => b.onClose((code) => resolve(code)));
    await listener.close();
    expect((await ca).code).toBe(1001);
    expect(await cb).toBe(1001);
    expect(listener.connections.size).toBe(0);
    await expect(connectWs(url, { reconnect: false })).rejects.toMatchObject({ code: 1005 });
  });
});
