/** A node embedded in this process with `startNode`: in-process functions, a client, a clean stop. */
import { MpregClient } from "@mpreg/client";
import { describe, expect, it } from "vitest";
import { ConfigError, startNode } from "../src/index.js";

describe("startNode (an embedded node)", () => {
  it("serves functions registered in setup, over a real socket, and stops", async () => {
    const node = await startNode({ port: 0, name: "embedded", setup: (n) => n.register("greet", ({ args }: { args: unknown[] }) => `hello ${String(args[0])}`) });
    expect(node.listenUrl).toMatch(/^ws:\/\/127\.0\.0\.1:\d+$/);
    const client = await MpregClient.connect(node.listenUrl, { reconnect: false });
    try {
      expect(await client.call("greet", ["ada"])).toBe("hello ada");
      const map = (await client.call("cluster_map")) as { nodes: { node_id: string }[] };
      expect(map.nodes.map((n) => n.node_id)).toEqual(["embedded"]);
    } finally {
      await client.close();
      await node.stop();
    }
  });

  it("refuses an unknown or invalid option with a ConfigError naming it", async () => {
    await expect(startNode({ port: 0, prot: 1 } as never)).rejects.toThrow(ConfigError);
    await expect(startNode({ port: 0, prot: 1 } as never)).rejects.toThrow(/prot/);
    await expect(startNode({ port: -1 })).rejects.toThrow(/port/);
  });
});
