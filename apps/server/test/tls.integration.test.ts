/**
 * Nodes over wss:// with a test CA (made with openssl at test time): two `mpreg start`
 * processes form a cluster over TLS and a call on A runs on B; a client with the CA calls, one
 * without it fails with a certificate error. With mutual TLS (`--tls-require-client-cert`) the
 * nodes link with their own certificates, a client needs one too, and a peer without a client
 * certificate cannot link.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { MpregClient } from "@mpreg/client";
import { Fabric, PEER_UPGRADE_HEADER } from "@mpreg/fabric";
import { makeTestCertificates, opensslMissingReason, startNode, waitFor, type NodeProcess, type TestCertificates } from "@mpreg/testkit";
import { connectWs } from "@mpreg/transport";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { CLI } from "./node-harness.js";

const FUNCS = fileURLToPath(new URL("./fixtures/cluster-functions.mjs", import.meta.url));
const FAST = ["--gossip-probe-interval-ms", "100", "--gossip-probe-timeout-ms", "50"];
const SECRET = "tls-test-secret";
const missing = opensslMissingReason();

let dir: string;
let certs: TestCertificates;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "mpreg-tls-it-"));
  if (missing === undefined) certs = makeTestCertificates(join(dir, "ca"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const nodes: NodeProcess[] = [];
const clients: MpregClient[] = [];
const fabrics: Fabric[] = [];
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await Promise.all(fabrics.splice(0).map((f) => f.stop()));
  await Promise.all(nodes.splice(0).map((n) => n.stop()));
});

function tlsFlags(mutual: boolean): string[] {
  const f = certs.files;
  return ["--tls-cert", f.serverCert, "--tls-key", f.serverKey, "--tls-ca", f.caCert, ...(mutual ? ["--tls-require-client-cert"] : [])];
}

async function start(name: string, funcs: string, extra: string[]): Promise<NodeProcess> {
  const n = await startNode({
    bin: CLI,
    args: ["start", "--port", "0", "--name", name, "--cluster-id", "tls", "--cluster-secret", SECRET, "--functions", FUNCS, ...FAST, ...extra],
    env: { MPREG_TEST_FUNCS: funcs },
  });
  nodes.push(n);
  return n;
}

async function connect(url: string, options: Parameters<typeof MpregClient.connect>[1]): Promise<MpregClient> {
  const c = await MpregClient.connect(url, { reconnect: false, ...options });
  clients.push(c);
  return c;
}

/** A two-node cluster over wss://: B dials A; `third_only` is registered on B only. */
async function cluster(mutual: boolean, clientTls: Parameters<typeof connect>[1]): Promise<{ a: NodeProcess; b: NodeProcess; client: MpregClient }> {
  const a = await start("A", "step1", tlsFlags(mutual));
  expect(a.url).toMatch(/^wss:\/\/127\.0\.0\.1:\d+$/);
  const b = await start("B", "third_only", [...tlsFlags(mutual), "--peers", a.url]);
  const client = await connect(a.url, clientTls);
  await waitFor(
    async () => ((await client.call("catalog_query", [{ entry_type: "functions", name: "third_only" }])) as { items: unknown[] }).items.length === 1,
    { timeoutMs: 20_000, description: "B's function in A's catalog" },
  );
  return { a, b, client };
}

describe.skipIf(missing !== undefined)(`a cluster over wss://${missing ? ` (skipped: ${missing})` : ""}`, () => {
  it("forms over TLS; a call on A runs on B; a client without the CA fails with a certificate error", async () => {
    const { a, b, client } = await cluster(false, { tls: { ca: certs.caCert } });
    expect(await client.call("third_only")).toBe("B");
    // Both nodes advertise their wss:// URLs.
    const map = (await client.call("cluster_map")) as { nodes: { node_id: string; urls: string[] }[] };
    expect(map.nodes.map((n) => [n.node_id, n.urls]).sort()).toEqual([
      ["A", [a.url]],
      ["B", [b.url]],
    ]);
    expect(b.url).toMatch(/^wss:\/\//);
    await expect(MpregClient.connect(a.url, { reconnect: false })).rejects.toMatchObject({
      code: 1005,
      details: { tls_error: expect.stringMatching(/^(SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE)$/) },
    });
    // Nor over plain ws:// on the TLS port.
    await expect(MpregClient.connect(a.url.replace("wss:", "ws:"), { reconnect: false })).rejects.toMatchObject({ code: 1005 });
  });

  it("mutual TLS: nodes link with their own certificates, a client needs one, a peer without one cannot link", async () => {
    const { a, client } = await cluster(true, { tls: { ca: certs.caCert, cert: certs.clientCert, key: certs.clientKey } });
    expect(await client.call("third_only")).toBe("B");
    // A client with the CA but no certificate is refused during the TLS handshake.
    await expect(MpregClient.connect(a.url, { reconnect: false, tls: { ca: certs.caCert } })).rejects.toMatchObject({ code: expect.toBeOneOf([1005, 1006]) });
    // A peer (right cluster secret, trusts the CA) without a client certificate: every dial fails in TLS.
    const failures: Error[] = [];
    const peer = new Fabric({
      nodeId: "X",
      clusterId: "tls",
      secret: SECRET,
      urls: () => [],
      seeds: [a.url],
      gossip: { probeIntervalMs: 100, probeTimeoutMs: 50 },
      dial: (url) =>
        connectWs(url, { reconnect: { initialDelayMs: 50, maxDelayMs: 200 }, headers: { [PEER_UPGRADE_HEADER]: "1" }, tls: { ca: certs.caCert } }).catch((e: Error) => {
          failures.push(e);
          throw e;
        }),
    });
    fabrics.push(peer);
    peer.start();
    await waitFor(() => failures.length >= 3, { timeoutMs: 15_000, description: "three refused dials" });
    expect(failures.every((e) => /TLS|socket hang up|ECONNRESET/.test(e.message))).toBe(true);
    expect(peer.linkCount).toBe(0);
    const map = (await client.call("cluster_map")) as { nodes: { node_id: string }[] };
    expect(map.nodes.map((n) => n.node_id).sort()).toEqual(["A", "B"]);
  });

  it("refuses to start with a TLS file it cannot use, naming the flag (exit 2)", async () => {
    const f = certs.files;
    // Exit code 2: a configuration error, found when the node starts.
    await expect(start("C", "", ["--tls-cert", f.serverCert, "--tls-key", f.clientKey])).rejects.toMatchObject({
      message: expect.stringMatching(/code 2,/),
      details: { stderr: expect.stringMatching(/--tls-key \(tlsKey\) .*client\.key: tls\.key is not the private key of tls\.cert/) },
    });
    await expect(start("C", "", ["--tls-cert", join(dir, "none.crt"), "--tls-key", f.serverKey])).rejects.toMatchObject({
      details: { stderr: expect.stringMatching(/--tls-cert \(tlsCert\): cannot read .*none\.crt/) },
    });
  });
});
