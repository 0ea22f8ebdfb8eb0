import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/** PEM texts (and their file paths) of a throw-away CA and the certificates it signed. */
export interface TestCertificates {
  /** The CA's certificate: what a client (or a node verifying client certificates) trusts. */
  caCert: string;
  /** Server certificate for `localhost`, `127.0.0.1` and `::1`, signed by the CA (serverAuth and clientAuth). */
  serverCert: string;
  serverKey: string;
  /** Client certificate (CN `mpreg-test-client`, clientAuth), signed by the CA. */
  clientCert: string;
  clientKey: string;
  /** Where each PEM was written (for tests that pass files, e.g. `--tls-cert`). */
  files: { caCert: string; serverCert: string; serverKey: string; clientCert: string; clientKey: string };
}

let openssl: { path: string } | { missing: string } | undefined;

/**
 * Why certificates cannot be made here (no `openssl` on the PATH), or undefined when they can.
 * Tests skip with this reason: `describe.skipIf(reason)(...)`.
 */
export function opensslMissingReason(): string | undefined {
  if (openssl === undefined) {
    try {
      execFileSync("openssl", ["version"], { stdio: "pipe" });
      openssl = { path: "openssl" };
    } catch (e) {
      openssl = { missing: `openssl is not available (${(e as Error).message.split("\n")[0]})` };
    }
  }
  return "missing" in openssl ? openssl.missing : undefined;
}

function run(args: string[], cwd: string): void {
  try {
    execFileSync("openssl", args, { cwd, stdio: "pipe" });
  } catch (e) {
    const stderr = (e as { stderr?: Buffer }).stderr?.toString() ?? "";
    throw new Error(`openssl ${args.join(" ")} failed: ${stderr || (e as Error).message}`);
  }
}

/** A P-256 key and a certificate for it signed by the CA in `dir`, with the given extensions. */
function issue(dir: string, name: string, subject: string, extensions: string): void {
  run(["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", `${name}.key`, "-out", `${name}.csr`, "-subj", subject], dir);
  writeFileSync(join(dir, `${name}.ext`), extensions);
  run(["x509", "-req", "-in", `${name}.csr`, "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-days", "2", "-sha256", "-extfile", `${name}.ext`, "-out", `${name}.crt`], dir);
}

/**
 * Makes a fresh CA and a server and a client certificate signed by it in `dir` (created if
 * needed), with `openssl` (P-256 keys, valid two days): test material only. Each call makes an
 * unrelated CA, so two calls give a "wrong CA" for the other's certificates. Throws when
 * openssl is missing (check {@link opensslMissingReason} first).
 */
export function makeTestCertificates(dir: string): TestCertificates {
  const missing = opensslMissingReason();
  if (missing !== undefined) throw new Error(missing);
  mkdirSync(dir, { recursive: true });
  run(
    [
      "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
      "-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-sha256", "-subj", "/CN=mpreg-test-ca",
      "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
    ],
    dir,
  );
  // The server certificate also allows clientAuth: a node presents it when it dials its peers
  // under mutual TLS.
  issue(dir, "server", "/CN=localhost", "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1\nextendedKeyUsage=serverAuth,clientAuth\nbasicConstraints=CA:FALSE\n");
  issue(dir, "client", "/CN=mpreg-test-client", "extendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\n");
  const files = {
    caCert: join(dir, "ca.crt"),
    serverCert: join(dir, "server.crt"),
    serverKey: join(dir, "server.key"),
    clientCert: join(dir, "client.crt"),
    clientKey: join(dir, "client.key"),
  };
  const read = (p: string) => readFileSync(p, "utf8");
  return {
    caCert: read(files.caCert),
    serverCert: read(files.serverCert),
    serverKey: read(files.serverKey),
    clientCert: read(files.clientCert),
    clientKey: read(files.clientKey),
    files,
  };
}
