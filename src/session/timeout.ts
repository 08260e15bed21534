// The paper's adaptive time-out (MTP section 2.1): when it expires Tout is multiplied
// by alpha; when the awaited ACK arrives Tout = max(Tout / 2, T0). The paper gives no
// ceiling; we cap at tMax so that a long silence (every client gone) cannot push the
// next wait to minutes.

export class AdaptiveTimeout {
  value: number;
  readonly t0: number;
  readonly alpha: number;
  readonly tMax: number;

  constructor(t0: number, alpha: number, tMax: number) {
    if (!(t0 > 0) || !(alpha > 1) || !(tMax >= t0)) throw new Error(`bad time-out parameters T0=${t0} alpha=${alpha} Tmax=${tMax}`);
    this.t0 = t0;
    this.alpha = alpha;
    this.tMax = tMax;
    this.value = t0;
  }

  expired(): void { this.value = Math.min(this.value * this.alpha, this.tMax); }
  acknowledged(): void { this.value = Math.max(this.value / 2, this.t0); }
}
