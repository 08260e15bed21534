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

  /** First index >= from (and < end) whose bit equals value, or -1. Skips whole words. */
  find(value: boolean, from: number, end = this.size): number {
    let i = from;
    while (i < end) {
      const w = this.words[i >>> 5]!;
      if ((i & 31) === 0 && w === (value ? 0 : 0xffffffff) && i + 32 <= end) { i += 32; continue; }
      if (((w >>> (i & 31)) & 1) === (value ? 1 : 0)) return i;
      i++;
    }
    return -1;
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
