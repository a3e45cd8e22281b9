// The server's TLS identity: the operator's certificate and key, or a private CA and a server certificate
// generated with node-forge into <data-dir>/tls/ on first start. Devices pin the CA (device/protocol/README.md).
import { X509Certificate } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import forge from "node-forge";

export interface TlsIdentity {
  /** PEM chain the server presents: its certificate, then the CA's when generated. */
  cert: string;
  key: string;
  /** The CA devices pin: the generated one, or null when the operator brought their own certificate. */
  ca: string | null;
  /** SHA-256 of the server certificate's DER, as openssl prints it (AB:CD:…). */
  fingerprint: string;
  /** Where the generated files are, when generated. */
  dir: string | null;
}

export interface CertAuthority {
  cert: string;
  key: string;
}

const DAY_MS = 86_400_000;
const SERVER_CERT_DAYS = 397; // what browsers accept for a server certificate; renewed at start below 30 days left
const CA_DAYS = 3650;
const RENEW_BELOW_MS = 30 * DAY_MS;

function serial(): string {
  // Positive (first bit clear), 16 random bytes as RFC 5280 recommends.
  return "0" + forge.util.bytesToHex(forge.random.getBytesSync(16)).slice(1);
}

function validity(cert: forge.pki.Certificate, notBefore: Date, days: number) {
  cert.validity.notBefore = notBefore;
  cert.validity.notAfter = new Date(notBefore.getTime() + days * DAY_MS);
}

/** A new self-signed CA (RSA 2048: what mbedTLS on the ESP32 verifies fastest among the common choices). */
export function generateCa(commonName = "esp32-ota private CA", opts: { notBefore?: Date; days?: number } = {}): CertAuthority {
  const keys = forge.pki.rsa.generateKeyPair({ bits: 2048 }); // forge uses Node's crypto for the key pair when it can
  const cert = forge.pki.createCertificate();
  cert.publicKey = keys.publicKey;
  cert.serialNumber = serial();
  validity(cert, opts.notBefore ?? new Date(Date.now() - DAY_MS), opts.days ?? CA_DAYS);
  const name = [{ name: "commonName", value: commonName }];
  cert.setSubject(name);
  cert.setIssuer(name);
  cert.setExtensions([
    { name: "basicConstraints", cA: true, critical: true },
    { name: "keyUsage", keyCertSign: true, cRLSign: true, critical: true },
    { name: "subjectKeyIdentifier" },
    // Its own key id again, as OpenSSL writes it: Moddable's TLS looks a chain's anchor up by the AKI of its top.
    { name: "authorityKeyIdentifier", keyIdentifier: cert.generateSubjectKeyIdentifier().getBytes() },
  ]);
  cert.sign(keys.privateKey, forge.md.sha256.create());
  return { cert: forge.pki.certificateToPem(cert), key: forge.pki.privateKeyToPem(keys.privateKey) };
}

/** A server certificate for these host names and IP addresses, signed by `ca`. */
export function issueServerCert(ca: CertAuthority, hosts: string[], opts: { notBefore?: Date; days?: number } = {}): { cert: string; key: string } {
  const caCert = forge.pki.certificateFromPem(ca.cert);
  const keys = forge.pki.rsa.generateKeyPair({ bits: 2048 });
  const cert = forge.pki.createCertificate();
  cert.publicKey = keys.publicKey;
  cert.serialNumber = serial();
  validity(cert, opts.notBefore ?? new Date(Date.now() - DAY_MS), opts.days ?? SERVER_CERT_DAYS);
  cert.setSubject([{ name: "commonName", value: hosts[0] ?? "localhost" }]);
  cert.setIssuer(caCert.subject.attributes);
  const altNames = hosts.map((h) => (isIp(h) ? { type: 7, ip: h } : { type: 2, value: h }));
  cert.setExtensions([
    { name: "basicConstraints", cA: false },
    { name: "keyUsage", digitalSignature: true, keyEncipherment: true, critical: true },
    { name: "extKeyUsage", serverAuth: true },
    { name: "subjectAltName", altNames },
    { name: "authorityKeyIdentifier", keyIdentifier: caCert.generateSubjectKeyIdentifier().getBytes() },
  ]);
  cert.sign(forge.pki.privateKeyFromPem(ca.key), forge.md.sha256.create());
  return { cert: forge.pki.certificateToPem(cert), key: forge.pki.privateKeyToPem(keys.privateKey) };
}

const DEVICE_CERT_DAYS = 3650; // a device's identity for its service life; revoking the device ends it sooner

