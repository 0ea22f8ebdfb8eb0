/**
 * The RPC dependency planner: turns the `cmds` of an rpc request into a dependency graph,
 * refuses what cannot run (error 1002), and precomputes where each reference sits so the
 * executor can substitute results without rescanning arguments. Pure: no I/O, no clock.
 *
 * Reference rule: a string anywhere inside `args` or `kwargs` (arrays and object VALUES,
 * never keys) that equals a command's `name`, or starts with `<name>.`. When several command
 * names match (names may contain dots, e.g. `a` and `a.b`), the LONGEST matching name wins:
 * `"a.b.c"` refers to command `a.b` with path `["c"]`, `"a.x"` to `a` with path `["x"]`.
 */
import { ErrorCode, MAX_COMMANDS_PER_REQUEST, MpregError } from "@mpreg/envelope";

/** Structural shape of one command of an rpc request (identical to envelope's `RpcCommand`). */
export interface PlanCommand {
  name: string;
  fun: string;
  args?: readonly unknown[] | undefined;
  kwargs?: Readonly<Record<string, unknown>> | undefined;
  locs?: readonly string[] | undefined;
  function_id?: string | undefined;
  version_constraint?: string | undefined;
  target_cluster?: string | undefined;
}

/** Most commands one request may hold; more is refused with 1002 (`reason: "too_many_commands"`). */
export const MAX_COMMANDS = MAX_COMMANDS_PER_REQUEST;
/** Deepest array/object nesting scanned inside args/kwargs; deeper is refused with 1002. */
export const MAX_NESTING_DEPTH = 64;

/** One reference found in a command's arguments. */
export interface ReferenceSite {
  /** Where the string sits: `"args"` or `"kwargs"` then keys / array indexes down to it. */
  readonly root: "args" | "kwargs";
  readonly path: readonly (string | number)[];
  /** Index of the referenced command. */
  readonly dep: number;
  /** Steps to walk inside the referenced command's result (empty: the whole result). */
  readonly steps: readonly string[];
  /** The string as written, passed unchanged when a step is missing. */
  readonly original: string;
}

/** One command with its place in the graph. */
export interface PlannedCommand<C extends PlanCommand = PlanCommand> {
  readonly index: number;
  readonly name: string;
  readonly command: C;
  /** Indices of the commands this one references (distinct, ascending). */
  readonly deps: readonly number[];
  /** Indices of the commands that reference this one (distinct, ascending). */
  readonly dependents: readonly number[];
  /** 0 without dependencies, else 1 + the highest level of its dependencies. */
  readonly level: number;
  /** Every reference inside args/kwargs, in scan order. */
  readonly refs: readonly ReferenceSite[];
}

/** The result of planning one request. */
export interface Plan<C extends PlanCommand = PlanCommand> {
  readonly commands: readonly PlannedCommand<C>[];
  /** Command index by name. */
  readonly byName: ReadonlyMap<string, number>;
  /** Commands no other command references (ascending index). */
  readonly leaves: readonly number[];
  /** `levels[k]` holds the indices of the commands at level k (ascending index). */
  readonly levels: readonly (readonly number[])[];
  /** A topological order: every command after all commands it references. */
  readonly order: readonly number[];
  /** True when no command has a reference (every command is independent). */
  readonly trivial: boolean;
}

function invalid(reason: string, path: string, extra: Record<string, unknown> = {}, message?: string): MpregError {
  return new MpregError(ErrorCode.INVALID_REQUEST, message ?? reason, { reason, path, ...extra });
}

function isPlainContainer(v: unknown): v is Record<string, unknown> {
  if (typeof v !== "object" || v === null) return false;
  const proto = Object.getPrototypeOf(v) as unknown;
  return proto === Object.prototype || proto === null;
}

function formatPath(base: string, path: readonly (string | number)[]): string {
  let s = base;
  for (const p of path) s += typeof p === "number" ? `[${p}]` : /^[A-Za-z_$][\w$]*$/.test(p) ? `.${p}` : `[${JSON.stringify(p)}]`;
  return s;
}

/** A trie over the dot-separated segments of command names (only built when a name has a dot). */
interface TrieNode {
  index: number; // command index when a name ends here, else -1
  children: Map<string, TrieNode> | undefined;
}

/**
 * Finds the command a string references: the exact name, else the LONGEST name followed by a
 * dot. Linear in the string's length whatever the names are (hostile names cannot make it
 * quadratic): without dotted names one lookup of the first segment, otherwise a walk down the
 * segment trie.
 */
class ReferenceMatcher {
  private readonly trie: TrieNode | undefined;

