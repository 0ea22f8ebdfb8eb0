import { MpregError } from "@mpreg/envelope";

/**
 * Versions and version constraints of registered functions.
 *
 * A version is `MAJOR[.MINOR[.PATCH]]` with an optional leading `v`; missing parts are zero
 * (`1` is 1.0.0, `v2.1` is 2.1.0). Parts are decimal integers without leading zeros (`0` is
 * fine, `01` is refused, as in semver) and at most `Number.MAX_SAFE_INTEGER - 1`.
 * Pre-release and build suffixes (`1.0.0-rc.1`, `+meta`) are refused: MPREG has none.
 *
 * A constraint is a comma-separated list of clauses, all of which must hold:
 * - `OP VERSION` with OP one of `>= <= > < == =`; no OP means `==`. `=` and `==` are the same.
 *   A partial version is padded with zeros first, so `<=1.2` means `<=1.2.0` and `==1` means
 *   exactly 1.0.0 (the PROTOCOL rule "`1` is 1.0.0" applied everywhere).
 * - `^V` (compatible): the leftmost non-zero part of V must not change (npm semantics):
 *   `^1.2.3` = `>=1.2.3, <2.0.0`; `^0.2.3` = `>=0.2.3, <0.3.0`; `^0.0.3` = `>=0.0.3, <0.0.4`.
 *   With a partial V, the missing parts are free: `^1.2` = `>=1.2.0, <2.0.0`,
 *   `^0.2` = `>=0.2.0, <0.3.0`, `^0.0` = `>=0.0.0, <0.1.0`, `^0` = `>=0.0.0, <1.0.0`.
 * - `~V` (patch-level): `~1.2.3` = `>=1.2.3, <1.3.0`; `~0.2.3` = `>=0.2.3, <0.3.0`;
 *   `~1.2` = `>=1.2.0, <1.3.0`; `~1` = `>=1.0.0, <2.0.0` (npm semantics, no 0.x special case).
 * - `*` always holds.
 * Whitespace around clauses and between OP and VERSION is ignored. An empty constraint, an
 * empty clause or anything else is refused with MpregError 1002 (INVALID_REQUEST).
 */

/** A parsed version. Plain data: safe to serialise and compare structurally. */
export interface Version {
  readonly major: number;
  readonly minor: number;
  readonly patch: number;
}

/** A comparison operator of a constraint clause (after `=` is normalised to `==`). */
export type ConstraintOp = ">=" | "<=" | ">" | "<" | "==";

/** One clause of a constraint, with `^`, `~` already expanded into ranges. */
export interface ConstraintClause {
  readonly op: ConstraintOp;
  readonly version: Version;
}

/**
 * A parsed constraint: the source text (trimmed) and its clauses, all of which must hold.
 * An empty `clauses` list (from `*`) always holds. Plain data: safe to serialise.
 */
export interface Constraint {
  readonly source: string;
  readonly clauses: readonly ConstraintClause[];
}

/** The largest accepted version part (so that `^`/`~` upper bounds stay exact integers). */
export const MAX_VERSION_PART = Number.MAX_SAFE_INTEGER - 1;

/** Longest version / constraint text accepted, so hostile input cannot cost much. */
const MAX_VERSION_TEXT = 64;
const MAX_CONSTRAINT_TEXT = 1024;

const VERSION_RE = /^v?(0|[1-9]\d*)(?:\.(0|[1-9]\d*)(?:\.(0|[1-9]\d*))?)?$/;

interface PartialVersion {
  readonly version: Version;
  /** How many parts were written: 1, 2 or 3 (drives `^` and `~` on partial versions). */
  readonly parts: 1 | 2 | 3;
}

function parsePart(text: string, input: string, path?: string): number {
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n > MAX_VERSION_PART) {
    throw MpregError.invalid(`version part too large in ${JSON.stringify(input)}`, path);
  }
  return n;
}

function parsePartial(s: string, path?: string): PartialVersion {
  if (typeof s !== "string") {
    throw MpregError.invalid(`version must be a string, got ${typeof s}`, path);
  }
  if (s.length > MAX_VERSION_TEXT) {
    throw MpregError.invalid(`version longer than ${MAX_VERSION_TEXT} characters`, path);
  }
  const m = VERSION_RE.exec(s);
  if (m === null) {
    throw MpregError.invalid(
      `malformed version ${JSON.stringify(s)}: expected MAJOR[.MINOR[.PATCH]] with an optional leading "v" ` +
        `(decimal parts, no leading zeros, no suffix)`,
      path,
    );
  }
  const [, ma, mi, pa] = m;
  const version: Version = {
    major: parsePart(ma as string, s, path),
    minor: mi === undefined ? 0 : parsePart(mi, s, path),
    patch: pa === undefined ? 0 : parsePart(pa, s, path),
  };
  const parts = pa !== undefined ? 3 : mi !== undefined ? 2 : 1;
  return { version, parts };
}

/**
 * Parses a version (`1`, `1.2`, `v1.2.3`, ...). Throws MpregError 1002 with the reason when
 * the text is anything else. `path` (optional) is copied into the error details.
 */
export function parseVersion(s: string, path?: string): Version {
  return parsePartial(s, path).version;
}

