// The paper's adaptive time-out (MTP section 2.1): when it expires Tout is multiplied
// by alpha; when the awaited ACK arrives Tout = max(Tout / 2, T0). The paper gives no
// ceiling; we cap at tMax so that a long silence (every client gone) cannot push the
// next wait to minutes. In the default mode the sender also passes the time each ACK
// took (block's last packet sent -> ACK in): Tout then never drops below the smoothed
// round trip plus four deviations (RFC 6298's estimator), so a client that is merely
// busy, or that waits its ARTP, does not time out block after block.

export class AdaptiveTimeout {
  value: number;
  readonly t0: number;
  readonly alpha: number;
  readonly tMax: number;
  private srtt = 0;
  private rttvar = 0;

  constructor(t0: number, alpha: number, tMax: number) {
    if (!(t0 > 0) || !(alpha > 1) || !(tMax >= t0)) throw new Error(`bad time-out parameters T0=${t0} alpha=${alpha} Tmax=${tMax}`);
    this.t0 = t0;
    this.alpha = alpha;
    this.tMax = tMax;
    this.value = t0;
  }

  expired(): void { this.value = Math.min(this.value * this.alpha, this.tMax); }
  acknowledged(rtt?: number): void {
    let floor = this.t0;
    if (rtt !== undefined) {
      if (this.srtt === 0) { this.srtt = rtt; this.rttvar = rtt / 2; }
      else { this.rttvar += (Math.abs(this.srtt - rtt) - this.rttvar) / 4; this.srtt += (rtt - this.srtt) / 8; }
      floor = Math.min(this.tMax, Math.max(floor, this.srtt + 4 * this.rttvar));
    }
    this.value = Math.max(this.value / 2, floor);
  }
}
