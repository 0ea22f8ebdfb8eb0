// Crash-test writer: plain JS (Node runs it directly) on the built package. It writes with
// fsync "always" (or the policy given) from several concurrent writers and prints one line per write *after* its
// promise resolved; the parent kills it with SIGKILL at a random moment and checks that every
// printed write survived. Usage: node crash-child.mjs <dir> <round> [<module url>] [file|sqlite] [always|batch]
const [dir, roundArg, entry = "../dist/index.js", backend = "file", fsync = "always"] = process.argv.slice(2);
// The parent may pass a private copy of the build, so a concurrent rebuild of dist/ cannot
// pull the module out from under a long run.
const { openBackend } = await import(entry);
const round = Number(roundArg);
const WRITERS = 4;
const KEYS_PER_WRITER = 20;
const te = new TextEncoder();
const td = new TextDecoder();
const say = (line) => process.stdout.write(line + "\n");

const be = await openBackend(
  backend === "file" ? { backend, dir, fsync, compactBytes: 48 * 1024 } : { backend, dir, fsync },
);
const kv = be.kv("crash");
const log = be.log("crash");
say("ready");

async function version(key) {
  const v = await kv.get(te.encode(key));
  return v === undefined ? 0 : Number(td.decode(v).split(":")[1]);
}

async function writer(w) {
  // Each key belongs to one writer, so its writes are sequential: after a crash its stored
  // version is the last acknowledged one or the one in flight.
  const next = new Map();
  for (let i = 0; i < KEYS_PER_WRITER; i++) next.set(`w${w}/k${i}`, (await version(`w${w}/k${i}`)) + 1);
  let batchVersion = (await version(`w${w}/b0`)) + 1;
  for (let n = 0; ; n++) {
    const pick = n % 5;
    if (pick < 3) {
      const key = `w${w}/k${(n * 7 + w) % KEYS_PER_WRITER}`;
      const v = next.get(key);
      await kv.put(te.encode(key), te.encode(`${key}:${v}:${"x".repeat((n % 4) * 100)}`));
      next.set(key, v + 1);
      say(`kv ${key} ${v}`);
    } else if (pick === 3) {
      // Three keys in one batch: after a crash they must hold the same version.
      const v = batchVersion++;
      await kv.batch([0, 1, 2].map((j) => ({ type: "put", key: te.encode(`w${w}/b${j}`), value: te.encode(`b:${v}`) })));
      say(`batch w${w} ${v}`);
    } else {
      const data = `${round}:${w}:${n}`;
      const index = await log.append([te.encode(data)]);
      say(`log ${index} ${data}`);
    }
  }
}

await Promise.all(Array.from({ length: WRITERS }, (_, w) => writer(w)));
