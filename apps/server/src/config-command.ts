/** `mpreg config check FILE` and `mpreg config print`: the node's own schema, without starting it. */
import { stringify as toYaml } from "yaml";
import { ConfigError, checkConfigFile, redactConfig, resolveConfig } from "./config.js";

/** Where the command writes, and the environment it reads (injected for tests). */
export interface ConfigCommandIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  env: NodeJS.ProcessEnv;
}

const USAGE = `usage: mpreg config check FILE [--json]   validate a config file (JSON or YAML); exit 0 when valid, 2 when not
       mpreg config print [start options] [--json]
                                           the effective configuration after file, environment and flags
                                           (YAML, secrets redacted; mpreg start --help lists the options)`;

/** Runs `mpreg config ...`; resolves to the exit code. */
export function configCommand(argv: readonly string[], io: ConfigCommandIo): number {
  const [sub, ...rest] = argv;
  const json = rest.includes("--json");
  const args = rest.filter((a) => a !== "--json");
  if (sub === undefined || sub === "--help" || sub === "-h" || args.includes("--help") || args.includes("-h")) {
    io.stdout(`${USAGE}\n`);
    return sub === undefined ? 2 : 0;
  }
  try {
    if (sub === "check") {
      const [file, extra] = args;
      if (file === undefined || extra !== undefined) throw new ConfigError("config check takes one FILE");
      checkConfigFile(file);
      io.stdout(json ? `${JSON.stringify({ ok: true, file })}\n` : `${file}: ok\n`);
      return 0;
    }
    if (sub === "print") {
      const config = redactConfig(resolveConfig(args, io.env, (m) => io.stderr(`mpreg: warning: ${m}\n`)));
      io.stdout(json ? `${JSON.stringify(config, null, 2)}\n` : toYaml(config));
      return 0;
    }
    io.stderr(`mpreg: unknown config command "${sub}"\n${USAGE}\n`);
    return 2;
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    if (json) io.stdout(`${JSON.stringify({ ok: false, error: e.message })}\n`);
    else io.stderr(`mpreg: ${e.message}\n`);
    return 2;
  }
}
