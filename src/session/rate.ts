// Pacing rate of the master. ACKs carry how many packets of the block the
// acknowledging client received. Each client's loss is smoothed on its own, and the
// pace follows the lower median of the clients heard from lately: a smoothed loss above
// `high` lowers the rate, one below `low` raises it again, at most once per adjustment
// interval. A loss in between (random loss on a healthy link) does not lower the rate:
// lowering it would not bring the packets back. Nor does it keep a rate lowered before
// (by a burst of loss at the start, while the PCs' code compiles): every PROBE intervals
// the rate goes up a step while the loss stays within RISE of the least seen since it
// came between the thresholds, each step larger than the last (up to what a cut takes
// away). Random loss does not grow with the rate, so the pace climbs back; the loss
// behind a bottleneck grows with the steps past it, so the climb stops there, and the
// pace stays where its loss lies between the thresholds, as before.
// Without it, in one of the bench's runs of "3, 5% on all, jumbo" (2026-12-07), a
// start that lost more than HIGH cut the pace to 410 Mbit/s in its first 2 s, and the 5%
// loss that followed held it there for the whole pass: 23.2 s against 10.0 s.
// A smoothed loss lags: after a burst it stays above HIGH for a while, and cut after cut
// followed, every interval, while it came down (in another run of that row, from 1000 to
// 28 Mbit/s in the first 2 s, and the pass took 312 s). So a cut brings every client's
// smoothed loss down to HIGH at most: only losses above HIGH sampled after it cut again,
// and a burst that is over cuts no further.
// The median, not the worst client: a lossy path shared by most PCs (the master's own
// link, a busy switch) slows everyone down, but one PC on a slow or bad link does not
// hold the others back; it catches up by repair, or the slow-client policy drops it.
// Time-outs are not samples: the ACKs after them say what arrived (a late ACK from a
// busy client is no reason to slow everyone down).
// In the repair phase there are no ACKs. There the master measures, epoch by epoch, how much
// of the repairs each client asked for it asks for again (`measured`); a pace the median
// client could not take is then cut to what it took, at once (`settle`): a whole epoch is
// many packets, and repairs sent faster than a PC's link are lost at its port, epoch after epoch.
// The requests that tell what an epoch lost come in the next epoch: the cut is of the pace the
// measured epoch was sent at, not of one already cut since.

/** A client's smoothed loss, and when it was last heard from. */
interface Source { loss: number; at: number }

export class RateController {
  rate: number;
  private readonly min: number;
  private readonly max: number;
  private readonly sources = new Map<string, Source>();
  private lastAdjust = -Infinity;
  /** The least loss seen since it came between the thresholds (undefined: it is not there), and the steps up since. */
  private bandLeast: number | undefined;
  private steps = 0;
  /** How far one block's loss moves a client's smoothed loss (a sample of n blocks: 1 - (1 - GAIN)^n). */
  static readonly GAIN = 1 / 8;
  static readonly HIGH = 0.12;
  static readonly LOW = 0.03;
  static readonly DECREASE = 0.8;
  static readonly INCREASE = 1.05;
  /** A client not heard from for this long (done, dropped, gone) no longer counts. */
  static readonly FRESH = 2000;
  /** Intervals between the steps up of a pace whose loss lies between the thresholds. */
  static readonly PROBE = 5;
  /** How far above the least loss seen between the thresholds a step up may find it, and the climb go on. */
  static readonly RISE = 0.02;

  private readonly interval: number;

  constructor(o: { initial: number; min: number; max: number }, interval: number) {
    this.interval = interval;
    this.rate = o.initial;
    this.min = o.min;
    this.max = o.max;
  }

  get paced(): boolean { return this.max > 0; }

  /** The loss the pace follows now: the lower median of the clients' smoothed losses. */
  private smoothedLoss(now: number): number {
    const losses: number[] = [];
    for (const [k, s] of this.sources) {
      if (now - s.at > RateController.FRESH) this.sources.delete(k);
      else losses.push(s.loss);
    }
    if (losses.length === 0) return 0;
    losses.sort((a, b) => a - b);
    return losses[(losses.length - 1) >> 1]!;
  }

  /** `source` is gone (done, dropped, lost): its losses no longer count. */
  forget(source: string): void { this.sources.delete(source); }

  /** What `source` lost of a whole repair epoch: it replaces the smoothed loss. Call settle() once all are in. */
  measured(source: string, lossFraction: number, now: number): void { this.sources.set(source, { loss: lossFraction, at: now }); }

  /**
   * After an epoch's measurements, of an epoch sent at pace `then`: a median loss above `high` cuts
   * the pace to what got through of `then` (at most tenfold); one below `low` raises it.
   */
  settle(now: number, then: number): void {
    if (this.paced) this.adjust(now, (loss) => Math.min(this.rate, then * Math.max(0.1, Math.min(RateController.DECREASE, 1 - loss))));
  }

  /** One ACK from `source` (a client id, or an address where ACKs name nobody): its loss over `blocks` blocks. */
  sample(source: string, lossFraction: number, now: number, blocks = 1): void {
    const gain = 1 - (1 - RateController.GAIN) ** blocks;
    const s = this.sources.get(source);
    if (s) { s.loss += (lossFraction - s.loss) * gain; s.at = now; }
    else this.sources.set(source, { loss: lossFraction * gain, at: now });
    if (this.paced && now - this.lastAdjust >= this.interval) this.adjust(now, () => this.rate * RateController.DECREASE, true);
  }

  /**
   * The median loss against the thresholds: above `high` the pace goes to `lowered(loss)`, below `low`
   * up by INCREASE; in between, where the losses come from ACKs (`acked`), up every PROBE intervals
   * while the loss stays within RISE of the least seen there. A cut on ACKs brings each client's
   * smoothed loss down to `high` at most.
   */
  private adjust(now: number, lowered: (loss: number) => number, acked = false): void {
    const loss = this.smoothedLoss(now);
    if (loss > RateController.HIGH) {
      this.bandLeast = undefined;
      this.rate = Math.max(this.min, lowered(loss));
      this.lastAdjust = now;
      if (acked) for (const s of this.sources.values()) s.loss = Math.min(s.loss, RateController.HIGH);
    } else if (loss < RateController.LOW) {
      this.bandLeast = undefined;
      if (this.rate < this.max) this.up(now);
    } else if (acked) {
      if (this.bandLeast === undefined) this.steps = 0;
      this.bandLeast = Math.min(this.bandLeast ?? loss, loss);
      if (this.rate >= this.max || now - this.lastAdjust < RateController.PROBE * this.interval) return;
      if (loss > this.bandLeast + RateController.RISE) this.steps = 0;
      // Each step up the loss did not follow makes the next one larger, up to what a cut takes away.
      else this.up(now, Math.min(RateController.INCREASE ** ++this.steps, 1 / RateController.DECREASE));
    }
  }

  private up(now: number, by = RateController.INCREASE): void {
    this.rate = Math.min(this.max, this.rate * by);
    this.lastAdjust = now;
  }
}
