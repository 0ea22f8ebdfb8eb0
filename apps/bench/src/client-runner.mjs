// Child process: the load generator for one system. It connects once, then for each case
// warms up and measures a closed loop, printing one `BENCH_RESULT=<json>` line per case.
// Any wrong reply or error prints `BENCH_ERROR=<message>` and exits 1.
import { closedLoop, summarize } from "./load.mjs";
import { loadDependency, loadMpregClient } from "./deps.mjs";
import { cpusFor, pin } from "./pin.mjs";

/** @type {{ system: "ws" | "moleculer" | "mpreg", target: string, namespace?: string,
 *   cases: { kind: string, inFlight: number }[], durationMs?: number, count?: number,
 *   warmupMs?: number, warmupCount?: number, serverPid?: number }} serverPid: pin the server and
 *   this process per case (see pin.mjs) */
const config = JSON.parse(process.argv[2] ?? "{}");

function mismatch(what, expected, got) {
  return new Error(`${what}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(got)}`);
}

/** Plain `ws` client: one `send` per request, replies matched by `u`. */
async function bareWs(url) {
  const { WebSocket } = await loadDependency("ws");
  const { Encoder, Decoder } = await loadDependency("@msgpack/msgpack");
  const encoder = new Encoder();
  const decoder = new Decoder();
  const ws = new WebSocket(url, { perMessageDeflate: false });
  /** @type {Map<string, (m: any) => void>} at most `inFlight` entries: the loop is closed. */
  const pending = new Map();
  let seq = 0;
  await new Promise((resolve, reject) => {
    ws.once("open", resolve);
    ws.once("error", reject);
  });
  ws.on("message", (data) => {
    const m = decoder.decode(data);
    const done = pending.get(m.u);
    if (done) {
      pending.delete(m.u);
      done(m);
    }
  });
  ws.on("close", () => {
    for (const done of pending.values()) done({ error: { message: "connection closed" } });
    pending.clear();
  });
  const rpc = (cmds) =>
    new Promise((resolve) => {
      // Same length as a ULID, the id MPREG clients use, so frames are the same size.
      const u = String(++seq).padStart(26, "0");
      pending.set(u, resolve);
      ws.send(encoder.encode({ role: "rpc", u, cmds }));
    });
  let n = 0;
  return {
    ops: {
      echo: async () => {
        const v = ++n;
        const m = await rpc([{ name: "echo", fun: "echo", args: [v] }]);
        if (m.error || m.r?.echo !== v) throw mismatch("ws echo", v, m);
      },
    },
    close: async () => ws.close(),
  };
}

/** Moleculer caller broker: TCP transporter, static URL of the service broker, no UDP. */
async function moleculer(port, namespace) {
  const { ServiceBroker } = await loadDependency("moleculer");
  const broker = new ServiceBroker({
    nodeID: `bench-caller-${process.pid}`,
    namespace,
    transporter: {
      type: "TCP",
      options: { udpDiscovery: false, port: 0, urls: [`127.0.0.1:${port}/bench-echo`] },
    },
    logger: false,
    metrics: false,
    tracing: false,
  });
  await broker.start();
  await broker.waitForServices(["echo"], 15_000);
  let n = 0;
  return {
    ops: {
      echo: async () => {
        const v = ++n;
        const r = await broker.call("echo.echo", { x: v });
        if (r !== v) throw mismatch("moleculer echo", v, r);
      },
    },
    close: () => broker.stop(),
  };
}

/** The reply of `request()` is the leaf-results object; tolerate a whole rpc-response too. */
function leaf(res, name) {
  if (res && typeof res === "object") {
    if (name in res) return res[name];
    if (res.r && typeof res.r === "object") return res.r[name];
  }
  return undefined;
}

/** MPREG through `@mpreg/client`. */
async function mpreg(url) {
  const { MpregClient } = await loadMpregClient();
  if (typeof MpregClient?.connect !== "function") {
    throw new Error("@mpreg/client does not export MpregClient.connect(url)");
  }
  const client = await MpregClient.connect(url);
  let n = 0;
  return {
    ops: {
      echo: async () => {
        const v = ++n;
        const r = await client.call("echo", [v]);
        if (r !== v) throw mismatch("mpreg echo", v, r);
      },
      // a -> b -> c -> d, each the echo of the previous one, resolved by the node in ONE request.
      "chain-1-request": async () => {
        const v = ++n;
        const res = await client.request([
          { name: "a", fun: "echo", args: [v] },
          { name: "b", fun: "echo", args: ["a"] },
          { name: "c", fun: "echo", args: ["b"] },
          { name: "d", fun: "echo", args: ["c"] },
        ]);
        if (leaf(res, "d") !== v) throw mismatch("mpreg chain (1 request)", { d: v }, res);
      },
      // The same chain as 4 sequential round trips, the client feeding each result forward.
      "chain-4-calls": async () => {
        const v = ++n;
        const a = await client.call("echo", [v]);
        const b = await client.call("echo", [a]);
        const c = await client.call("echo", [b]);
        const d = await client.call("echo", [c]);
        if (d !== v) throw mismatch("mpreg chain (4 calls)", v, d);
      },
    },
    close: () => client.close(),
  };
}

async function main() {
  const { system, target } = config;
  const conn =
    system === "ws"
      ? await bareWs(target)
      : system === "moleculer"
        ? await moleculer(Number(target), config.namespace ?? "")
        : system === "mpreg"
          ? await mpreg(target)
          : null;
  if (!conn) throw new Error(`unknown system ${JSON.stringify(system)}`);
  for (const c of config.cases) {
    const op = conn.ops[c.kind];
    if (!op) throw new Error(`system ${system} has no case ${c.kind}`);
    if (config.serverPid !== undefined) pin([config.serverPid, process.pid], cpusFor(c.inFlight));
    const byCount = config.count !== undefined;
    await closedLoop(
      byCount
        ? { inFlight: c.inFlight, op, count: config.warmupCount ?? 0 }
        : { inFlight: c.inFlight, op, durationMs: config.warmupMs ?? 0 },
    );
    const run = await closedLoop(
      byCount
        ? { inFlight: c.inFlight, op, count: config.count }
        : { inFlight: c.inFlight, op, durationMs: config.durationMs },
    );
    const result = { system, kind: c.kind, inFlight: c.inFlight, ...summarize(run) };
    process.stdout.write(`BENCH_RESULT=${JSON.stringify(result)}\n`);
  }
  await conn.close();
}

main().then(
  () => process.exit(0),
  (err) => {
    const msg = err instanceof Error ? (err.stack ?? err.message) : String(err);
    process.stdout.write(`BENCH_ERROR=${JSON.stringify(msg)}\n`);
    process.exit(1);
  },
);
