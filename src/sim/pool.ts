// Runs scenarios on worker threads, one per core (each run is single-threaded and
// independent): the results come back in the order of the input, whatever finished first,
// so a sweep gives the same table on 1 core or 8.

import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { dataPayloadFor } from '../protocol/codec.ts';
import { type Metrics, type Scenario, simulate } from './scenario.ts';

export async function runAll(scenarios: Scenario[], workers = availableParallelism(), onDone?: (i: number, m: Metrics) => void): Promise<Metrics[]> {
  const out: Metrics[] = new Array(scenarios.length);
  if (workers <= 1) {
    scenarios.forEach((s, i) => { out[i] = simulate(s); onDone?.(i, out[i]); });
    return out;
  }
  // Longest first (simulated datagrams grow with clients × image size), so no core idles at the end.
  const order = scenarios.map((_, i) => i).sort((a, b) => cost(scenarios[b]!) - cost(scenarios[a]!));
  let next = 0;
  const pool = Array.from({ length: Math.min(workers, scenarios.length) }, () => new Worker(new URL('./worker.ts', import.meta.url)));
  try {
    await Promise.all(pool.map((w) => new Promise<void>((resolve, reject) => {
      const feed = (): void => {
        if (next >= order.length) { resolve(); return; }
        const i = order[next++]!;
        w.once('message', (m: Metrics) => { out[i] = m; onDone?.(i, m); feed(); });
        w.postMessage(scenarios[i]);
      };
      w.once('error', reject);
      feed();
    })));
  } finally {
    await Promise.all(pool.map((w) => w.terminate()));
  }
  return out;
}

/** Rough cost of a run: datagrams times receivers (stop and wait sends 512-byte packets, and waits). */
function cost(s: Scenario): number {
  const payload = s.payload ?? (s.protocol === 'classic' ? 512 : dataPayloadFor(s.mtu));
  return ((s.size * 2 ** 20) / payload) * (s.clients + (s.slow > 0 ? 1 : 0)) * (1 + s.loss / 10);
}
