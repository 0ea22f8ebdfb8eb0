import { defineConfig } from "vitest/config";
import { sharedConfig } from "../../vitest.shared.ts";

/** `pnpm bench`: runs bench/*.bench.ts as long-running measurement scripts that print tables. */
export default defineConfig({
  ...sharedConfig,
  test: { ...sharedConfig.test, include: ["bench/**/*.bench.ts"], testTimeout: 1_800_000 },
});
