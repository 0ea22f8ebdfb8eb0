import { mkdtempSync, rmSync } from "node:fs";
import https from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { makeTestCertificates, opensslMissingReason, type TestCertificates } from "@mpreg/testkit";
import WebSocket from "ws";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { waitFor } from "./connection.compliance.js";
import type { Connection } from "./connection.js";
import { connectWs } from "./client-connection.js";
import { checkClientTls, checkListenerTls } from "./tls.js";
import { createWsListener, type UpgradeInfo, type WsListener, type WsListenerOptions } from "./ws-listener.js";

const missing = opensslMissingReason();
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

let certs: TestCertificates;
let other: TestCertificates;
let dir: string;
beforeAll(() => {
  if (missing !== undefined) return;
  dir = mkdtempSync(join(tmpdir(), "mpreg-tls-"));
  certs = makeTestCertificates(join(dir, "a"));
  other = makeTestCertificates(join(dir, "b"));
});
afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function start(tls: WsListenerOptions["tls"], extra: WsListenerOptions = {}): Promise<{ listener: WsListener; url: string; infos: UpgradeInfo[]; conns: Connection[] }> {
  const listener = createWsListener({ pingIntervalMs: 0, ...extra, ...(tls ? { tls } : {}) });
  const infos: UpgradeInfo[] = [];
  const conns: Connection[] = [];
  listener.onConnection((c, info) => {
    infos.push(info);
    conns.push(c);
    c.onMessage((d) => c.send(d)); // echo
  });
  const { url } = await listener.listen({ port: 0 });
  cleanups.push(() => listener.close());
  return { listener, url, infos, conns };
}

async function echo(url: string, options: Parameters<typeof connectWs>[1]): Promise<unknown> {
  const c = await connectWs(url, { reconnect: false, ...options });
  cleanups.push(() => c.close());
  const got = new Promise((resolve) => c.onMessage((d) => resolve(d)));
  c.send("over tls");
  return got;
}

