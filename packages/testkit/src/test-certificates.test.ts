import { X509Certificate, createPrivateKey } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { makeTestCertificates, opensslMissingReason } from "./test-certificates.js";

const missing = opensslMissingReason();
const dir = mkdtempSync(join(tmpdir(), "mpreg-certs-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe.skipIf(missing !== undefined)(`makeTestCertificates${missing ? ` (skipped: ${missing})` : ""}`, () => {
  it("makes a CA that signed a server certificate for localhost/127.0.0.1 and a client certificate", () => {
    const t = makeTestCertificates(dir);
    const ca = new X509Certificate(t.caCert);
    const server = new X509Certificate(t.serverCert);
    const client = new X509Certificate(t.clientCert);
    expect(ca.ca).toBe(true);
    expect(server.verify(ca.publicKey)).toBe(true);
    expect(client.verify(ca.publicKey)).toBe(true);
    expect(server.checkHost("localhost")).toBe("localhost");
    expect(server.checkIP("127.0.0.1")).toBe("127.0.0.1");
    expect(server.checkPrivateKey(createPrivateKey(t.serverKey))).toBe(true);
    expect(client.checkPrivateKey(createPrivateKey(t.clientKey))).toBe(true);
    // A second call makes an unrelated CA.
    const other = makeTestCertificates(join(dir, "other"));
    expect(server.verify(new X509Certificate(other.caCert).publicKey)).toBe(false);
  });
});
