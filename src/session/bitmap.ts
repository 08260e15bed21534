// One bit per packet of the session's object: which packets a client holds
// (or, at the master, which packets a repair round still owes).

export class Bitmap {
  readonly size: number;
  private readonly words: Uint32Array;
  private ones = 0;

  constructor(size: number) {
    this.size = size;
    this.words = new Uint32Array(Math.ceil(size / 32));
  }

  get count(): number { return this.ones; }
  get full(): boolean { return this.ones === this.size; }

  has(i: number): boolean {
    return (this.words[i >>> 5]! & (1 << (i & 31))) !== 0;
  }

  /** Sets bit i; true when it was clear. */
  set(i: number): boolean {
    const w = i >>> 5, m = 1 << (i & 31);
    if ((this.words[w]! & m) !== 0) return false;
    this.words[w]! |= m;
    this.ones++;
    return true;
  }

  /** Clears bit i; true when it was set. */
  clear(i: number): boolean {
    const w = i >>> 5, m = 1 << (i & 31);
    if ((this.words[w]! & m) === 0) return false;
    this.words[w]! &= ~m;
    this.ones--;
    return true;
  }

  /** Sets [start, end); returns how many were newly set. */
  setRange(start: number, end: number): number {
    let n = 0;
    for (let i = start; i < end; i++) if (this.set(i)) n++;
    return n;
  }

  /** Number of set bits in [start, end). */
  countRange(start: number, end: number): number {
    let n = 0;
    for (let i = start; i < end; i++) if (this.has(i)) n++;
    return n;
  }

  /** First index >= from (and < end) whose bit equals value, or -1. A word at a time: the lowest matching bit of each. */
  find(value: boolean, from: number, end = this.size): number {
    if (end > this.size) end = this.size;
    if (from >= end) return -1;
    const flip = value ? 0 : -1, last = (end - 1) >>> 5;
    let w = from >>> 5;
    // Bits that match, in the first word from `from` on.
    let bits = (this.words[w]! ^ flip) & (-1 << (from & 31));
    while (bits === 0) {
      if (++w > last) return -1;
      bits = this.words[w]! ^ flip;
    }
    const i = w * 32 + 31 - Math.clz32(bits & -bits);
    return i < end ? i : -1;
  }

  /** Runs of clear bits in [from, end), in order, at most limit of them. */
  clearRuns(from: number, end: number, limit: number): Array<{ start: number; count: number }> {
    const runs: Array<{ start: number; count: number }> = [];
    let i = from;
    while (runs.length < limit) {
      const s = this.find(false, i, end);
      if (s < 0) break;
      let e = this.find(true, s, end);
      if (e < 0) e = end;
      runs.push({ start: s, count: e - s });
      i = e;
    }
    return runs;
  }
}
