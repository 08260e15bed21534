// The relay's bounded circular buffer (Hopwise Reliable Multicast, figure 1): one input
// pointer, where the upstream link writes the stream, and one output pointer per downstream
// link (and one for the relay's own LAN). A byte is overwritten only once every output
// pointer has passed it; when the slowest one holds the oldest byte the buffer is full, the
// relay stops reading its upstream socket, and TCP closes the window upstream.

/** An output pointer: the next stream offset its link still needs from the ring. */
export interface RingReader {
  pos: number;
  release(): void;
}

export class Ring {
  readonly size: number;
  private readonly buf: Uint8Array;
  /** Stream offset one past the last byte written: the input pointer. */
  end = 0;
  private readonly readers = new Set<RingReader>();
  /** Most bytes ever held for the readers at once. */
  peak = 0;

  constructor(size: number) {
    if (!Number.isInteger(size) || size <= 0) throw new Error(`ring size ${size}`);
    this.size = size;
    this.buf = new Uint8Array(size);
  }

  /** Lowest stream offset still in the ring. */
  get low(): number { return Math.max(0, this.end - this.size); }

  /**
   * Where the oldest byte some reader still needs sits. A reader already past the ring's low end
   * (it fell behind, and fetches what it missed from upstream) holds nothing; one ahead of the
   * input pointer holds everything from there on.
   */
  private holdFrom(): number {
    let hold = this.end;
    const low = this.low;
    for (const r of this.readers) if (r.pos >= low && r.pos < hold) hold = r.pos;
    return hold;
  }

  /** Bytes held for readers now. */
  get held(): number { return this.end - this.holdFrom(); }

  /** Bytes that can be written now without overwriting what a reader still needs. */
  get space(): number { return this.size - this.held; }

  /** Append stream bytes at the input pointer; they must fit in `space`. */
  write(bytes: Uint8Array): void {
    if (bytes.length > this.space) throw new Error(`ring: ${bytes.length} bytes written with ${this.space} free`);
    let at = this.end % this.size, from = 0;
    while (from < bytes.length) {
      const n = Math.min(bytes.length - from, this.size - at);
      this.buf.set(bytes.subarray(from, from + n), at);
      from += n;
      at = 0;
    }
    this.end += bytes.length;
    this.peak = Math.max(this.peak, this.held);
  }

  /** Whether [offset, offset+length) is in the ring now. */
  has(offset: number, length: number): boolean { return offset >= this.low && offset + length <= this.end; }

  /** A copy of [offset, offset+length), which must be in the ring. */
  read(offset: number, length: number): Uint8Array {
    if (!this.has(offset, length)) throw new Error(`ring: [${offset}, ${offset + length}) is not in [${this.low}, ${this.end})`);
    const out = new Uint8Array(length);
    let at = offset % this.size, to = 0;
    while (to < length) {
      const n = Math.min(length - to, this.size - at);
      out.set(this.buf.subarray(at, at + n), to);
      to += n;
      at = 0;
    }
    return out;
  }

  /** A new output pointer at `pos`; release() when its link is gone, so it holds nothing more. */
  reader(pos: number): RingReader {
    const readers = this.readers;
    const r: RingReader = { pos, release: () => { readers.delete(r); } };
    readers.add(r);
    return r;
  }
}
