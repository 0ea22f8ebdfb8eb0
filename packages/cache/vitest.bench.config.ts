import { defineConfig } from "vitest/config";
import { sharedConfig } from "../../vitest.shared.ts";

/** `pnpm bench`: the cache benchmark is a vitest file that measures and prints tables. */
export default defineConfig({
  ...sharedConfig,
  test: { ...sharedConfig.test, include: ["bench/**/*.bench.ts"], testTimeout: 600_000 },
});