describe.skipIf(missing !== undefined)(`wss:// listener and client${missing ? ` (skipped: ${missing})` : ""}`, () => {
  it("round-trips over wss:// with the CA; the listener's URL says wss://", async () => {
    const { url, infos } = await start({ cert: certs.serverCert, key: Buffer.from(certs.serverKey) });
    expect(url).toMatch(/^wss:\/\/127\.0\.0\.1:\d+$/);
    expect(await echo(url, { tls: { ca: certs.caCert } })).toBe("over tls");
    // By name too (the certificate holds DNS:localhost), and with the CA as bytes.
    expect(await echo(url.replace("127.0.0.1", "localhost"), { tls: { ca: new TextEncoder().encode(certs.caCert) } })).toBe("over tls");
    expect(infos[0]!.clientCertificate).toBeUndefined();
  });

  it("refuses a server whose certificate the client cannot verify: no CA, a wrong CA, a wrong name", async () => {
    const { url, listener, conns } = await start({ cert: certs.serverCert, key: certs.serverKey });
    // The listener sends its certificate alone (no chain): "unable to verify the first certificate".
    await expect(connectWs(url, { reconnect: false })).rejects.toMatchObject({ code: 1005, details: { tls_error: "UNABLE_TO_VERIFY_LEAF_SIGNATURE" } });
    await expect(connectWs(url, { reconnect: false, tls: { ca: other.caCert } })).rejects.toMatchObject({
      code: 1005,
      message: expect.stringMatching(/TLS: unable to verify the first certificate \(UNABLE_TO_VERIFY_LEAF_SIGNATURE\)/),
    });
    await expect(connectWs(url, { reconnect: false, tls: { ca: certs.caCert, servername: "node.example.com" } })).rejects.toMatchObject({
      code: 1005,
      details: { tls_error: "ERR_TLS_CERT_ALTNAME_INVALID" },
    });
    await waitFor(() => listener.stats.tlsHandshakeFailures === 3, 5000, "three failed handshakes counted");
    expect(conns).toHaveLength(0);
    // rejectUnauthorized: false skips the check (tests only).
    expect(await echo(url, { tls: { rejectUnauthorized: false } })).toBe("over tls");
  });

  it("refuses a plain ws:// client on a TLS port, and a wss:// client on a plain port", async () => {
    const tlsSide = await start({ cert: certs.serverCert, key: certs.serverKey });
    await expect(connectWs(tlsSide.url.replace("wss:", "ws:"), { reconnect: false })).rejects.toMatchObject({ code: 1005 });
    await waitFor(() => tlsSide.listener.stats.tlsHandshakeFailures === 1, 5000, "plain HTTP counted");
    const plain = await start(undefined);
    expect(plain.url).toMatch(/^ws:\/\//);
    await expect(connectWs(plain.url.replace("ws:", "wss:"), { reconnect: false, tls: { ca: certs.caCert } })).rejects.toMatchObject({ code: 1005 });
  });

  it("mutual TLS: requires a client certificate signed by the CA and reports it to the handler", async () => {
    const { url, infos, listener } = await start({ cert: certs.serverCert, key: certs.serverKey, ca: certs.caCert, requestClientCert: true });
    await expect(connectWs(url, { reconnect: false, tls: { ca: certs.caCert } })).rejects.toMatchObject({
      code: 1006,
      details: { tls_error: "ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED" },
    });
    // A certificate from another CA: the server ends the handshake (reset or an alert, by timing).
    await expect(connectWs(url, { reconnect: false, tls: { ca: certs.caCert, cert: other.clientCert, key: other.clientKey } })).rejects.toMatchObject({
      code: expect.toBeOneOf([1005, 1006]),
    });
    await waitFor(() => listener.stats.tlsHandshakeFailures === 2, 5000, "two refused client certificates counted");
    expect(infos).toHaveLength(0);
    expect(await echo(url, { tls: { ca: certs.caCert, cert: certs.clientCert, key: certs.clientKey } })).toBe("over tls");
    expect(infos[0]!.clientCertificate?.subject).toBe("CN=mpreg-test-client");
    expect(infos[0]!.clientCertificate?.fingerprint256).toMatch(/^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
  });

  it("reconnects over wss:// with the same TLS options", async () => {
    const { url, conns } = await start({ cert: certs.serverCert, key: certs.serverKey, ca: certs.caCert, requestClientCert: true });
    const c = await connectWs(url, { reconnect: { initialDelayMs: 5, maxDelayMs: 20 }, tls: { ca: certs.caCert, cert: certs.clientCert, key: certs.clientKey } });
    cleanups.push(() => c.close());
    let opens = 0;
    c.onOpen(() => opens++);
    await waitFor(() => conns.length === 1);
    conns[0]!.close(4000, "kicked");
    await waitFor(() => opens === 1, 5000, "reconnect");
    const got = new Promise((resolve) => c.onMessage((d) => resolve(d)));
    c.send("again");
    expect(await got).toBe("again");
  });

  it("serves onHttpRequest over HTTPS on the same port", async () => {
    const { listener } = await start({ cert: certs.serverCert, key: certs.serverKey }, { onHttpRequest: (_req, res) => res.end("hello") });
    const body = await new Promise<string>((resolve, reject) => {
      https
        .get({ host: "127.0.0.1", port: listener.address!.port, path: "/health", ca: certs.caCert }, (res) => {
          let s = "";
          res.setEncoding("utf8");
          res.on("data", (d: string) => (s += d));
          res.on("end", () => resolve(s));
        })
        .on("error", reject);
    });
    expect(body).toBe("hello");
  });

  it("drops a TLS handshake that does not complete within firstFrameTimeoutMs", async () => {
    const { listener } = await start({ cert: certs.serverCert, key: certs.serverKey }, { firstFrameTimeoutMs: 200 });
    const net = await import("node:net");
    const sock = net.connect(listener.address!.port, "127.0.0.1");
    cleanups.push(() => void sock.destroy());
    sock.on("error", () => {});
    const t0 = Date.now();
    await new Promise<void>((resolve) => sock.once("close", () => resolve()));
    expect(Date.now() - t0).toBeLessThan(3000);
    await waitFor(() => listener.stats.tlsHandshakeFailures === 1, 5000, "timeout counted");
  });
});

describe.skipIf(missing !== undefined)(`TLS option validation${missing ? ` (skipped: ${missing})` : ""}`, () => {
  it.each([
    ["no key", () => ({ cert: certs.serverCert }), /tls\.key is required/, "tls.key"],
    ["a number as cert", () => ({ cert: 42, key: certs.serverKey }), /tls\.cert must be PEM text/, "tls.cert"],
    ["garbage cert", () => ({ cert: "not a certificate", key: certs.serverKey }), /tls\.cert is not a PEM certificate/, "tls.cert"],
    ["cert and key swapped", () => ({ cert: certs.serverKey, key: certs.serverCert }), /tls\.cert is not a PEM certificate/, "tls.cert"],
    ["key given a certificate", () => ({ cert: certs.serverCert, key: certs.caCert }), /were cert and key swapped/, "tls.key"],
    ["a truncated certificate", () => ({ cert: certs.serverCert.slice(0, 200), key: certs.serverKey }), /tls\.cert holds no complete PEM certificate/, "tls.cert"],
    ["a damaged certificate", () => ({ cert: certs.serverCert.replace(/\n[A-Za-z0-9+/]{20}/, "\n!!!!!!!!!!!!!!!!!!!!"), key: certs.serverKey }), /tls\.cert: certificate 1 cannot be read/, "tls.cert"],
    ["a damaged key", () => ({ cert: certs.serverCert, key: certs.serverKey.replace(/\n[A-Za-z0-9+/]{20}/, "\n!!!!!!!!!!!!!!!!!!!!") }), /tls\.key cannot be read/, "tls.key"],
    ["a key of another certificate", () => ({ cert: certs.serverCert, key: certs.clientKey }), /tls\.key is not the private key of tls\.cert/, "tls.key"],
    ["a garbage CA", () => ({ cert: certs.serverCert, key: certs.serverKey, ca: "garbage" }), /tls\.ca is not a PEM certificate/, "tls.ca"],
    ["requestClientCert without a CA", () => ({ cert: certs.serverCert, key: certs.serverKey, requestClientCert: true }), /requestClientCert needs tls\.ca/, "tls.ca"],
    ["requestClientCert not a boolean", () => ({ cert: certs.serverCert, key: certs.serverKey, ca: certs.caCert, requestClientCert: "yes" }), /must be a boolean/, "tls.requestClientCert"],
    ["an unknown option", () => ({ cert: certs.serverCert, key: certs.serverKey, passphrase: "x" }), /tls\.passphrase is not a TLS option/, "tls.passphrase"],
  ])("refuses a listener with %s (1002 naming the option)", (_name, tls, message, path) => {
    expect(() => createWsListener({ tls: tls() as never })).toThrow(message);
    expect(() => createWsListener({ tls: tls() as never })).toThrow(expect.objectContaining({ code: 1002, details: expect.objectContaining({ path }) }));
  });

  it("refuses an expired certificate at creation", () => {
    const later = Date.now() + 10 * 86_400_000;
    expect(() => checkListenerTls({ cert: certs.serverCert, key: certs.serverKey }, "tls", later)).toThrow(/tls\.cert: certificate 1 \(CN=localhost\) expired on/);
    expect(() => checkClientTls({ ca: certs.caCert }, "peerTls", later)).toThrow(/peerTls\.ca: certificate 1 \(CN=mpreg-test-ca\) expired/);
  });

  it("checks client options: shape in connectWs, contents in checkClientTls", async () => {
    await expect(connectWs("wss://127.0.0.1:1", { tls: { cert: certs.clientCert } })).rejects.toMatchObject({ code: 1002, details: { path: "tls.key" } });
    await expect(connectWs("wss://127.0.0.1:1", { tls: { ca: "nope" } })).rejects.toMatchObject({ code: 1002, details: { path: "tls.ca" } });
    await expect(connectWs("wss://127.0.0.1:1", { tls: { rejectUnauthorized: "no" as never } })).rejects.toMatchObject({ code: 1002, details: { path: "tls.rejectUnauthorized" } });
    await expect(connectWs("wss://127.0.0.1:1", { tls: { servername: "" } })).rejects.toMatchObject({ code: 1002, details: { path: "tls.servername" } });
    await expect(connectWs("wss://127.0.0.1:1", { tls: { ca: certs.caCert }, WebSocket: WebSocket as never })).rejects.toMatchObject({
      code: 1002,
      message: expect.stringMatching(/Node client only/),
    });
    expect(() => checkClientTls({ cert: certs.clientCert, key: certs.serverKey })).toThrow(/tls\.key is not the private key of tls\.cert/);
    expect(() => checkClientTls({ ca: certs.caCert, cert: certs.clientCert, key: certs.clientKey })).not.toThrow();
  });

  it("reports a key OpenSSL cannot load at the dial as 1002, not as unreachable", async () => {
    const { url } = await start({ cert: certs.serverCert, key: certs.serverKey });
    const damaged = certs.clientKey.replace(/\n[A-Za-z0-9+/]{20}/, "\n!!!!!!!!!!!!!!!!!!!!");
    await expect(connectWs(url, { reconnect: false, tls: { ca: certs.caCert, cert: certs.clientCert, key: damaged } })).rejects.toMatchObject({ code: 1002, details: { path: "tls" } });
  });
});
