/**
 * The client commands of `mpreg` against running nodes: output and exit code of each, in
 * process through `runCli` (what the bin delegates to) and through the bin itself.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { runCli } from "@mpreg/cli";
import { startNode, waitFor, type NodeProcess } from "@mpreg/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { configCommand } from "../src/config-command.js";
import { CLI, TEST_FUNCTIONS } from "./node-harness.js";
import { parsePrometheus, sampleValue } from "./prometheus-text.js";

let a: NodeProcess;
let b: NodeProcess;
const dir = mkdtempSync(join(tmpdir(), "mpreg-cli-"));

/** Runs one command in process; returns exit code and what it wrote. */
async function mpreg(argv: string[], env: NodeJS.ProcessEnv = {}) {
  let stdout = "";
  let stderr = "";
  const code = await runCli(argv, {
    stdout: { write: (s: string) => (stdout += s) },
    stderr: { write: (s: string) => (stderr += s) },
    env: { MPREG_URL: a.url, ...env },
  });
  return { code, stdout, stderr };
}

/** Runs `mpreg config ...` in process. */
function config(argv: string[], env: NodeJS.ProcessEnv = {}) {
  let stdout = "";
  let stderr = "";
  const status = configCommand(argv, { stdout: (s) => (stdout += s), stderr: (s) => (stderr += s), env });
  return { status, stdout, stderr };
}

/** Runs the real bin. */
function bin(argv: string[], env: NodeJS.ProcessEnv = {}) {
  return spawnSync(process.execPath, [CLI, ...argv], { encoding: "utf8", env: { ...process.env, ...env }, timeout: 20_000 });
}

const fast = ["--gossip-probe-interval-ms", "100", "--gossip-probe-timeout-ms", "50"];

beforeAll(async () => {
  a = await startNode({
    bin: CLI,
    args: ["start", "--port", "0", "--name", "cli-a", "--functions", TEST_FUNCTIONS, "--raft-group", "kv", "--raft-members", "cli-a", "--raft-tick-ms", "10", "--monitoring-port", "0", ...fast],
    waitForMonitoring: true,
  });
  b = await startNode({ bin: CLI, args: ["start", "--port", "0", "--name", "cli-b", "--peers", a.url, ...fast] });
  await waitFor(async () => (await mpreg(["peers", "--json"])).stdout.includes("cli-b"), { description: "cli-a sees cli-b" });
});

afterAll(async () => {
  await Promise.all([a?.stop(), b?.stop()]);
});

describe("mpreg call", () => {
  it("calls a function with JSON-or-string arguments and prints the result", async () => {
    expect(await mpreg(["call", "add", "1", "2", "39"])).toEqual({ code: 0, stdout: "42\n", stderr: "" });
    expect((await mpreg(["call", "concat", "ab", "1"])).stdout).toBe("ab1\n");
    const kw = await mpreg(["call", "kw", "1", "--kwargs", '{"x": [true]}', "--json"]);
    expect(JSON.parse(kw.stdout)).toEqual({ args: [1], kwargs: { x: [true] } });
  });

  it("a failing call prints the wire code and a readable message, and exits 1", async () => {
    const r = await mpreg(["call", "ad", "1"]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe("");
    expect(r.stderr).toBe("error 1001 NOT_FOUND: no function `ad` in cluster `default`; did you mean `add`?\n");
    const boom = await mpreg(["call", "boom"]);
    expect(boom.code).toBe(1);
    expect(boom.stderr).toMatch(/^error 1003 EXECUTION_FAILED: .*kaboom/);
    const j = await mpreg(["call", "ad", "--json"]);
    const err = JSON.parse(j.stdout).error;
    expect(err).toMatchObject({ code: 1001, name: "NOT_FOUND", details: { fun: "ad" } });
    // The client's internal command label is not the user's business.
    expect(JSON.stringify(err)).not.toMatch(/ad@/);
  });

  it("sends a multi-command request from a file ({cmds} or a bare array)", async () => {
    const cmds = [
      { name: "n", fun: "nested" },
      { name: "sum", fun: "add", args: ["n.n", 41] },
      { name: "text", fun: "concat", args: ["n.a.list.0.b", "sum"] },
    ];
    const obj = join(dir, "request.json");
    writeFileSync(obj, JSON.stringify({ cmds }));
    const r = await mpreg(["call", "--file", obj, "--json"]);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ text: "deep42" });
    const arr = join(dir, "array.json");
    writeFileSync(arr, JSON.stringify(cmds));
    expect(JSON.parse((await mpreg(["call", "--file", arr, "--all", "--json"])).stdout)).toMatchObject({ sum: 42, text: "deep42" });
    writeFileSync(join(dir, "bad.json"), "{}");
    const bad = await mpreg(["call", "--file", join(dir, "bad.json")]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/must hold \{"cmds": \[\.\.\.\]\} or an array/);
  });

  it("runs through the mpreg bin too (MPREG_URL, exit codes)", () => {
    const ok = bin(["call", "add", "2", "3"], { MPREG_URL: a.url });
    expect([ok.status, ok.stdout]).toEqual([0, "5\n"]);
    const bad = bin(["call", "nope", "--url", a.url]);
    expect(bad.status).toBe(1);
    expect(bad.stderr).toMatch(/^error 1001 NOT_FOUND: no function `nope`/);
  });
});

