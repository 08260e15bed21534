// The parameter study of docs/TUNING.md: experiments over the scenario space, each one
// variable on the x axis and a few series, every point run `reps` times with seeds
// drawn from the sweep's seed (the same seeds for every x and series of an experiment:
// the curves differ by the parameter, not by luck).

import { dataPayloadFor } from '../protocol/codec.ts';
import type { FeedbackPolicy } from '../session/params.ts';
import { runAll } from './pool.ts';
import { BASE, type Metrics, type Scenario } from './scenario.ts';

/** What a point reports: every metric but the wall time, so that a seed gives the same table on any machine. */
export type Metric = Exclude<keyof Metrics, 'ok' | 'wall'>;

export interface Experiment {
  id: string;
  title: string;
  /** What the x values set, and how to label them. */
  x: { label: string; values: number[]; set: (x: number) => Partial<Scenario>; log?: boolean };
  series: Array<{ label: string; set: Partial<Scenario> }>;
  /** Plotted and tabled, first one first. */
  metrics: Array<{ key: Metric; label: string; log?: boolean }>;
  reps: number;
  /** What every point of the experiment changes from BASE. */
  base?: Partial<Scenario>;
}

export interface Point {
  experiment: string;
  series: string;
  x: number;
  /** Median over the reps, and whether every rep ended with every disk identical. */
  metrics: Record<Metric, number>;
  ok: boolean;
}

const small = (n: number): number => (n >= 200 ? 2 : 8);
const policies: FeedbackPolicy[] = ['mtp', 'ack-all', 'nack'];