  constructor(private readonly byName: ReadonlyMap<string, number>) {
    let dotted = false;
    for (const name of byName.keys()) if (name.includes(".")) { dotted = true; break; }
    if (!dotted) return;
    const root: TrieNode = { index: -1, children: undefined };
    for (const [name, index] of byName) {
      let node = root;
      for (const seg of name.split(".")) {
        node.children ??= new Map();
        let child = node.children.get(seg);
        if (child === undefined) {
          child = { index: -1, children: undefined };
          node.children.set(seg, child);
        }
        node = child;
      }
      node.index = index;
    }
    this.trie = root;
  }

  /** `cut` is where the name ends in `s` (`s.length` for an exact match). */
  match(s: string): { dep: number; cut: number } | null {
    const exact = this.byName.get(s);
    if (exact !== undefined) return { dep: exact, cut: s.length };
    const firstDot = s.indexOf(".");
    if (firstDot < 0) return null;
    if (this.trie === undefined) {
      const dep = this.byName.get(s.slice(0, firstDot));
      return dep === undefined ? null : { dep, cut: firstDot };
    }
    let best: { dep: number; cut: number } | null = null;
    let node = this.trie;
    let pos = 0;
    let dot = firstDot;
    // Only segments followed by a dot can end a name here (the exact case was handled above).
    while (dot >= 0) {
      const child = node.children?.get(s.slice(pos, dot));
      if (child === undefined) break;
      node = child;
      if (node.index >= 0) best = { dep: node.index, cut: dot };
      pos = dot + 1;
      dot = s.indexOf(".", pos);
    }
    return best;
  }
}

interface Frame {
  value: unknown;
  path: (string | number)[];
}

/** Scans one root (args or kwargs) iteratively; appends references to `out`. */
function scanRoot(
  root: "args" | "kwargs",
  value: unknown,
  cmdIndex: number,
  matcher: ReferenceMatcher,
  out: ReferenceSite[],
): void {
  const base = `cmds[${cmdIndex}].${root}`;
  // Fast path: a flat array of scalars (the common case) needs no stack.
  if (Array.isArray(value)) {
    let flat = true;
    for (let i = 0; i < value.length; i++) {
      const v = value[i] as unknown;
      if (typeof v === "object" && v !== null) { flat = false; break; }
    }
    if (flat) {
      for (let i = 0; i < value.length; i++) {
        const v = value[i] as unknown;
        if (typeof v === "string") addRef(v, null, i);
      }
      return;
    }
  }
  const stack: Frame[] = [{ value, path: [] }];
  while (stack.length > 0) {
    const { value: v, path } = stack.pop()!;
    if (typeof v === "string") {
      if (path.length > 0) addRef(v, path, 0);
      continue;
    }
    if (typeof v !== "object" || v === null) continue;
    const isArr = Array.isArray(v);
    if (!isArr && !isPlainContainer(v)) continue; // binary data, dates, …: opaque values
    if (path.length >= MAX_NESTING_DEPTH) {
      throw invalid("nesting_too_deep", formatPath(base, path), { max_depth: MAX_NESTING_DEPTH },
        `arguments nest deeper than ${MAX_NESTING_DEPTH} levels`);
    }
    // Push in reverse so references come out in document order.
    if (isArr) {
      for (let i = (v as unknown[]).length - 1; i >= 0; i--) stack.push({ value: (v as unknown[])[i], path: [...path, i] });
    } else {
      const keys = Object.keys(v);
      for (let i = keys.length - 1; i >= 0; i--) {
        const k = keys[i]!;
        stack.push({ value: (v as Record<string, unknown>)[k], path: [...path, k] });
      }
    }
  }

  // `path` null means `[index]`: built only when the string really is a reference.
  function addRef(s: string, path: (string | number)[] | null, index: number): void {
    const m = matcher.match(s);
    if (m === null) return;
    out.push({ root, path: path ?? [index], dep: m.dep, steps: m.cut === s.length ? [] : s.slice(m.cut + 1).split("."), original: s });
  }
}

const NONE: readonly number[] = Object.freeze([]);
const NONE_REFS: readonly ReferenceSite[] = Object.freeze([]);

/**
 * Plans a request. Throws MpregError 1002 (`details.reason`, `details.path`) for: no commands,
 * more than {@link MAX_COMMANDS}, a command whose name is not a non-empty string, duplicate
 * names, arguments nested deeper than {@link MAX_NESTING_DEPTH}, malformed args/kwargs, and
 * dependency cycles (`details.cycle`: command names, each referencing the next, the last
 * referencing the first).
 */