describe("cluster views", () => {
  it("peers lists the other node with its route", async () => {
    const r = await mpreg(["peers"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^NODE\s+CLUSTER\s+STATUS\s+NEXT HOP\s+HOPS\s+URLS$/m);
    expect(r.stdout).toMatch(new RegExp(`^cli-b\\s+default\\s+alive\\s+direct\\s+\\S+\\s+${b.url}$`, "m"));
    const j = JSON.parse((await mpreg(["peers", "--json"])).stdout);
    expect(j.map((p: { node_id: string }) => p.node_id)).toEqual(["cli-b"]);
  });

  it("topology draws clusters, nodes and functions, and --json has the /topology shape", async () => {
    const r = await mpreg(["topology"], { MPREG_URL: b.url });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^cluster default {2}\(2 nodes, 2 alive\)$/m);
    expect(r.stdout).toMatch(/── cli-a {2}alive {2}ws:\/\/\S+ {2}direct link$/m);
    expect(r.stdout).toMatch(/── cli-b {2}alive {2}ws:\/\/\S+ {2}← this node$/m);
    expect(r.stdout).toMatch(/functions: .*add, .*concat/);
    const view = JSON.parse((await mpreg(["topology", "--json"], { MPREG_URL: b.url })).stdout);
    expect(view).toMatchObject({ node_id: "cli-b", clusters: [{ cluster_id: "default" }], links: [{ from: "cli-b", to: "cli-a", next_hop: "cli-a" }] });
  });

  it("health exits 0 for a healthy cluster and 1 when an expectation fails", async () => {
    const ok = await mpreg(["health"]);
    expect(ok).toMatchObject({ code: 0, stdout: "ok: cluster default, 2 nodes alive\n" });
    const short = await mpreg(["health", "--expect", "3", "--json"]);
    expect(short.code).toBe(1);
    expect(JSON.parse(short.stdout)).toMatchObject({ healthy: false, alive: 2, problems: ["2 nodes alive, expected at least 3"] });
  });
});

describe("mpreg kv", () => {
  it("puts, gets and deletes through the Raft group; a missing key exits 1", async () => {
    await waitFor(async () => (await mpreg(["kv", "put", "colour", '"blue"'])).code === 0, { description: "the group has a leader" });
    expect(await mpreg(["kv", "get", "colour"])).toMatchObject({ code: 0, stdout: "blue\n" });
    const put = await mpreg(["kv", "put", "n", "{\"x\": 1}", "--json"]);
    expect(JSON.parse(put.stdout)).toMatchObject({ version: 1 });
    // From the node that is not a member: answered from the group, through the fabric.
    expect(JSON.parse((await mpreg(["kv", "get", "n", "--json"])).stdout)).toMatchObject({ found: true, value: { x: 1 } });
    expect((await mpreg(["kv", "delete", "n"])).stdout).toMatch(/^deleted n( \(revision \d+\))?\n$/);
    expect(await mpreg(["kv", "get", "n"])).toMatchObject({ code: 1, stdout: "", stderr: "n: not found\n" });
    expect((await mpreg(["kv", "frob", "x"])).code).toBe(2);
  });
});

