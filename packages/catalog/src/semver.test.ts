import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { isMpregError } from "@mpreg/envelope";
import {
  ANY_VERSION,
  compareVersions,
  formatVersion,
  isValidConstraint,
  isValidVersion,
  maxSatisfying,
  parseConstraint,
  parseVersion,
  satisfies,
  type Version,
} from "./semver.js";

const part = fc.integer({ min: 0, max: 12 });
const bigPart = fc.oneof(part, fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER - 1 }));
const versionArb = fc.record({ major: part, minor: part, patch: part });
const anyVersionArb = fc.record({ major: bigPart, minor: bigPart, patch: bigPart });

function expectInvalid(fn: () => unknown): void {
  try {
    fn();
  } catch (e) {
    expect(isMpregError(e)).toBe(true);
    expect((e as { code: number }).code).toBe(1002);
    expect(typeof (e as { details: { reason: unknown } }).details.reason).toBe("string");
    return;
  }
  throw new Error("expected an MpregError 1002");
}

const sat = (v: string, c: string) => satisfies(parseVersion(v), parseConstraint(c));

describe("parseVersion", () => {
  it("accepts MAJOR[.MINOR[.PATCH]] with optional v", () => {
    expect(parseVersion("1")).toEqual({ major: 1, minor: 0, patch: 0 });
    expect(parseVersion("1.2")).toEqual({ major: 1, minor: 2, patch: 0 });
    expect(parseVersion("1.2.3")).toEqual({ major: 1, minor: 2, patch: 3 });
    expect(parseVersion("v0.10.7")).toEqual({ major: 0, minor: 10, patch: 7 });
    expect(parseVersion("v4")).toEqual({ major: 4, minor: 0, patch: 0 });
  });

  it.each([
    "",
    "v",
    "1.",
    ".1",
    "1..2",
    "1.2.3.4",
    "01",
    "1.02",
    "1.2.3-rc.1",
    "1.2.3+meta",
    " 1.2.3",
    "1.2.3 ",
    "V1",
    "x",
    "1.x",
    "-1",
    "1e3",
    "99999999999999999999",
    "1".repeat(100),
  ])("refuses %j with 1002", (s) => {
    expectInvalid(() => parseVersion(s));
    expect(isValidVersion(s)).toBe(false);
  });

  it("refuses non-strings with 1002", () => {
    expectInvalid(() => parseVersion(42 as unknown as string));
  });

  it("parse after format is the identity", () => {
    fc.assert(fc.property(anyVersionArb, (v) => {
      expect(parseVersion(formatVersion(v))).toEqual(v);
    }));
  });

  it("format after parse is canonical (v prefix and missing parts normalised)", () => {
    fc.assert(
      fc.property(versionArb, fc.boolean(), fc.integer({ min: 1, max: 3 }), (v, prefix, parts) => {
        const nums = [v.major, v.minor, v.patch].slice(0, parts);
        const text = (prefix ? "v" : "") + nums.join(".");
        const expected = { major: v.major, minor: parts > 1 ? v.minor : 0, patch: parts > 2 ? v.patch : 0 };
        expect(parseVersion(text)).toEqual(expected);
      }),
    );
  });
});

describe("compareVersions is a total order", () => {
  it("antisymmetric, reflexive, consistent with equality", () => {
    fc.assert(
      fc.property(versionArb, versionArb, (a, b) => {
        expect(Math.sign(compareVersions(a, b))).toBe(-Math.sign(compareVersions(b, a)) || 0);
        expect(compareVersions(a, a)).toBe(0);
        expect(compareVersions(a, b) === 0).toBe(formatVersion(a) === formatVersion(b));
      }),
    );
  });

  it("transitive", () => {
    fc.assert(
      fc.property(versionArb, versionArb, versionArb, (a, b, c) => {
        if (compareVersions(a, b) <= 0 && compareVersions(b, c) <= 0) {
          expect(compareVersions(a, c)).toBeLessThanOrEqual(0);
        }
      }),
    );
  });

  it("is lexicographic on (major, minor, patch)", () => {
    fc.assert(
      fc.property(versionArb, versionArb, (a, b) => {
        const key = (v: Version) => [v.major, v.minor, v.patch];
        const [ka, kb] = [key(a), key(b)];
        let expected = 0;
        for (let i = 0; i < 3 && expected === 0; i++) expected = Math.sign(ka[i]! - kb[i]!);
        expect(Math.sign(compareVersions(a, b))).toBe(expected);
      }),
    );
  });
});

