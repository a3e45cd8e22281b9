// What a TLS failure on the ESP32 was, from the exception Moddable's TLS threw (device/esp32/tls-socket.ts catches it
// before it reaches the native TCP callback). Pure, so it is tested on the host. Paths and lines are of the Moddable
// SDK 8.2.3 source (modules/crypt/ssl/).
//
// What Moddable tells apart, and what it does not:
// - ssl_cert.js:114-207 `verify()` returns false for an untrusted chain, a name the certificate does not carry and an
//   expired certificate alike (only a trace() says which); ssl_handshake.js:492 turns that into one
//   TLSError("certificate: auth err"). So TLS_UNTRUSTED_CA and TLS_HOSTNAME_MISMATCH cannot be told apart on the
//   ESP32: both are TLS_CERT_REJECTED, as is an expired CA or an expired lone leaf.
// - ssl_cert.js:270-273 `register()` checks the leaf's dates once verify() passed and throws
//   Error("date validation failed"): an expired (or not yet valid) server certificate under a trusted CA, when the
//   server sends its chain (ours does: server-stub/tls.ts). That one is TLS_CERT_EXPIRED.
// - ssl_alert.js:83 throws TLSError("alert: <level>, <description>") for an alert the server sent.
// - Anything else thrown during the handshake (ssl_handshake.js, ssl_record.js: cipher, protocol, a bad signature on
//   the key exchange) is TLS_HANDSHAKE_FAILED with Moddable's message.
import type { TlsErrorCode } from "../protocol/errors";

export interface TlsFailure {
  code: TlsErrorCode;
  detail: string;
}

// RFC 5246 section 7.2 (and RFC 8446 for 116): the alerts a server may send a TLS 1.2 client.
const ALERTS: Record<number, string> = {
  10: "unexpected_message",
  20: "bad_record_mac",
  22: "record_overflow",
  40: "handshake_failure",
  42: "bad_certificate",
  43: "unsupported_certificate",
  44: "certificate_revoked",
  45: "certificate_expired",
  46: "certificate_unknown",
  47: "illegal_parameter",
  48: "unknown_ca",
  49: "access_denied",
  50: "decode_error",
  51: "decrypt_error",
  70: "protocol_version",
  71: "insufficient_security",
  80: "internal_error",
  112: "unrecognized_name",
  116: "certificate_required",
};

function messageOf(fault: unknown): string {
  if (fault instanceof Error) return fault.message;
  return typeof fault === "string" ? fault : String(fault);
}

/** The failure `fault` (what Moddable's TLS threw) stands for; `host` only goes into the detail. */
export function classifyTlsFault(fault: unknown, host: string): TlsFailure {
  const message = messageOf(fault);
  if (message === "certificate: auth err")
    return { code: "TLS_CERT_REJECTED", detail: `${host}: certificate refused: no pinned CA signed it, it does not name ${host}, or it is expired (Moddable's TLS does not say which)` };
  if (message === "date validation failed")
    return { code: "TLS_CERT_EXPIRED", detail: `${host} presented a certificate outside its validity (is the clock set?)` };
  const alert = /^alert: (\d+), (\d+)$/.exec(message);
  if (alert) {
    const description = Number(alert[2]);
    return { code: "TLS_HANDSHAKE_FAILED", detail: `${host} sent TLS alert ${ALERTS[description] ?? description} (level ${alert[1]})` };
  }
  return { code: "TLS_HANDSHAKE_FAILED", detail: `${host}: ${message || "TLS error"}` };
}
