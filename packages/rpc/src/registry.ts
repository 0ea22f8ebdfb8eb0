/**
 * The function registry of one node: named handlers in one or more versions, each with a
 * function_id, required-resource set and description. Resolution picks the highest version that
 * satisfies a constraint. Listeners learn about (un)registrations so the server can publish them
 * into the catalog.
 */
import { ErrorCode, MpregError, createLogger } from "@mpreg/envelope";
import {
  compareVersions,
  formatVersion,
  parseConstraint,
  parseVersion,
  satisfies,
  type Constraint,
  type Version,
} from "@mpreg/catalog";

const log = createLogger("rpc");

/** What a handler receives (PROTOCOL section 7), plus the per-request context `ctx`. */
export interface HandlerInput<Ctx = unknown> {
  readonly args: readonly unknown[];
  readonly kwargs: Readonly<Record<string, unknown>>;
  /** Aborted when the request fails, times out or is cancelled. */
  readonly signal: AbortSignal;
  readonly request_id: string;
  /**
   * Whatever the caller of `Executor.execute` passed as `ctx` (the server passes the calling
   * connection so connection-bound built-ins can act for it). Undefined for remote calls.
   */
  readonly ctx: Ctx | undefined;
}

/** A registered function's implementation. May return a value or a promise. */
export type Handler<Ctx = unknown> = (input: HandlerInput<Ctx>) => unknown;

/** Options of {@link FunctionRegistry.register}. */
export interface RegisterOptions {
  /** Resources this function needs / offers (a set; duplicates are dropped). */
  resources?: readonly string[];
  /** `MAJOR[.MINOR[.PATCH]]`, optional leading `v`. Default `1.0.0`. */
  version?: string;
  /** Identity of the implementation; default the name. One name has one function_id. */
  function_id?: string;
  description?: string;
  /**
   * An administrative function (membership changes, delete/purge, ...): a node runs it only for
   * callers with the admin scope (docs/security.md). Default false.
   */
  admin?: boolean;
}

/** One registered (name, version). Immutable. */
export interface RegisteredFunction<Ctx = unknown> {
  readonly name: string;
  readonly function_id: string;
  /** Canonical `MAJOR.MINOR.PATCH`. */
  readonly version: string;
  readonly parsedVersion: Version;
  readonly resources: readonly string[];
  readonly description: string;
  /** See {@link RegisterOptions.admin}. */
  readonly admin: boolean;
  readonly handler: Handler<Ctx>;
}

/** Filters of {@link FunctionRegistry.resolve}. */
export interface ResolveOptions {
  function_id?: string | undefined;
  /** A constraint string (parsed, 1002 when malformed) or an already parsed constraint. */
  version_constraint?: string | Constraint | undefined;
  /** Required resources: the function's resources must contain every one. */
  resources?: readonly string[] | undefined;
}

/** Registry change, delivered synchronously to listeners. */
export type RegistryEvent<Ctx = unknown> =
  | { type: "registered"; fn: RegisteredFunction<Ctx> }
  | { type: "unregistered"; fn: RegisteredFunction<Ctx> };

/** Registry limits. */
export interface RegistryOptions {
  /** Most (name, version) entries; registering more throws MpregError 1007. Default 10 000. */
  maxFunctions?: number;
  /** Most change listeners; adding more throws MpregError 1007. Default 100. */
  maxListeners?: number;
}

interface Versions<Ctx> {
  function_id: string;
  /** Sorted by version, highest first. */
  list: RegisteredFunction<Ctx>[];
}

/**
 * Named, versioned handlers of one node.
 *
 * Rules: a version that does not parse is refused with 1002; (name, version) registered twice
 * is refused with 1002; all versions of one name share one function_id and a function_id
 * belongs to one name (a conflicting registration is refused with 1002).
 */
export class FunctionRegistry<Ctx = unknown> {
  private readonly byName = new Map<string, Versions<Ctx>>();
  private readonly idOwner = new Map<string, string>();
  private readonly listeners = new Set<(e: RegistryEvent<Ctx>) => void>();
  private count = 0;
  private gen = 0;
  private readonly maxFunctions: number;
  private readonly maxListeners: number;

  constructor(options: RegistryOptions = {}) {
    this.maxFunctions = options.maxFunctions ?? 10_000;
    this.maxListeners = options.maxListeners ?? 100;
  }