/** A client certificate naming one device (its id as the common name), signed by `ca`: mutual TLS
 * (auth/device-certs.ts) lets it stand for the device instead of an API key. */
export function issueDeviceCert(ca: CertAuthority, deviceId: string, opts: { notBefore?: Date; days?: number } = {}): { cert: string; key: string } {
  const caCert = forge.pki.certificateFromPem(ca.cert);
  const keys = forge.pki.rsa.generateKeyPair({ bits: 2048 });
  const cert = forge.pki.createCertificate();
  cert.publicKey = keys.publicKey;
  cert.serialNumber = serial();
  validity(cert, opts.notBefore ?? new Date(Date.now() - DAY_MS), opts.days ?? DEVICE_CERT_DAYS);
  cert.setSubject([{ name: "commonName", value: deviceId }]);
  cert.setIssuer(caCert.subject.attributes);
  cert.setExtensions([
    { name: "basicConstraints", cA: false },
    { name: "keyUsage", digitalSignature: true, keyEncipherment: true, critical: true },
    { name: "extKeyUsage", clientAuth: true },
    { name: "authorityKeyIdentifier", keyIdentifier: caCert.generateSubjectKeyIdentifier().getBytes() },
  ]);
  cert.sign(forge.pki.privateKeyFromPem(ca.key), forge.md.sha256.create());
  return { cert: forge.pki.certificateToPem(cert), key: forge.pki.privateKeyToPem(keys.privateKey) };
}

function isIp(h: string): boolean {
  return /^[\d.]+$/.test(h) || h.includes(":");
}

export function fingerprint256(pem: string): string {
  return new X509Certificate(pem).fingerprint256;
}

/** The DER of a PEM certificate: what the ESP32 build pins as a resource. */
export function pemToDer(pem: string): Buffer {
  return Buffer.from(new X509Certificate(pem).raw);
}

/** Host names every generated server certificate covers, plus the ones the server is reached by. */
export function defaultHosts(extra: string[] = []): string[] {
  const names = ["localhost", "127.0.0.1", "::1", hostname(), ...extra].filter((h) => h && h !== "0.0.0.0" && h !== "::");
  return [...new Set(names)];
}

function covers(pem: string, hosts: string[], now: number): boolean {
  const x = new X509Certificate(pem);
  if (Date.parse(x.validTo) - now < RENEW_BELOW_MS) return false;
  return hosts.every((h) => (isIp(h) ? x.checkIP(h) : x.checkHost(h)) !== undefined);
}

/** Loads <dir>/ca.pem and server.pem, creating the CA once and (re)issuing the server certificate when it is missing,
 * about to expire or does not name every host: the CA devices pin stays the same. */
export function loadOrCreateTls(dir: string, hosts: string[]): TlsIdentity & { created: boolean } {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const file = (name: string) => join(dir, name);
  let created = false;
  if (!existsSync(file("ca.pem")) || !existsSync(file("ca-key.pem"))) {
    const ca = generateCa();
    writeFileSync(file("ca-key.pem"), ca.key, { mode: 0o600 });
    writeFileSync(file("ca.pem"), ca.cert);
    created = true;
  }
  const ca: CertAuthority = { cert: readFileSync(file("ca.pem"), "utf8"), key: readFileSync(file("ca-key.pem"), "utf8") };
  if (created || !existsSync(file("server.pem")) || !existsSync(file("server-key.pem")) || !covers(readFileSync(file("server.pem"), "utf8"), hosts, Date.now())) {
    const server = issueServerCert(ca, hosts);
    writeFileSync(file("server-key.pem"), server.key, { mode: 0o600 });
    writeFileSync(file("server.pem"), server.cert);
    created = true;
  }
  const cert = readFileSync(file("server.pem"), "utf8");
  // The chain, not the leaf alone: Moddable's TLS checks the host name only while walking a chain of two or more.
  return { cert: cert + ca.cert, key: readFileSync(file("server-key.pem"), "utf8"), ca: ca.cert, fingerprint: fingerprint256(cert), dir, created };
}

/** The operator's own certificate and key files. */
export function loadTlsFiles(certFile: string, keyFile: string): TlsIdentity {
  const cert = readFileSync(certFile, "utf8");
  return { cert, key: readFileSync(keyFile, "utf8"), ca: null, fingerprint: fingerprint256(cert), dir: null };
}

/** A host that only this machine can reach, where plain HTTP may stay (the demo, the README's first hour). */
export function isLoopbackHost(host: string): boolean {
  return host === "localhost" || host === "::1" || /^127\./.test(host);
}
