import { defineConfig } from "tsup";

export default defineConfig({
  entry: ["src/cli.ts", "src/index.ts", "src/demo-functions.ts"],
  format: ["esm"],
  target: "node20",
  dts: { entry: ["src/index.ts"], compilerOptions: { customConditions: [] } },
  tsconfig: "tsconfig.build.json",
  sourcemap: true,
  clean: true,
});
