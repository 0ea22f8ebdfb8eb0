/**
 * Echo round-trips over a real loopback socket, 64 requests in flight, with and without frame
 * coalescing (cork/uncork per event-loop turn). Server and client run in this one process.
 * Run: `pnpm bench` (vitest bench). Round-trips per second = hz x ROUND_TRIPS.
 */
import { afterAll, beforeAll, bench, describe } from "vitest";
import { connectWs, createWsListener, type ClientConnection, type WsListener } from "../src/index.js";

const ROUND_TRIPS = 5000;
const IN_FLIGHT = 64;
const payload = new Uint8Array(64).fill(7);

interface Setup {
  listener: WsListener;
  client: ClientConnection;
}

async function setup(coalesce: boolean): Promise<Setup> {
  const listener = createWsListener({ pingIntervalMs: 0, coalesce });
  listener.onConnection((c) => c.onMessage((d) => c.send(d)));
  const { url } = await listener.listen({ port: 0 });
  const client = await connectWs(url, { reconnect: false, coalesce, pingIntervalMs: 0 });
  return { listener, client };
}

function run(s: Setup): Promise<void> {
  return new Promise((resolve) => {
    let sent = 0;
    let done = 0;
    const off = s.client.onMessage(() => {
      done++;
      if (sent < ROUND_TRIPS) {
        sent++;
        s.client.send(payload);
      } else if (done === ROUND_TRIPS) {
        off();
        resolve();
      }
    });
    for (; sent < IN_FLIGHT; sent++) s.client.send(payload);
  });
}

const modes: Record<string, Setup> = {};

beforeAll(async () => {
  modes.on = await setup(true);
  modes.off = await setup(false);
});

afterAll(async () => {
  for (const s of Object.values(modes)) {
    s.client.close();
    await s.listener.close();
  }
});

describe(`echo ${ROUND_TRIPS} round-trips, ${IN_FLIGHT} in flight, 64 B binary frames`, () => {
  bench("coalescing on", async () => {
    await run(modes.on!);
  }, { time: 3000, warmupTime: 500 });
  bench("coalescing off", async () => {
    await run(modes.off!);
  }, { time: 3000, warmupTime: 500 });
});
