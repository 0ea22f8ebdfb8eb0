import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ConfigError, DEFAULT_CONFIG, configEnvName, parseFlags, resolveConfig } from "./config.js";

function configFile(content: unknown): string {
  const dir = mkdtempSync(join(tmpdir(), "mpreg-config-"));
  const path = join(dir, "mpreg.json");
  writeFileSync(path, typeof content === "string" ? content : JSON.stringify(content));
  return path;
}

describe("configuration", () => {
  it("uses the defaults when nothing is given", () => {
    expect(resolveConfig([], {})).toEqual(DEFAULT_CONFIG);
  });

  it("flags override the file, which overrides the environment", () => {
    const file = configFile({ port: 7000, region: "file-region", clusterId: "file-cluster" });
    const env = { MPREG_PORT: "8000", MPREG_REGION: "env-region", MPREG_CLUSTER_ID: "env-cluster", MPREG_HOST: "0.0.0.0" };
    const c = resolveConfig(["--config", file, "--port", "0", "--cluster-id", "flag-cluster"], env);
    expect(c.port).toBe(0);
    expect(c.clusterId).toBe("flag-cluster");
    expect(c.region).toBe("file-region");
    expect(c.host).toBe("0.0.0.0");
  });

  it("takes the config file from MPREG_CONFIG too", () => {
    const file = configFile({ name: "from-file" });
    expect(resolveConfig([], { MPREG_CONFIG: file }).name).toBe("from-file");
  });

  it("repeats --functions and splits lists on commas; paths become absolute", () => {
    const f = parseFlags(["--functions", "a.js", "--functions=b.js,c.js", "--resources", "gpu, cpu", "--peers", "ws://x:1,ws://y:2"]);
    expect(f.options.functions?.map((p) => p.split("/").pop())).toEqual(["a.js", "b.js", "c.js"]);
    expect(f.options.functions?.every((p) => p.startsWith("/"))).toBe(true);
    expect(f.options.resources).toEqual(["gpu", "cpu"]);
    expect(f.options.peers).toEqual(["ws://x:1", "ws://y:2"]);
  });

  it("resolves the file's relative paths against the file's directory", () => {
    const file = configFile({ functions: ["./fns.js"], dataDir: "data" });
    const c = resolveConfig(["--config", file], {});
    const dir = file.slice(0, file.lastIndexOf("/"));
    expect(c.functions).toEqual([`${dir}/fns.js`]);
    expect(c.dataDir).toBe(`${dir}/data`);
  });

  it("names environment variables after the options", () => {
    expect(configEnvName("clusterId")).toBe("MPREG_CLUSTER_ID");
    expect(configEnvName("monitoringPort")).toBe("MPREG_MONITORING_PORT");
  });

  it.each([
    [["--port", "abc"], {}, /integer/],
    [["--port", "70000"], {}, /port/],
    [["--nope", "1"], {}, /unknown option --nope/],
    [["--port"], {}, /needs a value/],
    [["stray"], {}, /unexpected argument/],
    [["--peers", "http://x"], {}, /peers/],
    [[], { MPREG_PORT: "-1" }, /MPREG_PORT/],
    [["--raft-join", "maybe"], {}, /--raft-join: expected true or false/],
    [["--raft-fsync", "never"], {}, /raftFsync/],
    [["--raft-group", "kv"], {}, /raftMembers .* or raftJoin/],
  ])("refuses %j %j with a clear error", (argv, env, message) => {
    expect(() => resolveConfig(argv as string[], env as NodeJS.ProcessEnv)).toThrow(message);
    expect(() => resolveConfig(argv as string[], env as NodeJS.ProcessEnv)).toThrow(ConfigError);
  });

  it("takes raftJoin from a flag, the environment or the file's raft object", () => {
    expect(resolveConfig(["--raft-group", "kv", "--raft-join", "true"], {}).raftJoin).toBe(true);
    expect(resolveConfig(["--raft-group", "kv"], { MPREG_RAFT_JOIN: "1" }).raftJoin).toBe(true);
    expect(resolveConfig(["--config", configFile({ raft: { group: "kv", join: true } })], {})).toMatchObject({ raftGroup: "kv", raftJoin: true });
    expect(resolveConfig([], {}).raftJoin).toBe(false);
  });

  it("refuses unreadable, non-JSON and unknown-key config files", () => {
    expect(() => resolveConfig(["--config", "/no/such/file.json"], {})).toThrow(/cannot read config file/);
    expect(() => resolveConfig(["--config", configFile("{oops")], {})).toThrow(/not valid JSON/);
    expect(() => resolveConfig(["--config", configFile([1])], {})).toThrow(/JSON object/);
    expect(() => resolveConfig(["--config", configFile({ prot: 1 })], {})).toThrow(/unknown option "prot"/);
  });
});
