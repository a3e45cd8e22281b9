// Hand-written UTF-8 encoder/decoder: the XS engine on the device may lack TextEncoder,
// and this module must not depend on any host API.

/** Encodes a string as UTF-8. Throws on lone surrogates (they have no UTF-8 form). */
export function utf8Encode(text: string): Uint8Array {
  // Two passes into an exact buffer: a growing number[] costs a slot per byte (16 bytes on the ESP32).
  let length = 0;
  for (let i = 0; i < text.length; i++) {
    const cp = codePointAt(text, i);
    length += cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
    if (cp >= 0x10000) i++;
  }
  const out = new Uint8Array(length);
  utf8EncodeInto(text, out);
  return out;
}

/** encodeInto (as a native text encoder has it), portable: encodes as much of `text` as fits, whole characters only. `read`
 * (UTF-16 code units) is below text.length when it did not all fit. Throws on lone surrogates. */
export function utf8EncodeInto(text: string, into: Uint8Array): { read: number; written: number } {
  let at = 0;
  let i = 0;
  for (; i < text.length; i++) {
    const cp = codePointAt(text, i);
    const n = cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
    if (at + n > into.length) break;
    if (n === 1) {
      into[at] = cp;
    } else {
      // The lead byte, then 6 bits per continuation byte from the highest down.
      into[at] = n === 2 ? 0xc0 | (cp >> 6) : n === 3 ? 0xe0 | (cp >> 12) : 0xf0 | (cp >> 18);
      for (let k = 1; k < n; k++) into[at + k] = 0x80 | ((cp >> (6 * (n - 1 - k))) & 0x3f);
      if (n === 4) i++;
    }
    at += n;
  }
  return { read: i, written: at };
}

/** The code point at `i` (a surrogate pair read whole); throws on a lone surrogate. */
function codePointAt(text: string, i: number): number {
  const cp = text.charCodeAt(i);
  if (cp < 0xd800 || cp > 0xdfff) return cp;
  const next = i + 1 < text.length ? text.charCodeAt(i + 1) : 0;
  if (cp > 0xdbff || next < 0xdc00 || next > 0xdfff) throw new RangeError("lone surrogate in string");
  return 0x10000 + ((cp - 0xd800) << 10) + (next - 0xdc00);
}

/** Decodes strict UTF-8 (rejects overlongs, surrogates, truncated sequences). */
export function utf8Decode(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; ) {
    const b0 = bytes[i]!;
    let cp: number;
    let n: number;
    if (b0 < 0x80) { cp = b0; n = 1; }
    else if (b0 >= 0xc2 && b0 < 0xe0) { cp = b0 & 0x1f; n = 2; }
    else if (b0 >= 0xe0 && b0 < 0xf0) { cp = b0 & 0x0f; n = 3; }
    else if (b0 >= 0xf0 && b0 < 0xf5) { cp = b0 & 0x07; n = 4; }
    else throw new RangeError("invalid UTF-8 lead byte");
    if (i + n > bytes.length) throw new RangeError("truncated UTF-8 sequence");
    for (let k = 1; k < n; k++) {
      const b = bytes[i + k]!;
      if ((b & 0xc0) !== 0x80) throw new RangeError("invalid UTF-8 continuation byte");
      cp = (cp << 6) | (b & 0x3f);
    }
    const min = n === 1 ? 0 : n === 2 ? 0x80 : n === 3 ? 0x800 : 0x10000;
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) throw new RangeError("invalid UTF-8 code point");
    if (cp >= 0x10000) {
      cp -= 0x10000;
      s += String.fromCharCode(0xd800 + (cp >> 10), 0xdc00 + (cp & 0x3ff));
    } else {
      s += String.fromCharCode(cp);
    }
    i += n;
  }
  return s;
}