export function planRequest<C extends PlanCommand>(cmds: readonly C[]): Plan<C> {
  if (!Array.isArray(cmds) || cmds.length === 0) throw invalid("empty_cmds", "cmds", {}, "cmds must hold at least one command");
  const n = cmds.length;
  if (n > MAX_COMMANDS) {
    throw invalid("too_many_commands", "cmds", { max_commands: MAX_COMMANDS, count: n },
      `a request may hold at most ${MAX_COMMANDS} commands`);
  }
  const byName = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const c = cmds[i];
    const name = (c as { name?: unknown } | undefined)?.name;
    if (typeof name !== "string" || name.length === 0) {
      throw invalid("invalid_name", `cmds[${i}].name`, {}, "command name must be a non-empty string");
    }
    if (byName.has(name)) {
      throw invalid("duplicate_name", `cmds[${i}].name`, { name, first_index: byName.get(name) },
        `duplicate command name ${JSON.stringify(name)}`);
    }
    byName.set(name, i);
  }

  const matcher = new ReferenceMatcher(byName);
  // Shared empty lists keep trivial plans (the hot path) nearly allocation-free.
  const refsOf: (readonly ReferenceSite[])[] = new Array(n);
  const depsOf: (readonly number[])[] = new Array(n);
  let trivial = true;
  const scratch: ReferenceSite[] = [];
  for (let i = 0; i < n; i++) {
    const c = cmds[i]!;
    if (c.args !== undefined && c.args !== null) {
      if (!Array.isArray(c.args)) throw invalid("invalid_args", `cmds[${i}].args`, {}, "args must be an array");
      scanRoot("args", c.args, i, matcher, scratch);
    }
    if (c.kwargs !== undefined && c.kwargs !== null) {
      if (!isPlainContainer(c.kwargs)) throw invalid("invalid_kwargs", `cmds[${i}].kwargs`, {}, "kwargs must be an object");
      scanRoot("kwargs", c.kwargs, i, matcher, scratch);
    }
    if (scratch.length === 0) {
      refsOf[i] = NONE_REFS;
      depsOf[i] = NONE;
    } else {
      trivial = false;
      const refs = scratch.splice(0);
      refsOf[i] = refs;
      const set = new Set<number>();
      for (const r of refs) set.add(r.dep);
      depsOf[i] = [...set].sort((x, y) => x - y);
    }
  }

  const commands: PlannedCommand<C>[] = new Array(n);
  if (trivial) {
    // No references: one level, every command a leaf, request order is topological.
    const all: number[] = new Array(n);
    for (let i = 0; i < n; i++) {
      all[i] = i;
      commands[i] = { index: i, name: cmds[i]!.name, command: cmds[i]!, deps: NONE, dependents: NONE, level: 0, refs: NONE_REFS };
    }
    return { commands, byName, leaves: all, levels: [all], order: all, trivial };
  }

  const dependentsOf: number[][] = new Array(n);
  const pending: number[] = new Array(n);
  for (let i = 0; i < n; i++) {
    pending[i] = depsOf[i]!.length;
    for (const d of depsOf[i]!) (dependentsOf[d] ??= []).push(i);
  }

  // Kahn's algorithm; levels follow from the order.
  const order: number[] = [];
  const level: number[] = new Array(n).fill(0);
  for (let i = 0; i < n; i++) if (pending[i] === 0) order.push(i);
  for (let h = 0; h < order.length; h++) {
    const i = order[h]!;
    const ds = dependentsOf[i];
    if (ds === undefined) continue;
    for (const j of ds) {
      if (level[i]! + 1 > level[j]!) level[j] = level[i]! + 1;
      if (--pending[j]! === 0) order.push(j);
    }
  }
  if (order.length < n) throw cycleError(cmds, depsOf, pending);

  let maxLevel = 0;
  for (let i = 0; i < n; i++) if (level[i]! > maxLevel) maxLevel = level[i]!;
  const levels: number[][] = [];
  for (let k = 0; k <= maxLevel; k++) levels.push([]);
  for (let i = 0; i < n; i++) levels[level[i]!]!.push(i);

  const leaves: number[] = [];
  for (let i = 0; i < n; i++) {
    const dependents = dependentsOf[i] ?? NONE;
    if (dependents.length === 0) leaves.push(i);
    commands[i] = {
      index: i,
      name: cmds[i]!.name,
      command: cmds[i]!,
      deps: depsOf[i]!,
      dependents,
      level: level[i]!,
      refs: refsOf[i]!,
    };
  }
  return { commands, byName, leaves, levels, order, trivial };
}

/** Finds one real cycle among the commands Kahn's algorithm could not order. */
function cycleError(cmds: readonly PlanCommand[], depsOf: readonly (readonly number[])[], pending: readonly number[]): MpregError {
  // Every unordered command has at least one unordered dependency, so walking such
  // dependencies from any unordered command must revisit one: that loop is a cycle.
  let start = 0;
  while (pending[start] === 0) start++;
  const seenAt = new Map<number, number>();
  const walk: number[] = [];
  let cur = start;
  while (!seenAt.has(cur)) {
    seenAt.set(cur, walk.length);
    walk.push(cur);
    cur = depsOf[cur]!.find((d) => pending[d]! > 0)!;
  }
  const cycle = walk.slice(seenAt.get(cur)!).map((i) => cmds[i]!.name);
  const first = walk[seenAt.get(cur)!]!;
  return invalid("dependency_cycle", `cmds[${first}]`, { cycle },
    cycle.length === 1
      ? `command ${JSON.stringify(cycle[0])} references itself`
      : `dependency cycle: ${cycle.join(" -> ")} -> ${cycle[0]}`);
}

