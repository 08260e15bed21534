// The study is reproducible: a seed gives the same numbers, on one worker or two; another
// seed gives other runs. And every experiment's plan is well formed, and the median (the sweep's
// and the benches') is the middle value, or the mean of the middle two.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { experiments, median, plan, sweep } from '../../src/sim/sweep.ts';

// The study's own classic T0 experiment, cut down: two series, three values of T0, two reps.
const t0 = experiments().find((e) => e.id === 't0-classic')!;
const small = [{ ...t0, series: t0.series.slice(0, 2), x: { ...t0.x, values: [1, 4, 16] }, reps: 2 }];

test('a small sweep gives identical results twice for a seed, on one worker or two', async () => {
  const a = await sweep(7, { experiments: small, workers: 1 });
  const b = await sweep(7, { experiments: small, workers: 2 });
  assert.equal(a.points.length, 6);
  assert.deepEqual(b.points, a.points);
  const c = await sweep(8, { experiments: small, workers: 2 });
  assert.notDeepEqual(c.points.map((p) => p.metrics), a.points.map((p) => p.metrics), 'another seed ran the same runs');
  assert.ok(a.points.every((p) => p.ok), 'a run did not end with identical disks');
});

test('every point of the plan has a scenario the simulator takes, seeds shared across x and series', () => {
  const runs = plan(1);
  const ids = new Set(experiments().map((e) => e.id));
  assert.equal(new Set(runs.map((r) => r.experiment.id)).size, ids.size);
  for (const e of experiments()) {
    const seeds = new Set(runs.filter((r) => r.experiment.id === e.id).map((r) => r.scenario.seed));
    assert.equal(seeds.size, e.reps, `${e.id}: ${seeds.size} seeds for ${e.reps} reps`);
  }
  for (const r of runs) assert.ok(r.scenario.clients >= 1 && r.scenario.size > 0, `${r.experiment.id}: ${JSON.stringify(r.scenario)}`);
});

test('the median: the middle value whatever the order, the mean of the two middle ones of an even count, NaN of none', () => {
  assert.equal(median([9, 1, 5]), 5);
  assert.equal(median([27.02, 25.07]), 26.045);
  assert.equal(median([4, 1, 3, 2]), 2.5);
  assert.ok(Number.isNaN(median([])));
});
