// The XS extensions a Moddable build has and xsnap (built with mxCESU8) lacks, as the adapters use them:
// ArrayBuffer.fromString and String.fromArrayBuffer (xs/sources/xsDataView.c fx_ArrayBuffer_fromString,
// xs/sources/xsString.c fx_String_fromArrayBuffer: UTF-8 both ways), and trace (the serial console, here
// the host's log). ArrayBuffer.prototype.concat is native in xsnap too. Imported before anything else.
import { hostCall } from "./host";

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const define = (target: object, name: string, value: unknown) => Object.defineProperty(target, name, { value, writable: true, configurable: true, enumerable: false });

if (typeof (ArrayBuffer as unknown as { fromString?: unknown }).fromString !== "function") {
  define(ArrayBuffer, "fromString", (s: string) => {
    const bytes = encoder.encode(String(s));
    return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
  });
}
if (typeof (String as unknown as { fromArrayBuffer?: unknown }).fromArrayBuffer !== "function") {
  define(String, "fromArrayBuffer", (buffer: ArrayBuffer) => {
    if (!(buffer instanceof ArrayBuffer)) throw new TypeError("String.fromArrayBuffer: not an ArrayBuffer");
    return decoder.decode(new Uint8Array(buffer));
  });
}
define(globalThis, "trace", (...parts: unknown[]) => hostCall("trace", parts.map(String).join("")));
