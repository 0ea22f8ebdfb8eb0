/**
 * What a demo gets: nodes started as real `mpreg start` processes on free ports, clients,
 * polling with a deadline, and printing. Everything it starts is stopped when the demo ends,
 * however it ends.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { MpregClient } from "@mpreg/client";

/** A node process a demo started. */
export interface DemoNode {
  name: string;
  url: string;
  pid: number;
  /** SIGTERM (graceful), resolves on exit. */
  stop(): Promise<void>;
  /** SIGKILL (a crash), resolves on exit. */
  kill(): Promise<void>;
}

/** The toolbox passed to a demo's `run`. */
export interface DemoKit {
  /** Starts `mpreg start --port 0 --name NAME ...args` and resolves once it listens. */
  startNode(name: string, args?: string[]): Promise<DemoNode>;
  /** A client of `node` (closed when the demo ends). */
  connect(node: DemoNode): Promise<MpregClient>;
  /** Polls `probe` until it returns a value other than undefined/null/false (deadline 20 s). */
  waitFor<T>(description: string, probe: () => Promise<T | undefined | null | false> | T | undefined | null | false, timeoutMs?: number): Promise<T>;
  /** Prints a step of the story. */
  say(text: string): void;
  /** Path of the demo function module of `pnpm start` (add, multiply, upper, sleep, profile). */
  readonly demoFunctions: string;
}

/** One demo: a file in src/demos/ whose default export is this. */
export interface Demo {
  /** One line for `pnpm demo --list`. */
  description: string;
  run(kit: DemoKit): Promise<void>;
}

/** The repository's root, found from this package's location (works from src and from dist). */
function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const pkg = join(dir, "package.json");
    if (existsSync(pkg) && (JSON.parse(readFileSync(pkg, "utf8")) as { name?: string }).name === "@mpreg/cli") return join(dir, "..", "..");
    dir = dirname(dir);
  }
  throw new Error("cannot find the @mpreg/cli package directory");
}

/** The `mpreg` bin (override with MPREG_CLI). */
export function mpregBin(): string {
  return process.env.MPREG_CLI ?? join(repoRoot(), "apps", "server", "dist", "cli.js");
}

/** Runs `demo` with a fresh kit; stops every node and client it made, whatever happens. */
export async function runDemo(demo: Demo, out: (line: string) => void = (l) => process.stdout.write(`${l}\n`)): Promise<void> {
  const bin = mpregBin();
  if (!existsSync(bin)) throw new Error(`${bin} is missing: build first (pnpm --filter @mpreg/server... build)`);
  const children = new Set<ChildProcess>();
  const clients: MpregClient[] = [];
  const killAll = () => {
    for (const c of children) c.kill("SIGKILL");
  };
  process.once("exit", killAll);
  const kit: DemoKit = {
    demoFunctions: join(dirname(bin), "demo-functions.js"),
    say: out,
    startNode: (name, args = []) => spawnNode(bin, name, args, children),
    connect: async (node) => {
      const c = await MpregClient.connect(node.url, { reconnect: false });
      clients.push(c);
      return c;
    },
    waitFor: async (description, probe, timeoutMs = 20_000) => {
      const deadline = Date.now() + timeoutMs;
      let last: unknown;
      for (;;) {
        try {
          const v = await probe();
          if (v !== undefined && v !== null && v !== false) return v as never;
        } catch (e) {
          last = e;
        }
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${description}${last ? ` (last error: ${(last as Error).message})` : ""}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
  };
  try {
    await demo.run(kit);
  } finally {
    await Promise.all(clients.map((c) => c.close().catch(() => undefined)));
    await Promise.all(
      [...children].map(
        (c) =>
          new Promise<void>((resolve) => {
            if (c.exitCode !== null || c.signalCode !== null) return resolve();
            const t = setTimeout(() => c.kill("SIGKILL"), 5_000);
            c.once("exit", () => {
              clearTimeout(t);
              resolve();
            });
            c.kill("SIGTERM");
          }),
      ),
    );
    process.off("exit", killAll);
  }
}

function spawnNode(bin: string, name: string, args: string[], children: Set<ChildProcess>): Promise<DemoNode> {
  const child = spawn(process.execPath, [bin, "start", "--port", "0", "--name", name, ...args], { stdio: ["ignore", "pipe", "pipe"] });
  children.add(child);
  let stderr = "";
  child.stderr?.setEncoding("utf8").on("data", (d: string) => (stderr = (stderr + d).slice(-4000)));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  return new Promise<DemoNode>((resolve, reject) => {
    let buf = "";
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`node ${name} did not start within 15 s: ${stderr}`));
    }, 15_000);
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`node ${name} exited (code ${code}) before listening: ${stderr}`));
    });
    child.stdout?.setEncoding("utf8").on("data", (d: string) => {
      buf += d;
      const m = /^MPREG_URL=(\S+)$/m.exec(buf);
      if (m === null) return;
      clearTimeout(timer);
      child.stdout?.removeAllListeners("data");
      child.stdout?.resume();
      resolve({
        name,
        url: m[1]!,
        pid: child.pid!,
        stop: async () => {
          child.kill("SIGTERM");
          await exited;
        },
        kill: async () => {
          child.kill("SIGKILL");
          await exited;
        },
      });
    });
  });
}
