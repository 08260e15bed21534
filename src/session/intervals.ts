// A set of half-open integer intervals. A client collects here the repair ranges it
// heard other clients ask for in the current epoch (many adds), then subtracts them
// from its own requests (few queries; in the pass it drops what lies behind them as it
// goes): adds are appended, merged lazily. The master
// keeps each client's requests of an epoch in one, to see how much of them it asks again.

import type { PacketRange } from '../protocol/messages.ts';

export class IntervalSet {
  private starts: number[] = [];
  private ends: number[] = [];
  private sorted = true;

  get empty(): boolean { return this.starts.length === 0; }

  clear(): void { this.starts = []; this.ends = []; this.sorted = true; }

  add(start: number, end: number): void {
    if (end <= start) return;
    this.starts.push(start);
    this.ends.push(end);
    this.sorted = false;
  }

  private normalize(): void {
    if (this.sorted) return;
    const order = this.starts.map((_, i) => i).sort((a, b) => this.starts[a]! - this.starts[b]!);
    const s: number[] = [], e: number[] = [];
    for (const i of order) {
      const st = this.starts[i]!, en = this.ends[i]!;
      if (s.length > 0 && st <= e[e.length - 1]!) e[e.length - 1] = Math.max(e[e.length - 1]!, en);
      else { s.push(st); e.push(en); }
    }
    this.starts = s;
    this.ends = e;
    this.sorted = true;
  }

  /** Forget everything below `point` (what no query will name again). */
  dropBelow(point: number): void {
    this.normalize();
    let i = 0;
    while (i < this.ends.length && this.ends[i]! <= point) i++;
    if (i > 0) { this.starts = this.starts.slice(i); this.ends = this.ends.slice(i); }
  }

  /** The intervals, merged and in order. */
  get ranges(): PacketRange[] {
    this.normalize();
    return this.starts.map((start, i) => ({ start, count: this.ends[i]! - start }));
  }

  /** Where the last interval ends (0 when empty). */
  get end(): number {
    this.normalize();
    return this.ends[this.ends.length - 1] ?? 0;
  }

  /** How much of [start, start+count) the set covers. */
  covered(r: PacketRange): number {
    let outside = 0;
    for (const piece of this.subtract(r)) outside += piece.count;
    return r.count - outside;
  }

  /** The parts of [start, start+count) not covered by the set. */
  subtract(r: PacketRange): PacketRange[] {
    this.normalize();
    const out: PacketRange[] = [];
    let cur = r.start;
    const end = r.start + r.count;
    // Binary search for the first interval ending after cur.
    let lo = 0, hi = this.starts.length;
    while (lo < hi) { const mid = (lo + hi) >> 1; if (this.ends[mid]! <= cur) lo = mid + 1; else hi = mid; }
    for (let i = lo; i < this.starts.length && this.starts[i]! < end; i++) {
      if (this.starts[i]! > cur) out.push({ start: cur, count: this.starts[i]! - cur });
      cur = Math.max(cur, this.ends[i]!);
    }
    if (cur < end) out.push({ start: cur, count: end - cur });
    return out;
  }
}
