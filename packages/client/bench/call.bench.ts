/**
 * MpregClient.call throughput against a minimal node (real listener + codec, same process),
 * 64 calls in flight, with and without the transport's frame coalescing.
 * Run: `pnpm bench`. Calls per second = hz x CALLS.
 */
import { decodeFrame, encodeFrame } from "@mpreg/envelope";
import { createWsListener, type WsListener } from "@mpreg/transport";
import { afterAll, beforeAll, bench, describe } from "vitest";
import { MpregClient } from "../src/index.js";

const CALLS = 2000;
const IN_FLIGHT = 64;

interface Setup {
  listener: WsListener;
  client: MpregClient;
}

async function setup(coalesce: boolean): Promise<Setup> {
  const listener = createWsListener({ pingIntervalMs: 0, coalesce });
  listener.onConnection((c) =>
    c.onMessage((data) => {
      const res = decodeFrame(data, "msgpack");
      if (!res.ok || res.frame.role !== "rpc") return;
      const f = res.frame;
      const r: Record<string, unknown> = {};
      for (const cmd of f.cmds) r[cmd.name] = cmd.args?.[0];
      c.send(encodeFrame({ role: "rpc-response", u: f.u, r, error: null }, "msgpack"));
    }),
  );
  const { url } = await listener.listen({ port: 0 });
  const client = await MpregClient.connect(url, { reconnect: false, discovery: false, transport: { coalesce, pingIntervalMs: 0 } });
  return { listener, client };
}

function run(c: MpregClient): Promise<void> {
  return new Promise((resolve, reject) => {
    let started = 0;
    let done = 0;
    const next = (): void => {
      const i = started++;
      c.call("echo", [{ i, text: "hello" }]).then(() => {
        done++;
        if (started < CALLS) next();
        else if (done === CALLS) resolve();
      }, reject);
    };
    for (let k = 0; k < IN_FLIGHT; k++) next();
  });
}

const modes: Record<string, Setup> = {};
beforeAll(async () => {
  modes.on = await setup(true);
  modes.off = await setup(false);
});
afterAll(async () => {
  for (const s of Object.values(modes)) {
    await s.client.close();
    await s.listener.close();
  }
});

describe(`MpregClient.call x${CALLS}, ${IN_FLIGHT} in flight`, () => {
  bench("coalescing on", () => run(modes.on!.client), { time: 3000, warmupTime: 500 });
  bench("coalescing off", () => run(modes.off!.client), { time: 3000, warmupTime: 500 });
});
