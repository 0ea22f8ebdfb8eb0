import { defineConfig } from "tsup";

export default defineConfig({
  // `testing` is the `@mpreg/router/testing` subpath (fast-check arbitraries and reference models).
  entry: { index: "src/index.ts", "testing/index": "src/testing/index.ts" },
  format: ["esm"],
  target: "node20",
  dts: { compilerOptions: { customConditions: [] } },
  tsconfig: "tsconfig.build.json",
  sourcemap: true,
  clean: true,
  // A peer dependency: the user's own fast-check instance, never a bundled copy.
  external: ["fast-check"],
});
