// Content-addressed firmware storage: <blob dir>/<sha256[0:2]>/<sha256>. The blob dir may be shared by replicas (a
// network filesystem); each keeps its uploads in progress in its own tmp dir, which may be on another filesystem, so a
// finished upload is copied next to its final name in the blob dir and renamed there (atomic within a directory).
// Only pathFor/has/size/read/openRange/commit/storeBytes are used by callers: an object store could stand behind them.
import { createHash, randomBytes } from "node:crypto";
import { closeSync, copyFileSync, createReadStream, existsSync, mkdirSync, openSync, readFileSync, readSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { Transform, type Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createWriteStream } from "node:fs";

export interface StoredUpload {
  tmpPath: string;
  size: number;
  md5: string;
  sha256: string;
  firstByte: number | null;
}

export class BlobStore {
  private readonly blobDir: string;
  private readonly tmpDir: string;

  /** `blobDir`: default <dataDir>/blobs. tmp/ stays in this server's own data dir. */
  constructor(dataDir: string, blobDir?: string | null) {
    this.blobDir = blobDir ?? join(dataDir, "blobs");
    this.tmpDir = join(dataDir, "tmp");
    mkdirSync(this.blobDir, { recursive: true });
    rmSync(this.tmpDir, { recursive: true, force: true }); // leftovers of this server's interrupted uploads
    mkdirSync(this.tmpDir, { recursive: true });
  }

  /** Puts a finished temp file at its content address: rename when on one filesystem, else copy beside it and rename. */
  private place(tmpPath: string, sha256: string): void {
    const dest = this.pathFor(sha256);
    mkdirSync(dirname(dest), { recursive: true });
    try {
      renameSync(tmpPath, dest);
      return;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EXDEV") throw e;
    }
    const staging = `${dest}.${process.pid}.${randomBytes(4).toString("hex")}.part`; // no reader ever opens a .part
    try {
      copyFileSync(tmpPath, staging);
      renameSync(staging, dest);
    } finally {
      rmSync(staging, { force: true });
      rmSync(tmpPath, { force: true });
    }
  }

  pathFor(sha256: string): string {
    return join(this.blobDir, sha256.slice(0, 2), sha256);
  }

  has(sha256: string): boolean {
    return existsSync(this.pathFor(sha256));
  }

  size(sha256: string): number {
    return statSync(this.pathFor(sha256)).size;
  }

  /** Streams `source` to a temp file, computing size, MD5 and SHA-256 on the way. */
  async receive(source: Readable): Promise<StoredUpload> {
    const tmpPath = join(this.tmpDir, randomBytes(8).toString("hex"));
    const md5 = createHash("md5");
    const sha = createHash("sha256");
    let size = 0;
    let firstByte: number | null = null;
    const tap = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        if (firstByte === null && chunk.length > 0) firstByte = chunk[0]!;
        size += chunk.length;
        md5.update(chunk);
        sha.update(chunk);
        cb(null, chunk);
      },
    });
    try {
      await pipeline(source, tap, createWriteStream(tmpPath));
    } catch (e) {
      rmSync(tmpPath, { force: true });
      throw e;
    }
    return { tmpPath, size, md5: md5.digest("hex"), sha256: sha.digest("hex"), firstByte };
  }

  /** Moves a received temp file into the store (or drops it when the content exists already). */
  commit(upload: StoredUpload): string {
    const dest = this.pathFor(upload.sha256);
    if (existsSync(dest)) {
      rmSync(upload.tmpPath, { force: true });
    } else this.place(upload.tmpPath, upload.sha256);
    return dest;
  }

  /** Stores bytes built by the server (a delta patch) by their SHA-256, which it returns. */
  storeBytes(bytes: Uint8Array): string {
    const sha256 = createHash("sha256").update(bytes).digest("hex");
    if (!this.has(sha256)) {
      const tmpPath = join(this.tmpDir, randomBytes(8).toString("hex"));
      writeFileSync(tmpPath, bytes);
      this.place(tmpPath, sha256);
    }
    return sha256;
  }

  read(sha256: string): Uint8Array {
    return readFileSync(this.pathFor(sha256));
  }

  discard(upload: StoredUpload): void {
    rmSync(upload.tmpPath, { force: true });
  }

  openRange(sha256: string, start: number, end: number): Readable {
    return createReadStream(this.pathFor(sha256), { start, end });
  }
}

/** Synchronous positional reader over a file, for the ESP image verifier (reads ≤ 4 KiB at a time). */
export function withFileReader<T>(path: string, fn: (read: (offset: number, length: number) => Uint8Array) => T): T {
  const fd = openSync(path, "r");
  try {
    return fn((offset, length) => {
      const buf = Buffer.alloc(length);
      const n = readSync(fd, buf, 0, length, offset);
      return buf.subarray(0, n);
    });
  } finally {
    closeSync(fd);
  }
}
