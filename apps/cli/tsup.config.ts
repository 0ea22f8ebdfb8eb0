import { defineConfig } from "tsup";

export default defineConfig({
  // Every file in src/demos/ is a demo: the runner finds them in dist/demos/ by name.
  // topology-view has no Node imports: the dashboard bundles it for the browser.
  entry: ["src/index.ts", "src/demo.ts", "src/demos/*.ts", "src/topology-view.ts"],
  format: ["esm"],
  target: "node20",
  dts: { entry: ["src/index.ts", "src/topology-view.ts"], compilerOptions: { customConditions: [] } },
  tsconfig: "tsconfig.build.json",
  sourcemap: true,
  clean: true,
});
