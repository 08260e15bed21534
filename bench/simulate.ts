// The parameter study of docs/TUNING.md, from one command:
//
//   node bench/simulate.ts [--seed N] [--only artp,t0,...] [--workers N] [--out DIR]
//   node bench/simulate.ts --check-real [--size MIB] [--runs N]   (root: the netns lab against the simulator)
//
// The sweep runs every experiment of src/sim/sweep.ts (the real master and client
// machines, simulated networks, a fake clock) on worker threads, then writes one SVG per
// experiment and metric and a results table into DIR (default docs/tuning; results.md, or
// results-ID.md for a partial sweep). The same seed gives the same files, whatever the
// number of workers.

import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { type Experiment, type Point, experiments, sweep } from '../src/sim/sweep.ts';
import { checkReal } from './realcheck.ts';
import { lineChart } from './svg.ts';

const { values } = parseArgs({
  options: {
    seed: { type: 'string', default: '1' },
    only: { type: 'string', default: '' },
    workers: { type: 'string', default: '2' },
    out: { type: 'string', default: join(import.meta.dirname, '../docs/tuning') },
    'check-real': { type: 'boolean', default: false },
    size: { type: 'string', default: '64' },
    runs: { type: 'string', default: '3' },
  },
});

const whole = (name: string, v: string, min: number): number => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) { console.error(`bench/simulate.ts: --${name} wants a whole number from ${min}, got "${v}"`); process.exit(2); }
  return n;
};

if (values['check-real']) {
  process.exitCode = await checkReal({ size: whole('size', values.size, 4), runs: whole('runs', values.runs, 1) }) ? 0 : 1;
} else {
  const seed = whole('seed', values.seed, 0);
  const known = new Set(experiments().map((e) => e.id));
  const only = values.only ? new Set(values.only.split(',')) : undefined;
  for (const id of only ?? []) if (!known.has(id)) { console.error(`bench/simulate.ts: no experiment "${id}" (${[...known].join(', ')})`); process.exit(2); }
  const started = performance.now();
  const r = await sweep(seed, {
    only, workers: whole('workers', values.workers, 1),
    progress: (done, total) => { if (done % 20 === 0 || done === total) process.stderr.write(`  ${done}/${total} runs, ${((performance.now() - started) / 1000).toFixed(0)} s\n`); },
  });
  const wall = (performance.now() - started) / 1000;
  mkdirSync(values.out, { recursive: true });
  const chosen = experiments().filter((e) => !only || only.has(e.id));
  for (const e of chosen) {
    e.metrics.forEach((m, k) => {
      const chart = lineChart({
        title: e.title, xLabel: e.x.label, yLabel: m.label, xLog: e.x.log, yLog: m.log,
        series: e.series.map((s) => ({ label: s.label, points: e.x.values.map((x) => [x, find(r.points, e, s.label, x).metrics[m.key]] as [number, number]) })),
      });
      writeFileSync(join(values.out, `${e.id}${k === 0 ? '' : `-${m.key}`}.svg`), chart);
    });
  }
  const failed = r.points.filter((p) => !p.ok);
  const head = [
    '# Simulation sweep results', '',
    `Written by \`node bench/simulate.ts --seed ${seed}${values.only ? ` --only ${values.only}` : ''}\` (${r.runs} runs; ${wall.toFixed(0)} s on ${values.workers} worker(s), ` +
      `${(r.cpuMs / 1000).toFixed(0)} s of simulation). Each cell is the median over the experiment's runs (seeds from ${seed}). ` +
      'Base scenario unless the row says otherwise: 10 clients, 16 MiB, every link 1 Gbit/s (tc tbf-like: 64 KiB bucket, 20 ms queue), ' +
      '0.05 ms one way (+ up to 0.025 ms jitter), 1% independent loss at each client, the shipped default parameters (src/session/params.ts).',
    '', failed.length === 0 ? 'Every run ended with every client verified and every disk identical to the image.' : `Runs that did not end verified and identical: ${failed.map((p) => `${p.experiment}/${p.series}/${p.x}`).join(', ')}.`,
  ];
  const body = chosen.flatMap((e) => table(e, r.points));
  // A partial sweep keeps the whole one's table: its own goes beside it.
  const name = only ? `results-${[...only].join('-')}.md` : 'results.md';
  writeFileSync(join(values.out, name), `${[...head, ...body].join('\n')}\n`);
  console.log(`bench/simulate: ${r.runs} runs in ${wall.toFixed(0)} s; ${failed.length} not verified; wrote ${values.out}`);
  if (failed.length > 0) process.exitCode = 1;
}

function find(points: Point[], e: Experiment, series: string, x: number): Point {
  return points.find((p) => p.experiment === e.id && p.series === series && p.x === x)!;
}

function table(e: Experiment, points: Point[]): string[] {
  const f = (v: number): string => (!Number.isFinite(v) ? '-' : Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 1 ? v.toFixed(2) : v.toFixed(3));
  const cols = ['done', 'pass', 'passMBps', 'goodputMBps', 'acksPerBlock', 'feedback', 'requests', 'timeouts', 'repairShare', 'wirePerByte'] as const;
  const extra = e.metrics.map((m) => m.key).filter((k) => !(cols as readonly string[]).includes(k));
  const keys = [...cols, ...extra];
  return [
    '', `## ${e.id}: ${e.title}`, '', `Charts: ${e.metrics.map((m, k) => `\`${e.id}${k === 0 ? '' : `-${m.key}`}.svg\``).join(', ')}. ${e.reps} run(s) per point.`, '',
    `| series | ${e.x.label} | ${keys.join(' | ')} |`, `|${'---|'.repeat(keys.length + 2)}`,
    ...e.series.flatMap((s) => e.x.values.map((x) => {
      const p = find(points, e, s.label, x);
      return `| ${s.label}${p.ok ? '' : ' (FAILED)'} | ${x} | ${keys.map((k) => f(p.metrics[k])).join(' | ')} |`;
    })),
  ];
}
