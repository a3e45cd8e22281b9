// The device's pinning rule on Node's TLS, shared by the HTTP and MQTT ports: only the pinned CAs (one, or two while a
// CA is rotated) anchor a chain, never the host's trust store; host name and validity are checked; a plain URL is
// refused once CAs are pinned. Each refusal carries its own code (device/protocol/errors.ts).
import type { TlsErrorCode } from "../../device/protocol/errors";

export interface PinnedTls {
  /** PEM certificates of the CAs the device trusts (1 or 2). */
  cas: string[];
  /** The device's own certificate and key (PEM), presented when the server asks (mutual TLS). */
  clientCert?: { cert: string; key: string };
}

export class TlsRefusedError extends Error {
  constructor(readonly code: TlsErrorCode, detail: string) {
    super(`${code}: ${detail}`);
    this.name = "TlsRefusedError";
  }
}

export function checkPinnedCas(cas: string[]): void {
  if (cas.length < 1 || cas.length > 2) throw new Error(`pin one CA, or two while rotating, not ${cas.length}`);
  for (const pem of cas) if (!pem.includes("-----BEGIN CERTIFICATE-----")) throw new Error("a pinned CA must be a PEM certificate");
}

/** Options for https.request / tls.connect that trust the pinned CAs only (and present the client certificate). */
export function pinnedTlsOptions(tls: PinnedTls): { ca: string[]; rejectUnauthorized: true; cert?: string; key?: string } {
  return { ca: tls.cas, rejectUnauthorized: true, ...(tls.clientCert ? { cert: tls.clientCert.cert, key: tls.clientCert.key } : {}) };
}

/** TLS_REQUIRED for a URL that would travel in clear while CAs are pinned; null when the URL may be used. */
export function plainUrlRefusal(url: string, tls: PinnedTls | null | undefined): TlsRefusedError | null {
  if (!tls) return null;
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(url)?.[1]?.toLowerCase();
  if (scheme === "https" || scheme === "mqtts") return null;
  return new TlsRefusedError("TLS_REQUIRED", `refused ${scheme ?? "a"}:// URL: this device only talks TLS to its pinned CAs (${hostOf(url)})`);
}

const UNTRUSTED = new Set([
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_GET_ISSUER_CERT",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "CERT_SIGNATURE_FAILURE",
  "CERT_UNTRUSTED",
]);
const EXPIRED = new Set(["CERT_HAS_EXPIRED", "CERT_NOT_YET_VALID"]);

/** The refusal a Node TLS error stands for, or null for an error that is not about TLS (a reset, a timeout). */
export function tlsRefusal(e: unknown, url: string): TlsRefusedError | null {
  if (e instanceof TlsRefusedError) return e;
  // Node's TLS codes are strings; mqtt.js gives a refused CONNACK its numeric return code.
  const raw: unknown = (e as NodeJS.ErrnoException | null)?.code;
  const code = typeof raw === "string" ? raw : "";
  const host = hostOf(url);
  const reason = (e as Error).message;
  if (UNTRUSTED.has(code)) return new TlsRefusedError("TLS_UNTRUSTED_CA", `${host} presented a certificate no pinned CA signed (${reason})`);
  if (code === "ERR_TLS_CERT_ALTNAME_INVALID") return new TlsRefusedError("TLS_HOSTNAME_MISMATCH", `the certificate does not name ${host} (${reason})`);
  if (EXPIRED.has(code)) return new TlsRefusedError("TLS_CERT_EXPIRED", `${host} presented a certificate outside its validity (${reason})`);
  if (code.startsWith("ERR_SSL_") || code === "EPROTO" || code.startsWith("ERR_TLS_")) return new TlsRefusedError("TLS_HANDSHAKE_FAILED", `${host}: ${reason}`);
  return null;
}

function hostOf(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return "an unparsable URL";
  }
}
