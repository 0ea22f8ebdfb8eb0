// Crash-test worker: plain JS on the built package. It runs a QueueService on a file backend,
// sends and receives+acks concurrently, and prints one line per answered send or ack *after*
// its promise resolved. The parent kills it with SIGKILL at a random moment and checks that
// every answered send is still there (or was acked) and that no acked message came back.
// Usage: node crash-child.mjs <dir> <module url>; it loads its modules, prints "loaded", then
// waits for one line "<round> <fsync>" on stdin before it opens the store (so the parent can
// check the previous round while this one loads). Standard input closing first: it exits.
const [dir, entry] = process.argv.slice(2);
const { QueueService } = await import(entry);
const { openBackend } = await import("@mpreg/persistence");
const say = (line) => process.stdout.write(line + "\n");
say("loaded");
const go = await new Promise((resolve) => {
  let buf = "";
  process.stdin.setEncoding("utf8").on("data", (d) => {
    buf += d;
    if (buf.includes("\n")) resolve(buf.split("\n")[0]);
  });
  process.stdin.on("end", () => process.exit(0));
});
const [roundArg, fsync] = go.split(" ");
const round = Number(roundArg);

const backend = await openBackend({ backend: "file", dir, fsync, compactBytes: 256 * 1024 });
const service = await QueueService.open({ backend });
// Long leases: nothing is redelivered within a round; leases left at the kill must come back after it.
await service.create("jobs", { visibility_timeout_ms: 600_000, max_receives: 1000 });
await service.create("ordered", { type: "fifo", visibility_timeout_ms: 600_000, max_receives: 1000 });
say("ready");

let sent = 0;
async function producer(p) {
  for (let n = 0; sent < 3000; n++) {
    const queue = n % 3 === 0 ? "ordered" : "jobs";
    const opts = queue === "ordered" ? { group_id: `g${n % 4}` } : n % 7 === 0 ? { delay_ms: 20 } : {};
    const r = await service.send(queue, { round, p, n, pad: "x".repeat(n % 5 * 40) }, opts);
    sent++;
    say(`sent ${r.message_id}`);
  }
}

async function consumer(c) {
  for (let n = 0; ; n++) {
    const queue = (n + c) % 3 === 0 ? "ordered" : "jobs";
    const got = await service.receive(queue, { max: 10, wait_ms: 50 }, `consumer${c}`);
    for (const [i, m] of got.entries()) {
      // Most are acked; some are nacked (visible again) and some left leased until the kill.
      if ((i + n) % 11 === 5) await service.nack(queue, m.receipt);
      else if ((i + n) % 13 === 7) continue;
      else {
        // An ack may be durable before it is answered: the parent allows only these to be gone.
        say(`acking ${m.message_id}`);
        await service.ack(queue, m.receipt);
        say(`acked ${m.message_id}`);
      }
    }
  }
}

await Promise.all([producer(0), producer(1), consumer(0), consumer(1), consumer(2)]);
