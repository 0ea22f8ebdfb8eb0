import { createServer } from "node:net";
import { describe, expect, it } from "vitest";
import { COMMANDS, runCli } from "./run-cli.js";

/** Captures what a command writes. */
function fakeIo(env: NodeJS.ProcessEnv = {}) {
  let out = "";
  let err = "";
  return {
    io: { stdout: { write: (s: string) => (out += s) }, stderr: { write: (s: string) => (err += s) }, env },
    out: () => out,
    err: () => err,
  };
}

/** A port nothing listens on (bound, then released). */
async function closedPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", () => r()));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

describe("runCli without a node", () => {
  it("lists every command in the global help", async () => {
    const f = fakeIo();
    expect(await runCli(["--help"], f.io)).toBe(0);
    for (const c of ["start", "config", ...COMMANDS.map((c) => c.name)]) expect(f.out()).toMatch(new RegExp(`^  ${c} `, "m"));
    expect(await runCli([], fakeIo().io)).toBe(2);
  });

  it("suggests the close command for an unknown one and exits 2", async () => {
    const f = fakeIo();
    expect(await runCli(["topolgy"], f.io)).toBe(2);
    expect(f.err()).toMatch(/unknown command "topolgy"; did you mean "topology"\?/);
  });

  it.each(COMMANDS.map((c) => c.name))("%s --help prints its usage and the common flags", async (name) => {
    const f = fakeIo();
    expect(await runCli([name, "--help"], f.io)).toBe(0);
    expect(f.out()).toMatch(new RegExp(`^usage: mpreg ${name}`));
    expect(f.out()).toMatch(/--url ws:\/\/HOST:PORT/);
    expect(f.out()).toMatch(/--json/);
  });

  it("exits 2 with the usage on a usage mistake, naming the close flag", async () => {
    const f = fakeIo();
    expect(await runCli(["call", "echo", "--jsno"], f.io)).toBe(2);
    expect(f.err()).toMatch(/did you mean --json\?/);
    expect(f.err()).toMatch(/usage: mpreg call/);
    const g = fakeIo();
    expect(await runCli(["call"], g.io)).toBe(2);
    const h = fakeIo();
    expect(await runCli(["peers", "--url", "http://x"], h.io)).toBe(2);
    expect(h.err()).toMatch(/ws:\/\//);
  });

  it("an unreachable node is error 1005 with a hint (exit 1), or a JSON error with --json", async () => {
    const url = `ws://127.0.0.1:${await closedPort()}`;
    const f = fakeIo({ MPREG_URL: url });
    expect(await runCli(["call", "echo", "1"], f.io)).toBe(1);
    expect(f.err()).toMatch(/^error 1005 UNREACHABLE: cannot connect to ws:\/\/127\.0\.0\.1:\d+/);
    expect(f.err()).toMatch(/is a node running there\?/);
    const g = fakeIo();
    expect(await runCli(["health", "--url", url, "--json"], g.io)).toBe(1);
    expect(JSON.parse(g.out())).toMatchObject({ error: { code: 1005, name: "UNREACHABLE" } });
  });
});
