/**
 * The dashboard in a real headless Chromium: three `mpreg start` processes with client tokens,
 * the page opened on the first node's monitoring port; it must show the three nodes, each with
 * its functions, and the request rate of the node. A screenshot is kept in
 * `apps/server/test-artifacts/dashboard.png` (gitignored).
 */
import { MpregClient } from "@mpreg/client";
import { startNode, waitFor, type NodeProcess } from "@mpreg/testkit";
import { existsSync, mkdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { chromium, type Browser, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CLI } from "./node-harness.js";

const FUNCS = fileURLToPath(new URL("./fixtures/cluster-functions.mjs", import.meta.url));
const ARTIFACTS = fileURLToPath(new URL("../test-artifacts/", import.meta.url));
/** The system Chromium (playwright-core downloads no browser). .ci/run installs it. */
const CHROMIUM = process.env["MPREG_CHROMIUM"] ?? "/usr/bin/chromium";
const COMMON = ["--cluster-id", "dash", "--auth-tokens", "t1", "--cluster-secret", "s3", "--gossip-probe-interval-ms", "100", "--gossip-probe-timeout-ms", "50"];

function start(name: string, funcs: string, extra: string[] = []): Promise<NodeProcess> {
  return startNode({
    bin: CLI,
    args: ["start", "--port", "0", "--name", name, "--functions", FUNCS, ...COMMON, ...extra],
    env: { MPREG_TEST_FUNCS: funcs },
    waitForMonitoring: extra.includes("--monitoring-port"),
  });
}

describe("the dashboard in headless Chromium", () => {
  let nodes: NodeProcess[] = [];
  let browser: Browser | undefined;
  let page: Page;
  let client: MpregClient;
  const pageErrors: string[] = [];

  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) {
      throw new Error(`no Chromium at ${CHROMIUM}: install it (apt-get install -y chromium, as .ci/run does) or set MPREG_CHROMIUM to its path`);
    }
    const n1 = await start("n1", "step1", ["--monitoring-port", "0"]);
    nodes.push(n1);
    nodes.push(...(await Promise.all([start("n2", "step2,work", ["--peers", n1.url]), start("n3", "step3,render", ["--peers", n1.url])])));
    client = await MpregClient.connect(n1.url, { token: "t1" });
    await waitFor(async () => ((await client.call("cluster_map")) as { nodes: unknown[] }).nodes.length === 3, {
      timeoutMs: 20_000,
      description: "n1 sees three nodes",
    });
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"] });
    page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    page.on("pageerror", (e) => pageErrors.push(e.message));
    page.on("console", (m) => {
      if (m.type() === "error") pageErrors.push(m.text());
    });
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await client?.close();
    await Promise.all(nodes.map((n) => n.stop()));
    nodes = [];
  });

  it("refuses the page without the token", async () => {
    const r = await fetch(`${nodes[0]!.monitoringUrl}/dashboard`);
    expect(r.status).toBe(401);
  });

  it("shows the three nodes, their functions, the links and the request rate", async () => {
    const response = await page.goto(`${nodes[0]!.monitoringUrl}/dashboard?token=t1&interval=500`);
    expect(response?.status()).toBe(200);
    await page.waitForFunction(() => document.querySelectorAll("[data-node-id]").length === 3, undefined, { timeout: 20_000 });
    const cards = await page.$$eval("[data-node-id]", (els) =>
      els.map((e) => ({ id: e.getAttribute("data-node-id"), fns: Array.from(e.querySelectorAll(".fn"), (f) => f.textContent), self: e.classList.contains("self") })),
    );
    expect(cards).toEqual([
      { id: "n1", fns: ["step1"], self: true },
      { id: "n2", fns: ["step2", "work"], self: false },
      { id: "n3", fns: ["render", "step3"], self: false },
    ]);
    expect(await page.textContent("#node-id")).toBe("n1");
    expect(await page.textContent("#cluster-id")).toBe("dash");
    // The graph draws every node and a link from n1 to each peer.
    expect((await page.$$eval("svg [data-node]", (els) => els.map((e) => e.getAttribute("data-node")))).sort()).toEqual(["n1", "n2", "n3"]);
    expect((await page.$$eval("svg [data-link]", (els) => els.map((e) => e.getAttribute("data-link")))).sort()).toEqual(["n1->n2", "n1->n3"]);
    expect(await page.$$eval("[data-function]", (els) => els.map((e) => e.getAttribute("data-function")))).toEqual(["render", "step1", "step2", "step3", "work"]);

    // Traffic through n1 shows up as a request rate above zero on the page.
    let stop = false;
    const traffic = (async () => {
      while (!stop) await client.call("step2", [1]);
    })();
    try {
      await page.waitForFunction(() => Number(document.querySelector("[data-rate=requests] .v")?.textContent) > 0, undefined, { timeout: 20_000 });
      await page.waitForFunction(() => Number(document.querySelector("[data-function=step2] td:last-child")?.textContent) > 0, undefined, { timeout: 20_000 });
    } finally {
      stop = true;
      await traffic;
    }
    expect(await page.textContent("#error")).toBe("");
    expect(await page.textContent("#conn")).toMatch(/^● connected to ws:\/\/127\.0\.0\.1:\d+/);
    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: `${ARTIFACTS}dashboard.png`, fullPage: true });
    expect(pageErrors).toEqual([]);
  }, 60_000);
});
