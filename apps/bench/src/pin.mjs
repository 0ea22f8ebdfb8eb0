// CPU pinning for the 1-in-flight cases. With one request in flight, each round trip wakes the
// peer process; whether the kernel runs the two processes on one CPU or on two changes the
// round-trip time by 2-3× (a wakeup across CPUs from idle is slow), and it flips between runs,
// so unpinned 1-in-flight numbers compare scheduler luck rather than software. Pinning the
// server and the load generator of every system to the same CPU makes those cases measure the
// software path (the same way for every system); cases with many requests in flight run on
// all CPUs, where the two processes work in parallel.
import { execFileSync } from "node:child_process";
import os from "node:os";

/** True when `taskset` can pin processes here. */
export function pinningAvailable() {
  if (process.platform !== "linux" || os.cpus().length < 2) return false;
  try {
    execFileSync("taskset", ["-p", String(process.pid)], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

/** CPU list for a case: one CPU for 1 in flight, every CPU otherwise. */
export function cpusFor(inFlight) {
  return inFlight === 1 ? "0" : `0-${os.cpus().length - 1}`;
}

/** Pins every thread of each process to `cpus` (a taskset list such as "0" or "0-1"). */
export function pin(pids, cpus) {
  for (const pid of pids) execFileSync("taskset", ["-a", "-pc", cpus, String(pid)], { stdio: "ignore" });
}
