/**
 * The route key registry: which Ed25519 public keys speak for which cluster.
 *
 * A key is trusted for a cluster in exactly two ways:
 * 1. configuration ({@link KeyRegistry.trust}), or
 * 2. a {@link KeyAnnouncement} for that cluster signed by a key already trusted for it (a chain
 *    from a configured key).
 * A message never brings its own trust: route updates carry only a key id, and a key
 * announcement signed by anything but a trusted key of that cluster is refused. Since trust
 * comes from the signature, an announcement may reach a cluster through any relay.
 *
 * Rotation: an accepted announcement makes its key trusted without expiry and gives every
 * other key of the cluster an expiry `overlap_ms` from now (never later than one it already
 * has): during the overlap both verify, so updates signed just before the switch still pass.
 * Announcements of a cluster are ordered by `seq`; an older or replayed one is refused.
 */
import type { KeyObject } from "node:crypto";
import { MpregError } from "@mpreg/envelope";
import { importPublicKey, routeKeyId, verifyBytes, type RouteSigner } from "./route-signing.js";
import { isClusterId, validateSignature, type RouteSignature } from "./route-update.js";

/** A key trusted by configuration. */
export interface TrustedKey {
  clusterId: string;
  /** Base64url raw Ed25519 public key. */
  publicKey: string;
  /** Milliseconds since the epoch (the registry's clock) after which the key no longer verifies. */
  expiresAt?: number;
}

/**
 * A new key for `cluster_id`, signed by a key already trusted for that cluster (the signature's
 * `key_id` names it). Wire form (snake_case); signed bytes: tag `mpreg-route-key/1` and
 * `[cluster_id, public_key, seq, overlap_ms]` (see route-signing.ts).
 */
export interface KeyAnnouncement {
  v: 1;
  cluster_id: string;
  public_key: string;
  /** Orders the cluster's announcements: integer >= 1, growing. */
  seq: number;
  /** How long the cluster's other keys stay valid after this one is accepted (ms). */
  overlap_ms: number;
  sig: RouteSignature;
}

/** Settings of a {@link KeyRegistry}. */
export interface KeyRegistryOptions {
  /** Keys trusted by configuration. */
  trusted?: TrustedKey[];
  /** Most clusters with keys; configuring one more is refused (1002). Default 4096. */
  maxClusters?: number;
  /**
   * Most keys per cluster. Past it, an accepted announcement evicts the other key that
   * expires first; configuring one more is refused (1002). Default 8.
   */
  maxKeysPerCluster?: number;
  /** Longest overlap an announcement may ask for; longer ones are shortened. Default 1 day. */
  maxOverlapMs?: number;
}

/** Why a key announcement was refused. */
export type KeyAnnouncementRefusal = "invalid" | "untrusted_signer" | "bad_signature" | "stale";

/** Outcome of {@link KeyRegistry.applyAnnouncement}. */
export type KeyAnnouncementResult = { accepted: true; keyId: string } | { accepted: false; reason: KeyAnnouncementRefusal };

/** Outcome of {@link KeyRegistry.verify}: `ok`, or why not. */
export type VerifyOutcome = "ok" | "unsigned" | "unknown_key" | "bad_signature";

/** A key as listed by {@link KeyRegistry.keys}. */
export interface RegisteredKey {
  keyId: string;
  publicKey: string;
  expiresAt?: number;
  /** How the key came to be trusted. */
  source: "config" | "announcement";
}

interface KeyRecord {
  publicKey: string;
  key: KeyObject;
  expiresAt: number | undefined;
  source: "config" | "announcement";
}

interface ClusterKeys {
  keys: Map<string, KeyRecord>;
  /** Highest announcement seq applied (0: none). */
  seq: number;
}

const encoder = new TextEncoder();

/** The bytes a key announcement's signature covers. */
export function keyAnnouncementSigningBytes(a: Omit<KeyAnnouncement, "sig">): Uint8Array {
  return encoder.encode(`mpreg-route-key/1\n${JSON.stringify([a.cluster_id, a.public_key, a.seq, a.overlap_ms])}`);
}

/**
 * Builds the announcement of `newPublicKey` for the signer's cluster, signed by `signer` (a key
 * the receivers already trust for that cluster).
 */
export function signKeyAnnouncement(signer: RouteSigner, newPublicKey: string, seq: number, overlapMs: number): KeyAnnouncement {
  const body = { v: 1 as const, cluster_id: signer.clusterId, public_key: newPublicKey, seq, overlap_ms: overlapMs };
  return { ...body, sig: signer.sign(keyAnnouncementSigningBytes(body)) };
}

