// A simulated client's disk. `bytes` keeps a copy (N clients cost N images of memory);
// `light` keeps none: each write is compared with the image where it lands, so a chunk
// passes its check only if everything written into it was right. The simulator serves
// raw images (identity chunks), so a chunk lies at its stream offset.

import type { Chunk } from '../protocol/manifest.ts';
import { sha256 } from '../protocol/manifest.ts';

export interface SimDisk {
  write(offset: number, bytes: Uint8Array): void;
  /** [offset, offset+length) is a hole of packets still to come (ClientStorage.offer): storage may put anything there. */
  hole(offset: number, length: number): void;
  /** The check a client's storage makes: the chunk's bytes on the disk match its digest. */
  check(k: number, chunk: Chunk): boolean;
  /** The disk holds the image. */
  identical(): boolean;
  /** What the disk holds at [offset, offset+length) (the light disk: the image, which every right write put there). */
  read(offset: number, length: number): Uint8Array;
}

export class BytesDisk implements SimDisk {
  private readonly disk: Uint8Array;
  private readonly image: Uint8Array;
  /** Flip one byte in each of the first this-many writes (a disk that lies). */
  private corrupt: number;
  constructor(image: Uint8Array, corrupt: number) {
    this.image = image;
    this.disk = new Uint8Array(image.length).fill(0xee);
    this.corrupt = corrupt;
  }

  write(offset: number, bytes: Uint8Array): void {
    this.disk.set(bytes, offset);
    if (this.corrupt > 0 && offset > 0) { this.corrupt--; this.disk[offset] = this.disk[offset]! ^ 0x40; }
  }

  /** Wrong bytes: a client that calls a hole what it already holds ends with a disk that differs. */
  hole(offset: number, length: number): void {
    for (let i = offset; i < offset + length; i++) this.disk[i] = ~this.image[i]! & 0xff;
  }

  check(_k: number, c: Chunk): boolean {
    const e = c.extents[0]!;
    return Buffer.compare(sha256(this.disk.subarray(e.offset, e.offset + e.length)), c.digest) === 0;
  }

  identical(): boolean { return Buffer.compare(this.disk, this.image) === 0; }

  read(offset: number, length: number): Uint8Array { return this.disk.subarray(offset, offset + length); }
}

export class LightDisk implements SimDisk {
  private readonly image: Uint8Array;
  private readonly chunkSize: number;
  /** Chunks that took a wrong write since their last check. */
  private readonly damaged = new Set<number>();
  /** Chunks whose last check failed, or that were never checked. */
  private readonly unchecked: Set<number>;
  constructor(image: Uint8Array, chunkSize: number) {
    this.image = image;
    this.chunkSize = chunkSize;
    this.unchecked = new Set(Array.from({ length: Math.ceil(image.length / chunkSize) }, (_, k) => k));
  }

  write(offset: number, bytes: Uint8Array): void {
    if (Buffer.compare(bytes, this.image.subarray(offset, offset + bytes.length)) === 0) return;
    const last = Math.floor((offset + bytes.length - 1) / this.chunkSize);
    for (let k = Math.floor(offset / this.chunkSize); k <= last; k++) this.damaged.add(k);
  }

  /** Taken on trust: wrong bytes there would cost a chunk check, which real storage (zeros, overwritten in order) never fails. */
  hole(): void {}

  check(k: number): boolean {
    const ok = !this.damaged.delete(k);
    if (ok) this.unchecked.delete(k); else this.unchecked.add(k);
    return ok;
  }

  identical(): boolean { return this.unchecked.size === 0 && this.damaged.size === 0; }

  read(offset: number, length: number): Uint8Array { return this.image.subarray(offset, offset + length); }
}
