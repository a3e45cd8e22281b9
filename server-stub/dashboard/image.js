// Reads an ESP32 app image in the browser before it is uploaded: header, segments, esp_app_desc_t, the XOR
// checksum byte and the appended SHA-256 (the checks esp_image_verify makes; esp-image/app-image.ts is the
// full verifier, which the server runs again on upload). Layout: /work/shared/reference/esp-idf-formats.md §3.
import { sha256Hex } from "./sha256.js";

const MAGIC = 0xe9;
const APP_DESC_MAGIC = 0xabcd5432;
const APP_DESC_OFFSET = 0x20;
const HEADER = 24;
const SEGMENT_HEADER = 8;
const MAX_SEGMENTS = 16;
const CHECKSUM_INITIAL = 0xef;

/**
 * { ok, problems[], size, sha256, header, segments, appDesc, checksum: {stored, computed}, appendedSha256 }.
 * Never throws: a file that is not an app image gives ok false and a problem saying why (raw files may still be
 * uploaded; the server stores them as "raw").
 */
export async function inspectImage(bytes) {
  const out = { ok: false, problems: [], size: bytes.length, sha256: await sha256Hex(bytes), header: null, segments: [], appDesc: null, checksum: null, appendedSha256: null };
  if (bytes.length < HEADER || bytes[0] !== MAGIC) {
    out.problems.push(`not an ESP app image: first byte 0x${hex2(bytes[0] ?? 0)}, expected 0xe9`);
    return out;
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const header = { segmentCount: bytes[1], chipId: view.getUint16(12, true), hashAppended: bytes[23] !== 0, entry: view.getUint32(4, true) };
  out.header = header;
  if (header.segmentCount > MAX_SEGMENTS) out.problems.push(`${header.segmentCount} segments, at most ${MAX_SEGMENTS}`);
  let checksum = CHECKSUM_INITIAL;
  let off = HEADER;
  for (let i = 0; i < Math.min(header.segmentCount, MAX_SEGMENTS); i++) {
    if (off + SEGMENT_HEADER > bytes.length) return truncated(out, `segment ${i} header`);
    const loadAddr = view.getUint32(off, true);
    const length = view.getUint32(off + 4, true);
    const data = off + SEGMENT_HEADER;
    if (data + length > bytes.length) return truncated(out, `segment ${i} data`);
    out.segments.push({ index: i, loadAddr, length });
    for (let p = data; p < data + length; p++) checksum ^= bytes[p];
    off = data + length;
  }
  // Zero padding, then the checksum byte as the last byte of a 16-byte block.
  const checksumAt = ((off + 1 + 15) & ~15) - 1;
  if (checksumAt >= bytes.length) return truncated(out, "checksum byte");
  out.checksum = { stored: bytes[checksumAt], computed: checksum };
  if (out.checksum.stored !== checksum) out.problems.push(`checksum byte 0x${hex2(bytes[checksumAt])}, computed 0x${hex2(checksum)}`);
  if (header.hashAppended) {
    const end = checksumAt + 1;
    if (end + 32 > bytes.length) return truncated(out, "appended SHA-256");
    const stored = [...bytes.subarray(end, end + 32)].map(hex2).join("");
    const computed = await sha256Hex(bytes.subarray(0, end));
    out.appendedSha256 = { stored, computed };
    if (stored !== computed) out.problems.push("appended SHA-256 does not match the image");
  }
  out.appDesc = readAppDesc(bytes, view);
  if (!out.appDesc) out.problems.push("no app descriptor (esp_app_desc_t magic) at offset 0x20");
  out.ok = out.problems.length === 0;
  return out;
}

function readAppDesc(bytes, view) {
  if (bytes.length < APP_DESC_OFFSET + 256 || view.getUint32(APP_DESC_OFFSET, true) !== APP_DESC_MAGIC) return null;
  const text = (at, len) => {
    const field = bytes.subarray(APP_DESC_OFFSET + at, APP_DESC_OFFSET + at + len);
    const nul = field.indexOf(0);
    return new TextDecoder().decode(nul < 0 ? field : field.subarray(0, nul));
  };
  return {
    secureVersion: view.getUint32(APP_DESC_OFFSET + 4, true),
    version: text(16, 32),
    projectName: text(48, 32),
    time: text(80, 16),
    date: text(96, 16),
    idfVer: text(112, 32),
    elfSha256: [...bytes.subarray(APP_DESC_OFFSET + 144, APP_DESC_OFFSET + 176)].map(hex2).join(""),
  };
}

function truncated(out, what) {
  out.problems.push(`truncated: the file ends before the ${what}`);
  return out;
}

const hex2 = (b) => b.toString(16).padStart(2, "0");