describe("parseConstraint / satisfies", () => {
  it("plain operators", () => {
    expect(sat("1.2.3", "1.2.3")).toBe(true);
    expect(sat("1.2.3", "==1.2.3")).toBe(true);
    expect(sat("1.2.3", "=1.2.3")).toBe(true);
    expect(sat("1.2.4", "1.2.3")).toBe(false);
    expect(sat("1.0.0", "1")).toBe(true);
    expect(sat("1.0.1", "==1")).toBe(false);
    expect(sat("2.0.0", ">=1.5")).toBe(true);
    expect(sat("1.4.9", ">=1.5")).toBe(false);
    expect(sat("1.5.0", ">1.5")).toBe(false);
    expect(sat("1.5.1", ">1.5")).toBe(true);
    expect(sat("1.2.1", "<=1.2")).toBe(false); // padded: <=1.2.0
    expect(sat("1.2.0", "<=1.2")).toBe(true);
    expect(sat("0.9.9", "<1")).toBe(true);
    expect(sat("1.0.0", "<1")).toBe(false);
  });

  it("comma means all clauses hold, whitespace is ignored", () => {
    expect(sat("1.5.0", ">= 1.2 , < 2")).toBe(true);
    expect(sat("2.0.0", ">=1.2,<2")).toBe(false);
    expect(sat("1.1.0", ">=1.2,<2")).toBe(false);
    expect(sat("1.5.0", "*, >=1")).toBe(true);
    expect(sat("1.5.0", "^1.2, ~1.5")).toBe(true);
    expect(sat("1.6.0", "^1.2, ~1.5")).toBe(false);
    expect(sat("1.2.3", " v1.2.3 ")).toBe(true);
  });

  it("caret follows npm, including 0.x", () => {
    const cases: Array<[string, string, boolean]> = [
      ["^1.2.3", "1.2.3", true],
      ["^1.2.3", "1.9.0", true],
      ["^1.2.3", "2.0.0", false],
      ["^1.2.3", "1.2.2", false],
      ["^0.2.3", "0.2.9", true],
      ["^0.2.3", "0.3.0", false],
      ["^0.0.3", "0.0.3", true],
      ["^0.0.3", "0.0.4", false],
      ["^1.2", "1.2.0", true],
      ["^1.2", "1.99.0", true],
      ["^0.2", "0.2.5", true],
      ["^0.2", "0.3.0", false],
      ["^0.0", "0.0.9", true],
      ["^0.0", "0.1.0", false],
      ["^0", "0.9.9", true],
      ["^0", "1.0.0", false],
      ["^v2", "2.5.0", true],
    ];
    for (const [c, v, expected] of cases) expect([c, v, sat(v, c)]).toEqual([c, v, expected]);
  });

  it("tilde follows npm", () => {
    const cases: Array<[string, string, boolean]> = [
      ["~1.2.3", "1.2.3", true],
      ["~1.2.3", "1.2.9", true],
      ["~1.2.3", "1.3.0", false],
      ["~1.2.3", "1.2.2", false],
      ["~0.2.3", "0.2.4", true],
      ["~0.2.3", "0.3.0", false],
      ["~1.2", "1.2.7", true],
      ["~1.2", "1.3.0", false],
      ["~1", "1.9.0", true],
      ["~1", "2.0.0", false],
      ["~0", "0.5.0", true],
      ["~0", "1.0.0", false],
    ];
    for (const [c, v, expected] of cases) expect([c, v, sat(v, c)]).toEqual([c, v, expected]);
  });

  it.each(["", " ", ",", "1,", ",1", "1,,2", ">=", ">>1", "=>1", "1 2", "^^1", "~>1", "^*", "**", "x", "1.2.3.4", ">= 1.0-beta", "^", "!=1"])(
    "refuses %j with 1002",
    (s) => {
      expectInvalid(() => parseConstraint(s));
      expect(isValidConstraint(s)).toBe(false);
    },
  );

  it("refuses oversized and non-string constraints", () => {
    expectInvalid(() => parseConstraint(">=1,".repeat(400) + "1"));
    expectInvalid(() => parseConstraint(undefined as unknown as string));
  });

  it("puts the path into error details", () => {
    try {
      parseConstraint("nope", "cmds[0].version_constraint");
      throw new Error("unreachable");
    } catch (e) {
      expect((e as { details: Record<string, unknown> }).details.path).toBe("cmds[0].version_constraint");
    }
  });

  it("* always holds", () => {
    fc.assert(fc.property(anyVersionArb, (v) => {
      expect(satisfies(v, parseConstraint("*"))).toBe(true);
    }));
    fc.assert(fc.property(anyVersionArb, (v) => {
      expect(satisfies(v, ANY_VERSION)).toBe(true);
    }));
  });

  it("^ equals the explicit npm range", () => {
    fc.assert(
      fc.property(versionArb, versionArb, (base, v) => {
        const { major: M, minor: m, patch: p } = base;
        const b = formatVersion(base);
        const upper = M > 0 ? `${M + 1}.0.0` : m > 0 ? `0.${m + 1}.0` : `0.0.${p + 1}`;
        expect(sat(formatVersion(v), `^${b}`)).toBe(sat(formatVersion(v), `>=${b}, <${upper}`));
        // partial forms
        expect(sat(formatVersion(v), `^${M}`)).toBe(sat(formatVersion(v), `>=${M}.0.0, <${M + 1}.0.0`));
        const upper2 = M > 0 ? `${M + 1}.0.0` : `0.${m + 1}.0`;
        expect(sat(formatVersion(v), `^${M}.${m}`)).toBe(sat(formatVersion(v), `>=${M}.${m}.0, <${upper2}`));
      }),
    );
  });

  it("~ equals the explicit npm range", () => {
    fc.assert(
      fc.property(versionArb, versionArb, (base, v) => {
        const { major: M, minor: m } = base;
        const b = formatVersion(base);
        const vs = formatVersion(v);
        expect(sat(vs, `~${b}`)).toBe(sat(vs, `>=${b}, <${M}.${m + 1}.0`));
        expect(sat(vs, `~${M}.${m}`)).toBe(sat(vs, `>=${M}.${m}.0, <${M}.${m + 1}.0`));
        expect(sat(vs, `~${M}`)).toBe(sat(vs, `>=${M}.0.0, <${M + 1}.0.0`));
      }),
    );
  });

  it("plain operators agree with compareVersions", () => {
    fc.assert(
      fc.property(versionArb, versionArb, (a, b) => {
        const d = compareVersions(a, b);
        const as = formatVersion(a);
        const bs = formatVersion(b);
        expect(sat(as, `>=${bs}`)).toBe(d >= 0);
        expect(sat(as, `<=${bs}`)).toBe(d <= 0);
        expect(sat(as, `>${bs}`)).toBe(d > 0);
        expect(sat(as, `<${bs}`)).toBe(d < 0);
        expect(sat(as, `==${bs}`)).toBe(d === 0);
        expect(sat(as, bs)).toBe(d === 0);
      }),
    );
  });

  it("a conjunction holds iff each clause holds", () => {
    const clause = fc
      .tuple(fc.constantFrom(">=", "<=", ">", "<", "==", "=", "", "^", "~"), versionArb)
      .map(([op, v]) => `${op}${formatVersion(v)}`);
    fc.assert(
      fc.property(fc.array(clause, { minLength: 1, maxLength: 4 }), versionArb, (clauses, v) => {
        const vs = formatVersion(v);
        expect(sat(vs, clauses.join(","))).toBe(clauses.every((c) => sat(vs, c)));
      }),
    );
  });

  it("constraints are plain serialisable data", () => {
    const c = parseConstraint("^1.2, >=1.3");
    expect(JSON.parse(JSON.stringify(c))).toEqual(c);
    expect(satisfies(parseVersion("1.4.0"), JSON.parse(JSON.stringify(c)))).toBe(true);
  });
});