/** True when `s` parses as a version. */
export function isValidVersion(s: string): boolean {
  try {
    parsePartial(s);
    return true;
  } catch {
    return false;
  }
}

/** Canonical text of a version: `MAJOR.MINOR.PATCH`, no `v`. `parseVersion(formatVersion(v))` equals `v`. */
export function formatVersion(v: Version): string {
  return `${v.major}.${v.minor}.${v.patch}`;
}

/** Total order on versions: negative when a < b, zero when equal, positive when a > b. */
export function compareVersions(a: Version, b: Version): number {
  if (a.major !== b.major) return a.major < b.major ? -1 : 1;
  if (a.minor !== b.minor) return a.minor < b.minor ? -1 : 1;
  if (a.patch !== b.patch) return a.patch < b.patch ? -1 : 1;
  return 0;
}

const v3 = (major: number, minor: number, patch: number): Version => ({ major, minor, patch });

/** `^V` as a pair of clauses (npm semantics, see the module comment). */
function caretRange(p: PartialVersion): ConstraintClause[] {
  const { major, minor, patch } = p.version;
  let upper: Version;
  if (major > 0 || p.parts === 1) upper = v3(major + 1, 0, 0);
  else if (minor > 0 || p.parts === 2) upper = v3(0, minor + 1, 0);
  else upper = v3(0, 0, patch + 1);
  return [
    { op: ">=", version: p.version },
    { op: "<", version: upper },
  ];
}

/** `~V` as a pair of clauses (npm semantics, see the module comment). */
function tildeRange(p: PartialVersion): ConstraintClause[] {
  const { major, minor } = p.version;
  const upper = p.parts === 1 ? v3(major + 1, 0, 0) : v3(major, minor + 1, 0);
  return [
    { op: ">=", version: p.version },
    { op: "<", version: upper },
  ];
}

const CLAUSE_RE = /^(>=|<=|==|>|<|=|\^|~)?\s*(.*)$/s;

/**
 * Parses a constraint such as `>=1.2, <2`, `^1.4`, `~0.3.1`, `==2.0.0`, `1.0` or `*`.
 * Throws MpregError 1002 (with the reason and `path` when given) when it is malformed.
 */
export function parseConstraint(s: string, path?: string): Constraint {
  if (typeof s !== "string") {
    throw MpregError.invalid(`version constraint must be a string, got ${typeof s}`, path);
  }
  if (s.length > MAX_CONSTRAINT_TEXT) {
    throw MpregError.invalid(`version constraint longer than ${MAX_CONSTRAINT_TEXT} characters`, path);
  }
  const source = s.trim();
  if (source === "") throw MpregError.invalid("empty version constraint", path);
  const clauses: ConstraintClause[] = [];
  for (const raw of source.split(",")) {
    const text = raw.trim();
    if (text === "") {
      throw MpregError.invalid(`empty clause in version constraint ${JSON.stringify(s)}`, path);
    }
    if (text === "*") continue;
    const m = CLAUSE_RE.exec(text) as RegExpExecArray;
    const op = m[1];
    const versionText = m[2] as string;
    let parsed: PartialVersion;
    try {
      parsed = parsePartial(versionText);
    } catch {
      throw MpregError.invalid(
        `malformed clause ${JSON.stringify(text)} in version constraint ${JSON.stringify(s)}: ` +
          `expected [OP]VERSION with OP one of >= <= > < == = ^ ~, or *`,
        path,
      );
    }
    if (op === "^") clauses.push(...caretRange(parsed));
    else if (op === "~") clauses.push(...tildeRange(parsed));
    else {
      const norm: ConstraintOp = op === undefined || op === "=" ? "==" : (op as ConstraintOp);
      clauses.push({ op: norm, version: parsed.version });
    }
  }
  return { source, clauses };
}

/** True when `s` parses as a constraint. */
export function isValidConstraint(s: string): boolean {
  try {
    parseConstraint(s);
    return true;
  } catch {
    return false;
  }
}

/** The constraint that every version satisfies (`*`). */
export const ANY_VERSION: Constraint = Object.freeze({ source: "*", clauses: Object.freeze([]) });

function clauseHolds(v: Version, c: ConstraintClause): boolean {
  const d = compareVersions(v, c.version);
  switch (c.op) {
    case ">=":
      return d >= 0;
    case "<=":
      return d <= 0;
    case ">":
      return d > 0;
    case "<":
      return d < 0;
    case "==":
      return d === 0;
  }
}

/** True when `v` satisfies every clause of `c`. */
export function satisfies(v: Version, c: Constraint): boolean {
  for (const clause of c.clauses) if (!clauseHolds(v, clause)) return false;
  return true;
}

/**
 * The highest of `versions` that satisfies `c`, or null when none does. Works on any objects
 * that extend Version (e.g. catalog entries with parsed versions), returning the object itself.
 */
export function maxSatisfying<V extends Version>(versions: Iterable<V>, c: Constraint): V | null {
  let best: V | null = null;
  for (const v of versions) {
    if (satisfies(v, c) && (best === null || compareVersions(v, best) > 0)) best = v;
  }
  return best;
}
