import { describe, expect, it } from "vitest";
import { COMMON_FLAGS, UsageError, flagsHelp, jsonArg, parseArgs, type FlagSpec } from "./args.js";

const spec: Record<string, FlagSpec> = {
  ...COMMON_FLAGS,
  count: { kind: "int", help: "n" },
  header: { kind: "list", help: "h" },
};

describe("parseArgs", () => {
  it("takes --flag value, --flag=value, bare booleans, repeats and positionals in order", () => {
    const a = parseArgs(["echo", "--json", "--count=3", "hi", "--header", "a=1", "--header", "b=2", "-5"], spec);
    expect(a.positionals).toEqual(["echo", "hi", "-5"]);
    expect(a.flags).toEqual({ json: true, count: 3, header: ["a=1", "b=2"] });
  });

  it("reads environment-backed flags when absent; the flag wins", () => {
    expect(parseArgs([], spec, { MPREG_URL: "ws://e:1" }).flags.url).toBe("ws://e:1");
    expect(parseArgs(["--url", "ws://f:2"], spec, { MPREG_URL: "ws://e:1" }).flags.url).toBe("ws://f:2");
    expect(parseArgs([], spec, { MPREG_TOKEN: "t" }).flags.token).toBe("t");
  });

  it("treats everything after -- as positionals, and -h as --help", () => {
    expect(parseArgs(["--", "--json"], spec).positionals).toEqual(["--json"]);
    expect(parseArgs(["-h"], spec).flags.help).toBe(true);
  });

  it.each([
    [["--jsn"], /unknown option --jsn; did you mean --json\?/],
    [["--count"], /--count needs a value/],
    [["--count", "x"], /expected a non-negative integer/],
    [["--json=maybe"], /takes no value/],
    [["--zzzzzz"], /^unknown option --zzzzzz$/],
  ])("refuses %j", (argv, message) => {
    expect(() => parseArgs(argv, spec)).toThrow(message);
    expect(() => parseArgs(argv, spec)).toThrow(UsageError);
  });

  it("lists flags with their environment variables and defaults", () => {
    const help = flagsHelp(COMMON_FLAGS);
    expect(help).toMatch(/--url ws:\/\/HOST:PORT\s+node to talk to \(env MPREG_URL, default ws:\/\/127\.0\.0\.1:6666\)/);
    expect(help).toMatch(/--json\s+machine output/);
  });
});

describe("jsonArg", () => {
  it("parses JSON, else keeps the string; strict mode refuses non-JSON", () => {
    expect(jsonArg("1")).toBe(1);
    expect(jsonArg('{"a":[1]}')).toEqual({ a: [1] });
    expect(jsonArg("hello")).toBe("hello");
    expect(() => jsonArg("{oops", false)).toThrow(/not valid JSON/);
  });
});