describe("maxSatisfying", () => {
  it("finds the highest satisfying version, or null", () => {
    const vs = ["1.0.0", "1.2.0", "1.10.0", "2.0.0", "0.9.0"].map((s) => parseVersion(s));
    expect(maxSatisfying(vs, parseConstraint("^1"))).toEqual(parseVersion("1.10.0"));
    expect(maxSatisfying(vs, parseConstraint("*"))).toEqual(parseVersion("2.0.0"));
    expect(maxSatisfying(vs, parseConstraint(">3"))).toBeNull();
    expect(maxSatisfying([], ANY_VERSION)).toBeNull();
  });

  it("returns the original object (works on richer records)", () => {
    const a = { ...parseVersion("1.0.0"), id: "a" };
    const b = { ...parseVersion("1.1.0"), id: "b" };
    expect(maxSatisfying([a, b], parseConstraint("<2"))?.id).toBe("b");
  });

  it("agrees with filter + sort", () => {
    fc.assert(
      fc.property(fc.array(versionArb, { maxLength: 20 }), versionArb, fc.constantFrom("^", "~", ">=", "<"), (vs, base, op) => {
        const c = parseConstraint(`${op}${formatVersion(base)}`);
        const ok = vs.filter((v) => satisfies(v, c)).sort(compareVersions);
        const got = maxSatisfying(vs, c);
        if (ok.length === 0) expect(got).toBeNull();
        else expect(compareVersions(got!, ok[ok.length - 1]!)).toBe(0);
      }),
    );
  });
});
