/**
 * Ed25519 signatures of federation control messages (route updates, key announcements,
 * adjacency announcements) with `node:crypto`, over a canonical byte encoding defined here.
 *
 * Canonical encoding: the UTF-8 bytes of a domain tag line (`mpreg-route-update/1`,
 * `mpreg-route-key/1` or `mpreg-adjacency/1`), a newline, and `JSON.stringify` of a fixed-order
 * array of the message's signed fields (see each function). Every number in it is an integer
 * (validation refuses others), so the text is the same in any language that writes integers
 * in decimal and escapes strings as JSON.stringify does (`"`, `\\`, control characters and
 * lone surrogates escaped; everything else as is). Lists keep the order they were sent in.
 * The domain tag stops a signature over one kind of message from passing as another.
 *
 * Keys on the wire: the raw 32-byte public key, base64url without padding (the JWK `x`).
 * A key id is the first 8 bytes of SHA-256 of the raw public key, as 16 lowercase hex digits.
 */
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from "node:crypto";
import { MpregError } from "@mpreg/envelope";
import type { PrefixList } from "./prefix-filter.js";
import type { RouteSignature, RouteUpdate } from "./route-update.js";
import type { Offers } from "./service-filter.js";

// DER prefix of a PKCS#8 Ed25519 private key; the 32-byte seed follows it.
const PKCS8_ED25519_PREFIX = Buffer.from("302e020100300506032b657004220420", "hex");

const encoder = new TextEncoder();

function listArr(l: PrefixList | undefined): unknown {
  return l === undefined ? null : [l.allow ?? null, l.deny ?? null];
}

function offersArr(o: Offers | undefined): unknown {
  return o === undefined ? null : [listArr(o.functions), listArr(o.topics), listArr(o.queues)];
}

/**
 * The bytes a route update's signature covers: tag `mpreg-route-update/1`, then
 * `[advertiser, to, epoch, seq, ttl_ms, full, [[destination, path, metric, offers]...],
 * withdrawn]` where `offers` is `null` or `[functions, topics, queues]`, each `null` or
 * `[allow|null, deny|null]`. `sig` is not covered.
 */
export function routeUpdateSigningBytes(u: RouteUpdate): Uint8Array {
  const body = [
    u.advertiser,
    u.to,
    u.epoch,
    u.seq,
    u.ttl_ms,
    u.full,
    u.routes.map((r) => [r.destination, r.path, r.metric, offersArr(r.offers)]),
    u.withdrawn,
  ];
  return encoder.encode(`mpreg-route-update/1\n${JSON.stringify(body)}`);
}

function b64urlDecode(s: string): Buffer | undefined {
  if (!/^[A-Za-z0-9_-]*$/.test(s)) return undefined;
  return Buffer.from(s, "base64url");
}

/** The key id of a public key (base64url raw key): 16 hex digits of its SHA-256. */
export function routeKeyId(publicKey: string): string {
  const raw = b64urlDecode(publicKey);
  if (raw === undefined || raw.length !== 32) throw MpregError.invalid("public key must be 32 bytes, base64url", "public_key");
  return createHash("sha256").update(raw).digest("hex").slice(0, 16);
}

/**
 * Imports a public key (base64url of the raw 32 bytes).
 * @throws {MpregError} 1002 when it is not a valid Ed25519 public key.
 */
export function importPublicKey(publicKey: string, path = "public_key"): KeyObject {
  const raw = b64urlDecode(publicKey);
  if (raw === undefined || raw.length !== 32) throw MpregError.invalid(`${path} must be 32 bytes, base64url`, path);
  try {
    return createPublicKey({ key: { kty: "OKP", crv: "Ed25519", x: publicKey }, format: "jwk" });
  } catch {
    throw MpregError.invalid(`${path} is not an Ed25519 public key`, path);
  }
}

/** True when `signature` (base64url) is a valid signature of `bytes` under `key`; never throws. */
export function verifyBytes(key: KeyObject, bytes: Uint8Array, signature: string): boolean {
  const sig = b64urlDecode(signature);
  if (sig === undefined || sig.length !== 64) return false;
  try {
    return verify(null, bytes, key, sig);
  } catch {
    return false;
  }
}

/** A freshly generated key: the private seed and public key (both base64url) and its id. */
export interface GeneratedRouteKey {
  /** The 32-byte private seed: what `federation.keys.signingKey` holds. Keep it secret. */
  seed: string;
  /** The public key other clusters trust. */
  publicKey: string;
  keyId: string;
}

/** Generates an Ed25519 key for route signing. */
export function generateRouteKey(): GeneratedRouteKey {
  const { privateKey } = generateKeyPairSync("ed25519");
  const jwk = privateKey.export({ format: "jwk" });
  const seed = jwk.d as string;
  const publicKey = jwk.x as string;
  return { seed, publicKey, keyId: routeKeyId(publicKey) };
}

/** A cluster's signing key: signs the control messages this cluster originates or relays. */
export class RouteSigner {
  /** Base64url raw public key. */
  readonly publicKey: string;
  readonly keyId: string;

  private constructor(
    readonly clusterId: string,
    private readonly key: KeyObject,
  ) {
    this.publicKey = createPublicKey(key).export({ format: "jwk" }).x as string;
    this.keyId = routeKeyId(this.publicKey);
  }

  /** A signer with a new random key. */
  static generate(clusterId: string): RouteSigner {
    return new RouteSigner(clusterId, generateKeyPairSync("ed25519").privateKey);
  }

  /**
   * A signer from a 32-byte private seed (base64url), as configured.
   * @throws {MpregError} 1002 when the seed is malformed.
   */
  static fromSeed(clusterId: string, seed: string, path = "signingKey"): RouteSigner {
    const raw = b64urlDecode(seed);
    if (raw === undefined || raw.length !== 32) throw MpregError.invalid(`${path} must be a 32-byte Ed25519 seed, base64url`, path);
    const key = createPrivateKey({ key: Buffer.concat([PKCS8_ED25519_PREFIX, raw]), format: "der", type: "pkcs8" });
    return new RouteSigner(clusterId, key);
  }

  /** Signs arbitrary canonical bytes. */
  sign(bytes: Uint8Array): RouteSignature {
    return { key_id: this.keyId, value: sign(null, bytes, this.key).toString("base64url") };
  }

  /** A copy of `u` with this key's signature. */
  signUpdate(u: RouteUpdate): RouteUpdate {
    const { sig: _old, ...rest } = u;
    return { ...rest, sig: this.sign(routeUpdateSigningBytes(rest)) };
  }
}
