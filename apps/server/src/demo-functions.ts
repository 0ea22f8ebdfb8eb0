/**
 * The demo functions `pnpm start` loads: small, composable, and handy for a first
 * multi-command request (see the README).
 */
import type { FunctionModuleNode } from "./function-module.js";

export default function demo(node: FunctionModuleNode): void {
  node.register("add", ({ args }) => (args as number[]).reduce((a, b) => a + Number(b), 0), {
    description: "Sum of the numeric arguments",
  });
  node.register("multiply", ({ args }) => (args as number[]).reduce((a, b) => a * Number(b), 1), {
    description: "Product of the numeric arguments",
  });
  node.register("upper", ({ args }) => String(args[0] ?? "").toUpperCase(), {
    description: "Upper-cases its first argument",
  });
  node.register(
    "sleep",
    ({ args, signal }) =>
      new Promise((resolve, reject) => {
        const ms = Math.min(Number(args[0] ?? 0), 60_000);
        const t = setTimeout(() => resolve(ms), ms);
        signal.addEventListener("abort", () => {
          clearTimeout(t);
          reject(new Error("aborted"));
        });
      }),
    { description: "Waits args[0] ms (at most 60 s), then returns it; honours cancellation" },
  );
  node.register(
    "profile",
    ({ args }) => ({ user: String(args[0] ?? "anonymous"), tags: ["demo", "mpreg"], score: 42 }),
    { description: "A nested object to try reference paths such as profile.tags.0" },
  );
}