function validateAnnouncement(v: unknown): KeyAnnouncement {
  const o = v as Record<string, unknown>;
  if (typeof o !== "object" || o === null || Array.isArray(o)) throw MpregError.invalid("key announcement must be an object", "");
  if (o.v !== 1) throw MpregError.invalid("key announcement: v must be 1", "v");
  if (!isClusterId(o.cluster_id)) throw MpregError.invalid("key announcement: cluster_id must be a cluster id", "cluster_id");
  if (typeof o.public_key !== "string") throw MpregError.invalid("key announcement: public_key must be a string", "public_key");
  routeKeyId(o.public_key);
  if (typeof o.seq !== "number" || !Number.isSafeInteger(o.seq) || o.seq < 1) {
    throw MpregError.invalid("key announcement: seq must be an integer >= 1", "seq");
  }
  if (typeof o.overlap_ms !== "number" || !Number.isSafeInteger(o.overlap_ms) || o.overlap_ms < 0) {
    throw MpregError.invalid("key announcement: overlap_ms must be an integer >= 0", "overlap_ms");
  }
  return {
    v: 1,
    cluster_id: o.cluster_id,
    public_key: o.public_key,
    seq: o.seq,
    overlap_ms: o.overlap_ms,
    sig: validateSignature(o.sig, "sig"),
  };
}

/** Counters of a {@link KeyRegistry}. */
export interface KeyRegistryStats {
  announcementsAccepted: number;
  announcementsRefused: Record<KeyAnnouncementRefusal, number>;
  verifyFailures: Record<Exclude<VerifyOutcome, "ok">, number>;
}

/** Trusted route keys per cluster; see the file comment for the trust rules. Sans-I/O: time is passed in. */
export class KeyRegistry {
  private readonly clusters = new Map<string, ClusterKeys>();
  private readonly maxClusters: number;
  private readonly maxKeysPerCluster: number;
  private readonly maxOverlapMs: number;
  readonly stats: KeyRegistryStats = {
    announcementsAccepted: 0,
    announcementsRefused: { invalid: 0, untrusted_signer: 0, bad_signature: 0, stale: 0 },
    verifyFailures: { unsigned: 0, unknown_key: 0, bad_signature: 0 },
  };

  /** @throws {MpregError} 1002 naming the bad option or key. */
  constructor(opts: KeyRegistryOptions = {}) {
    this.maxClusters = positiveInt(opts.maxClusters ?? 4096, "maxClusters");
    this.maxKeysPerCluster = positiveInt(opts.maxKeysPerCluster ?? 8, "maxKeysPerCluster");
    this.maxOverlapMs = positiveInt(opts.maxOverlapMs ?? 86_400_000, "maxOverlapMs");
    (opts.trusted ?? []).forEach((k, i) => this.trust(k, `trusted[${i}]`));
  }

  /**
   * Trusts a key for a cluster by configuration (again: updates its expiry).
   * @throws {MpregError} 1002 when the key is malformed or a limit is reached.
   */
  trust(k: TrustedKey, path = "key"): void {
    if (!isClusterId(k.clusterId)) throw MpregError.invalid(`${path}.clusterId must be a cluster id`, `${path}.clusterId`);
    if (k.expiresAt !== undefined && !Number.isFinite(k.expiresAt)) {
      throw MpregError.invalid(`${path}.expiresAt must be a number (ms)`, `${path}.expiresAt`);
    }
    const key = importPublicKey(k.publicKey, `${path}.publicKey`);
    const keyId = routeKeyId(k.publicKey);
    let c = this.clusters.get(k.clusterId);
    if (c === undefined) {
      if (this.clusters.size >= this.maxClusters) throw MpregError.invalid(`more than ${this.maxClusters} clusters with keys`, path);
      c = { keys: new Map(), seq: 0 };
      this.clusters.set(k.clusterId, c);
    }
    if (!c.keys.has(keyId) && c.keys.size >= this.maxKeysPerCluster) {
      throw MpregError.invalid(`more than ${this.maxKeysPerCluster} keys for cluster ${k.clusterId}`, path);
    }
    c.keys.set(keyId, { publicKey: k.publicKey, key, expiresAt: k.expiresAt, source: "config" });
  }

  /** Stops trusting a key (configuration removed it). Returns whether it was trusted. */
  revoke(clusterId: string, keyId: string): boolean {
    const c = this.clusters.get(clusterId);
    if (c === undefined || !c.keys.delete(keyId)) return false;
    if (c.keys.size === 0) this.clusters.delete(clusterId);
    return true;
  }

