import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";

/** The marker that precedes a README's runnable example (a ```js block). */
export const EXAMPLE_MARKER = "<!-- readme-example:";

/** The code of the ```js block after the marker in `file`; throws when there is none. */
export function readmeExample(file: string): string {
  const text = readFileSync(file, "utf8");
  const at = text.indexOf(EXAMPLE_MARKER);
  if (at < 0) throw new Error(`${file} has no runnable example (a \`\`\`js block after "${EXAMPLE_MARKER} ... -->")`);
  const m = /^```js\n([\s\S]*?)^```$/m.exec(text.slice(at));
  if (m === null) throw new Error(`${file}: no \`\`\`js block after the example marker`);
  return m[1]!;
}

/** Runs `code` as an ES module from `cwd`; resolves with its exit code and output. */
export function runModule(code: string, cwd: string, env: Record<string, string> = {}, timeoutMs = 30_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ["--input-type=module", "-e", code], { cwd, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.on("exit", (c) => {
      clearTimeout(timer);
      resolve({ code: c, stdout, stderr });
    });
  });
}
