// Rate and time left for progress lines and screens: a count sampled now and then, its rate
// over the last few seconds (a lifetime average hides a stall; one interval jitters).

export class Meter {
  private readonly samples: Array<{ at: number; value: number }> = [];
  private readonly windowMs: number;

  constructor(windowMs = 5000) { this.windowMs = windowMs; }

  /** Record `value` (a growing count) at `at` ms and return its rate in units per second. */
  sample(at: number, value: number): number {
    const s = this.samples;
    // A count that went down (a new session, a restarted master) starts the window again.
    if (s.length > 0 && value < s[s.length - 1]!.value) s.length = 0;
    s.push({ at, value });
    while (s.length > 2 && at - s[1]!.at >= this.windowMs) s.shift();
    return this.rate();
  }

  rate(): number {
    const s = this.samples;
    if (s.length < 2) return 0;
    const first = s[0]!, last = s[s.length - 1]!;
    return last.at > first.at ? ((last.value - first.value) * 1000) / (last.at - first.at) : 0;
  }

  /** Seconds until `remaining` units are done at the current rate; undefined while it is not moving. */
  eta(remaining: number): number | undefined {
    const r = this.rate();
    return r > 0 ? Math.ceil(remaining / r) : undefined;
  }
}

/** 75 -> "1:15", 3700 -> "1:01:40". */
export function clock(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
  const two = (n: number): string => String(n).padStart(2, '0');
  return h > 0 ? `${h}:${two(m)}:${two(r)}` : `${m}:${two(r)}`;
}
