import { readFileSync } from "node:fs";
import { expect, it } from "vitest";

/** The example in README.md is the test file next to this one, byte for byte, so it cannot rot. */
it("README.md shows exactly readme-example.test.ts", () => {
  const readme = readFileSync(new URL("../../README.md", import.meta.url), "utf8");
  const example = readFileSync(new URL("./readme-example.test.ts", import.meta.url), "utf8");
  const block = /<!-- readme-example\.test\.ts -->\n```ts\n([\s\S]*?)```\n/.exec(readme)?.[1];
  expect(block).toBe(example);
});