export function experiments(): Experiment[] {
  return [
    {
      id: 'artp', title: 'ACK suppression: ACKs per block against clients, by ARTP',
      x: { label: 'clients', values: [1, 10, 50, 100, 200, 500], set: (n) => ({ clients: n, size: small(n) }), log: true },
      series: [
        ...[2, 5, 10, 20, 40].map((a) => ({ label: `exp ${a} ms`, set: { artp: a, artpShape: 'exp' as const } })),
        { label: 'uniform 20 ms', set: { artp: 20, artpShape: 'uniform' as const } },
      ],
      metrics: [{ key: 'acksPerBlock', label: 'ACK datagrams per block', log: true }, { key: 'pass', label: 'first pass, ms' }],
      reps: 1,
    },
    {
      id: 'policy', title: 'Feedback policies: datagrams at the master and completion against clients',
      x: { label: 'clients', values: [1, 10, 50, 100, 200, 500], set: (n) => ({ clients: n, size: n >= 200 ? 1 : 4 }), log: true },
      series: policies.map((f) => ({ label: f, set: { feedback: f } })),
      metrics: [
        { key: 'feedback', label: 'datagrams at the master', log: true }, { key: 'acks', label: 'ACK datagrams at the master', log: true },
        { key: 'done', label: 'completion, ms' },
      ],
      reps: 1,
    },
    {
      id: 't0', title: 'T0 (default mode): completion against T0',
      x: { label: 'T0, ms', values: [5, 10, 20, 40, 80, 160], set: (t0) => ({ t0 }), log: true },
      series: [
        { label: 'LAN, 1% loss', set: {} },
        { label: 'RTT 10 ms, 1% loss', set: { delay: 5 } },
        { label: 'bursts of 30, 2%', set: { loss: 2, burst: 30 } },
        { label: '5% of feedback lost', set: { masterLoss: 5 } },
        { label: 'window 2 blocks, RTT 10 ms', set: { window: 2, delay: 5 } },
      ],
      metrics: [{ key: 'done', label: 'completion, ms' }, { key: 'timeouts', label: 'blocks timed out' }],
      reps: 5,
    },
    {
      id: 't0-classic', title: 'T0 (classic, stop and wait): first pass against T0', base: { protocol: 'classic', size: 0.5 },
      x: { label: 'T0, ms', values: [0.5, 1, 2, 4, 8, 16, 32], set: (t0) => ({ t0 }), log: true },
      series: [
        { label: '1 client, 5% loss', set: { clients: 1, loss: 5 } },
        { label: '10 clients, 2% loss', set: { loss: 2 } },
        { label: '10 clients, RTT 2 ms', set: { delay: 1 } },
      ],
      metrics: [{ key: 'pass', label: 'first pass, ms' }, { key: 'timeouts', label: 'packets timed out' }],
      reps: 3,
    },
    {
      id: 'alpha', title: 'alpha: completion against alpha where time-outs happen',
      x: { label: 'alpha', values: [1.25, 1.5, 2, 3, 4], set: (alpha) => ({ alpha }) },
      series: [
        { label: 'classic, 1 client, 5% loss', set: { protocol: 'classic', size: 0.5, clients: 1, loss: 5 } },
        { label: 'classic, 10 clients, 5% feedback lost', set: { protocol: 'classic', size: 0.5, masterLoss: 5 } },
        { label: 'B=1 W=1, 1 client, 5% loss', set: { block: 1, window: 1, size: 2, clients: 1, loss: 5 } },
        { label: 'default, bursts of 50, 5%', set: { loss: 5, burst: 50 } },
      ],
      metrics: [{ key: 'done', label: 'completion, ms', log: true }, { key: 'timeouts', label: 'time-outs' }],
      reps: 3,
    },
    {
      id: 'window', title: 'Blocks in flight: goodput against round trip (stop and wait breaks down)',
      x: { label: 'one-way delay, ms', values: [0.05, 0.5, 2, 5, 10], set: (delay) => ({ delay }), log: true },
      series: [
        { label: 'classic (512 B, B=1, W=1)', set: { protocol: 'classic', size: 0.25 } },
        { label: 'B=1 W=1', set: { block: 1, window: 1, size: 2 } },
        { label: 'B=64 W=1', set: { window: 1 } },
        { label: 'B=64 W=4', set: { window: 4 } },
        { label: 'B=64 W=16', set: { window: 16 } },
        { label: 'B=64 W=64 (default)', set: {} },
      ],
      metrics: [{ key: 'passMBps', label: 'first pass, MB/s of image', log: true }, { key: 'goodputMBps', label: 'goodput to the end, MB/s', log: true }],
      reps: 1,
    },
    {
      id: 'block', title: 'Block size at the same bytes in flight (B·W = 4096 packets)',
      x: { label: 'packets per block', values: [4, 16, 64, 256], set: (b) => ({ block: b, window: 4096 / b }), log: true },
      series: [{ label: 'LAN', set: {} }, { label: 'RTT 10 ms', set: { delay: 5 } }, { label: '100 clients', set: { clients: 100, size: 4 } }],
      metrics: [{ key: 'acks', label: 'ACK datagrams at the master', log: true }, { key: 'done', label: 'completion, ms' }],
      reps: 3,
    },
    {
      id: 'rate', title: 'Link rate: goodput, stop and wait against the default mode',
      x: { label: 'link rate, Mbit/s', values: [10, 100, 1000], set: (rate) => ({ rate }), log: true },
      series: [
        { label: 'classic', set: { protocol: 'classic', size: 0.5 } },
        { label: 'default', set: {} },
        { label: 'default, RTT 10 ms', set: { delay: 5 } },
      ],
      metrics: [{ key: 'passMBps', label: 'first pass, MB/s of image', log: true }, { key: 'goodputMBps', label: 'goodput to the end, MB/s', log: true }],
      reps: 3,
    },
    {
      id: 'loss', title: 'Loss: goodput against loss at every client',
      x: { label: 'loss, %', values: [0, 1, 2, 5, 10, 20], set: (loss) => ({ loss }) },
      series: [
        { label: 'default, 10 clients', set: {} },
        { label: 'default, 100 clients', set: { clients: 100, size: 4 } },
        { label: 'default, bursts of 20', set: { burst: 20 } },
        { label: 'classic, 10 clients', set: { protocol: 'classic', size: 0.5 } },
      ],
      metrics: [{ key: 'goodputMBps', label: 'goodput, MB/s', log: true }, { key: 'repairShare', label: 'repair packets per packet' }],
      reps: 3,
    },
    {
      id: 'payload', title: 'Packet size: goodput and bytes on the wire',
      x: { label: 'payload, bytes', values: [256, 512, 1024, dataPayloadFor(1500), dataPayloadFor(9000)], set: (payload) => ({ payload, mtu: payload > dataPayloadFor(1500) ? 9000 : 1500 }), log: true },
      series: [{ label: '1% loss', set: {} }, { label: '5% loss', set: { loss: 5 } }],
      metrics: [{ key: 'goodputMBps', label: 'goodput to the end, MB/s' }, { key: 'wirePerByte', label: 'wire bytes per image byte' }, { key: 'passMBps', label: 'first pass, MB/s of image' }],
      reps: 3,
    },
    {
      id: 'repair', title: 'Repair back-off: completion against repairWait',
      x: { label: 'repairWait, ms', values: [5, 10, 30, 60, 120], set: (repairWait) => ({ repairWait }), log: true },
      series: [
        { label: '10 clients, 1%', set: {} },
        { label: '100 clients, 1%', set: { clients: 100, size: 4 } },
        { label: '30 clients behind a 300 Mbit/s router', set: { clients: 30, size: 8, lans: 2, lanRate: 300, lanDelay: 1 } },
      ],
      metrics: [{ key: 'done', label: 'completion, ms' }, { key: 'requests', label: 'repair requests at the master', log: true }],
      reps: 5,
    },
    {
      id: 'lans', title: 'Three LANs, two behind a router: completion against the router\'s rate', base: { clients: 30, lans: 3, lanDelay: 1 },
      x: { label: 'router rate into LANs 1 and 2, Mbit/s', values: [100, 300, 1000], set: (lanRate) => ({ lanRate }), log: true },
      series: [{ label: 'mtp', set: {} }, { label: 'ack-all', set: { feedback: 'ack-all' } }],
      metrics: [{ key: 'done', label: 'completion, ms', log: true }, { key: 'repairShare', label: 'repair packets per packet' }],
      reps: 3,
    },
    {
      id: 'slow', title: 'One slow client among 10: when the others are done',
      x: { label: 'slow client\'s link, Mbit/s', values: [10, 50, 100, 1000], set: (slow) => ({ slow }), log: true },
      series: policies.map((f) => ({ label: f, set: { feedback: f, loss: 0 } })),
      metrics: [{ key: 'doneOthers', label: 'the 10 others done, ms', log: true }, { key: 'done', label: 'all done, ms', log: true }],
      reps: 3,
    },
  ];
}

