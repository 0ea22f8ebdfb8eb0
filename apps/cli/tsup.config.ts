import { defineConfig } from "tsup";

export default defineConfig({
  // Every file in src/demos/ is a demo: the runner finds them in dist/demos/ by name.
  entry: ["src/index.ts", "src/demo.ts", "src/demos/*.ts"],
  format: ["esm"],
  target: "node20",
  dts: { entry: ["src/index.ts"], compilerOptions: { customConditions: [] } },
  tsconfig: "tsconfig.build.json",
  sourcemap: true,
  clean: true,
});
