// What a relay serves from: the ring when the bytes are in it, the upstream link's stream
// when they are still to come, and a fetch from upstream when the ring has moved past them
// (a repair, a downstream that came back, a LAN whose pass started late). It reads like a
// file, so the relay's own MTP session and its downstream links use it as the master uses
// its image.

import type { ByteSource } from '../disk/source.ts';
import type { Ring } from './ring.ts';

export type Fetch = (offset: number, length: number) => Promise<Uint8Array>;

export class RelaySource implements ByteSource {
  readonly size: number;
  readonly sectorSize = 512;
  readonly label: string;
  private readonly ring: Ring;
  private readonly fetch: Fetch;
  private waiters: Array<() => void> = [];
  /** Bytes that had to be fetched from upstream because the ring no longer held them. */
  fetched = 0;

  constructor(ring: Ring, size: number, label: string, fetch: Fetch) {
    this.ring = ring;
    this.size = size;
    this.label = label;
    this.fetch = fetch;
  }

  /** The upstream link wrote more into the ring: reads waiting for those bytes go on. */
  grew(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  async read(offset: number, length: number): Promise<Uint8Array> {
    const n = Math.max(0, Math.min(length, this.size - offset));
    for (;;) {
      if (this.ring.has(offset, n)) return this.ring.read(offset, n);
      if (offset < this.ring.low) {
        this.fetched += n;
        return this.fetch(offset, n);
      }
      // Still to come from upstream.
      await new Promise<void>((r) => this.waiters.push(r));
    }
  }

  async close(): Promise<void> { this.grew(); }
}
