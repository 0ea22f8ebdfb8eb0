import { defineConfig, type Options } from "tsup";

type Plugin = NonNullable<Options["esbuildPlugins"]>[number];

/** The dashboard imports `@mpreg/client` from the bundle served beside it, not a second copy. */
const clientBeside: Plugin = {
  name: "mpreg-client-beside",
  setup(build) {
    build.onResolve({ filter: /^@mpreg\/client$/ }, () => ({ path: "./mpreg-client.js", external: true }));
  },
};

const browser = {
  outDir: "dist/browser",
  format: ["esm"] as const,
  platform: "browser" as const,
  target: "es2022",
  // Bundle everything: the browser gets no node_modules.
  noExternal: [/.*/],
  minify: true,
  splitting: false,
  dts: false,
  clean: false,
  tsconfig: "tsconfig.build.json",
};

export default defineConfig([
  {
    // The part a node runs: serves the page and the bundles.
    entry: ["src/index.ts"],
    format: ["esm"],
    target: "node20",
    dts: { entry: ["src/index.ts"], compilerOptions: { customConditions: [] } },
    tsconfig: "tsconfig.build.json",
    sourcemap: true,
    // dist/browser/ belongs to the builds below, which run at the same time.
    clean: ["!browser/**"],
  },
  { ...browser, entry: { "mpreg-client": "src/browser-client.ts" } },
  { ...browser, entry: { dashboard: "src/dashboard-app.ts" }, esbuildPlugins: [clientBeside] },
]);
