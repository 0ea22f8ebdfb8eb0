import { spawn, type ChildProcess } from "node:child_process";
import { ErrorCode, MpregError } from "@mpreg/envelope";

/** Options of {@link startNode}. */
export interface StartNodeOptions {
  /** Script run by `node` (the server CLI, e.g. `apps/server/dist/cli.js`). */
  bin: string;
  /**
   * Arguments after the script. Default `["start", "--port", "0"]`; when given, they replace the
   * default entirely (include `start --port 0` yourself).
   */
  args?: string[];
  /** Extra environment (merged over `process.env`). */
  env?: Record<string, string>;
  cwd?: string;
  /** Arguments for `node` itself, before the script (e.g. `["--enable-source-maps"]`). */
  nodeArgs?: string[];
  /** Deadline for the ready lines (default 15 000 ms). */
  readyTimeoutMs?: number;
  /** Also wait for the `MPREG_MONITORING_URL=` line. */
  waitForMonitoring?: boolean;
}

/** A running node process. */
export interface NodeProcess {
  /** The `ws://…` URL the node printed. */
  url: string;
  /** The monitoring URL, when requested and printed. */
  monitoringUrl: string | undefined;
  pid: number;
  process: ChildProcess;
  /** Everything the process wrote to stdout / stderr so far (bounded to the last 256 KiB each). */
  stdout(): string;
  stderr(): string;
  /** Exit code / signal once exited. */
  exited(): { code: number | null; signal: NodeJS.Signals | null } | undefined;
  /** Sends `signal` (default SIGTERM) and resolves when the process exited (SIGKILL after `graceMs`, default 10 s). */
  stop(signal?: NodeJS.Signals, graceMs?: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGKILL, resolves on exit. */
  kill(): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Output kept per stream for diagnostics; older output is discarded beyond this. */
const MAX_OUTPUT = 256 * 1024;

function appendBounded(buf: string, chunk: string): string {
  const s = buf + chunk;
  return s.length > MAX_OUTPUT ? s.slice(s.length - MAX_OUTPUT) : s;
}

/**
 * Spawns `node <bin> <args>` and resolves once it printed `MPREG_URL=ws://…` (and, if asked,
 * `MPREG_MONITORING_URL=…`) on stdout. Rejects with an MpregError TIMEOUT (stderr attached) if the
 * lines do not come within the deadline, or EXECUTION_FAILED if the process exits first.
 */
export function startNode(opts: StartNodeOptions): Promise<NodeProcess> {
  const args = [...(opts.nodeArgs ?? []), opts.bin, ...(opts.args ?? ["start", "--port", "0"])];
  const child = spawn(process.execPath, args, {
    cwd: opts.cwd,
    env: { ...process.env, ...opts.env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  let lineBuf = "";
  let url: string | undefined;
  let monitoringUrl: string | undefined;
  let exitInfo: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  const exitWaiters: ((e: { code: number | null; signal: NodeJS.Signals | null }) => void)[] = [];
  const readyTimeoutMs = opts.readyTimeoutMs ?? 15_000;

  child.stdout?.setEncoding("utf8");
  child.stderr?.setEncoding("utf8");
  child.stderr?.on("data", (c: string) => {
    err = appendBounded(err, c);
  });

  const whenExited = (): Promise<{ code: number | null; signal: NodeJS.Signals | null }> =>
    exitInfo ? Promise.resolve(exitInfo) : new Promise((resolve) => exitWaiters.push(resolve));

  const handle = (): NodeProcess => ({
    url: url as string,
    monitoringUrl,
    pid: child.pid as number,
    process: child,
    stdout: () => out,
    stderr: () => err,
    exited: () => exitInfo,
    stop: async (signal: NodeJS.Signals = "SIGTERM", graceMs = 10_000) => {
      if (exitInfo) return exitInfo;
      child.kill(signal);
      const timer = setTimeout(() => {
        if (!exitInfo) child.kill("SIGKILL");
      }, graceMs);
      try {
        return await whenExited();
      } finally {
        clearTimeout(timer);
      }
    },
    kill: async () => {
      if (exitInfo) return exitInfo;
      child.kill("SIGKILL");
      return whenExited();
    },
  });

  return new Promise<NodeProcess>((resolve, reject) => {
    let settled = false;
    const ready = (): boolean => url !== undefined && (!opts.waitForMonitoring || monitoringUrl !== undefined);
    const timer = setTimeout(() => {
      if (settled) return;
      settled = true;
      child.kill("SIGKILL");
      reject(
        new MpregError(ErrorCode.TIMEOUT, `node did not print its URL within ${readyTimeoutMs} ms`, {
          bin: opts.bin,
          stdout: out.slice(-4000),
          stderr: err.slice(-4000),
        }),
      );
    }, readyTimeoutMs);

    child.stdout?.on("data", (c: string) => {
      out = appendBounded(out, c);
      lineBuf += c;
      let nl: number;
      while ((nl = lineBuf.indexOf("\n")) >= 0) {
        const line = lineBuf.slice(0, nl).trim();
        lineBuf = lineBuf.slice(nl + 1);
        if (line.startsWith("MPREG_URL=") && url === undefined) url = line.slice("MPREG_URL=".length);
        if (line.startsWith("MPREG_MONITORING_URL=") && monitoringUrl === undefined) {
          monitoringUrl = line.slice("MPREG_MONITORING_URL=".length);
        }
      }
      if (lineBuf.length > MAX_OUTPUT) lineBuf = lineBuf.slice(-MAX_OUTPUT);
      if (!settled && ready()) {
        settled = true;
        clearTimeout(timer);
        resolve(handle());
      }
    });
    child.on("error", (e) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      reject(new MpregError(ErrorCode.EXECUTION_FAILED, `could not spawn node: ${e.message}`, { bin: opts.bin }));
    });
    child.on("exit", (code, signal) => {
      exitInfo = { code, signal };
      for (const w of exitWaiters.splice(0)) w(exitInfo);
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      reject(
        new MpregError(ErrorCode.EXECUTION_FAILED, `node exited (code ${code}, signal ${signal}) before printing its URL`, {
          bin: opts.bin,
          stdout: out.slice(-4000),
          stderr: err.slice(-4000),
        }),
      );
    });
  });
}
