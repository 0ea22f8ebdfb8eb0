/**
 * PROTOCOL section 3 against a real node process, over raw frames in both encodings.
 */
import type { NodeProcess } from "@mpreg/testkit";
import { waitFor } from "@mpreg/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestNode } from "./node-harness.js";
import { RawClient } from "./raw-client.js";

let node: NodeProcess;
let seq = 0;
const u = () => `u-${++seq}`;

beforeAll(async () => {
  node = await startTestNode();
});
afterAll(async () => {
  await node?.stop();
});

for (const encoding of ["json", "msgpack"] as const) {
  describe(`rpc over ${encoding}`, () => {
    let c: RawClient;
    beforeAll(async () => {
      c = await RawClient.open(node.url, encoding);
    });
    afterAll(() => c.close());

    const rpc = (cmds: unknown[], extra: Record<string, unknown> = {}) =>
      c.request({ role: "rpc", u: u(), cmds, ...extra });

    it("answers with the same u and role rpc-response", async () => {
      const id = u();
      const r = await c.request({ role: "rpc", u: id, cmds: [{ name: "e", fun: "echo", args: ["hi"] }] });
      expect(r).toMatchObject({ role: "rpc-response", u: id, r: { e: "hi" }, error: null });
    });

    it("echos returns its arguments", async () => {
      const r = await rpc([{ name: "e", fun: "echos", args: [1, "two", { three: 3 }] }]);
      expect(r.r).toEqual({ e: [1, "two", { three: 3 }] });
    });

    it("returns the leaves, including sinks of earlier levels", async () => {
      const r = await rpc([
        { name: "a", fun: "add", args: [1, 2] },
        { name: "b", fun: "add", args: ["a", 10] },
        { name: "side", fun: "echo", args: ["independent leaf"] },
        { name: "c", fun: "add", args: ["b", "a"] },
      ]);
      expect(r.error).toBeNull();
      expect(r.r).toEqual({ side: "independent leaf", c: 16 });
    });

    it("return_all returns every command", async () => {
      const r = await rpc(
        [
          { name: "a", fun: "add", args: [1, 2] },
          { name: "b", fun: "add", args: ["a", 1] },
        ],
        { return_all: true },
      );
      expect(r.r).toEqual({ a: 3, b: 4 });
    });

    it("substitutes references inside kwargs, nested arrays and objects (never keys)", async () => {
      const r = await rpc([
        { name: "a", fun: "add", args: [2, 3] },
        { name: "k", fun: "kw", args: [["a", { x: "a" }]], kwargs: { total: "a", nested: { list: ["a"] }, a: "plain" } },
      ]);
      expect(r.r).toEqual({
        k: { args: [[5, { x: 5 }]], kwargs: { total: 5, nested: { list: [5] }, a: "plain" } },
      });
    });

    it("walks paths with object keys and array indexes; a missing step passes the string", async () => {
      const r = await rpc([
        { name: "n", fun: "nested" },
        { name: "p", fun: "echos", args: ["n.a.list.0.b", "n.a.list.1", "n.n", "n.a.missing", "n.a.list.9", "nx"] },
      ]);
      expect(r.r).toEqual({ p: ["deep", 7, 1, "n.a.missing", "n.a.list.9", "nx"] });
    });

    it("a string naming no command is plain data", async () => {
      const r = await rpc([{ name: "a", fun: "echo", args: ["b.c"] }]);
      expect(r.r).toEqual({ a: "b.c" });
    });

    it("refuses empty cmds, duplicate names, cycles and self references with 1002, running nothing", async () => {
      const before = (await rpc([{ name: "x", fun: "abort_count" }])).r.x;
      for (const cmds of [
        [],
        [
          { name: "a", fun: "echo", args: [1] },
          { name: "a", fun: "echo", args: [2] },
        ],
        [
          { name: "a", fun: "echo", args: ["b"] },
          { name: "b", fun: "echo", args: ["a"] },
        ],
        [{ name: "a", fun: "echo", args: ["a"] }],
        [
          { name: "h", fun: "hang" },
          { name: "a", fun: "echo", args: ["b.x"] },
          { name: "b", fun: "echo", args: ["c"] },
          { name: "c", fun: "echo", args: ["a.y"] },
        ],
      ]) {
        const r = await rpc(cmds, { timeout_ms: 500 });
        expect(r.r).toBeNull();
        expect(r.error.code).toBe(1002);
        expect(typeof r.error.message).toBe("string");
        expect(typeof r.error.details.reason).toBe("string");
      }
      // The `hang` in the cyclic request never started, so nothing was aborted.
      expect((await rpc([{ name: "x", fun: "abort_count" }])).r.x).toBe(before);
    });

    it("an unknown function is 1001 and nothing runs", async () => {
      const r = await rpc([
        { name: "h", fun: "hang" },
        { name: "x", fun: "no.such.function" },
      ]);
      expect(r.error).toMatchObject({ code: 1001, details: { command: "x", fun: "no.such.function" } });
    });

    it("picks the highest version that satisfies the constraint", async () => {
      const cases: [string | undefined, string | number][] = [
        [undefined, "v2.0"],
        ["*", "v2.0"],
        ["^1.0.0", "v1.5"],
        ["~1.0.0", "v1.0"],
        [">=1.2, <2", "v1.5"],
        ["==1.0.0", "v1.0"],
        ["1.5", "v1.5"],
        ["<1.0.0", 1001],
        ["^3", 1001],
        ["!!bad", 1002],
        [">= 1.x", 1002],
      ];
      for (const [constraint, expected] of cases) {
        const cmd: Record<string, unknown> = { name: "c", fun: "calc" };
        if (constraint !== undefined) cmd.version_constraint = constraint;
        const r = await rpc([cmd]);
        if (typeof expected === "string") expect(r.r, String(constraint)).toEqual({ c: expected });
        else expect(r.error?.code, String(constraint)).toBe(expected);
      }
    });

    it("matches function_id and resources (locs)", async () => {
      expect((await rpc([{ name: "i", fun: "ident", function_id: "ident-v1" }])).error).toBeNull();
      expect((await rpc([{ name: "i", fun: "ident", function_id: "other" }])).error.code).toBe(1001);
      expect((await rpc([{ name: "g", fun: "render", locs: ["gpu"] }])).r).toEqual({ g: "gpu render" });
      expect((await rpc([{ name: "g", fun: "render", locs: ["tpu"] }])).error.code).toBe(1001);
      expect((await rpc([{ name: "g", fun: "echo", args: [1], locs: ["gpu"] }])).error.code).toBe(1001);
      expect((await rpc([{ name: "g", fun: "echo", args: [1], target_cluster: "elsewhere" }])).error.code).toBe(1001);
    });

    it("passes the request id to handlers", async () => {
      const id = u();
      const r = await c.request({ role: "rpc", u: id, cmds: [{ name: "i", fun: "ident" }] });
      expect(r.r).toEqual({ i: id });
    });

    it("a handler that throws gives 1003 with its details", async () => {
      const r = await rpc([
        { name: "a", fun: "echo", args: [1] },
        { name: "b", fun: "boom", args: ["a"] },
      ]);
      expect(r.r).toBeNull();
      expect(r.error.code).toBe(1003);
      expect(r.error.details).toMatchObject({ command: "b", fun: "boom", error_type: "TypeError", message: "kaboom" });
      expect(typeof r.error.details.node_id).toBe("string");
    });

    it("a failure aborts what is still running", async () => {
      const before = (await rpc([{ name: "x", fun: "abort_count" }])).r.x as number;
      const r = await rpc([
        { name: "h", fun: "hang" },
        { name: "s", fun: "sleep", args: [20] },
        { name: "b", fun: "boom", args: ["s"] },
      ]);
      expect(r.error.code).toBe(1003);
      await waitFor(async () => ((await rpc([{ name: "x", fun: "abort_count" }])).r.x as number) === before + 1);
    });

    it("a handler that never returns times out with 1004 and its signal is aborted", async () => {
      const before = (await rpc([{ name: "x", fun: "abort_count" }])).r.x as number;
      const r = await rpc(
        [
          { name: "fast", fun: "echo", args: [1] },
          { name: "h", fun: "hang", args: ["fast"] },
          { name: "after", fun: "echo", args: ["h"] },
        ],
        { timeout_ms: 300 },
      );
      expect(r.r).toBeNull();
      expect(r.error.code).toBe(1004);
      expect(r.error.details.completed).toEqual(["fast"]);
      expect([...r.error.details.pending].sort()).toEqual(["after", "h"]);
      await waitFor(async () => ((await rpc([{ name: "x", fun: "abort_count" }])).r.x as number) === before + 1, {
        description: "the hanging handler's signal is aborted",
      });
    });

    it("reports intermediate results, the execution summary and progress pushes", async () => {
      const id = u();
      const r = await c.request({
        role: "rpc",
        u: id,
        cmds: [
          { name: "a", fun: "sleep", args: [5, 1] },
          { name: "b", fun: "add", args: ["a", 1] },
          { name: "c", fun: "add", args: ["b", 1] },
        ],
        return_intermediate_results: true,
        include_execution_summary: true,
        stream_progress: true,
      });
      expect(r.r).toEqual({ c: 3 });
      expect(r.intermediate_results.map((ir: any) => ir.level_index)).toEqual([0, 1, 2]);
      expect(r.intermediate_results[1]).toMatchObject({
        level_results: { b: 2 },
        accumulated_results: { a: 1, b: 2 },
        total_levels: 3,
        completed_levels: 2,
      });
      expect(r.execution_summary).toMatchObject({ total_levels: 3, commands_executed: 3, remote_commands: 0 });
      expect(r.execution_summary.level_execution_times).toHaveLength(3);
      const progress = c.pushes.filter((p) => p.role === "rpc-progress" && p.u === id);
      expect(progress.map((p: any) => p.intermediate_result.level_index)).toEqual([0, 1, 2]);
    });

    it("answers an undecodable or invalid frame with 1002 and keeps the connection", async () => {
      c.sendRaw(encoding === "json" ? "{not json" : new Uint8Array([0xc1, 0xff, 0x00]));
      expect((await c.reply(null)).error.code).toBe(1002);
      const id = u();
      c.send({ role: "rpc", u: id, cmds: "not an array" });
      expect((await c.reply(id)).error).toMatchObject({ code: 1002 });
      const id2 = u();
      c.send({ role: "no-such-role", u: id2 });
      expect((await c.reply(id2)).error.code).toBe(1002);
      const id3 = u();
      c.send({ role: "fabric-message", u: id3, payload: {} });
      expect((await c.reply(id3)).error.code).toBe(1002);
      expect((await rpc([{ name: "e", fun: "echo", args: ["still open"] }])).r).toEqual({ e: "still open" });
    });
  });
}

describe("limits", () => {
  it("past the in-flight bound of a connection a request gets 1007", async () => {
    const limited = await startTestNode(["--max-inflight-per-connection", "4"]);
    try {
      const c = await RawClient.open(limited.url, "msgpack");
      for (let i = 0; i < 4; i++) c.send({ role: "rpc", u: `h${i}`, cmds: [{ name: "h", fun: "hang" }], timeout_ms: 1000 });
      const r = await c.request({ role: "rpc", u: "over", cmds: [{ name: "e", fun: "echo", args: [1] }] });
      expect(r.error).toMatchObject({ code: 1007 });
      expect(typeof r.error.details.reason).toBe("string");
      // Once the hung requests time out, the connection is usable again.
      for (let i = 0; i < 4; i++) expect((await c.reply(`h${i}`)).error.code).toBe(1004);
      expect((await c.request({ role: "rpc", u: "ok", cmds: [{ name: "e", fun: "echo", args: [1] }] })).r).toEqual({ e: 1 });
      c.close();
    } finally {
      await limited.stop();
    }
  });
});
