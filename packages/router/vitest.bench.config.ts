import { defineConfig } from "vitest/config";
import { sharedConfig } from "../../vitest.shared.ts";

/** `pnpm bench`: runs bench/*.bench.ts as measurement scripts that print tables. */
export default defineConfig({
  ...sharedConfig,
  test: { ...sharedConfig.test, include: ["bench/**/*.bench.ts"], testTimeout: 600_000 },
});
