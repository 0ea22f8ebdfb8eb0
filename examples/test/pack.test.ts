/**
 * The packages as a user gets them: `pnpm pack` tarballs of @mpreg/client and @mpreg/raft (and
 * the @mpreg packages they depend on), installed with npm into a scratch project outside the
 * workspace (in the OS temp directory) from those local tarballs only (npm fetches just the
 * third-party dependencies, from its cache when it has them; optional ones, better-sqlite3, are
 * left out), then the README examples of both run there.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { startNode, type NodeProcess } from "@mpreg/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readmeExample, runModule } from "./readme-example.js";

const root = fileURLToPath(new URL("../../", import.meta.url));
/** What the two examples need, @mpreg dependencies included. */
const PACKED = ["envelope", "transport", "persistence", "raft", "client"] as const;

interface PackageJson {
  name: string;
  main?: string;
  types?: string;
  exports?: Record<string, string | Record<string, unknown>>;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
}

/** Every file path named in an exports value (conditions nested or not). */
function exportTargets(v: unknown): string[] {
  if (typeof v === "string") return [v];
  if (v !== null && typeof v === "object") return Object.values(v).flatMap(exportTargets);
  return [];
}

let dir: string;
let node: NodeProcess | undefined;
const tarballs = new Map<string, string>();

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "mpreg-pack-"));
  mkdirSync(join(dir, "tarballs"));
  for (const p of PACKED) {
    const out = execFileSync("pnpm", ["pack", "--pack-destination", join(dir, "tarballs")], { cwd: `${root}packages/${p}`, encoding: "utf8" });
    const file = out.trim().split("\n").pop()!.trim();
    tarballs.set(`@mpreg/${p}`, file);
  }
}, 60_000);

afterAll(async () => {
  await node?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("packed packages", () => {
  it("have no workspace: ranges, and main/types/exports point at files inside the tarball", () => {
    for (const [name, file] of tarballs) {
      const listing = execFileSync("tar", ["-tzf", file], { encoding: "utf8" }).split("\n").map((l) => l.replace(/^package\//, ""));
      const pkg = JSON.parse(execFileSync("tar", ["-xzOf", file, "package/package.json"], { encoding: "utf8" })) as PackageJson;
      expect(pkg.name).toBe(name);
      for (const deps of [pkg.dependencies, pkg.optionalDependencies, pkg.peerDependencies]) {
        for (const [dep, range] of Object.entries(deps ?? {})) expect(range, `${name} → ${dep}`).not.toMatch(/^workspace:/);
      }
      expect(listing, `${name} README`).toContain("README.md");
      // Every target exists, the mpreg-source ones (src/*.ts) included: a consumer that turns that
      // condition on gets sources, not a missing file.
      const targets = [pkg.main, pkg.types, ...exportTargets(pkg.exports)].filter((t): t is string => t !== undefined);
      expect(targets.length).toBeGreaterThan(2);
      for (const t of targets) expect(listing, `${name}: ${t}`).toContain(t.replace(/^\.\//, ""));
      expect(exportTargets(pkg.exports).some((t) => t.startsWith("./dist/") && t.endsWith(".js")), name).toBe(true);
    }
  });

  it("install outside the workspace with npm, and their README examples run there", async () => {
    const app = join(dir, "app");
    mkdirSync(app);
    const spec = (name: string) => `file:${tarballs.get(name)!}`;
    // Direct: what the examples import. Overrides: the @mpreg dependencies of those come from
    // the tarballs too, never from a registry.
    writeFileSync(
      join(app, "package.json"),
      JSON.stringify({
        name: "scratch",
        private: true,
        type: "module",
        dependencies: { "@mpreg/client": spec("@mpreg/client"), "@mpreg/raft": spec("@mpreg/raft"), "@mpreg/persistence": spec("@mpreg/persistence") },
        overrides: Object.fromEntries([...tarballs.keys()].map((n) => [n, spec(n)])),
      }),
    );
    const npm = spawnSync("npm", ["install", "--no-audit", "--no-fund", "--prefer-offline", "--omit=optional", "--ignore-scripts", "--loglevel=error"], {
      cwd: app,
      encoding: "utf8",
      timeout: 90_000,
    });
    expect(npm.stderr).toBe("");
    expect(npm.status).toBe(0);
    const lock = JSON.parse(readFileSync(join(app, "package-lock.json"), "utf8")) as { packages: Record<string, { resolved?: string }> };
    for (const name of tarballs.keys()) expect(lock.packages[`node_modules/${name}`]?.resolved, name).toMatch(/^file:/);

    const raft = await runModule(readmeExample(`${root}packages/raft/README.md`), app);
    expect([raft.code, raft.stderr]).toEqual([0, ""]);
    expect(raft.stdout).toMatch(/^count=2 greeting=\{"text":"hello"\}$/m);

    node = await startNode({ bin: `${root}apps/server/dist/cli.js`, args: ["start", "--port", "0", "--functions", `${root}apps/server/dist/demo-functions.js`] });
    const client = await runModule(readmeExample(`${root}packages/client/README.md`), app, { MPREG_URL: node.url });
    expect([client.code, client.stderr]).toEqual([0, ""]);
    expect(client.stdout).toBe("6\n{ total: 60 }\ngreetings.en hello\n1001\n");
  }, 120_000);
});
