import { isMpregError } from "@mpreg/envelope";
import { waitFor } from "@mpreg/testkit";
import { describe, expect, it } from "vitest";
import { LocalCluster } from "./local-cluster.js";

/**
 * A member that fell far behind catches up from a large snapshot, sent in chunks, while the
 * group keeps serving writes. 16 MiB by default; `MPREG_LONG=1` (or `MPREG_CATCHUP_MIB=<n>`)
 * uses 100 MiB. Messages cross a setImmediate hop and ticks are real timers (10 ms).
 */
const MIB = Number(process.env.MPREG_CATCHUP_MIB ?? (process.env.MPREG_LONG === "1" ? 100 : 16));
const VALUE = 512 * 1024;
const CHUNK = 1024 * 1024;

describe("catch-up from a large snapshot", () => {
  it(`a member far behind installs a ${MIB} MiB snapshot in chunks while writes go on`, { timeout: 300_000 }, async () => {
    const c = new LocalCluster(3, {
      autoDeliver: true,
      tickMs: 10,
      electionTick: 30, // 300-600 ms: a slow machine's pauses (snapshotting MiBs) do not depose the leader
      snapshotEvery: 50,
      requestTimeoutTicks: 1000,
      maxSnapshotChunkBytes: CHUNK,
    });
    await c.start();
    const leader = await waitFor(() => c.leader() ?? null, { timeoutMs: 20_000, description: "a leader" });
    const lagger = c.ids.find((id) => id !== leader.node.id)!;
    c.isolate(lagger);
    const value = new Uint8Array(VALUE);
    const n = Math.ceil((MIB * 1024 * 1024) / VALUE);
    for (let i = 0; i < n; i++) {
      value[0] = i & 0xff;
      await leader.put(`big/${String(i).padStart(5, "0")}`, value);
    }
    // More small writes than snapshotEvery: the leader compacted past everything the lagger has.
    for (let i = 0; i < 60; i++) await leader.put(`small/${i}`, i);
    expect(leader.node.status().snapshotIndex).toBeGreaterThan(n);
    const sentBefore = c.snapChunks.get(lagger) ?? 0;

    // Writes keep going while the lagger catches up.
    let stop = false;
    let during = 0;
    let failed = 0;
    const writer = (async () => {
      for (let i = 0; !stop; i++) {
        try {
          await leader.put(`during/${i % 100}`, i);
          during++;
        } catch (e) {
          if (!isMpregError(e)) throw e;
          failed++;
        }
      }
    })();
    const t0 = performance.now();
    c.heal();
    const lag = c.nodes.get(lagger)!;
    await waitFor(() => lag.node.status().snapshotIndex > n, { timeoutMs: 240_000, intervalMs: 20, description: "the lagger installs the snapshot" });
    const installMs = performance.now() - t0;
    await waitFor(() => lag.node.status().applied >= leader.node.status().commit - 5, { timeoutMs: 60_000, intervalMs: 20, description: "the lagger follows the log again" });
    stop = true;
    await writer;
    const ms = performance.now() - t0;

    expect((c.snapChunks.get(lagger) ?? 0) - sentBefore).toBeGreaterThanOrEqual(MIB); // in chunks...
    expect(c.maxSnapChunkBytes).toBeLessThanOrEqual(CHUNK); // ...each under the limit
    expect(lag.state.revision).toBeGreaterThan(n);
    expect(lag.state.get(`big/${String(n - 1).padStart(5, "0")}`)?.value.length).toBeGreaterThanOrEqual(VALUE);
    expect(lag.state.byteSize).toBeGreaterThanOrEqual(MIB * 1024 * 1024);
    expect(during).toBeGreaterThan(0); // the group kept serving writes
    expect(failed).toBe(0);
    console.log(
      `catch-up: ${MIB} MiB snapshot installed after ${installMs.toFixed(0)} ms, following the log after ${ms.toFixed(0)} ms; ${during} writes meanwhile`,
    );
    for (const kv of c.nodes.values()) await kv?.stop();
  });
});
