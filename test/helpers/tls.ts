// One private CA and server certificate per test process (RSA key generation takes a second or two on a loaded machine).
import { generateCa, issueServerCert, type CertAuthority } from "../../server-stub/tls";

export interface TestTls {
  ca: CertAuthority;
  /** For localhost and 127.0.0.1, signed by `ca`; the chain (then the CA), as ota-server presents it. */
  server: { cert: string; key: string };
}

let cached: TestTls | null = null;

export function testTls(): TestTls {
  if (!cached) {
    const ca = generateCa("esp32-ota test CA");
    const leaf = issueServerCert(ca, ["localhost", "127.0.0.1"]);
    cached = { ca, server: { cert: leaf.cert + ca.cert, key: leaf.key } };
  }
  return cached;
}
