import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { KeyRegistry, keyAnnouncementSigningBytes, signKeyAnnouncement } from "./key-registry.js";
import { RouteSigner, generateRouteKey, routeKeyId, routeUpdateSigningBytes, verifyBytes, importPublicKey } from "./route-signing.js";
import type { RouteUpdate } from "./route-update.js";

const update: RouteUpdate = {
  v: 1,
  advertiser: "a",
  to: "b",
  epoch: 5,
  seq: 1,
  ttl_ms: 1000,
  full: true,
  routes: [{ destination: "a", path: ["a"], metric: 0, offers: { functions: { allow: ["x."] } } }],
  withdrawn: ["z"],
};

describe("route signing", () => {
  it("signs and verifies over the canonical bytes; any change breaks it", () => {
    const s = RouteSigner.generate("a");
    const signed = s.signUpdate(update);
    const key = importPublicKey(s.publicKey);
    expect(signed.sig?.key_id).toBe(s.keyId);
    expect(verifyBytes(key, routeUpdateSigningBytes(signed), signed.sig!.value)).toBe(true);
    // The signature survives a JSON round trip (what the wire does).
    const copy = JSON.parse(JSON.stringify(signed)) as RouteUpdate;
    expect(verifyBytes(key, routeUpdateSigningBytes(copy), copy.sig!.value)).toBe(true);
    for (const tamper of [
      { ...signed, seq: 2 },
      { ...signed, to: "c" },
      { ...signed, full: false },
      { ...signed, withdrawn: [] },
      { ...signed, routes: [{ ...update.routes[0]!, metric: 1 }] },
      { ...signed, routes: [{ ...update.routes[0]!, offers: undefined }] },
    ]) {
      expect(verifyBytes(key, routeUpdateSigningBytes(tamper as RouteUpdate), signed.sig!.value)).toBe(false);
    }
    expect(verifyBytes(key, routeUpdateSigningBytes(signed), "not base64!")).toBe(false);
    expect(verifyBytes(key, routeUpdateSigningBytes(signed), "")).toBe(false);
  });

  it("the canonical bytes are the documented text", () => {
    expect(new TextDecoder().decode(routeUpdateSigningBytes(update))).toBe(
      'mpreg-route-update/1\n["a","b",5,1,1000,true,[["a",["a"],0,[[["x."],null],null,null]]],["z"]]',
    );
  });

  it("a signer from a seed has the generated key's identity; bad seeds are refused", () => {
    const k = generateRouteKey();
    const s = RouteSigner.fromSeed("a", k.seed);
    expect(s.publicKey).toBe(k.publicKey);
    expect(s.keyId).toBe(k.keyId);
    expect(k.keyId).toMatch(/^[0-9a-f]{16}$/);
    expect(routeKeyId(k.publicKey)).toBe(k.keyId);
    expect(() => RouteSigner.fromSeed("a", "short", "federation.keys.signingKey")).toThrow(
      expect.objectContaining({ code: 1002, details: expect.objectContaining({ path: "federation.keys.signingKey" }) }),
    );
    expect(() => importPublicKey("AAAA")).toThrow(/32 bytes/);
  });
});

