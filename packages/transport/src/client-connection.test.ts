import fc from "fast-check";
import { afterEach, describe, expect, it } from "vitest";
import { waitFor } from "./connection.compliance.js";
import type { Connection } from "./connection.js";
import { connectWs, type ClientConnection } from "./client-connection.js";
import { createWsListener, type WsListener } from "./ws-listener.js";

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

async function start(port = 0): Promise<{ listener: WsListener; url: string; conns: Connection[] }> {
  const listener = createWsListener({ pingIntervalMs: 0 });
  const conns: Connection[] = [];
  listener.onConnection((c) => {
    conns.push(c);
    c.onMessage((d) => c.send(d)); // echo
  });
  const { url } = await listener.listen({ port });
  cleanups.push(() => listener.close());
  return { listener, url, conns };
}

function track(c: ClientConnection) {
  const log = {
    closes: [] as Array<[number, string, boolean]>,
    reconnecting: [] as Array<[number, number]>,
    opens: 0,
    messages: [] as unknown[],
  };
  c.onClose((code, reason, will) => log.closes.push([code, reason, will]));
  c.onReconnecting((a, d) => log.reconnecting.push([a, d]));
  c.onOpen(() => log.opens++);
  c.onMessage((d) => log.messages.push(d));
  return log;
}

describe("connectWs / ClientConnection", () => {
  it("rejects with 1005 when nothing listens", async () => {
    const { listener, url } = await start();
    await listener.close();
    await expect(connectWs(url, { reconnect: false })).rejects.toMatchObject({ code: 1005 });
  });

  it("reconnects after the server drops the link, and works again", async () => {
    const { url, conns } = await start();
    const c = await connectWs(url, { reconnect: { initialDelayMs: 5, maxDelayMs: 20 } });
    cleanups.push(() => c.close());
    const log = track(c);
    await waitFor(() => conns.length === 1);
    conns[0]!.close(4000, "kicked");
    await waitFor(() => log.opens === 1, 5000, "reconnect");
    expect(log.closes).toEqual([[4000, "kicked", true]]);
    expect(log.reconnecting.length).toBe(1);
    expect(log.reconnecting[0]![0]).toBe(1);
    expect(c.state).toBe("open");
    c.send("again");
    await waitFor(() => log.messages.length === 1);
    expect(log.messages[0]).toBe("again");
    expect(conns.length).toBe(2);
  });

  it("send while reconnecting throws a clear 1005 error", async () => {
    const { listener, url, conns } = await start();
    // A long first delay keeps the connection in the reconnecting state for the assertion.
    const c = await connectWs(url, { reconnect: { initialDelayMs: 60_000 }, random: () => 0.99 });
    cleanups.push(() => c.close());
    const log = track(c);
    await waitFor(() => conns.length === 1);
    await listener.close();
    await waitFor(() => log.closes.length === 1);
    expect(log.closes[0]).toEqual([1001, "server shutting down", true]);
    expect(c.state).toBe("reconnecting");
    expect(() => c.send("x")).toThrow(/reconnecting/);
    c.close();
    expect(c.state).toBe("closed");
    expect(log.closes.at(-1)).toEqual([1000, "", false]);
  });

  it("gives up after maxAttempts with a final close", async () => {
    const { listener, url, conns } = await start();
    const c = await connectWs(url, { reconnect: { initialDelayMs: 1, maxDelayMs: 4, maxAttempts: 3 } });
    const log = track(c);
    await waitFor(() => conns.length === 1);
    await listener.close();
    await waitFor(() => c.state === "closed", 5000, "give up");
    expect(log.reconnecting.map((r) => r[0])).toEqual([1, 2, 3]);
    expect(log.closes.at(-1)).toEqual([1006, "reconnect failed after 3 attempts", false]);
  });

  it("keeps backing off when each new link drops at once (no reset before stableAfterMs)", async () => {
    const { listener, url, conns } = await start();
    const c = await connectWs(url, { reconnect: { initialDelayMs: 1, maxDelayMs: 4, maxAttempts: 3, stableAfterMs: 60_000 } });
    const log = track(c);
    await waitFor(() => conns.length === 1);
    // From now on the node accepts and closes every link immediately.
    listener.onConnection((conn) => {
      conns.push(conn);
      conn.close(4003, "go away");
    });
    conns[0]!.close(4003, "go away");
    await waitFor(() => c.state === "closed", 5000, "give up");
    expect(log.reconnecting.map((r) => r[0])).toEqual([1, 2, 3]);
    expect(log.opens).toBe(3);
    expect(log.closes.at(-1)).toEqual([4003, "go away", false]);
  });

  it("finds a restarted server on the same port", async () => {
    const first = await start();
    const port = first.listener.address!.port;
    const c = await connectWs(first.url, { reconnect: { initialDelayMs: 5, maxDelayMs: 50 } });
    cleanups.push(() => c.close());
    const log = track(c);
    await first.listener.close();
    await waitFor(() => log.reconnecting.length >= 2, 5000, "failed retries");
    const second = await start(port);
    await waitFor(() => log.opens === 1, 10_000, "reconnected");
    c.send("hello again");
    await waitFor(() => log.messages.length === 1);
    expect(second.conns.length).toBe(1);
  });

  it("does not reconnect when reconnect is off, nor after close()", async () => {
    const { url, conns } = await start();
    const c = await connectWs(url, { reconnect: false });
    const log = track(c);
    await waitFor(() => conns.length === 1);
    conns[0]!.close(4002, "bye");
    await waitFor(() => c.state === "closed");
    expect(log.closes).toEqual([[4002, "bye", false]]);
    expect(log.reconnecting).toEqual([]);

    const d = await connectWs(url, { reconnect: { initialDelayMs: 1 } });
    const dlog = track(d);
    d.close(1000, "me");
    await waitFor(() => d.state === "closed");
    expect(dlog.closes).toEqual([[1000, "me", false]]);
    expect(dlog.reconnecting).toEqual([]);
  });

  it("reports reconnect delays within [0, min(max, initial*2^n)] for any random source", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), { minLength: 4, maxLength: 4 }), async (rs) => {
        const { listener, url, conns } = await start();
        let i = 0;
        const c = await connectWs(url, {
          reconnect: { initialDelayMs: 2, maxDelayMs: 5, maxAttempts: 4 },
          random: () => rs[i++ % rs.length]!,
        });
        const log = track(c);
        await waitFor(() => conns.length === 1);
        // Refuse the retries: the port stays open but every upgrade is dropped.
        listener.httpServer.removeAllListeners("upgrade");
        listener.httpServer.on("upgrade", (_req, socket) => socket.destroy());
        conns[0]!.close(4000, "go");
        await waitFor(() => c.state === "closed", 5000);
        expect(log.reconnecting.length).toBe(4);
        log.reconnecting.forEach(([attempt, delay]) => {
          expect(delay).toBeGreaterThanOrEqual(0);
          expect(delay).toBeLessThanOrEqual(Math.min(5, 2 * 2 ** (attempt - 1)));
        });
        await listener.close();
      }),
      { numRuns: 5 },
    );
  });
});
