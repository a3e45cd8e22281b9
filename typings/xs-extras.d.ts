// Globals of the Moddable SDK 8.x xs.d.ts that @moddable/typings 5.6.0 lacks (it has BufferLike instead).
// Only for `npm run typecheck`; mcconfig builds use the SDK's own typings.

interface ByteBufferTypes extends ArrayBufferTypes {
  Uint8Array: Uint8Array;
  Uint8ClampedArray: Uint8ClampedArray;
  Int8Array: Int8Array;
  DataView: DataView;
}
type ByteBuffer = ByteBufferTypes[keyof ByteBufferTypes];
