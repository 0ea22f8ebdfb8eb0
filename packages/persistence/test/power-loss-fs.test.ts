/** Unit tests of the power-loss disk model itself (test/power-loss-fs.ts). */

import { describe, it } from "vitest";
import assert from "node:assert/strict";
import { PowerLossFs, seededRandom } from "./power-loss-fs.js";

const SEEDS = 200;
const text = (b: Buffer | undefined) => (b === undefined ? undefined : b.toString("utf8"));

/** Runs `setup` on a fresh disk per seed, cuts the power, and collects `probe` on the survivor. */
async function outcomes<T>(setup: (fs: PowerLossFs) => Promise<void>, probe: (fs: PowerLossFs) => T): Promise<T[]> {
  const out: T[] = [];
  for (let seed = 1; seed <= SEEDS; seed++) {
    const fs = new PowerLossFs({ random: seededRandom(seed), shortWriteRate: 0 });
    await fs.mkdir("/d", { recursive: true });
    await syncDir(fs, "/");
    await setup(fs);
    out.push(probe(fs.powerLoss(seededRandom(seed * 7919))));
  }
  return out;
}

async function syncDir(fs: PowerLossFs, dir: string): Promise<void> {
  const h = await fs.open(dir, "r");
  await h.sync();
  await h.close();
}

async function createSynced(fs: PowerLossFs, file: string, content: string): Promise<void> {
  const h = await fs.open(file, "w");
  await h.write(Buffer.from(content), 0, content.length, 0);
  await h.datasync();
  await h.close();
  await syncDir(fs, "/d");
}

