// Across LANs: the same PCs imaged on one LAN, and spread over three LANs whose router carries no
// multicast, crossed by relays (`must relay`, HRM over TCP). The goal: the relayed lab within 10%
// of the single LAN. Needs root (network namespaces, tc).
//
//   node bench/relays.ts [--size MIB] [--runs N] [--rate MBIT] [--infra MBIT] [--pcs N]
//
// The PCs' links are shaped to --rate (default 100 Mbit/s, edge ports) and the master's and the
// relays' to --infra (default 1000: servers on gigabit ports), in both layouts, with tc tbf; the
// sessions run at --rate, so the network, not the 2 cores, sets the pace. (A master or relay on a
// port no faster than the PCs' cannot match one LAN: its one link carries its LAN's multicast and
// a TCP copy for each relay below it.) As in a lab, the master and the relays are up before the
// PCs start (boot); time: from the PCs' start to the last PC verified. Every PC's copy is checked
// against the image's SHA-256.

import { createHash, randomFillSync } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { median } from '../src/sim/sweep.ts';
import { type Campus, createCampus } from '../test/net/campus.ts';
import { type Run, must, waitFor } from '../test/net/helpers.ts';
import { isRoot } from '../test/net/netns.ts';

const { values } = parseArgs({
  options: {
    size: { type: 'string', default: '128' },
    runs: { type: 'string', default: '3' },
    rate: { type: 'string', default: '100' },
    infra: { type: 'string', default: '1000' },
    pcs: { type: 'string', default: '2' },
  },
});
if (!isRoot()) { console.error('bench/relays.ts: needs root (network namespaces, tc)'); process.exit(2); }
const SIZE = Number(values.size) << 20, RUNS = Number(values.runs), RATE = values.rate, PCS = Number(values.pcs);
const dir = mkdtempSync(join(tmpdir(), 'must-bench-relays-'));
const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');
const image = join(dir, 'image.img');
const bytes = randomFillSync(Buffer.alloc(SIZE));
writeFileSync(image, bytes);
const digest = sha(bytes);

interface Layout { name: string; lans: string[][]; relays: Array<{ name: string; upstream: string; pcs: string[] }>; masterPcs: string[] }
const pcs = (lan: string): string[] => Array.from({ length: PCS }, (_, i) => `${lan}${i + 1}`);
const LAYOUTS: Layout[] = [
  { name: `one LAN, ${3 * PCS} PCs`, lans: [['m', ...pcs('a'), ...pcs('b'), ...pcs('c')]], relays: [], masterPcs: [...pcs('a'), ...pcs('b'), ...pcs('c')] },
  {
    name: `three LANs, ${PCS} PCs each, 2 relays`, lans: [['m', ...pcs('a')], ['r1', ...pcs('b')], ['r2', ...pcs('c')]],
    relays: [{ name: 'r1', upstream: 'm', pcs: pcs('b') }, { name: 'r2', upstream: 'm', pcs: pcs('c') }], masterPcs: pcs('a'),
  },
];

interface Result { seconds: number; relayStats: string[] }

async function once(c: Campus, l: Layout): Promise<Result> {
  const all = [...l.masterPcs, ...l.relays.flatMap((r) => r.pcs)];
  const master = must(['master', image, '--iface', 'eth0', '--rate', RATE, '--min-clients', String(l.masterPcs.length), '--records', join(dir, 'records.json'), '--hash-cache', join(dir, 'manifests')], { wrap: c.wrap('m') });
  await waitFor(master, / master serving /, 60_000);
  const relays = l.relays.map((r) => must(['relay', '--upstream', c.address(r.upstream), '--iface', 'eth0', '--name', r.name, '--rate', RATE, '--min-clients', String(r.pcs.length)], { wrap: c.wrap(r.name) }));
  for (const r of relays) await waitFor(r, / serving image=/, 60_000);
  const t0 = performance.now();
  const clients: Array<[string, Run]> = all.map((h) => [h, must(['client', '--target', join(dir, `${h}.img`), '--yes', '--name', h, '--iface', 'eth0'], { wrap: c.wrap(h) })]);
  for (const [h, r] of clients) {
    const d = await r.done;
    if (d.code !== 0) throw new Error(`${h} exit ${d.code}: ${d.out.slice(-1500)}`);
  }
  const seconds = (performance.now() - t0) / 1000;
  for (const h of all) if (sha(readFileSync(join(dir, `${h}.img`))) !== digest) throw new Error(`${h}'s copy differs from the image`);
  const relayStats: string[] = [];
  for (const [i, r] of relays.entries()) {
    const d = await r.done;
    if (d.code !== 0) throw new Error(`${l.relays[i]!.name} exit ${d.code}: ${d.out.slice(-1500)}`);
    const line = d.out.split('\n').find((x) => x.includes(' relay-finished '))!;
    const f = (k: string): string => new RegExp(`${k}=(\\S+)`).exec(line)?.[1] ?? '?';
    relayStats.push(`${l.relays[i]!.name}: paused ${f('pausedSeconds')} s, fetched ${f('fetched')} B, peak RSS ${(Number(f('rssPeak')) / 2 ** 20).toFixed(0)} MiB`);
  }
  const m = await master.done;
  if (m.code !== 0) throw new Error(`master exit ${m.code}: ${m.out.slice(-1500)}`);
  return { seconds, relayStats };
}

const medians: number[] = [];
console.log(`bench/relays: ${values.size} MiB, PCs' links ${RATE} Mbit/s, master's and relays' ${values.infra} Mbit/s, ${RUNS} run(s) per layout, ${new Date().toISOString().slice(0, 10)}`);
console.log('| layout | runs, s | median s | goodput MB/s per PC |');
console.log('|---|---|---|---|');
try {
  for (const l of LAYOUTS) {
    const c = createCampus('mustr', l.lans);
    try {
      for (const h of l.lans.flat()) c.setRate(h, Number(h === 'm' || /^r\d/.test(h) ? values.infra : RATE));
      const times: number[] = [];
      for (let i = 0; i < RUNS; i++) {
        const r = await once(c, l);
        times.push(r.seconds);
        for (const s of r.relayStats) console.error(`  ${l.name}, run ${i + 1}: ${s}`);
      }
      const med = median(times);
      medians.push(med);
      console.log(`| ${l.name} | ${times.map((t) => t.toFixed(1)).join(', ')} | ${med.toFixed(1)} | ${(SIZE / med / 1e6).toFixed(1)} |`);
    } finally {
      c.destroy();
    }
  }
  const ratio = medians[1]! / medians[0]!;
  console.log(`\nrelayed / one LAN: ${ratio.toFixed(3)} (goal: at most 1.10) ${ratio <= 1.1 ? 'met' : 'NOT met'}`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
