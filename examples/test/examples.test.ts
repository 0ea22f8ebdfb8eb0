/** Every example script runs against a fresh node and prints what its comments promise. */
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { startNode, type NodeProcess } from "@mpreg/testkit";
import { afterAll, beforeAll, expect, it } from "vitest";

const root = fileURLToPath(new URL("../../", import.meta.url));
let node: NodeProcess;

beforeAll(async () => {
  node = await startNode({
    bin: `${root}apps/server/dist/cli.js`,
    args: ["start", "--port", "0", "--functions", `${root}apps/server/dist/demo-functions.js`],
  });
});

afterAll(async () => {
  await node?.stop();
});

it("first-request.mjs runs as the README says (node examples/first-request.mjs, from the root)", () => {
  const r = spawnSync(process.execPath, ["examples/first-request.mjs"], {
    cwd: root,
    encoding: "utf8",
    env: { ...process.env, MPREG_URL: node.url },
    timeout: 20_000,
  });
  expect(r.stderr).toBe("");
  expect(r.status).toBe(0);
  expect(r.stdout).toBe("{ total: 60, shout: 'MPREG' }\nhello\n");
});
