// crypt's Digest as declared by the Moddable SDK 8.x (typings/crypt.d.ts; modules/crypt/digest).
// Missing from @moddable/typings 5.6.0.
declare module "crypt" {
  type DigestType = "MD5" | "SHA1" | "SHA224" | "SHA256" | "SHA384" | "SHA512";
  export class Digest {
    constructor(type: DigestType);
    write(message: string | ArrayBuffer): void;
    close(): ArrayBuffer;
    reset(): void;
    get blockSize(): number;
    get outputSize(): number;
    update(message: string | ArrayBuffer): void;
  }
}
