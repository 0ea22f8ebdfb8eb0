/** `mpreg bench`: a quick load generator (N calls, C in flight) with a summary of rate and latency. */
import { errorCodeName, isMpregError } from "@mpreg/envelope";
import { UsageError, jsonArg } from "../args.js";
import type { Command } from "../command.js";
import { progressBar, summarize } from "../latency-summary.js";

/** Most calls one run may make (the samples are kept to compute exact percentiles). */
const MAX_REQUESTS = 10_000_000;

export const benchCommand: Command = {
  name: "bench",
  summary: "a quick load generator: N calls of FUN with C in flight; rate and p50/p99",
  usage: "mpreg bench [FUN [ARG...]] [--requests N] [--concurrency C]",
  details: [
    "Calls FUN (default echo \"x\") N times over one connection, C at a time, and prints the rate",
    "and latency percentiles (progress on stderr when it is a terminal). Exits 1 if any call failed.",
    "Example: mpreg bench add 1 2 --requests 50000 --concurrency 64",
  ].join("\n"),
  flags: {
    requests: { kind: "int", help: "calls to make", default: "10000" },
    concurrency: { kind: "int", help: "calls in flight at once", default: "32", value: "C" },
  },
  async run(ctx) {
    const [fun = "echo", ...raw] = ctx.args.positionals;
    const args = ctx.args.positionals.length === 0 ? ["x"] : raw.map((a) => jsonArg(a));
    const total = (ctx.args.flags.requests as number | undefined) ?? 10_000;
    const concurrency = (ctx.args.flags.concurrency as number | undefined) ?? 32;
    if (total < 1 || total > MAX_REQUESTS) throw new UsageError(`--requests must be in [1, ${MAX_REQUESTS}]`);
    if (concurrency < 1 || concurrency > 4096) throw new UsageError("--concurrency must be in [1, 4096]");
    const client = await ctx.client();
    const samples = new Float64Array(total);
    const errors = new Map<number, number>();
    let firstError: string | undefined;
    let issued = 0;
    let done = 0;
    let stopped = false;
    const onAbort = () => (stopped = true);
    ctx.io.signal?.addEventListener("abort", onAbort, { once: true });
    const started = performance.now();
    const tty = ctx.io.stderr.isTTY === true && !ctx.json;
    const drawn = tty
      ? setInterval(() => ctx.io.stderr.write(`\r${progressBar(done, total, done / ((performance.now() - started) / 1000))}`), 100)
      : undefined;
    const worker = async () => {
      while (!stopped && issued < total) {
        issued++;
        const t0 = performance.now();
        try {
          await client.call(fun, args, { timeout_ms: ctx.timeoutMs });
        } catch (e) {
          const code = isMpregError(e) ? e.code : 1003;
          errors.set(code, (errors.get(code) ?? 0) + 1);
          firstError ??= `${code} ${errorCodeName(code)}: ${(e as Error).message}`;
          // A refused connection fails every call the same way: stop rather than spin.
          if (code === 1005) stopped = true;
        }
        samples[done++] = performance.now() - t0;
      }
    };
    try {
      await Promise.all(Array.from({ length: Math.min(concurrency, total) }, worker));
    } finally {
      if (drawn !== undefined) {
        clearInterval(drawn);
        ctx.io.stderr.write(`\r${progressBar(done, total, done / ((performance.now() - started) / 1000))}\n`);
      }
      ctx.io.signal?.removeEventListener("abort", onAbort);
    }
    const elapsedMs = performance.now() - started;
    const latency = summarize(samples.subarray(0, done));
    const failed = [...errors.values()].reduce((a, b) => a + b, 0);
    const round = (v: number) => Math.round(v * 1000) / 1000;
    const summary = {
      fun,
      requests: done,
      ok: done - failed,
      failed,
      errors: Object.fromEntries([...errors].map(([c, n]) => [String(c), n])),
      concurrency,
      duration_ms: round(elapsedMs),
      rate_per_s: round(done / (elapsedMs / 1000)),
      latency_ms: Object.fromEntries(Object.entries(latency).map(([k, v]) => [k, round(v)])),
    };
    ctx.print(summary, () =>
      [
        `${fun}: ${done} calls in ${(elapsedMs / 1000).toFixed(2)} s, ${Math.round(summary.rate_per_s).toLocaleString("en-US")} calls/s (${concurrency} in flight)`,
        `latency ms: p50 ${latency.p50.toFixed(3)}  p90 ${latency.p90.toFixed(3)}  p99 ${latency.p99.toFixed(3)}  max ${latency.max.toFixed(3)}`,
        failed > 0 ? `failed: ${failed} (first: ${firstError})` : "failed: 0",
      ].join("\n"),
    );
    return failed > 0 ? 1 : 0;
  },
};
