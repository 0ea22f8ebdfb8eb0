/**
 * `MpregClient.connect` over wss://: the `tls` option (CA, client certificate for mutual TLS),
 * a node the client cannot verify, and option checks.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { decodeFrame, encodeFrame, type Encoding } from "@mpreg/envelope";
import { makeTestCertificates, opensslMissingReason, type TestCertificates } from "@mpreg/testkit";
import { createWsListener, type ListenerTlsOptions } from "@mpreg/transport";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { MpregClient } from "./client.js";

const missing = opensslMissingReason();
let certs: TestCertificates;
let dir: string;
beforeAll(() => {
  if (missing !== undefined) return;
  dir = mkdtempSync(join(tmpdir(), "mpreg-client-tls-"));
  certs = makeTestCertificates(dir);
});
afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

/** A node that answers `echo` only, behind a TLS listener. */
async function tlsNode(tls: ListenerTlsOptions): Promise<string> {
  const listener = createWsListener({ pingIntervalMs: 0, tls });
  listener.onConnection((conn) => {
    conn.onMessage((data, isBinary) => {
      const enc: Encoding = isBinary ? "msgpack" : "json";
      const d = decodeFrame(data, enc);
      if (!d.ok || d.frame.role !== "rpc") return;
      const r: Record<string, unknown> = {};
      for (const c of d.frame.cmds) r[c.name] = (c.args ?? [])[0];
      conn.send(encodeFrame({ role: "rpc-response", u: d.frame.u, r, error: null }, enc));
    });
  });
  const { url } = await listener.listen({ port: 0 });
  cleanups.push(() => listener.close());
  return url;
}

async function connect(url: string, opts: Parameters<typeof MpregClient.connect>[1]): Promise<MpregClient> {
  const c = await MpregClient.connect(url, { discovery: false, reconnect: false, ...opts });
  cleanups.push(() => c.close());
  return c;
}

describe.skipIf(missing !== undefined)(`MpregClient over wss://${missing ? ` (skipped: ${missing})` : ""}`, () => {
  it("calls over wss:// with the CA, and with a client certificate under mutual TLS", async () => {
    const url = await tlsNode({ cert: certs.serverCert, key: certs.serverKey });
    expect(await (await connect(url, { tls: { ca: certs.caCert } })).call("echo", [42])).toBe(42);
    const mutual = await tlsNode({ cert: certs.serverCert, key: certs.serverKey, ca: certs.caCert, requestClientCert: true });
    const c = await connect(mutual, { tls: { ca: certs.caCert, cert: certs.clientCert, key: certs.clientKey } });
    expect(await c.call("echo", ["mutual"])).toBe("mutual");
  });

  it("fails with a certificate error without the CA, and is refused without a client certificate", async () => {
    const url = await tlsNode({ cert: certs.serverCert, key: certs.serverKey, ca: certs.caCert, requestClientCert: true });
    await expect(connect(url, {})).rejects.toMatchObject({ code: 1005, details: { tls_error: expect.stringMatching(/^(SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE)$/) } });
    await expect(connect(url, { tls: { ca: certs.caCert } })).rejects.toMatchObject({ message: expect.stringMatching(/TLS|socket hang up|ECONNRESET/) });
  });

  it("checks the tls option (1002 naming it)", async () => {
    await expect(MpregClient.connect("wss://127.0.0.1:1", { tls: { cert: certs.clientCert } })).rejects.toMatchObject({ code: 1002, details: { path: "tls.key" } });
    await expect(MpregClient.connect("wss://127.0.0.1:1", { tls: { ca: certs.caCert }, transport: { tls: { ca: certs.caCert } } })).rejects.toMatchObject({ code: 1002, details: { path: "tls" } });
  });
});
