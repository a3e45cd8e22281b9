// embedded:update as declared by the Moddable SDK 8.x (typings/embedded/update.d.ts). Missing from
// @moddable/typings 5.6.0. Not used by our adapters (it cannot resume a half-written slot), declared so a
// user's own code can type-check against it.
declare module "embedded:update" {
  import type { Flash } from "embedded:storage/flash";
  export interface UpdateOpenOptions {
    partition: Flash;
    mode?: "a" | "w";
    byteLength?: number;
  }
  export interface Updater {
    close(): void;
    complete(): void;
    write(bytes: ByteBuffer): void;
    write(bytes: ByteBuffer, byteOffset: number): void;
    format: "buffer";
  }
  const Update: {
    open(options: UpdateOpenOptions): Updater;
  };
  export default Update;
}
