// Canonical byte form of signed protocol objects (see README.md, "Canonical form").
// A subset of RFC 8785 (JCS): integers only, so number formatting is trivial and
// identical on every engine.
import { utf8Encode } from "./utf8";

export type CanonicalValue =
  | string
  | number
  | boolean
  | null
  | CanonicalValue[]
  | { [key: string]: CanonicalValue };

/** Returns the canonical JSON text; throws TypeError for values outside the allowed subset. */
export function canonicalJson(value: unknown): string {
  if (value === null) return "null";
  switch (typeof value) {
    case "string":
      return quote(value);
    case "boolean":
      return value ? "true" : "false";
    case "number":
      if (!Number.isSafeInteger(value)) throw new TypeError(`canonical form allows only safe integers, got ${value}`);
      return value === 0 ? "0" : String(value); // String(-0) is "0" already; explicit for clarity
    case "object": {
      if (Array.isArray(value)) return "[" + value.map((v) => canonicalJson(v)).join(",") + "]";
      const proto = Object.getPrototypeOf(value);
      if (proto !== Object.prototype && proto !== null) throw new TypeError("canonical form allows only plain objects");
      const obj = value as Record<string, unknown>;
      // Default sort compares UTF-16 code units, which is what JCS specifies.
      const keys = Object.keys(obj).sort();
      const parts: string[] = [];
      for (const k of keys) {
        if (obj[k] === undefined) throw new TypeError(`canonical form does not allow undefined (key ${k})`);
        parts.push(quote(k) + ":" + canonicalJson(obj[k]));
      }
      return "{" + parts.join(",") + "}";
    }
    default:
      throw new TypeError(`canonical form does not allow ${typeof value}`);
  }
}

/** UTF-8 bytes of canonicalJson(value): the exact bytes an ed25519 signature covers. */
export function canonicalBytes(value: unknown): Uint8Array {
  return utf8Encode(canonicalJson(value));
}

const SHORT_ESCAPES: Record<number, string> = { 0x08: "\\b", 0x09: "\\t", 0x0a: "\\n", 0x0c: "\\f", 0x0d: "\\r" };

// Same output as ES2019 JSON.stringify for well-formed strings; lone surrogates are rejected.
function quote(s: string): string {
  let out = '"';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x22) out += '\\"';
    else if (c === 0x5c) out += "\\\\";
    else if (c < 0x20) out += SHORT_ESCAPES[c] ?? "\\u00" + (c < 16 ? "0" : "") + c.toString(16);
    else {
      if (c >= 0xd800 && c <= 0xdfff) {
        const hi = c <= 0xdbff;
        const next = s.charCodeAt(i + 1);
        if (!hi || !(next >= 0xdc00 && next <= 0xdfff)) throw new TypeError("lone surrogate in string");
        out += s[i]! + s[i + 1]!;
        i++;
        continue;
      }
      out += s[i]!;
    }
  }
  return out + '"';
}
