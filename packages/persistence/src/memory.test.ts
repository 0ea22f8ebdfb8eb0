import { describe, it, expect } from "vitest";
import { MemoryBackend, MemoryVolume } from "./memory.js";
import { runComplianceSuite } from "./compliance.js";
import { storageErrorKind } from "./errors.js";

runComplianceSuite(
  "memory",
  () => {
    const volume = new MemoryVolume();
    return { open: async () => new MemoryBackend({ volume }) };
  },
  { describe, it },
);

describe("memory backend", () => {
  it("refuses a second open of the same volume", async () => {
    const volume = new MemoryVolume();
    const be = new MemoryBackend({ volume });
    expect(() => new MemoryBackend({ volume })).toThrow(/already open/);
    await be.close();
    await new MemoryBackend({ volume }).close();
  });

  it("rejects writes past maxBytes with a full error and keeps earlier data", async () => {
    const be = new MemoryBackend({ maxBytes: 2000 });
    const kv = be.kv("cap");
    let stored = 0;
    let err: unknown;
    for (let i = 0; i < 100; i++) {
      try {
        await kv.put(new Uint8Array([i]), new Uint8Array(100));
        stored++;
      } catch (e) {
        err = e;
        break;
      }
    }
    expect(storageErrorKind(err)).toBe("full");
    expect(stored).toBeGreaterThan(0);
    expect((await kv.range()).length).toBe(stored);
    // Freeing space makes room again.
    await kv.del(new Uint8Array([0]));
    await kv.put(new Uint8Array([200]), new Uint8Array(100));
    await be.close();
  });
});
