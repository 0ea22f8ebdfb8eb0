// NATS for same-run comparisons: Debian's nats-server (installed when missing) on free ports.
import { execFileSync } from "node:child_process";
import { createServer } from "node:net";
import { startNode } from "./children.mjs";

/** Makes sure `nats-server` is on PATH: `apt-get install -y nats-server` when it is not. */
export function ensureNatsServer() {
  const has = () => {
    try {
      execFileSync("which", ["nats-server"], { stdio: "ignore" });
      return true;
    } catch {
      return false;
    }
  };
  if (has()) return;
  console.log("nats-server not found: apt-get install -y nats-server");
  try {
    execFileSync("apt-get", ["install", "-y", "nats-server"], { stdio: "inherit" });
  } catch {
    execFileSync("apt-get", ["update"], { stdio: "inherit" });
    execFileSync("apt-get", ["install", "-y", "nats-server"], { stdio: "inherit" });
  }
  if (!has()) throw new Error("nats-server is still missing after apt-get install");
}

/** A TCP port free at the time of asking, on 127.0.0.1. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** `nats-server --version`. */
export function natsVersion() {
  return execFileSync("nats-server", ["--version"], { encoding: "utf8" }).trim();
}

/**
 * Starts one `nats-server` on 127.0.0.1:`port` with `extraArgs` and waits for "Server is ready".
 * @returns {Promise<{ proc: ReturnType<typeof startNode>, url: string }>}
 */
export async function startNatsServer(label, port, extraArgs = []) {
  let ready;
  const isReady = new Promise((r) => (ready = r));
  const proc = startNode(label, ["-a", "127.0.0.1", "-p", String(port), ...extraArgs], {
    command: "nats-server",
    onErrLine: (l) => l.includes("Server is ready") && ready(),
  });
  let timer;
  const outcome = await Promise.race([
    isReady.then(() => "ready"),
    proc.exited.then(() => "exited"),
    new Promise((r) => (timer = setTimeout(() => r("timeout"), 15_000))),
  ]);
  clearTimeout(timer);
  if (outcome !== "ready") throw new Error(`${label} ${outcome} before "Server is ready"\n${proc.stderrTail()}`);
  return { proc, url: `nats://127.0.0.1:${port}` };
}
