import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { generateRouteKey } from "@mpreg/router";
import { ConfigError, DEFAULT_CONFIG, configEnvName, configFromObject, configUsage, federationOptions, parseFlags, redactConfig, resolveConfig, signingKeyFile } from "./config.js";

function configFile(content: unknown, name = "mpreg.json"): string {
  const dir = mkdtempSync(join(tmpdir(), "mpreg-config-"));
  const path = join(dir, name);
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
    expect(() => resolveConfig(["--config", configFile([1])], {})).toThrow(/must hold an object of options/);
    expect(() => resolveConfig(["--config", configFile({ prot: 1 })], {})).toThrow(/unknown option "prot"/);
  });

  it("reads YAML files (comments, nested raft section); an empty file is all defaults", () => {
    const yaml = configFile(
      ["# a node of the demo cluster", "port: 7001", "clusterId: east   # the cluster", "peers:", "  - ws://127.0.0.1:7002", "raft:", "  group: kv", "  members: [a, b, c]", ""].join("\n"),
      "node.yaml",
    );
    expect(resolveConfig(["--config", yaml], {})).toMatchObject({ port: 7001, clusterId: "east", peers: ["ws://127.0.0.1:7002"], raftGroup: "kv", raftMembers: ["a", "b", "c"] });
    expect(resolveConfig(["--config", configFile("region: eu\n", "n.yml")], {}).region).toBe("eu");
    expect(resolveConfig(["--config", configFile("# nothing yet\n", "empty.yaml")], {})).toEqual(DEFAULT_CONFIG);
    expect(() => resolveConfig(["--config", configFile("port: [1\n", "bad.yaml")], {})).toThrow(/is not valid YAML/);
    expect(() => resolveConfig(["--config", configFile("port: 1\nport: 2\n", "dup.yaml")], {})).toThrow(/not valid YAML.*unique/s);
  });

  it("refuses unknown keys with their path and a close match", () => {
    expect(() => resolveConfig(["--config", configFile("prot: 1\n", "a.yaml")], {})).toThrow('unknown option "prot"; did you mean "port"?');
    expect(() => resolveConfig(["--config", configFile({ raft: { gruop: "kv" } })], {})).toThrow('unknown option "raft.gruop"; did you mean "raft.group"?');
    expect(() => resolveConfig(["--config", configFile({ zzzzzzzz: 1 })], {})).toThrow(/unknown option "zzzzzzzz"$/);
    expect(() => configFromObject({ clusterid: "x" } as never)).toThrow('unknown configuration key "clusterid"; did you mean "clusterId"?');
  });

  it("suggests the close flag for an unknown one, and names flag and variable of a bad value", () => {
    expect(() => parseFlags(["--prot", "1"])).toThrow(/unknown option --prot; did you mean --port\?/);
    expect(() => parseFlags(["--monitoring-prot", "1"])).toThrow(/did you mean --monitoring-port\?/);
    expect(() => resolveConfig(["--port", "70000"], {})).toThrow(/invalid configuration for port \(--port, MPREG_PORT\): must be/);
  });

  it("takes a boolean flag alone as true", () => {
    expect(parseFlags(["--raft-join"]).options.raftJoin).toBe(true);
    expect(parseFlags(["--raft-join", "--port", "1"]).options).toEqual({ raftJoin: true, port: 1 });
    expect(parseFlags(["--raft-join", "false"]).options.raftJoin).toBe(false);
  });

  it("warns about an unknown MPREG_* variable with a suggestion, and about nothing else", () => {
    const warnings: string[] = [];
    resolveConfig([], { MPREG_PROT: "1", MPREG_PORT: "0", MPREG_URL: "ws://x", MPREG_DEBUG: "*", HOME: "/root" }, (m) => warnings.push(m));
    expect(warnings).toEqual(["unknown environment variable MPREG_PROT is ignored; did you mean MPREG_PORT?"]);
  });

  it("lists every flag in the usage, with the real defaults and variables", () => {
    const usage = configUsage();
    for (const key of Object.keys(DEFAULT_CONFIG).concat(["name", "dataDir", "monitoringPort", "clusterSecret", "raftGroup"])) {
      expect(usage).toContain(`--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)} `);
      expect(usage).toContain(configEnvName(key));
    }
    expect(usage).toMatch(/--port N .*default 6666/);
    expect(usage).toMatch(/--raft-tick-ms N .*default 50/);
    expect(usage).toMatch(/--monitoring-host S .*default 127\.0\.0\.1/);
  });

  it("binds the monitoring API to loopback by default, whatever the client host", () => {
    expect(resolveConfig(["--host", "0.0.0.0"], {}).monitoringHost).toBe("127.0.0.1");
    expect(resolveConfig(["--monitoring-host", "0.0.0.0"], {}).monitoringHost).toBe("0.0.0.0");
  });

  it("federation: flags add links to the file's section; a bad key is refused with its path", () => {
    const file = configFile({ federation: { import: [{ neighbour: "b", functions: { deny: ["admin."] } }], refreshIntervalMs: 500 } });
    const c = resolveConfig(["--config", file, "--federation-mode", "explicit", "--federation-links", "b=ws://127.0.0.1:7001,c=ws://127.0.0.1:7002"], {});
    const fed = federationOptions(c)!;
    expect(fed.mode).toBe("explicit");
    expect(fed.config.links).toEqual([
      { clusterId: "b", url: "ws://127.0.0.1:7001" },
      { clusterId: "c", url: "ws://127.0.0.1:7002" },
    ]);
    expect(fed.config.refreshIntervalMs).toBe(500);
    expect(federationOptions(resolveConfig([], {}))).toBeUndefined();
    const bad = configFile({ federationMode: "explicit", federation: { export: [{ neighbour: "b" }, { neighbour: "c", metricAdd: -1 }] } });
    expect(() => resolveConfig(["--config", bad], {})).toThrow(/federation\.export\[1\]\.metricAdd/);
    expect(() => resolveConfig(["--config", configFile({ federation: { modes: "x" } })], {})).toThrow(/at federation\.modes/);
    expect(() => resolveConfig(["--federation-mode", "open"], {})).toThrow(ConfigError);
    // Links without a mode that accepts other clusters are a mistake, not silently ignored.
    expect(() => resolveConfig(["--federation-links", "b=ws://x:1"], {})).toThrow(/federationMode explicit or permissive/);
    expect(() => resolveConfig(["--federation-links", "ws://x:1"], {})).toThrow(ConfigError);
  });

  it("federation.keys.signingKeyFile: read relative to the config file; not with signingKey; a missing file names the key", () => {
    const k = generateRouteKey();
    const file = configFile({ federationMode: "explicit", federation: { keys: { signingKeyFile: "a.key" } } });
    writeFileSync(join(dirname(file), "a.key"), `${k.seed}\n`);
    const c = resolveConfig(["--config", file], {});
    expect(signingKeyFile(c)).toBe(join(dirname(file), "a.key"));
    expect(federationOptions(c)!.config.keys?.signingKey).toBe(k.seed);
    const both = configFile({ federationMode: "explicit", federation: { keys: { signingKeyFile: "/x", signingKey: k.seed } } });
    expect(() => resolveConfig(["--config", both], {})).toThrow(/signingKey or signingKeyFile, not both/);
    const missing = configFile({ federationMode: "explicit", federation: { keys: { signingKeyFile: "nope.key" } } });
    expect(() => resolveConfig(["--config", missing], {})).toThrow(/federation\.keys\.signingKeyFile: cannot read/);
  });

  it("redacts the federation signing key for printing", () => {
    const seed = generateRouteKey().seed;
    const c = configFromObject({ federation: { keys: { signingKey: seed } } });
    expect(JSON.stringify(redactConfig(c))).not.toContain(seed);
  });

  it("redacts secrets for printing", () => {
    const c = resolveConfig(["--auth-tokens", "abc,def:client", "--cluster-secret", "s"], {});
    expect(redactConfig(c)).toMatchObject({ authTokens: ["***", "***:client"], clusterSecret: "***" });
  });

  it("precedence holds for any combination of sources (property)", () => {
    fc.assert(
      fc.property(fc.option(fc.integer({ min: 1, max: 9999 })), fc.option(fc.integer({ min: 1, max: 9999 })), fc.option(fc.integer({ min: 1, max: 9999 })), (flag, file, env) => {
        const argv = flag === null ? [] : ["--port", String(flag)];
        if (file !== null) argv.push("--config", configFile({ port: file }));
        const c = resolveConfig(argv, env === null ? {} : { MPREG_PORT: String(env) });
        expect(c.port).toBe(flag ?? file ?? env ?? DEFAULT_CONFIG.port);
      }),
      { numRuns: 40 },
    );
  });
});
