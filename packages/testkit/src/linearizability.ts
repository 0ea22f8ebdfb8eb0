import { MpregError } from "@mpreg/envelope";

/**
 * One operation of a recorded history. `call`/`ret` are times from one clock (any numbers; a
 * logical counter is fine). An operation whose outcome is unknown (the client crashed or timed
 * out) has no `ret` and no `output`: it may have taken effect at any point after its call, or
 * not at all.
 */
export interface Operation<I, O> {
  client: string | number;
  input: I;
  output?: O;
  call: number;
  ret?: number;
}

/**
 * A sequential specification. `step` returns the state after applying `input` when the
 * operation may have produced `output` (undefined output = unknown: accept any result), or
 * undefined when it could not have. `hash` must map equal states to equal strings: it is the
 * memoization key.
 */
export interface Model<S, I, O> {
  init(): S;
  step(state: S, input: I, output: O | undefined): S | undefined;
  hash(state: S): string;
  /**
   * Splits a history into independent sub-histories (P-compositionality, e.g. one per key).
   * Linearizability of the whole is equivalent to linearizability of every part.
   */
  partition?(ops: readonly Operation<I, O>[]): Operation<I, O>[][];
}

export interface CheckOptions {
  /** Most search steps over all partitions before giving up with `result: "unknown"`. Default 5,000,000. */
  maxSteps?: number;
}

export interface CheckResult<I, O> {
  result: "ok" | "illegal" | "unknown";
  /** Search steps used. */
  steps: number;
  /** For "illegal": the operations of the partition that has no linearization. */
  counterexample?: Operation<I, O>[];
  /** For "illegal": the longest prefix of operations (by id) that could be linearized. */
  longestLinearized?: Operation<I, O>[];
}

interface Node<I, O> {
  id: number;
  op: Operation<I, O>;
  isCall: boolean;
  /** For a call node: its return node. */
  match: Node<I, O> | undefined;
  prev: Node<I, O> | undefined;
  next: Node<I, O> | undefined;
}

/**
 * Checks that a history is linearizable with respect to `model`: the Wing & Gong search
 * (repeatedly pick a minimal pending operation, apply it, backtrack on failure) with Lowe's
 * memoization of (set of linearized operations, model state), as in porcupine, run
 * separately on each partition the model defines.
 */
export function checkLinearizable<S, I, O>(
  model: Model<S, I, O>,
  history: readonly Operation<I, O>[],
  opts: CheckOptions = {},
): CheckResult<I, O> {
  for (const [k, op] of history.entries()) {
    if (!Number.isFinite(op.call) || (op.ret !== undefined && !(op.ret >= op.call))) {
      throw MpregError.invalid(`operation ${k} has an invalid call/return time`, `history[${k}]`);
    }
  }
  const parts = model.partition ? model.partition(history) : [history.slice()];
  const budget = { left: opts.maxSteps ?? 5_000_000, used: 0 };
  let unknown = false;
  for (const part of parts) {
    const r = checkPartition(model, part, budget);
    if (r.result === "illegal") return { ...r, steps: budget.used };
    if (r.result === "unknown") unknown = true;
  }
  return { result: unknown ? "unknown" : "ok", steps: budget.used };
}

function checkPartition<S, I, O>(
  model: Model<S, I, O>,
  ops: readonly Operation<I, O>[],
  budget: { left: number; used: number },
): { result: "ok" | "illegal" | "unknown"; counterexample?: Operation<I, O>[]; longestLinearized?: Operation<I, O>[] } {
  const n = ops.length;
  if (n === 0) return { result: "ok" };
  // Events in time order; on equal times calls come first (touching operations overlap).
  const events: { t: number; isCall: boolean; id: number }[] = [];
  ops.forEach((op, id) => {
    events.push({ t: op.call, isCall: true, id });
    events.push({ t: op.ret ?? Number.POSITIVE_INFINITY, isCall: false, id });
  });
  events.sort((a, b) => a.t - b.t || (a.isCall === b.isCall ? a.id - b.id : a.isCall ? -1 : 1));
  const head: Node<I, O> = { id: -1, op: ops[0]!, isCall: false, match: undefined, prev: undefined, next: undefined };
  const calls: Node<I, O>[] = new Array(n);
  const rets: Node<I, O>[] = new Array(n);
  let tail = head;
  for (const ev of events) {
    const node: Node<I, O> = { id: ev.id, op: ops[ev.id]!, isCall: ev.isCall, match: undefined, prev: tail, next: undefined };
    tail.next = node;
    tail = node;
    if (ev.isCall) calls[ev.id] = node;
    else rets[ev.id] = node;
  }
  for (let i = 0; i < n; i++) calls[i]!.match = rets[i];

  const words = Math.ceil(n / 32);
  const linearized = new Uint32Array(words);
  const cache = new Set<string>();
  const stack: { node: Node<I, O>; state: S }[] = [];
  let state = model.init();
  let entry = head.next;
  let best: number[] = [];

  const lift = (c: Node<I, O>) => {
    c.prev!.next = c.next;
    if (c.next) c.next.prev = c.prev;
    const r = c.match!;
    r.prev!.next = r.next;
    if (r.next) r.next.prev = r.prev;
  };
  const unlift = (c: Node<I, O>) => {
    const r = c.match!;
    r.prev!.next = r;
    if (r.next) r.next.prev = r;
    c.prev!.next = c;
    if (c.next) c.next.prev = c;
  };

  while (head.next !== undefined) {
    if (budget.left-- <= 0) return { result: "unknown" };
    budget.used++;
    const e = entry!;
    if (e.isCall) {
      const next = model.step(state, e.op.input, e.op.ret === undefined ? undefined : e.op.output);
      let advanced = false;
      if (next !== undefined) {
        linearized[e.id >>> 5]! |= 1 << (e.id & 31);
        const key = `${linearized.join(",")}|${model.hash(next)}`;
        if (!cache.has(key)) {
          cache.add(key);
          stack.push({ node: e, state });
          state = next;
          lift(e);
          entry = head.next;
          advanced = true;
          if (stack.length > best.length) best = stack.map((s) => s.node.id);
        } else {
          linearized[e.id >>> 5]! &= ~(1 << (e.id & 31));
        }
      }
      if (!advanced) entry = e.next;
    } else {
      // Reached a return whose call is not linearized: undo the latest choice.
      const top = stack.pop();
      if (!top) {
        return {
          result: "illegal",
          counterexample: ops.slice(),
          longestLinearized: best.map((id) => ops[id]!),
        };
      }
      state = top.state;
      linearized[top.node.id >>> 5]! &= ~(1 << (top.node.id & 31));
      unlift(top.node);
      entry = top.node.next;
    }
  }
  return { result: "ok" };
}

/**
 * A single read/write register (value `null` initially), handy for tests and as an example:
 * inputs `{ op: "read" }` → output value, `{ op: "write", value }` → output ignored,
 * `{ op: "cas", from, to }` → output boolean.
 */
export type RegisterInput =
  | { op: "read" }
  | { op: "write"; value: unknown }
  | { op: "cas"; from: unknown; to: unknown };

export const registerModel: Model<unknown, RegisterInput, unknown> = {
  init: () => null,
  step(state, input, output) {
    switch (input.op) {
      case "read":
        return output === undefined || Object.is(output, state) ? state : undefined;
      case "write":
        return input.value;
      case "cas": {
        const ok = Object.is(state, input.from);
        if (output === undefined) return ok ? input.to : state;
        if (output !== ok) return undefined;
        return ok ? input.to : state;
      }
    }
  },
  hash: (s) => JSON.stringify(s) ?? "undefined",
};
