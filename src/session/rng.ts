// Random numbers are injected: the product passes Math.random, tests pass a seeded generator.

export type Rng = () => number;

/** mulberry32: small, fast, seeded; good enough for loss models and timer jitter. */
export function seeded(seed: number): Rng {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