describe("KeyRegistry", () => {
  it("verifies only with keys trusted for the advertiser's cluster", () => {
    const a = RouteSigner.generate("a");
    const b = RouteSigner.generate("b");
    const reg = new KeyRegistry({ trusted: [{ clusterId: "a", publicKey: a.publicKey }] });
    const bytes = routeUpdateSigningBytes(update);
    expect(reg.verify("a", a.sign(bytes), bytes, 0)).toBe("ok");
    expect(reg.verify("a", undefined, bytes, 0)).toBe("unsigned");
    // b's key is not trusted for a, whatever it signs.
    expect(reg.verify("a", b.sign(bytes), bytes, 0)).toBe("unknown_key");
    // a key id of a with another key's signature.
    expect(reg.verify("a", { key_id: a.keyId, value: b.sign(bytes).value }, bytes, 0)).toBe("bad_signature");
    expect(reg.verify("b", a.sign(bytes), bytes, 0)).toBe("unknown_key");
    expect(reg.stats.verifyFailures).toEqual({ unsigned: 1, unknown_key: 2, bad_signature: 1 });
  });

  it("rotation: both keys verify during the overlap, only the new one after (original item 34)", () => {
    const k1 = RouteSigner.generate("a");
    const k2 = RouteSigner.generate("a");
    const reg = new KeyRegistry({ trusted: [{ clusterId: "a", publicKey: k1.publicKey }] });
    expect(reg.applyAnnouncement(signKeyAnnouncement(k1, k2.publicKey, 1, 20), 120)).toEqual({ accepted: true, keyId: k2.keyId });
    expect(reg.isTrusted("a", k1.keyId, 130)).toBe(true);
    expect(reg.isTrusted("a", k2.keyId, 130)).toBe(true);
    expect(reg.isTrusted("a", k1.keyId, 140)).toBe(false);
    expect(reg.isTrusted("a", k2.keyId, 150)).toBe(true);
    const bytes = routeUpdateSigningBytes(update);
    expect(reg.verify("a", k1.sign(bytes), bytes, 150)).toBe("unknown_key");
    expect(reg.keys("a").map((k) => k.source).sort()).toEqual(["announcement", "config"]);
    reg.purge(150);
    expect(reg.keys("a").map((k) => k.keyId)).toEqual([k2.keyId]);
  });

  it("refuses announcements not signed by a trusted key of that cluster, forged, replayed or malformed", () => {
    const k1 = RouteSigner.generate("a");
    const k2 = RouteSigner.generate("a");
    const self = RouteSigner.generate("a");
    const other = RouteSigner.generate("b");
    const reg = new KeyRegistry({ trusted: [{ clusterId: "a", publicKey: k1.publicKey }, { clusterId: "b", publicKey: other.publicKey }] });
    // Self-signed by the key it announces: not trusted.
    expect(reg.applyAnnouncement(signKeyAnnouncement(self, self.publicKey, 1, 0), 0)).toEqual({ accepted: false, reason: "untrusted_signer" });
    // Signed by a trusted key of another cluster, claiming cluster a.
    const cross = signKeyAnnouncement(other, k2.publicKey, 1, 0);
    expect(reg.applyAnnouncement({ ...cross, cluster_id: "a" }, 0)).toEqual({ accepted: false, reason: "untrusted_signer" });
    // Forged: a key id of k1 with a signature by someone else.
    const forged = signKeyAnnouncement(self, k2.publicKey, 1, 0);
    expect(reg.applyAnnouncement({ ...forged, sig: { key_id: k1.keyId, value: forged.sig.value } }, 0)).toEqual({
      accepted: false,
      reason: "bad_signature",
    });
    // Tampered: the signed key swapped.
    const good = signKeyAnnouncement(k1, k2.publicKey, 1, 100);
    expect(reg.applyAnnouncement({ ...good, public_key: self.publicKey }, 0)).toEqual({ accepted: false, reason: "bad_signature" });
    expect(reg.applyAnnouncement(good, 0)).toEqual({ accepted: true, keyId: k2.keyId });
    // Replay, or an older seq.
    expect(reg.applyAnnouncement(good, 0)).toEqual({ accepted: false, reason: "stale" });
    expect(reg.applyAnnouncement({ v: 2 }, 0)).toEqual({ accepted: false, reason: "invalid" });
    expect(reg.applyAnnouncement(null, 0)).toEqual({ accepted: false, reason: "invalid" });
    expect(reg.stats.announcementsRefused).toEqual({ invalid: 2, untrusted_signer: 2, bad_signature: 2, stale: 1 });
  });

  it("an expired key cannot announce a successor", () => {
    const k1 = RouteSigner.generate("a");
    const k2 = RouteSigner.generate("a");
    const reg = new KeyRegistry({ trusted: [{ clusterId: "a", publicKey: k1.publicKey, expiresAt: 100 }] });
    expect(reg.applyAnnouncement(signKeyAnnouncement(k1, k2.publicKey, 1, 0), 100)).toEqual({ accepted: false, reason: "untrusted_signer" });
    expect(reg.applyAnnouncement(signKeyAnnouncement(k1, k2.publicKey, 1, 0), 99)).toMatchObject({ accepted: true });
  });

  it("is bounded: keys per cluster (oldest-expiring evicted on rotation, config refused) and clusters", () => {
    const reg = new KeyRegistry({ maxKeysPerCluster: 2, maxClusters: 1 });
    const ks = Array.from({ length: 4 }, () => RouteSigner.generate("a"));
    reg.trust({ clusterId: "a", publicKey: ks[0]!.publicKey });
    reg.trust({ clusterId: "a", publicKey: ks[1]!.publicKey });
    expect(() => reg.trust({ clusterId: "a", publicKey: ks[2]!.publicKey })).toThrow(/more than 2 keys/);
    expect(() => reg.trust({ clusterId: "b", publicKey: ks[3]!.publicKey })).toThrow(/more than 1 clusters/);
    expect(reg.applyAnnouncement(signKeyAnnouncement(ks[0]!, ks[2]!.publicKey, 1, 1000), 0)).toMatchObject({ accepted: true });
    expect(reg.keys("a")).toHaveLength(2);
    expect(reg.isTrusted("a", ks[2]!.keyId, 0)).toBe(true);
  });

  it("the key announcement bytes are the documented text", () => {
    expect(new TextDecoder().decode(keyAnnouncementSigningBytes({ v: 1, cluster_id: "a", public_key: "K", seq: 3, overlap_ms: 60000 }))).toBe(
      'mpreg-route-key/1\n["a","K",3,60000]',
    );
  });

  /**
   * Model-based: whatever sequence of configuration, announcements (signed by trusted,
   * untrusted, expired or wrong-cluster keys, possibly tampered) and time steps, a key is
   * trusted exactly when the model says so, and the model trusts only configured keys and keys
   * announced by a key it trusted at that moment.
   */
  it("trusts a key only via configuration or a chain from a trusted key (model-based property)", () => {
    const pool = Array.from({ length: 6 }, (_, i) => RouteSigner.generate(i < 4 ? "a" : "b"));
    type Op =
      | { t: "config"; k: number; ttl: number | null }
      | { t: "announce"; signer: number; newKey: number; seqDelta: number; overlap: number; tamper: boolean; claim: "a" | "b" }
      | { t: "advance"; ms: number };
    const op: fc.Arbitrary<Op> = fc.oneof(
      fc.record({ t: fc.constant("config" as const), k: fc.nat(5), ttl: fc.option(fc.integer({ min: 1, max: 500 })) }),
      fc.record({
        t: fc.constant("announce" as const),
        signer: fc.nat(5),
        newKey: fc.nat(5),
        seqDelta: fc.integer({ min: -1, max: 2 }),
        overlap: fc.integer({ min: 0, max: 300 }),
        tamper: fc.boolean(),
        claim: fc.constantFrom("a" as const, "b" as const),
      }),
      fc.record({ t: fc.constant("advance" as const), ms: fc.integer({ min: 1, max: 200 }) }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 25 }), (ops) => {
        const reg = new KeyRegistry({ maxKeysPerCluster: 64 });
        // Model: cluster → keyId → expiry (Infinity: none); last seq per cluster.
        const model = new Map<string, Map<string, number>>();
        const seqs = new Map<string, number>();
        let now = 0;
        const trusted = (c: string, id: string): boolean => (model.get(c)?.get(id) ?? -Infinity) > now;
        for (const o of ops) {
          if (o.t === "advance") now += o.ms;
          else if (o.t === "config") {
            const s = pool[o.k]!;
            const exp = o.ttl === null ? Infinity : now + o.ttl;
            reg.trust({ clusterId: s.clusterId, publicKey: s.publicKey, ...(o.ttl === null ? {} : { expiresAt: exp }) });
            if (!model.has(s.clusterId)) model.set(s.clusterId, new Map());
            model.get(s.clusterId)!.set(s.keyId, exp);
          } else {
            const signer = pool[o.signer]!;
            const nk = pool[o.newKey]!;
            const seq = Math.max(1, (seqs.get(o.claim) ?? 0) + o.seqDelta);
            let ann = signKeyAnnouncement(signer, nk.publicKey, seq, o.overlap);
            ann = { ...ann, cluster_id: o.claim };
            if (o.tamper) ann = { ...ann, overlap_ms: ann.overlap_ms + 1 };
            const res = reg.applyAnnouncement(ann, now);
            // Signed bytes cover cluster_id: a claim for another cluster than the signer's breaks the signature.
            const valid = !o.tamper && o.claim === signer.clusterId && trusted(o.claim, signer.keyId) && seq > (seqs.get(o.claim) ?? 0);
            expect(res.accepted).toBe(valid);
            if (valid) {
              seqs.set(o.claim, seq);
              const m = model.get(o.claim)!;
              for (const [id, e] of m) if (id !== nk.keyId) m.set(id, Math.min(e, now + o.overlap));
              m.set(nk.keyId, Infinity);
            }
          }
          for (const c of ["a", "b"]) for (const s of pool) expect(reg.isTrusted(c, s.keyId, now)).toBe(trusted(c, s.keyId));
        }
      }),
      { numRuns: 60 },
    );
  });
});