describe("power-loss disk model", () => {
  it("reads see writes at once; a synced file in a synced directory always survives", async () => {
    const got = await outcomes(
      async (fs) => {
        await createSynced(fs, "/d/a", "hello");
        assert.equal(text(await fs.readFile("/d/a")), "hello");
      },
      (fs) => text(fs.peek("/d/a")),
    );
    assert.ok(got.every((g) => g === "hello"));
  });

  it("an unsynced write may be lost, kept whole, or kept as a prefix (torn), never anything else", async () => {
    const got = await outcomes(
      async (fs) => {
        await createSynced(fs, "/d/a", "abc");
        const h = await fs.open("/d/a", "r+");
        await h.write(Buffer.from("defgh"), 0, 5, 3);
        await h.write(Buffer.from("ijk"), 0, 3, 8);
      },
      (fs) => text(fs.peek("/d/a"))!,
    );
    const full = "abcdefghijk";
    assert.ok(got.every((g) => full.startsWith(g) && g.length >= 3), String(got));
    assert.ok(got.includes("abc"), "sometimes lost");
    assert.ok(got.includes(full), "sometimes kept whole");
    assert.ok(got.some((g) => g.length > 3 && g.length < full.length && g.length !== 8), "sometimes torn mid-write");
  });

  it("a synced file whose directory entry was not synced may vanish", async () => {
    const got = await outcomes(
      async (fs) => {
        const h = await fs.open("/d/new", "w");
        await h.write(Buffer.from("x"), 0, 1, 0);
        await h.datasync();
        await h.close();
      },
      (fs) => text(fs.peek("/d/new")),
    );
    assert.ok(got.includes(undefined), "sometimes the name is lost");
    assert.ok(got.includes("x"), "sometimes it survives");
    assert.ok(got.every((g) => g === undefined || g === "x"));
  });

  it("a created, unsynced file may survive by name with empty or partial content", async () => {
    const got = await outcomes(
      async (fs) => {
        await fs.writeFile("/d/f", "data");
        await syncDir(fs, "/d");
      },
      (fs) => text(fs.peek("/d/f")),
    );
    assert.ok(got.every((g) => g !== undefined && "data".startsWith(g)));
    assert.ok(got.includes("") && got.includes("data"));
  });

  it("a rename is atomic but durable only after the directory is synced", async () => {
    const unsynced = await outcomes(
      async (fs) => {
        await createSynced(fs, "/d/old", "1");
        await createSynced(fs, "/d/new.tmp", "2");
        await fs.rename("/d/new.tmp", "/d/old");
      },
      (fs) => [text(fs.peek("/d/old")), text(fs.peek("/d/new.tmp"))].join(","),
    );
    assert.ok(unsynced.every((g) => g === "1,2" || g === "2,"), String(unsynced));
    assert.ok(unsynced.includes("1,2") && unsynced.includes("2,"));
    const synced = await outcomes(
      async (fs) => {
        await createSynced(fs, "/d/old", "1");
        await createSynced(fs, "/d/new.tmp", "2");
        await fs.rename("/d/new.tmp", "/d/old");
        await syncDir(fs, "/d");
      },
      (fs) => [text(fs.peek("/d/old")), text(fs.peek("/d/new.tmp"))].join(","),
    );
    assert.ok(synced.every((g) => g === "2,"));
  });

  it("an unlink without a directory sync may be undone; unsynced directory operations persist as an in-order prefix", async () => {
    const got = await outcomes(
      async (fs) => {
        await createSynced(fs, "/d/a", "a");
        await fs.unlink("/d/a");
        await fs.rename("/d/a2", "/d/a").catch(() => undefined); // ENOENT: not an operation
        await fs.writeFile("/d/b", "");
      },
      (fs) => [fs.peek("/d/a") !== undefined, fs.peek("/d/b") !== undefined].join(","),
    );
    // b was created after a was unlinked: b surviving implies the unlink survived.
    assert.ok(!got.includes("true,true"));
    assert.ok(got.includes("true,false") && got.includes("false,false") && got.includes("false,true"));
  });

  it("in subset mode a later directory operation may survive an earlier lost one", async () => {
    const got: string[] = [];
    for (let seed = 1; seed <= SEEDS; seed++) {
      const fs = new PowerLossFs({ random: seededRandom(seed) });
      await fs.mkdir("/d", { recursive: true });
      await syncDir(fs, "/");
      await fs.writeFile("/d/a", "");
      await fs.writeFile("/d/b", "");
      const s = fs.powerLoss(seededRandom(seed), { dirOps: "subset" });
      got.push([s.exists("/d/a"), s.exists("/d/b")].join(","));
    }
    for (const want of ["false,false", "true,false", "false,true", "true,true"]) assert.ok(got.includes(want), want);
  });

  it("in pages mode a later page may survive an earlier one; pages are never torn", async () => {
    const seen = new Set<string>();
    for (let seed = 1; seed <= SEEDS; seed++) {
      const fs = new PowerLossFs({ random: seededRandom(seed), shortWriteRate: 0 });
      await fs.mkdir("/d", { recursive: true });
      await syncDir(fs, "/");
      await createSynced(fs, "/d/f", "");
      const h = await fs.open("/d/f", "r+");
      await h.write(Buffer.alloc(8192, 1), 0, 8192, 0);
      const s = fs.powerLoss(seededRandom(seed), { fileWrites: "pages" });
      const got = s.peek("/d/f")!;
      const pages = [0, 4096].map((at) => (at >= got.length ? "-" : got[at] === 1 ? "new" : "zero"));
      for (const at of [0, 4096]) if (at < got.length) assert.ok(got.subarray(at, at + 4096).every((b) => b === got[at]));
      seen.add(`${got.length}:${pages.join(",")}`);
    }
    assert.ok(seen.has("0:-,-") && seen.has("8192:new,new") && seen.has("8192:zero,new") && seen.has("8192:new,zero"), [...seen].join(" "));
  });

  it("a new directory survives only once its parent is synced", async () => {
    const mk = (syncParent: boolean) =>
      outcomes(
        async (fs) => {
          assert.equal(await fs.mkdir("/d/x/y", { recursive: true }), "/d/x");
          await syncDir(fs, "/d/x");
          if (syncParent) await syncDir(fs, "/d");
        },
        (fs) => [fs.exists("/d/x"), fs.exists("/d/x/y")].join(","),
      );
    const unsynced = await mk(false);
    assert.ok(unsynced.includes("false,false") && unsynced.includes("true,true"));
    assert.ok(unsynced.every((g) => g === "false,false" || g === "true,true"));
    assert.ok((await mk(true)).every((g) => g === "true,true"));
  });

  it("after the power cut the old disk refuses everything; crashAtOp cuts before the n-th operation", async () => {
    const fs = new PowerLossFs({ random: seededRandom(3) });
    await fs.mkdir("/d", { recursive: true });
    fs.powerLoss(seededRandom(1));
    await assert.rejects(fs.readdir("/"), { code: "EIO" });
    const cut = new PowerLossFs({ random: seededRandom(3), crashAtOp: 3 });
    await cut.mkdir("/d", { recursive: true });
    await cut.writeFile("/d/a", "a");
    await assert.rejects(cut.writeFile("/d/b", "b"), { code: "EIO" });
    assert.ok(cut.isCrashed);
    const after = cut.powerLoss(seededRandom(1));
    assert.equal(after.peek("/d/b"), undefined);
  });

  it("short writes happen and write only a prefix of what was asked", async () => {
    const fs = new PowerLossFs({ random: seededRandom(9), shortWriteRate: 1 });
    const h = await fs.open("/f", "w+");
    const { bytesWritten } = await h.write(Buffer.from("abcdef"), 0, 6, 0);
    assert.ok(bytesWritten >= 1 && bytesWritten < 6);
    assert.equal(text(await fs.readFile("/f")), "abcdef".slice(0, bytesWritten));
  });

  it("the same seed gives the same survivor", async () => {
    const run = async () => {
      const fs = new PowerLossFs({ random: seededRandom(5) });
      for (let i = 0; i < 20; i++) await fs.writeFile(`/f${i % 3}`, `v${i}`);
      const s = fs.powerLoss(seededRandom(11));
      return [0, 1, 2].map((i) => text(s.peek(`/f${i}`)));
    };
    assert.deepEqual(await run(), await run());
  });
});