describe("mpreg kv range, watch and lock", () => {
  it("range lists a prefix in key order; watch prints committed changes as JSON lines; lock holds and releases", async () => {
    await waitFor(async () => (await mpreg(["kv", "put", "r/a", "1"])).code === 0, { description: "the group has a leader" });
    expect((await mpreg(["kv", "put", "r/c", "3"])).code).toBe(0);
    expect((await mpreg(["kv", "put", "r/b", "2"])).code).toBe(0);
    expect((await mpreg(["kv", "put", "s/x", "9"])).code).toBe(0);
    const range = await mpreg(["kv", "range", "r/"]);
    expect(range).toMatchObject({ code: 0, stdout: "r/a 1\nr/b 2\nr/c 3\n" });
    expect((await mpreg(["kv", "range", "r/", "--limit", "1", "--json"])).stdout).toMatch(/"more":\s*true/);

    // Watch from the revision of the first put: replays r/a, r/c, r/b in revision order.
    const first = JSON.parse((await mpreg(["kv", "get", "r/a", "--json"])).stdout) as { mod_revision: number };
    const watch = await mpreg(["kv", "watch", "r/", "--start-revision", String(first.mod_revision), "--count", "3"]);
    expect(watch.code).toBe(0);
    const events = watch.stdout.trim().split("\n").map((l) => JSON.parse(l) as { type: string; key: string });
    expect(events.map((e) => `${e.type} ${e.key}`)).toEqual(["put r/a", "put r/c", "put r/b"]);

    const lock = await mpreg(["kv", "lock", "cli-job", "--ttl-ms", "2000", "--hold-ms", "50"]);
    expect(lock).toMatchObject({ code: 0, stdout: "locked cli-job\n" });
    expect(lock.stderr).toMatch(/released cli-job/);
    // Released: a second holder gets it at once.
    expect((await mpreg(["kv", "lock", "cli-job", "--hold-ms", "0"])).code).toBe(0);
  });
});

describe("mpreg bench", () => {
  it("makes N calls with C in flight and prints rate and percentiles", async () => {
    const r = await mpreg(["bench", "add", "1", "2", "--requests", "300", "--concurrency", "8", "--json"]);
    expect(r.code).toBe(0);
    const s = JSON.parse(r.stdout);
    expect(s).toMatchObject({ fun: "add", requests: 300, ok: 300, failed: 0, concurrency: 8 });
    expect(s.rate_per_s).toBeGreaterThan(0);
    expect(s.latency_ms.p50).toBeLessThanOrEqual(s.latency_ms.p99);
    const human = await mpreg(["bench", "--requests", "50"]);
    expect(human.stdout).toMatch(/^echo: 50 calls in [\d.]+ s, [\d,]+ calls\/s \(32 in flight\)\nlatency ms: p50 [\d.]+ {2}p90 [\d.]+ {2}p99 [\d.]+ {2}max [\d.]+\nfailed: 0\n$/);
    const failing = await mpreg(["bench", "boom", "--requests", "20", "--json"]);
    expect(failing.code).toBe(1);
    expect(JSON.parse(failing.stdout)).toMatchObject({ failed: 20, errors: { "1003": 20 } });
  });
});

describe("pub/sub, queue and cache commands", () => {
  it("pub TOPIC PAYLOAD, then sub PATTERN --backlog-seconds prints the retained message as one JSON line", async () => {
    const pub = await mpreg(["pub", "orders.created", '{"id": 1}']);
    expect(pub.code).toBe(0);
    expect(pub.stdout).toMatch(/^published orders\.created/);
    const sub = await mpreg(["sub", "orders.#", "--backlog-seconds", "60", "--count", "1"]);
    expect(sub.code).toBe(0);
    const line = JSON.parse(sub.stdout.trim().split("\n")[0]!);
    expect(line).toMatchObject({ topic: "orders.created", payload: { id: 1 } });
  });

  it("sub reports a malformed pattern with its wire code", async () => {
    const r = await mpreg(["sub", "a..b", "--count", "1"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^error 1002 [A-Z_]+: /);
  });

  it("queue create/send/receive --ack round trip", async () => {
    expect((await mpreg(["queue", "create", "cli-jobs"])).code).toBe(0);
    expect((await mpreg(["queue", "send", "cli-jobs", '{"n": 7}'])).code).toBe(0);
    const got = await mpreg(["queue", "receive", "cli-jobs", "--ack"]);
    expect(got.code).toBe(0);
    expect(got.stdout).toMatch(/"?n"?:\s*7/);
    const again = await mpreg(["queue", "receive", "cli-jobs"]);
    expect(again.code).toBe(0);
    expect(again.stdout).not.toMatch(/"?n"?:\s*7/);
  });

  it("cache put/get/delete round trip", async () => {
    expect((await mpreg(["cache", "put", "cli-key", '{"v": 3}'])).code).toBe(0);
    const got = await mpreg(["cache", "get", "cli-key"]);
    expect(got.code).toBe(0);
    expect(got.stdout).toMatch(/"v":\s*3/);
    expect((await mpreg(["cache", "delete", "cli-key"])).code).toBe(0);
    const gone = await mpreg(["cache", "get", "cli-key"]);
    expect(gone.code).toBe(1);
  });
});

describe("mpreg start and config", () => {
  it("start --help lists every flag with real defaults", () => {
    const r = bin(["start", "--help"]);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/--port N\s+client WebSocket port .*default 6666/);
    expect(r.stdout).toMatch(/--raft-members A,B/);
    expect(r.stdout).toMatch(/--monitoring-host S .*default 127\.0\.0\.1/);
  });

  it("a client port in use names the listener and how to pick another", () => {
    const port = new URL(a.url).port;
    const r = bin(["start", "--port", port]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`client port ${port} on 127\\.0\\.0\\.1 is already in use .*--port N .*MPREG_PORT`));
  });

  it("warns about an unknown MPREG_* variable and suggests the close one", () => {
    // Refused after the environment was read (a Raft group without members), so it exits at once.
    const r = bin(["start", "--raft-group", "kv"], { MPREG_PROT: "1" });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/warning: unknown environment variable MPREG_PROT is ignored; did you mean MPREG_PORT\?/);
  });

  it("config check validates a YAML file with the node's schema; config print shows the effective config", () => {
    const good = join(dir, "node.yaml");
    writeFileSync(good, "# a node\nport: 7001\nraft:\n  group: kv\n  members: [a, b, c]\n");
    expect(bin(["config", "check", good])).toMatchObject({ status: 0, stdout: `${good}: ok\n` });
    const bad = join(dir, "bad.yaml");
    writeFileSync(bad, "prot: 7001\n");
    const r = config(["check", bad]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/unknown option "prot"; did you mean "port"\?/);
    expect(JSON.parse(config(["check", bad, "--json"]).stdout)).toMatchObject({ ok: false });
    const printed = config(["print", "--config", good, "--region", "eu", "--auth-tokens", "secret"], { MPREG_CLUSTER_ID: "env-c" });
    expect(printed.status).toBe(0);
    expect(printed.stdout).toMatch(/^port: 7001$/m);
    expect(printed.stdout).toMatch(/^region: eu$/m);
    expect(printed.stdout).toMatch(/^clusterId: env-c$/m);
    expect(printed.stdout).not.toMatch(/secret/);
    const json = JSON.parse(config(["print", "--json", "--port", "1"]).stdout);
    expect(json).toMatchObject({ port: 1, host: "127.0.0.1", monitoringHost: "127.0.0.1" });
    expect(config(["frob"]).status).toBe(2);
    // The commented sample shipped in examples/ is valid as it is.
    const sample = fileURLToPath(new URL("../../../examples/node.yaml", import.meta.url));
    expect(config(["check", sample])).toMatchObject({ status: 0 });
  });
});

