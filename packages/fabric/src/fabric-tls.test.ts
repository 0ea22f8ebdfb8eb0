/**
 * Peer links over wss:// with the default dialer: the fabric dials with its TLS options (the CA
 * and, for mutual TLS, its own certificate), and a fabric without a client certificate cannot
 * link to a listener that requires one.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { decodeFrame } from "@mpreg/envelope";
import { makeTestCertificates, opensslMissingReason, waitFor, type TestCertificates } from "@mpreg/testkit";
import { createWsListener, type ClientTlsOptions, type WsListener } from "@mpreg/transport";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { Fabric } from "./fabric.js";

const missing = opensslMissingReason();
const FAST = { probeIntervalMs: 100, probeTimeoutMs: 50 };
const SECRET = "s3cret";

let certs: TestCertificates;
let dir: string;
beforeAll(() => {
  if (missing !== undefined) return;
  dir = mkdtempSync(join(tmpdir(), "mpreg-fabric-tls-"));
  certs = makeTestCertificates(dir);
});
afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const stops: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (stops.length > 0) await stops.pop()!();
});

/** A fabric behind a TLS listener that hands `peer-hello` connections to it, as the node does. */
async function node(id: string, tls: ClientTlsOptions | undefined, seeds: string[] = []): Promise<{ fabric: Fabric; listener: WsListener; url: string }> {
  const listener = createWsListener({
    pingIntervalMs: 0,
    tls: { cert: certs.serverCert, key: certs.serverKey, ca: certs.caCert, requestClientCert: true },
  });
  let url = "";
  const fabric = new Fabric({ nodeId: id, clusterId: "c", secret: SECRET, urls: () => [url], gossip: FAST, seeds, ...(tls ? { tls } : {}) });
  listener.onConnection((conn) => {
    const off = conn.onMessage((data, isBinary) => {
      off();
      const d = decodeFrame(data, isBinary ? "msgpack" : "json");
      if (d.ok && d.frame.role === "peer-hello") fabric.adopt(conn, d.frame);
      else conn.close(4400, "not a peer");
    });
  });
  url = (await listener.listen({ port: 0 })).url;
  fabric.start();
  stops.push(async () => {
    await fabric.stop();
    await listener.close();
  });
  return { fabric, listener, url };
}

describe.skipIf(missing !== undefined)(`peer links over wss://${missing ? ` (skipped: ${missing})` : ""}`, () => {
  it("links two fabrics over mutual TLS with the node's CA, certificate and key", async () => {
    const tls = { ca: certs.caCert, cert: certs.serverCert, key: certs.serverKey };
    const a = await node("A", tls);
    expect(a.url).toMatch(/^wss:\/\//);
    const b = await node("B", tls, [a.url]);
    await waitFor(() => a.fabric.linkCount === 1 && b.fabric.linkCount === 1, { timeoutMs: 10_000, description: "A and B linked" });
    await waitFor(() => a.fabric.members().includes("B") && b.fabric.members().includes("A"), { timeoutMs: 10_000, description: "members" });
    expect(a.listener.stats.tlsHandshakeFailures).toBe(0);
  });

  it("cannot link without a client certificate, nor without the CA", async () => {
    const a = await node("A", { ca: certs.caCert, cert: certs.serverCert, key: certs.serverKey });
    const noCert = await node("B", { ca: certs.caCert }, [a.url]);
    const noCa = await node("C", { cert: certs.serverCert, key: certs.serverKey }, [a.url]);
    // Both keep retrying with backoff; each attempt fails the TLS handshake.
    await waitFor(() => a.listener.stats.tlsHandshakeFailures >= 4, { timeoutMs: 10_000, description: "refused handshakes" });
    expect(a.fabric.linkCount).toBe(0);
    expect(noCert.fabric.linkCount).toBe(0);
    expect(noCa.fabric.linkCount).toBe(0);
  });

  it("refuses TLS options it cannot load when it is built, naming the option", () => {
    expect(() => new Fabric({ nodeId: "X", clusterId: "c", urls: () => [], tls: { ca: "nope" } })).toThrow(expect.objectContaining({ code: 1002, details: expect.objectContaining({ path: "tls.ca" }) }));
    expect(() => new Fabric({ nodeId: "X", clusterId: "c", urls: () => [], tls: { cert: certs.serverCert, key: certs.clientKey } })).toThrow(/tls\.key is not the private key of tls\.cert/);
  });
});
