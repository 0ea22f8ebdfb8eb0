import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll } from "vitest";

/**
 * Temporary directories for one test file: `tempDir()` makes a fresh one under the OS temp
 * directory (named with `prefix`), and every one made is removed after the file's tests.
 */
export function useTempDirs(prefix: string): () => Promise<string> {
  const roots: string[] = [];
  afterAll(async () => {
    for (const d of roots) await fs.rm(d, { recursive: true, force: true });
  });
  return async () => {
    const d = await fs.mkdtemp(path.join(os.tmpdir(), prefix));
    roots.push(d);
    return d;
  };
}
