// A private CA and server certificate for the tests. RSA key generation takes seconds on a loaded 2-core machine,
// more than a test hook may wait, so one identity is kept in the temp dir for a day and shared by every test process.
import { existsSync, readFileSync, renameSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { generateCa, issueServerCert, type CertAuthority } from "../../server-stub/tls";

export interface TestTls {
  ca: CertAuthority;
  /** For localhost and 127.0.0.1, signed by `ca`; the chain (then the CA), as ota-server presents it. */
  server: { cert: string; key: string };
}

const FILE = join(tmpdir(), `esp32-ota-test-tls-${process.getuid?.() ?? 0}.json`);
const MAX_AGE_MS = 24 * 3600 * 1000;
let cached: TestTls | null = null;

export function testTls(): TestTls {
  if (cached) return cached;
  if (existsSync(FILE) && Date.now() - statSync(FILE).mtimeMs < MAX_AGE_MS) {
    try {
      return (cached = JSON.parse(readFileSync(FILE, "utf8")) as TestTls);
    } catch {
      /* torn or foreign: make a new one */
    }
  }
  const ca = generateCa("esp32-ota test CA");
  const leaf = issueServerCert(ca, ["localhost", "127.0.0.1"]);
  cached = { ca, server: { cert: leaf.cert + ca.cert, key: leaf.key } };
  const tmp = `${FILE}.${process.pid}`;
  writeFileSync(tmp, JSON.stringify(cached), { mode: 0o600 });
  renameSync(tmp, FILE); // atomic: a concurrent reader sees the old file or the new one
  return cached;
}
