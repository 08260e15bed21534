// A client's side of MTP flow control (paper, 2.1 and 2.2): when a block ends the
// client waits a random time (ARTP) before acknowledging, and gives the ACK up if it
// hears another client acknowledge every block it has (or the master's DATA echoes
// such an ACK, or the master has moved a whole window past them).
// One ACK confirms every block before it, so a client keeps one timer, not one per block:
// it starts when a block ends with none running, and the ACK that goes names the highest
// block ended by then. An ACK heard from someone else for some of those blocks starts the
// wait afresh for the rest. With a timer per block, a client that hears the others late
// (a busy PC, a long round trip) still held an early-firing timer for some block beyond
// the one they acknowledged, and the ACKs grew with the number of clients.

import { type ArtpPolicy, type FeedbackPolicy, drawWait } from './params.ts';
import type { Rng } from './rng.ts';

/** An ACK to send: `received` counts first-pass packets of the `sampled` blocks before `block` (0: of `block`). */
export interface AckDue { block: number; received: number; sampled: number }

export class AckScheduler {
  /** When the ACK goes (Infinity: none pending). */
  private dueAt = Infinity;
  /** Block -> packets received in the first pass (recent blocks only). */
  private readonly counts = new Map<number, number>();
  /** Highest block acknowledged by anyone (us, another client, the master's echo). */
  private acked = -1;
  /** Highest block that has ended for us and of which we received something: what our ACK names. */
  private ended = -1;
  private current = -1;
  suppressed = 0;
  sent = 0;
  private readonly artp: ArtpPolicy;
  private readonly window: number;
  private readonly rng: Rng;
  private readonly policy: FeedbackPolicy;
  /** The first block we received a packet of, and the last one our previous ACK's loss sample counted. */
  private first = -1;
  private sampledTo = -1;

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
    if (this.first < 0) this.first = block;
    if (block > this.current) {
      // Every block between the one we were in and this one has ended for us.
      for (let b = block - 1; b >= Math.max(this.current, block - this.window - 1); b--) {
        if (this.counts.has(b)) { this.end(b, now); break; }
      }
      // The master sends block B only once block B - window is resolved: stop waiting for those. Only
      // from the next block in order: a packet far ahead may be lost data's successor, or a forgery,
      // and must not silence this client's ACKs for the blocks in between.
      if (block === this.current + 1) this.cover(block - this.window);
      this.current = block;
      for (const b of this.counts.keys()) if (b < block - 2 * this.window) this.counts.delete(b);
    }
    if (last) this.end(block, now);
  }

  private end(block: number, now: number): void {
    // NACK-only: nothing is acknowledged, losses wait for the repair phase.
    if (this.policy === 'nack' || block <= this.ended) return;
    this.ended = block;
    if (block <= this.acked || this.dueAt !== Infinity) return;
    // ACK-all suppresses nothing, so a random wait would only delay the ACK: it goes at once, as udpcast's does.
    this.dueAt = this.policy === 'ack-all' ? now : now + drawWait(this.artp, this.rng());
  }

  /**
   * Blocks up to `block` are acknowledged: our wait is given up if that covers every block we have.
   * True when the acknowledged blocks moved on and our wait still has blocks left to acknowledge.
   */
  private cover(block: number): boolean {
    // ACK-all: every client acknowledges every block whatever it heard (the master waits for each one).
    if (this.policy === 'ack-all') return false;
    block = Math.min(block, this.current);
    if (block <= this.acked) return false;
    this.acked = block;
    if (this.dueAt === Infinity) return false;
    if (this.ended > block) return true;
    this.dueAt = Infinity;
    this.suppressed++;
    return false;
  }

  /**
   * Someone acknowledged up to `block`: our ACK waits a fresh turn for what is left, or is not needed.
   * Never past the blocks we have seen: nobody can have acknowledged what the master has not sent,
   * and a forged ACK for the far future must not silence this client for the rest of the pass.
   */
  ackedUpTo(block: number, now: number): void {
    if (this.cover(block)) this.dueAt = now + drawWait(this.artp, this.rng());
  }

  /**
   * The ACK due at `now`, if any. It names the highest block ended (and confirms all before it). Its
   * loss sample counts what we received of every block since our previous ACK's sample, up to the one
   * before the named block: the named block may still have packets on the way where they arrive out
   * of order. A block of which nothing came counts as lost whole.
   */
  due(now: number): AckDue | undefined {
    if (now < this.dueAt) return undefined;
    this.dueAt = Infinity;
    const block = this.ended;
    // Only blocks whose counts are still kept, and only as many packets as the field holds.
    const from = Math.max(this.sampledTo + 1, this.first, this.current - 2 * this.window);
    let received = 0, sampled = 0;
    for (let b = block - 1; b >= from; b--) {
      const c = this.counts.get(b) ?? 0;
      if (received + c > 0xffff) break;
      received += c;
      sampled++;
    }
    if (sampled === 0) received = this.counts.get(block) ?? 0;
    this.sampledTo = sampled === 0 ? block : block - 1;
    this.acked = block;
    this.sent++;
    return { block, received, sampled };
  }

  nextDue(): number { return this.dueAt; }
}