  /** Registers `handler` as `name` (one version). Returns the entry. */
  register(name: string, handler: Handler<Ctx>, options: RegisterOptions = {}): RegisteredFunction<Ctx> {
    if (typeof name !== "string" || name.length === 0) throw MpregError.invalid("function name must be a non-empty string", "name");
    if (typeof handler !== "function") throw MpregError.invalid("handler must be a function", "handler");
    const parsed = parseVersion(options.version ?? "1.0.0", "version");
    const function_id = options.function_id ?? name;
    if (typeof function_id !== "string" || function_id.length === 0) {
      throw MpregError.invalid("function_id must be a non-empty string", "function_id");
    }
    const existing = this.byName.get(name);
    if (existing !== undefined && existing.function_id !== function_id) {
      throw MpregError.invalid(
        `function ${name} is registered with function_id ${existing.function_id}, not ${function_id}`,
        "function_id",
      );
    }
    const owner = this.idOwner.get(function_id);
    if (owner !== undefined && owner !== name) {
      throw MpregError.invalid(`function_id ${function_id} already belongs to function ${owner}`, "function_id");
    }
    const version = formatVersion(parsed);
    if (existing?.list.some((f) => f.version === version)) {
      throw MpregError.invalid(`function ${name} version ${version} is already registered`, "version");
    }
    if (this.count >= this.maxFunctions) {
      throw MpregError.overloaded(`function registry is full (${this.maxFunctions} entries)`);
    }
    const fn = Object.freeze({
      name,
      function_id,
      version,
      parsedVersion: parsed,
      resources: Object.freeze([...new Set(options.resources ?? [])]),
      description: options.description ?? "",
      admin: options.admin === true,
      handler,
    }) as RegisteredFunction<Ctx>;
    if (existing === undefined) {
      this.byName.set(name, { function_id, list: [fn] });
      this.idOwner.set(function_id, name);
    } else {
      existing.list.push(fn);
      existing.list.sort((a, b) => compareVersions(b.parsedVersion, a.parsedVersion));
    }
    this.count++;
    this.gen++;
    this.emit({ type: "registered", fn });
    return fn;
  }

  /** Removes one version (or every version when `version` is omitted). Returns how many went. */
  /** True when any version of `name` registered here is administrative. */
  isAdmin(name: string): boolean {
    return this.byName.get(name)?.list.some((f) => f.admin) === true;
  }

  unregister(name: string, version?: string): number {
    const entry = this.byName.get(name);
    if (entry === undefined) return 0;
    const canonical = version === undefined ? undefined : formatVersion(parseVersion(version, "version"));
    const gone = entry.list.filter((f) => canonical === undefined || f.version === canonical);
    if (gone.length === 0) return 0;
    entry.list = entry.list.filter((f) => !gone.includes(f));
    if (entry.list.length === 0) {
      this.byName.delete(name);
      this.idOwner.delete(entry.function_id);
    }
    this.count -= gone.length;
    this.gen++;
    for (const fn of gone) this.emit({ type: "unregistered", fn });
    return gone.length;
  }

  /**
   * The highest version of `name` matching the filters, or null. A malformed constraint throws
   * MpregError 1002 (`path: "version_constraint"`).
   */
  find(name: string, options: ResolveOptions = {}): RegisteredFunction<Ctx> | null {
    const entry = this.byName.get(name);
    if (entry === undefined) return null;
    if (options.function_id !== undefined && options.function_id !== entry.function_id) return null;
    const need = options.resources;
    const vc = options.version_constraint;
    const constraint = vc === undefined ? null : typeof vc === "string" ? parseConstraint(vc, "version_constraint") : vc;
    // Sorted highest version first: the first match is the answer.
    for (const f of entry.list) {
      if (need !== undefined && need.length > 0 && !need.every((r) => f.resources.includes(r))) continue;
      if (constraint !== null && !satisfies(f.parsedVersion, constraint)) continue;
      return f;
    }
    return null;
  }

  /** Like {@link find}, but throws MpregError 1001 (`{fun, reason}`) when nothing matches. */
  resolve(name: string, options: ResolveOptions = {}): RegisteredFunction<Ctx> {
    const fn = this.find(name, options);
    if (fn !== null) return fn;
    const reason = !this.byName.has(name)
      ? `function ${name} is not registered`
      : `no version of function ${name} matches the function_id, version constraint and resources`;
    throw new MpregError(ErrorCode.NOT_FOUND, reason, { fun: name, reason });
  }

  /** True when some version of `name` is registered. */
  has(name: string): boolean {
    return this.byName.has(name);
  }

  /** Every registered (name, version), by name then highest version first. */
  list(): RegisteredFunction<Ctx>[] {
    const names = [...this.byName.keys()].sort();
    return names.flatMap((n) => this.byName.get(n)!.list);
  }

  /** Changes with every register/unregister: lets callers cache lookups cheaply. */
  get generation(): number {
    return this.gen;
  }

  /** Number of registered (name, version) entries. */
  get size(): number {
    return this.count;
  }

  /** Subscribes to registry changes; returns the unsubscribe function. */
  onChange(listener: (e: RegistryEvent<Ctx>) => void): () => void {
    if (this.listeners.size >= this.maxListeners) {
      throw MpregError.overloaded(`too many registry listeners (${this.maxListeners})`);
    }
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private emit(e: RegistryEvent<Ctx>): void {
    for (const l of this.listeners) {
      try {
        l(e);
      } catch (err) {
        // A faulty listener must not undo or block a registration.
        log.warn("registry listener threw", err);
      }
    }
  }
}
