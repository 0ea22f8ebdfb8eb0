/**
 * Executor hot path: what one request costs on top of the handler itself.
 * Run: `pnpm --filter @mpreg/rpc bench` (vitest bench prints ops/s and mean per request).
 */
import { bench, describe } from "vitest";
import { Executor, FunctionRegistry, createLocalLocator } from "../src/index.js";

const reg = new FunctionRegistry();
reg.register("echo", ({ args }) => args[0]);
reg.register("aecho", async ({ args }) => args[0]);
reg.register("add", ({ args }) => (args[0] as number) + (args[1] as number));
const ex = new Executor({ registry: reg, locate: createLocalLocator(reg), nodeId: "bench" });

const single = [{ name: "echo", fun: "echo", args: ["hello"] }];
const singleAsync = [{ name: "echo", fun: "aecho", args: ["hello"] }];
const chain10 = Array.from({ length: 10 }, (_, i) => ({ name: `s${i}`, fun: "add", args: [i === 0 ? 1 : `s${i - 1}`, 1] }));
const wide100 = [
  ...Array.from({ length: 99 }, (_, i) => ({ name: `w${i}`, fun: "echo", args: [i] })),
  { name: "all", fun: "echo", args: [Array.from({ length: 99 }, (_, i) => `w${i}`)] },
];

describe("executor", () => {
  bench("1 command, sync echo", async () => {
    await ex.execute({ request_id: "r", cmds: single });
  });
  bench("1 command, async echo", async () => {
    await ex.execute({ request_id: "r", cmds: singleAsync });
  });
  bench("chain of 10 (sync add)", async () => {
    await ex.execute({ request_id: "r", cmds: chain10 });
  });
  bench("fan-in 100 (99 echo + 1 consumer)", async () => {
    await ex.execute({ request_id: "r", cmds: wide100 });
  });
  bench("chain of 10 with intermediate results + summary", async () => {
    await ex.execute({ request_id: "r", cmds: chain10, return_intermediate_results: true, include_execution_summary: true });
  });
});