const MISSING: unique symbol = Symbol("missing");
const DECIMAL = /^(?:0|[1-9][0-9]*)$/;

/** Walks `steps` into `value`: object keys by name (own properties), arrays by decimal index. */
function walkResult(value: unknown, steps: readonly string[]): unknown {
  let cur = value;
  for (const step of steps) {
    if (Array.isArray(cur)) {
      if (!DECIMAL.test(step)) return MISSING;
      const i = Number(step);
      if (i >= cur.length) return MISSING;
      cur = cur[i];
    } else if (typeof cur === "object" && cur !== null) {
      if (!Object.prototype.hasOwnProperty.call(cur, step)) return MISSING;
      cur = (cur as Record<string, unknown>)[step];
    } else {
      return MISSING;
    }
  }
  return cur;
}

const EMPTY_ARGS: readonly unknown[] = Object.freeze([]);
const EMPTY_KWARGS: Readonly<Record<string, unknown>> = Object.freeze({});

/** Sets an own data property, even for keys such as `__proto__`. */
function setOwn(target: Record<string | number, unknown>, key: string | number, value: unknown): void {
  if (key === "__proto__") Object.defineProperty(target, key, { value, writable: true, enumerable: true, configurable: true });
  else target[key] = value;
}

function shallowCopy(v: unknown): Record<string | number, unknown> {
  if (Array.isArray(v)) return v.slice() as unknown as Record<number, unknown>;
  const proto = Object.getPrototypeOf(v) as object | null;
  const copy = Object.create(proto) as Record<string, unknown>;
  for (const k of Object.keys(v as object)) setOwn(copy, k, (v as Record<string, unknown>)[k]);
  return copy;
}

/** Options of {@link substitute}. */
export interface SubstituteOptions {
  /**
   * Called with each value about to replace a reference (after the walk along its steps),
   * before it is placed. It may throw to refuse the substitution (the throw propagates and
   * nothing is returned): this is where a caller bounds how much one request fans results out
   * into arguments (one 1 MiB result referenced 1000 times is 1000 MiB of arguments, though
   * nothing is copied here).
   */
  onSubstitute?: (value: unknown, ref: ReferenceSite) => void;
}

/**
 * The arguments of command `index` with every reference replaced by the referenced command's
 * result (whole, or walked along its steps; a missing step leaves the original string).
 * `results` maps command names to results. Nothing is mutated: only the containers on the path
 * to a replaced value are copied; a command without references gets its own args back.
 */
export function substitute(
  plan: Plan,
  index: number,
  results: ReadonlyMap<string, unknown>,
  options?: SubstituteOptions,
): { args: readonly unknown[]; kwargs: Readonly<Record<string, unknown>> } {
  const pc = plan.commands[index];
  if (pc === undefined) throw new RangeError(`no command at index ${index}`);
  const cmd = pc.command;
  let args: readonly unknown[] = cmd.args ?? EMPTY_ARGS;
  let kwargs: Readonly<Record<string, unknown>> = cmd.kwargs ?? EMPTY_KWARGS;
  if (pc.refs.length === 0) return { args, kwargs };

  const copies = new Set<unknown>();
  for (const ref of pc.refs) {
    const depName = plan.commands[ref.dep]!.name;
    let value: unknown = ref.original;
    if (results.has(depName)) {
      const walked = walkResult(results.get(depName), ref.steps);
      if (walked !== MISSING) value = walked;
    }
    if (value === ref.original) continue; // nothing to replace: keep sharing the input
    options?.onSubstitute?.(value, ref);
    let container: Record<string | number, unknown>;
    if (ref.root === "args") {
      if (!copies.has(args)) { args = shallowCopy(args) as unknown as unknown[]; copies.add(args); }
      container = args as unknown as Record<number, unknown>;
    } else {
      if (!copies.has(kwargs)) { kwargs = shallowCopy(kwargs) as Record<string, unknown>; copies.add(kwargs); }
      container = kwargs as Record<string, unknown>;
    }
    const last = ref.path.length - 1;
    for (let i = 0; i < last; i++) {
      const key = ref.path[i]!;
      let child = container[key];
      if (!copies.has(child)) {
        child = shallowCopy(child);
        copies.add(child);
        setOwn(container, key, child);
      }
      container = child as Record<string | number, unknown>;
    }
    setOwn(container, ref.path[last]!, value);
  }
  return { args, kwargs };
}
