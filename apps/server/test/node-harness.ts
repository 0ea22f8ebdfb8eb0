import { fileURLToPath } from "node:url";
import { startNode, type NodeProcess } from "@mpreg/testkit";

export const CLI = fileURLToPath(new URL("../dist/cli.js", import.meta.url));
export const TEST_FUNCTIONS = fileURLToPath(new URL("./fixtures/test-functions.mjs", import.meta.url));

/** Starts `mpreg start --port 0 --functions <test module> ...extra` as a child process. */
export function startTestNode(extra: string[] = [], env: Record<string, string> = {}): Promise<NodeProcess> {
  return startNode({
    bin: CLI,
    args: ["start", "--port", "0", "--functions", TEST_FUNCTIONS, ...extra],
    env,
  });
}
