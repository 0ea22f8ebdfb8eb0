import { defineConfig } from "vitest/config";

/**
 * Shared vitest settings. The `mpreg-source` condition makes workspace packages resolve to
 * their TypeScript sources, so unit tests never need a build of their dependencies.
 */
export const sharedConfig = defineConfig({
  resolve: { conditions: ["mpreg-source"] },
  ssr: { resolve: { conditions: ["mpreg-source"] } },
  test: {
    include: ["src/**/*.test.ts", "test/**/*.test.ts"],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: "forks",
  },
});
