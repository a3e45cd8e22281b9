// CRC-32 (IEEE, reflected, as zlib) for the journal's record check. Table built once: 1 KiB.
let table: Uint32Array | undefined;

/** CRC-32 of bytes[0, length): a prefix without a subarray view of it. */
export function crc32(bytes: Uint8Array, crc = 0, length = bytes.length): number {
  if (!table) {
    table = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      table[n] = c >>> 0;
    }
  }
  let c = ~crc >>> 0;
  for (let i = 0; i < length; i++) c = (table[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8)) >>> 0;
  return ~c >>> 0;
}