/** The scenarios of the whole sweep, with each one's experiment, series and x. */
export function plan(seed: number, only?: Set<string>, list = experiments()): Array<{ experiment: Experiment; series: string; x: number; scenario: Scenario }> {
  const out: Array<{ experiment: Experiment; series: string; x: number; scenario: Scenario }> = [];
  for (const e of list) {
    if (only && !only.has(e.id)) continue;
    for (const s of e.series) for (const x of e.x.values) for (let rep = 0; rep < e.reps; rep++) {
      const scenario: Scenario = { ...BASE, ...e.base, ...s.set, ...e.x.set(x), seed: seedOf(seed, e.id, rep) };
      out.push({ experiment: e, series: s.label, x, scenario });
    }
  }
  return out;
}

function seedOf(seed: number, id: string, rep: number): number {
  let h = (seed * 0x9e3779b1 + rep * 0x85ebca6b) >>> 0;
  for (const ch of id) h = Math.imul(h ^ ch.charCodeAt(0), 0x01000193) >>> 0;
  return h;
}

export interface SweepResult { points: Point[]; runs: number; cpuMs: number }

export async function sweep(seed: number, o: {
  only?: Set<string>; workers?: number; progress?: (done: number, total: number) => void;
  /** Another list of experiments (tests run a small one). */
  experiments?: Experiment[];
} = {}): Promise<SweepResult> {
  const runs = plan(seed, o.only, o.experiments);
  let done = 0;
  const metrics = await runAll(runs.map((r) => r.scenario), o.workers, () => o.progress?.(++done, runs.length));
  const points = new Map<string, { run: (typeof runs)[number]; ms: Metrics[] }>();
  runs.forEach((r, i) => {
    const key = `${r.experiment.id}\u0000${r.series}\u0000${r.x}`;
    const p = points.get(key) ?? { run: r, ms: [] };
    p.ms.push(metrics[i]!);
    points.set(key, p);
  });
  return {
    runs: runs.length, cpuMs: metrics.reduce((s, m) => s + m.wall, 0),
    points: [...points.values()].map(({ run, ms }) => ({
      experiment: run.experiment.id, series: run.series, x: run.x, ok: ms.every((m) => m.ok),
      metrics: Object.fromEntries(Object.keys(ms[0]!).filter((k) => k !== 'ok' && k !== 'wall').map((k) => [k, median(ms.map((m) => m[k as Metric]))])) as Record<Metric, number>,
    })),
  };
}

/**
 * The median (of an even count, the mean of the middle two; NaN of none). The sweep takes it of the
 * reps: a lost ANNOUNCE costs a client up to 500 ms of the repair tail, and one such run must not move
 * a point. The benches take it of their runs.
 */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}
