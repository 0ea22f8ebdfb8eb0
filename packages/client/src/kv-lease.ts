import { ErrorCode, MpregError, createLogger, isMpregError } from "@mpreg/envelope";
import type { Unsubscribe } from "@mpreg/transport";
import type { ClientCore, Resumable } from "./client-core.js";

const log = createLogger("client");

/** A lease id as the node gives it. */
export type KvLeaseId = string | number;

/** Keepalives sent per `ttl_ms`: three, so two may be lost before the lease expires. */
const KEEPALIVES_PER_TTL = 3;

/**
 * A lease kept alive by the client (`kv.lease(ttl_ms)`): a keepalive every `ttl_ms / 3`, and
 * one at once on each new connection. Keys put with `{lease: lease.id}` are deleted when it
 * ends. It is **lost** when the node no longer knows it (keepalive answered 1001) or when no
 * keepalive succeeded for `ttl_ms` (it has expired by then): `signal` aborts with the reason
 * and keepalives stop. `revoke()` ends it at once; `close()` of the client stops the
 * keepalives (the lease then expires after `ttl_ms`).
 */
export class KvLease implements Resumable {
  /** Aborted when the lease is lost, revoked, or the client closed. */
  readonly signal: AbortSignal;
  private readonly abort = new AbortController();
  private timer: ReturnType<typeof setInterval> | undefined;
  private lastOk: number;
  private inFlight = false;
  private offResume: Unsubscribe | undefined;

  private constructor(
    private readonly core: ClientCore,
    readonly id: KvLeaseId,
    readonly ttl_ms: number,
  ) {
    this.signal = this.abort.signal;
    this.lastOk = Date.now();
  }

  /** @internal Grants a lease and starts keeping it alive. */
  static async grant(core: ClientCore, ttl_ms: number): Promise<KvLease> {
    if (!(Number.isInteger(ttl_ms) && ttl_ms >= 1)) throw MpregError.invalid("ttl_ms must be a positive integer", "ttl_ms");
    const r = (await core.call("mpreg.kv.lease.grant", [{ ttl_ms }])) as { lease_id?: unknown; ttl_ms?: unknown } | null;
    const id = r?.lease_id;
    if (typeof id !== "string" && typeof id !== "number") throw MpregError.invalid("mpreg.kv.lease.grant answered without a lease_id", "lease_id");
    const ttl = typeof r?.ttl_ms === "number" && r.ttl_ms > 0 ? r.ttl_ms : ttl_ms;
    const lease = new KvLease(core, id, ttl);
    lease.offResume = core.addResumable(lease);
    lease.timer = setInterval(() => lease.keepalive(), Math.max(1, Math.floor(ttl / KEEPALIVES_PER_TTL)));
    (lease.timer as { unref?: () => void }).unref?.();
    return lease;
  }

  /** True while it is being kept alive. */
  get alive(): boolean {
    return !this.signal.aborted;
  }

  /** Revokes the lease (its keys are deleted) and stops the keepalives. */
  async revoke(): Promise<void> {
    if (!this.stop(new MpregError(ErrorCode.NOT_FOUND, "lease revoked", { reason: "revoked", lease_id: this.id }))) return;
    if (!this.core.connected) return;
    try {
      await this.core.call("mpreg.kv.lease.revoke", [this.id], { idempotent: true });
    } catch (e) {
      // Expired or revoked already: either way its keys are gone.
      if (!(isMpregError(e) && e.code === ErrorCode.NOT_FOUND)) throw e;
    }
  }

  /** @internal A new connection: renew at once (time passed while failing over). */
  resume(): void {
    this.keepalive();
  }

  /** @internal */
  end(error?: MpregError): void {
    this.stop(error ?? new MpregError(ErrorCode.UNREACHABLE, "client closed", { reason: "client closed" }));
  }

  private keepalive(): void {
    if (this.signal.aborted) return;
    if (Date.now() - this.lastOk > this.ttl_ms) {
      this.stop(new MpregError(ErrorCode.NOT_FOUND, `lease ${this.id} expired: no keepalive succeeded for ${this.ttl_ms} ms`, { reason: "expired", lease_id: this.id }));
      return;
    }
    if (this.inFlight || !this.core.connected) return;
    this.inFlight = true;
    this.core
      .call("mpreg.kv.lease.keepalive", [this.id], { idempotent: true, timeout_ms: Math.max(1000, this.ttl_ms) })
      .then(() => {
        this.lastOk = Date.now();
      })
      .catch((e: unknown) => {
        if (isMpregError(e) && e.code === ErrorCode.NOT_FOUND) {
          this.stop(new MpregError(ErrorCode.NOT_FOUND, `lease ${this.id} is gone`, { reason: "lease not found", lease_id: this.id }));
        } else {
          log.debug(`keepalive of lease ${this.id} failed: ${(e as Error).message}`);
        }
      })
      .finally(() => {
        this.inFlight = false;
      });
  }

  /** Stops the keepalives and aborts `signal`; false when already stopped. */
  private stop(reason: MpregError): boolean {
    if (this.signal.aborted) return false;
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    this.offResume?.();
    this.abort.abort(reason);
    return true;
  }
}
