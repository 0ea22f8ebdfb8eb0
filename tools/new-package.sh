#!/usr/bin/env bash
# Creates the files every workspace package shares: tools/new-package.sh <dir> <name> "<description>"
set -euo pipefail
dir=$1; name=$2; desc=$3
mkdir -p "$dir/src"
rel=$(realpath --relative-to="$dir" .)
[ -f "$dir/package.json" ] || cat > "$dir/package.json" <<JSON
{
  "name": "$name",
  "version": "0.1.0",
  "description": "$desc",
  "type": "module",
  "license": "MIT",
  "engines": { "node": ">=20" },
  "exports": {
    ".": {
      "mpreg-source": "./src/index.ts",
      "types": "./dist/index.d.ts",
      "import": "./dist/index.js"
    }
  },
  "main": "./dist/index.js",
  "types": "./dist/index.d.ts",
  "files": ["dist", "src"],
  "sideEffects": false,
  "scripts": {
    "build": "tsup",
    "typecheck": "tsc --noEmit -p tsconfig.json",
    "test": "vitest run --passWithNoTests"
  },
  "dependencies": {},
  "devDependencies": {}
}
JSON
cat > "$dir/tsconfig.json" <<JSON
{
  "extends": "$rel/tsconfig.base.json",
  "include": ["src", "test", "bench"]
}
JSON
cat > "$dir/tsconfig.build.json" <<JSON
{
  "extends": "$rel/tsconfig.build.base.json",
  "include": ["src"],
  "exclude": ["src/**/*.test.ts"]
}
JSON
[ -f "$dir/tsup.config.ts" ] || cat > "$dir/tsup.config.ts" <<'TS'
import { defineConfig } from "tsup";

export default defineConfig({
  entry: ["src/index.ts"],
  format: ["esm"],
  target: "node20",
  dts: { compilerOptions: { customConditions: [] } },
  tsconfig: "tsconfig.build.json",
  sourcemap: true,
  clean: true,
});
TS
[ -f "$dir/vitest.config.ts" ] || cat > "$dir/vitest.config.ts" <<TS
import { sharedConfig } from "$rel/vitest.shared.ts";

export default sharedConfig;
TS
