import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { MpregClient } from "@mpreg/client";
import { startNode, waitFor, type NodeProcess } from "@mpreg/testkit";

export const CLI = fileURLToPath(new URL("../dist/cli.js", import.meta.url));
export const TEST_FUNCTIONS = fileURLToPath(new URL("./fixtures/test-functions.mjs", import.meta.url));
/** Functions a federation test node registers: those named in `MPREG_TEST_FUNCS` (see the file). */
export const FEDERATION_FUNCTIONS = fileURLToPath(new URL("./fixtures/federation-functions.mjs", import.meta.url));
/** Gossip timers short enough that a test cluster forms and notices deaths within seconds. */
export const FAST_GOSSIP = ["--gossip-probe-interval-ms", "100", "--gossip-probe-timeout-ms", "50"];
/** Slower than FAST_GOSSIP, for tests with several clusters (more processes on two cores). */
export const FEDERATION_GOSSIP = ["--gossip-probe-interval-ms", "200", "--gossip-probe-timeout-ms", "100"];

/** Starts `mpreg start --port 0 --functions <test module> ...extra` as a child process. */
export function startTestNode(extra: string[] = [], env: Record<string, string> = {}): Promise<NodeProcess> {
  return startNode({
    bin: CLI,
    args: ["start", "--port", "0", "--functions", TEST_FUNCTIONS, ...extra],
    env,
  });
}

/**
 * The node processes, clients and temporary directories of a test file, ended together by
 * `close()` (in `afterAll` or `afterEach`), so no test leaves a process behind.
 */
export class TestNodes {
  private readonly nodes: NodeProcess[] = [];
  private readonly clients: MpregClient[] = [];
  private readonly dirs: string[] = [];

  /** Starts `mpreg start --port 0 ...args`. */
  async start(args: string[], options: { env?: Record<string, string>; waitForMonitoring?: boolean } = {}): Promise<NodeProcess> {
    const n = await startNode({ bin: CLI, args: ["start", "--port", "0", ...args], ...options });
    this.nodes.push(n);
    return n;
  }

  /**
   * Starts node `name` of cluster `cluster` with the federation test functions `funcs`
   * (comma-separated, see fixtures/federation-functions.mjs) and FEDERATION_GOSSIP.
   */
  startMember(name: string, cluster: string, funcs: string, extra: string[] = []): Promise<NodeProcess> {
    return this.start(["--name", name, "--cluster-id", cluster, "--functions", FEDERATION_FUNCTIONS, ...FEDERATION_GOSSIP, ...extra], {
      env: { MPREG_TEST_FUNCS: funcs },
      waitForMonitoring: extra.includes("--monitoring-port"),
    });
  }

  /** A client of `n` that does not reconnect (a killed node stays gone). */
  async connect(n: NodeProcess): Promise<MpregClient> {
    const c = await MpregClient.connect(n.url, { reconnect: false });
    this.clients.push(c);
    return c;
  }

  /** A fresh temporary directory, removed by `close()`. */
  tempDir(prefix = "mpreg-test-"): string {
    const d = mkdtempSync(join(tmpdir(), prefix));
    this.dirs.push(d);
    return d;
  }

  /** Writes `body` (JSON unless a string) to `<dir>/<name>` and returns the path. */
  writeFile(dir: string, name: string, body: unknown): string {
    const path = join(dir, name);
    writeFileSync(path, typeof body === "string" ? body : JSON.stringify(body));
    return path;
  }

  /** Closes the clients, kills the nodes, removes the directories. */
  async close(): Promise<void> {
    await Promise.all(this.clients.splice(0).map((c) => c.close().catch(() => undefined)));
    await Promise.all(this.nodes.splice(0).map((n) => n.kill()));
    for (const d of this.dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  }
}

/** The AS path (`B>C`) of `c`'s node's federation route to `destination`, "" when it has none. */
export async function routeTo(c: MpregClient, destination: string): Promise<string> {
  const s = (await c.call("federation_status")) as { routes: { destination: string; path: string[] }[] };
  return s.routes.find((r) => r.destination === destination)?.path.join(">") ?? "";
}

/**
 * Calls `fun` until it answers (and `accept` holds for the answer), up to 20 s; returns the
 * answer. For a route or an entry that is still spreading.
 */
export async function answers(
  c: MpregClient,
  fun: string,
  args: unknown[] = [],
  description = `${fun} answers`,
  options: { target_cluster?: string; accept?: (v: unknown) => boolean } = {},
): Promise<unknown> {
  let out: unknown;
  await waitFor(
    async () => {
      try {
        out = await c.call(fun, args, { timeout_ms: 2000, ...(options.target_cluster === undefined ? {} : { target_cluster: options.target_cluster }) });
        return options.accept === undefined || options.accept(out);
      } catch {
        return false;
      }
    },
    { timeoutMs: 20_000, description },
  );
  return out;
}