  /**
   * Applies a key announcement (any relay may deliver it). Refused when malformed, when its
   * signing key is not trusted now for `cluster_id`, when the signature does not verify, or
   * when its `seq` is not above the last one applied for that cluster.
   */
  applyAnnouncement(raw: unknown, now: number): KeyAnnouncementResult {
    let a: KeyAnnouncement;
    let newKey: KeyObject;
    try {
      a = validateAnnouncement(raw);
      newKey = importPublicKey(a.public_key);
    } catch {
      return this.refuse("invalid");
    }
    const c = this.clusters.get(a.cluster_id);
    const signer = c?.keys.get(a.sig.key_id);
    if (c === undefined || signer === undefined || !active(signer, now)) return this.refuse("untrusted_signer");
    if (!verifyBytes(signer.key, keyAnnouncementSigningBytes(a), a.sig.value)) return this.refuse("bad_signature");
    if (a.seq <= c.seq) return this.refuse("stale");
    c.seq = a.seq;
    const keyId = routeKeyId(a.public_key);
    const until = now + Math.min(a.overlap_ms, this.maxOverlapMs);
    for (const [id, r] of c.keys) {
      if (id !== keyId) r.expiresAt = r.expiresAt === undefined ? until : Math.min(r.expiresAt, until);
    }
    const existing = c.keys.get(keyId);
    c.keys.set(keyId, { publicKey: a.public_key, key: newKey, expiresAt: undefined, source: existing?.source ?? "announcement" });
    this.purgeCluster(c, now);
    while (c.keys.size > this.maxKeysPerCluster) {
      // Evict the other key that expires first (all others have an expiry now).
      let victim: string | undefined;
      let soonest = Infinity;
      for (const [id, r] of c.keys) {
        if (id !== keyId && (r.expiresAt ?? Infinity) <= soonest) {
          soonest = r.expiresAt ?? Infinity;
          victim = id;
        }
      }
      if (victim === undefined) break;
      c.keys.delete(victim);
    }
    this.stats.announcementsAccepted++;
    return { accepted: true, keyId };
  }

  /** Checks a signature by a key of `clusterId` that is trusted at `now`. */
  verify(clusterId: string, sig: RouteSignature | undefined, bytes: Uint8Array, now: number): VerifyOutcome {
    let out: VerifyOutcome;
    if (sig === undefined) out = "unsigned";
    else {
      const r = this.clusters.get(clusterId)?.keys.get(sig.key_id);
      if (r === undefined || !active(r, now)) out = "unknown_key";
      else out = verifyBytes(r.key, bytes, sig.value) ? "ok" : "bad_signature";
    }
    if (out !== "ok") this.stats.verifyFailures[out]++;
    return out;
  }

  /** True when `keyId` verifies for `clusterId` at `now`. */
  isTrusted(clusterId: string, keyId: string, now: number): boolean {
    const r = this.clusters.get(clusterId)?.keys.get(keyId);
    return r !== undefined && active(r, now);
  }

  /** The keys held for a cluster (expired ones included until {@link purge}). */
  keys(clusterId: string): RegisteredKey[] {
    const c = this.clusters.get(clusterId);
    if (c === undefined) return [];
    return [...c.keys].map(([keyId, r]) => ({
      keyId,
      publicKey: r.publicKey,
      source: r.source,
      ...(r.expiresAt !== undefined ? { expiresAt: r.expiresAt } : {}),
    }));
  }

  /** The clusters with at least one key held, sorted. */
  clusterIds(): string[] {
    return [...this.clusters.keys()].sort();
  }

  /** Clusters with at least one key held. */
  get clusterCount(): number {
    return this.clusters.size;
  }

  /** Drops keys expired at `now`. The cluster's announcement seq is kept while it has keys. */
  purge(now: number): void {
    for (const [id, c] of this.clusters) {
      this.purgeCluster(c, now);
      if (c.keys.size === 0) this.clusters.delete(id);
    }
  }

  private purgeCluster(c: ClusterKeys, now: number): void {
    for (const [id, r] of c.keys) if (!active(r, now)) c.keys.delete(id);
  }

  private refuse(reason: KeyAnnouncementRefusal): KeyAnnouncementResult {
    this.stats.announcementsRefused[reason]++;
    return { accepted: false, reason };
  }
}

function active(r: KeyRecord, now: number): boolean {
  return r.expiresAt === undefined || now < r.expiresAt;
}

function positiveInt(v: number, name: string): number {
  if (!Number.isSafeInteger(v) || v < 1) throw MpregError.invalid(`${name} must be a positive integer`, name);
  return v;
}
