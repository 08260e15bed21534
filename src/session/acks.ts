// A client's side of MTP flow control (paper, 2.1 and 2.2): when a block ends the
// client waits a random time (ARTP) before acknowledging it, and gives the ACK up if
// it hears another client acknowledge that block (or a later one), if the master's
// DATA echoes an ACK for it, or if the master has moved a whole window past it.
// One ACK confirms every block before it, so a single watermark records all that.

import { type ArtpPolicy, type FeedbackPolicy, drawWait } from './params.ts';
import type { Rng } from './rng.ts';

export class AckScheduler {
  /** Block -> time its ACK fires. */
  private readonly pending = new Map<number, number>();
  /** Block -> packets received in the first pass (recent blocks only). */
  private readonly counts = new Map<number, number>();
  /** Highest block acknowledged by anyone (us, another client, the master's echo). */
  private acked = -1;
  private current = -1;
  suppressed = 0;
  sent = 0;
  private readonly artp: ArtpPolicy;
  private readonly window: number;
  private readonly rng: Rng;
  private readonly policy: FeedbackPolicy;

  constructor(artp: ArtpPolicy, window: number, rng: Rng, policy: FeedbackPolicy = 'mtp') {
    this.artp = artp;
    this.window = window;
    this.rng = rng;
    this.policy = policy;
  }

  /** A first-pass packet of `block` arrived; `last` if it is the block's final packet. */
  packet(block: number, last: boolean, now: number): void {
    // Every arrival counts, new to us or not: a client that rejoined holding the block still has it to acknowledge.
    this.counts.set(block, (this.counts.get(block) ?? 0) + 1);
    if (block > this.current) {
      // Every block between the one we were in and this one has ended for us.
      for (let b = Math.max(this.current, block - this.window - 1); b < block; b++) this.ended(b, now);
      // The master sends block B only once block B - window is resolved: stop waiting for those. Only
      // from the next block in order: a packet far ahead may be lost data's successor, or a forgery,
      // and must not silence this client's ACKs for the blocks in between.
      if (block === this.current + 1) this.ackedUpTo(block - this.window);
      this.current = block;
      for (const b of this.counts.keys()) if (b < block - 2 * this.window) this.counts.delete(b);
    }
    if (last) this.ended(block, now);
  }

  private ended(block: number, now: number): void {
    // NACK-only: nothing is acknowledged, losses wait for the repair phase.
    if (this.policy === 'nack') return;
    if (block <= this.acked || this.pending.has(block) || !this.counts.has(block)) return;
    // ACK-all suppresses nothing, so a random wait would only delay the ACK: it goes at once, as udpcast's does.
    this.pending.set(block, now + (this.policy === 'ack-all' ? 0 : drawWait(this.artp, this.rng())));
  }

  /**
   * Someone acknowledged up to `block`: any ACK of ours for it or an earlier block is redundant.
   * Never past the blocks we have seen: nobody can have acknowledged what the master has not sent,
   * and a forged ACK for the far future must not silence this client for the rest of the pass.
   */
  ackedUpTo(block: number): void {
    // ACK-all: every client acknowledges every block whatever it heard (the master waits for each one).
    if (this.policy === 'ack-all') return;
    block = Math.min(block, this.current);
    if (block <= this.acked) return;
    this.acked = block;
    for (const b of this.pending.keys()) {
      if (b <= block) { this.pending.delete(b); this.suppressed++; }
    }
  }

  /** The ACK due at `now`, if any: the highest due block (it confirms all before it). */
  due(now: number): { block: number; received: number } | undefined {
    let best = -1;
    for (const [b, t] of this.pending) if (t <= now && b > best) best = b;
    if (best < 0) return undefined;
    const received = this.counts.get(best) ?? 0;
    for (const b of this.pending.keys()) if (b <= best) this.pending.delete(b);
    this.acked = best;
    this.sent++;
    return { block: best, received };
  }

  nextDue(): number {
    let t = Infinity;
    for (const v of this.pending.values()) if (v < t) t = v;
    return t;
  }
}