describe("the monitoring API of a running node", () => {
  it("serves /health, /ready, /topology and /catalog as JSON, bound to loopback", async () => {
    const mon = a.monitoringUrl!;
    expect(new URL(mon).hostname).toBe("127.0.0.1");
    expect(await (await fetch(`${mon}/health`)).json()).toMatchObject({ status: "ok", node_id: "cli-a", cluster_id: "default" });
    const ready = await fetch(`${mon}/ready`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toMatchObject({ ready: true, reasons: [] });
    const topology = (await (await fetch(`${mon}/topology`)).json()) as { nodes?: { node_id: string }[]; clusters?: unknown[] };
    // cluster_map today; the topologyView shape once node.ts wires it (docs/operations.md).
    expect(topology.nodes ?? topology.clusters).toBeDefined();
    expect(await (await fetch(`${mon}/catalog`)).json()).toBeTypeOf("object");
  });

  it("/metrics parses as Prometheus text and its counters move under traffic", async () => {
    const scrape = async () => parsePrometheus(await (await fetch(`${a.monitoringUrl}/metrics`)).text()).samples;
    const before = await scrape();
    for (let i = 0; i < 5; i++) expect((await mpreg(["call", "add", "1", String(i)])).code).toBe(0);
    expect((await mpreg(["call", "nope"])).code).toBe(1);
    const after = await scrape();
    const moved = (name: string, labels: Record<string, string> = {}) => (sampleValue(after, name, labels) ?? 0) - (sampleValue(before, name, labels) ?? 0);
    expect(moved("mpreg_rpc_requests_total")).toBeGreaterThanOrEqual(6);
    expect(moved("mpreg_frames_received_total")).toBeGreaterThanOrEqual(6);
    expect(moved("mpreg_connections_opened_total")).toBeGreaterThanOrEqual(6);
    expect(moved("mpreg_errors_total", { code: "1001" })).toBeGreaterThanOrEqual(1);
    expect(sampleValue(after, "mpreg_event_loop_delay_seconds", { quantile: "0.99" })).toBeGreaterThanOrEqual(0);
  });

  it("keeps monitoring on loopback when the client listener is public", async () => {
    const node = await startNode({ bin: CLI, args: ["start", "--port", "0", "--host", "0.0.0.0", "--monitoring-port", "0"], waitForMonitoring: true });
    try {
      expect(new URL(node.monitoringUrl!).hostname).toBe("127.0.0.1");
    } finally {
      await node.stop();
    }
  });
});
