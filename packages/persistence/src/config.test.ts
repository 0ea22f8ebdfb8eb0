import { describe, it, expect, afterAll } from "vitest";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { openBackend, parseStorageConfig } from "./config.js";
import { storageErrorKind } from "./errors.js";

const root = await fs.mkdtemp(path.join(os.tmpdir(), "mpreg-config-"));
afterAll(() => fs.rm(root, { recursive: true, force: true }));

async function configError(c: unknown): Promise<string> {
  try {
    await (await openBackend(c)).close();
  } catch (e) {
    expect(storageErrorKind(e)).toBe("config");
    return (e as Error).message;
  }
  throw new Error("expected a config error");
}

describe("storage config", () => {
  it("opens each backend", async () => {
    for (const backend of ["memory", "file", "sqlite"] as const) {
      const be = await openBackend({ backend, dir: path.join(root, backend), fsync: "always" });
      expect(be.kind).toBe(backend);
      await be.kv("x").put(new Uint8Array([1]), new Uint8Array([2]));
      await be.close();
    }
  });

  it("explains bad fields", async () => {
    expect(await configError({ backend: "redis" })).toMatch(/\/backend: must be "memory", "file" or "sqlite"/);
    expect(await configError({ backend: "file", dir: root, fsync: "sometimes" })).toMatch(/\/fsync: must be "always", "batch" or "none"/);
    expect(await configError({ backend: "file" })).toMatch(/dir is required for the file backend/);
    expect(await configError({ backend: "sqlite" })).toMatch(/dir is required for the sqlite backend/);
    expect(await configError({ backend: "memory", colour: "red" })).toMatch(/unknown field/);
    expect(await configError({ backend: "file", dir: root, batchDelayMs: -1 })).toMatch(/\/batchDelayMs/);
    expect(await configError(null)).toMatch(/invalid storage config/);
    expect(() => parseStorageConfig({ backend: "memory" })).not.toThrow();
  });

  it("reports a missing directory when creation is off, and a directory that is a file", async () => {
    const missing = path.join(root, "nope", "deeper");
    expect(await configError({ backend: "file", dir: missing, createDir: false })).toMatch(/does not exist/);
    expect(await configError({ backend: "sqlite", dir: missing, createDir: false })).toMatch(/does not exist/);
    const file = path.join(root, "plain-file");
    await fs.writeFile(file, "x");
    expect(await configError({ backend: "file", dir: file })).toMatch(/is not a directory/);
    expect(await configError({ backend: "sqlite", dir: file })).toMatch(/is not a directory/);
    expect(await configError({ backend: "file", dir: path.join(file, "sub") })).toMatch(/cannot (create|access)/);
    // Created when missing by default.
    await (await openBackend({ backend: "file", dir: missing })).close();
    expect((await fs.stat(missing)).isDirectory()).toBe(true);
  });

  it("reports an unwritable directory", async (ctx) => {
    // Root ignores permission bits, so chmod cannot make a directory unwritable for it.
    ctx.skip(process.getuid?.() === 0, "running as root: permission bits do not deny root, so an unwritable directory cannot be made");
    const ro = path.join(root, "read-only");
    await fs.mkdir(ro);
    await fs.chmod(ro, 0o500);
    try {
      expect(await configError({ backend: "file", dir: ro })).toMatch(/not writable/);
      expect(await configError({ backend: "sqlite", dir: ro })).toMatch(/not writable/);
    } finally {
      await fs.chmod(ro, 0o700);
    }
  });
});
