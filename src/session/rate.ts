// Pacing rate of the master. ACKs carry how many packets of the block the
// acknowledging client received; a smoothed loss above `high` lowers the rate, a
// loss below `low` raises it again, at most once per adjustment interval. A loss in
// between (random loss on a healthy link) leaves the rate alone: lowering it would
// not bring the packets back. Time-outs are not samples: the ACKs after them say what
// arrived (a late ACK from a busy client is no reason to slow everyone down).

export class RateController {
  rate: number;
  private readonly min: number;
  private readonly max: number;
  private loss = 0;
  private lastAdjust = -Infinity;
  static readonly GAIN = 1 / 8;
  static readonly HIGH = 0.12;
  static readonly LOW = 0.03;
  static readonly DECREASE = 0.8;
  static readonly INCREASE = 1.05;

  private readonly interval: number;

  constructor(o: { initial: number; min: number; max: number }, interval: number) {
    this.interval = interval;
    this.rate = o.initial;
    this.min = o.min;
    this.max = o.max;
  }

  get paced(): boolean { return this.max > 0; }
  get smoothedLoss(): number { return this.loss; }

  sample(lossFraction: number, now: number): void {
    this.loss += (lossFraction - this.loss) * RateController.GAIN;
    if (!this.paced || now - this.lastAdjust < this.interval) return;
    if (this.loss > RateController.HIGH) {
      this.rate = Math.max(this.min, this.rate * RateController.DECREASE);
      this.lastAdjust = now;
    } else if (this.loss < RateController.LOW && this.rate < this.max) {
      this.rate = Math.min(this.max, this.rate * RateController.INCREASE);
      this.lastAdjust = now;
    }
  }
}
