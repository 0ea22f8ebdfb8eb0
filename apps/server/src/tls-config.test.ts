import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { makeTestCertificates, opensslMissingReason, type TestCertificates } from "@mpreg/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AccessPolicy } from "./access.js";
import { ConfigError, configFromObject, resolveConfig } from "./config.js";
import { loadNodeTls } from "./tls-config.js";

const missing = opensslMissingReason();
let dir: string;
let certs: TestCertificates;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "mpreg-tls-config-"));
  if (missing === undefined) certs = makeTestCertificates(join(dir, "certs"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("TLS configuration keys", () => {
  it("takes --tls-* flags; --tls-require-client-cert alone means true", () => {
    const c = resolveConfig(["--tls-cert", "s.crt", "--tls-key=s.key", "--tls-ca", "ca.crt", "--tls-require-client-cert", "--port", "0"], {});
    expect(c).toMatchObject({ tlsCert: "s.crt", tlsKey: "s.key", tlsCa: "ca.crt", tlsRequireClientCert: true, port: 0 });
    expect(resolveConfig(["--port", "0", "--tls-require-client-cert"], {}).tlsRequireClientCert).toBe(true);
    expect(resolveConfig(["--tls-require-client-cert", "false"], {}).tlsRequireClientCert).toBe(false);
    expect(resolveConfig(["--repair-wal"], {}).repairWal).toBe(true);
  });

  it("takes MPREG_TLS_* variables", () => {
    const c = resolveConfig([], { MPREG_TLS_CERT: "/c", MPREG_TLS_KEY: "/k", MPREG_TLS_CA: "/a", MPREG_TLS_REQUIRE_CLIENT_CERT: "1" });
    expect(c).toMatchObject({ tlsCert: "/c", tlsKey: "/k", tlsCa: "/a", tlsRequireClientCert: true });
  });

  it("takes the file's tls object (or flat keys), paths relative to the file", () => {
    const file = join(dir, "node.json");
    writeFileSync(file, JSON.stringify({ tls: { certFile: "certs/server.crt", keyFile: "/abs/server.key", caFile: "ca.crt", requireClientCert: true } }));
    expect(resolveConfig(["--config", file], {})).toMatchObject({ tlsCert: join(dir, "certs/server.crt"), tlsKey: "/abs/server.key", tlsCa: join(dir, "ca.crt"), tlsRequireClientCert: true });
    writeFileSync(file, JSON.stringify({ tlsCert: "x.crt" }));
    expect(resolveConfig(["--config", file], {}).tlsCert).toBe(join(dir, "x.crt"));
    writeFileSync(file, JSON.stringify({ tls: { cert: "x" } }));
    expect(() => resolveConfig(["--config", file], {})).toThrow(/unknown option "tls.cert" \(known: certFile, keyFile, caFile, requireClientCert\)/);
    writeFileSync(file, JSON.stringify({ tls: "on" }));
    expect(() => resolveConfig(["--config", file], {})).toThrow(/tls must be an object/);
  });

  it.each([
    [{ tlsCert: "/x" }, /--tls-cert \(tlsCert\) needs --tls-key \(tlsKey\)/],
    [{ tlsKey: "/x" }, /--tls-key \(tlsKey\) needs --tls-cert \(tlsCert\)/],
    [{ tlsCa: "/x" }, /--tls-ca \(tlsCa\) needs --tls-cert/],
    [{ tlsRequireClientCert: true }, /--tls-require-client-cert \(tlsRequireClientCert\) needs --tls-cert/],
    [{ tlsCert: "/x", tlsKey: "/y", tlsRequireClientCert: true }, /--tls-require-client-cert \(tlsRequireClientCert\) needs --tls-ca/],
    [{ tlsCert: "/no/such.crt", tlsKey: "/y" }, /--tls-cert \(tlsCert\): cannot read \/no\/such\.crt/],
  ])("refuses %j with an error naming the flag and the key", (options, message) => {
    expect(() => loadNodeTls(configFromObject(options))).toThrow(message);
    expect(() => loadNodeTls(configFromObject(options))).toThrow(ConfigError);
  });

  it("is off without any TLS key", () => {
    expect(loadNodeTls(configFromObject({}))).toBeUndefined();
  });
});

describe.skipIf(missing !== undefined)(`TLS files${missing ? ` (skipped: ${missing})` : ""}`, () => {
  it("reads the files into listener and peer options", () => {
    const tls = loadNodeTls(configFromObject({ tlsCert: certs.files.serverCert, tlsKey: certs.files.serverKey, tlsCa: certs.files.caCert, tlsRequireClientCert: true }));
    expect(tls?.listener).toEqual({ cert: certs.serverCert, key: certs.serverKey, ca: certs.caCert, requestClientCert: true });
    expect(tls?.peer).toEqual({ cert: certs.serverCert, key: certs.serverKey, ca: certs.caCert });
  });

  it("names the flag and the file of a bad certificate, key or CA", () => {
    const f = certs.files;
    expect(() => loadNodeTls(configFromObject({ tlsCert: f.serverKey, tlsKey: f.serverKey }))).toThrow(new RegExp(`--tls-cert \\(tlsCert\\) ${f.serverKey}: tls.cert is not a PEM certificate`));
    expect(() => loadNodeTls(configFromObject({ tlsCert: f.serverCert, tlsKey: f.clientKey }))).toThrow(/--tls-key \(tlsKey\) .*client\.key: tls\.key is not the private key of tls\.cert/);
    expect(() => loadNodeTls(configFromObject({ tlsCert: f.serverCert, tlsKey: f.serverKey, tlsCa: f.serverKey }))).toThrow(/--tls-ca \(tlsCa\) .*server\.key: tls\.ca is not a PEM certificate/);
  });
});

describe("the exposure warning", () => {
  it("considers tokens, the cluster secret and TLS", () => {
    const open = new AccessPolicy([]);
    const tokens = new AccessPolicy(["t"]);
    expect(open.exposureWarning("127.0.0.1", false, false)).toBeUndefined();
    expect(open.exposureWarning("0.0.0.0", false, false)).toMatch(/without --auth-tokens.*without --cluster-secret.*without --tls-cert\/--tls-key: traffic is plaintext/);
    expect(open.exposureWarning("0.0.0.0", true, true)).toMatch(/^SECURITY: listening on 0\.0\.0\.0 without --auth-tokens: anyone .* loopback-only\)\. See/);
    expect(tokens.exposureWarning("0.0.0.0", false, false)).toMatch(/^SECURITY: listening on 0\.0\.0\.0 without --tls-cert\/--tls-key: .*\(client tokens included\)/);
    expect(tokens.exposureWarning("0.0.0.0", true, true)).toBeUndefined();
  });
});
