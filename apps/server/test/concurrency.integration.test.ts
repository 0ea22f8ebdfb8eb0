/**
 * Requests on one connection run concurrently: 64 pipelined requests whose handlers each wait
 * until all 64 are running can only finish if the node runs them at the same time.
 */
import type { NodeProcess } from "@mpreg/testkit";
import { afterAll, beforeAll, expect, it } from "vitest";
import { startTestNode } from "./node-harness.js";
import { RawClient } from "./raw-client.js";

let node: NodeProcess;
beforeAll(async () => {
  node = await startTestNode();
});
afterAll(async () => {
  await node?.stop();
});

it("64 pipelined requests on one connection run concurrently", async () => {
  const c = await RawClient.open(node.url, "msgpack");
  for (let i = 0; i < 64; i++) {
    c.send({ role: "rpc", u: `b${i}`, cmds: [{ name: "w", fun: "barrier", args: ["k64", 64] }], timeout_ms: 10_000 });
  }
  for (let i = 0; i < 64; i++) expect((await c.reply(`b${i}`)).r).toEqual({ w: 64 });
  c.close();
});

it("independent commands of one request run concurrently", async () => {
  const c = await RawClient.open(node.url, "json");
  const cmds = Array.from({ length: 8 }, (_, i) => ({ name: `w${i}`, fun: "barrier", args: ["k8", 8] }));
  const r = await c.request({ role: "rpc", u: "one", cmds, timeout_ms: 10_000 });
  expect(Object.keys(r.r).length).toBe(8);
  c.close();
});
