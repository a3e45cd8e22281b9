// Fake of Moddable's `text/encoder` (modules/data/text/encoder: the WHATWG TextEncoder, UTF-8 into a new
// Uint8Array): xsnap's own TextEncoder is that.
export default globalThis.TextEncoder;
