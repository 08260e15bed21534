// `must simulate`: one lab in the simulator (the real master and client machines, a
// simulated network, a fake clock), described by flags; prints what the study measures.
// The whole parameter sweep is bench/simulate.ts.

import { type Options, UsageError } from '../cli/args.ts';
import type { FeedbackPolicy } from '../session/params.ts';
import { BASE, type Scenario, simulate as run } from '../sim/scenario.ts';

/** Flag -> scenario field, with the range each accepts (numbers are non-negative by the parser). */
const NUMERIC: Array<{ flag: string; key: keyof Scenario; min?: number; max?: number; int?: boolean; above?: number }> = [
  { flag: 'clients', key: 'clients', min: 1, max: 2000, int: true },
  { flag: 'size', key: 'size', above: 0, max: 4096 },
  { flag: 'rate', key: 'rate' },
  { flag: 'delay', key: 'delay' },
  { flag: 'loss', key: 'loss', max: 100 },
  { flag: 'burst', key: 'burst', min: 1 },
  { flag: 'master-loss', key: 'masterLoss', max: 100 },
  { flag: 'lans', key: 'lans', min: 1, max: 250, int: true },
  { flag: 'lan-delay', key: 'lanDelay' },
  { flag: 'lan-rate', key: 'lanRate' },
  { flag: 'slow', key: 'slow' },
  { flag: 'pace', key: 'pace' },
  { flag: 'mtu', key: 'mtu', min: 576, max: 65535, int: true },
  { flag: 't0', key: 't0', above: 0 },
  { flag: 'alpha', key: 'alpha', above: 1 },
  { flag: 'tmax', key: 'tMax', above: 0 },
  { flag: 'artp', key: 'artp' },
  { flag: 'block', key: 'block', min: 1, max: 65535, int: true },
  { flag: 'window', key: 'window', min: 1, int: true },
  { flag: 'payload', key: 'payload', min: 64, max: 65000, int: true },
  { flag: 'repair-wait', key: 'repairWait' },
  { flag: 'pass-requests', key: 'passRequests' },
  { flag: 'seed', key: 'seed', int: true, max: 2 ** 32 - 1 },
];

export function scenarioOf(o: Options): Scenario {
  const s: Scenario = { ...BASE };
  for (const f of NUMERIC) {
    const v = o.num(f.flag);
    if (v === undefined) continue;
    const bad = (f.int && !Number.isInteger(v)) || (f.min !== undefined && v < f.min) || (f.max !== undefined && v > f.max) || (f.above !== undefined && !(v > f.above));
    if (bad) {
      const range = [f.int ? 'a whole number' : 'a number', f.above !== undefined ? `above ${f.above}` : f.min !== undefined ? `from ${f.min}` : '', f.max !== undefined ? `up to ${f.max}` : ''].filter(Boolean).join(' ');
      throw new UsageError(`simulate: --${f.flag} is ${range}, got ${v}`);
    }
    (s[f.key] as number) = v;
  }
  const protocol = o.str('protocol') ?? 'default';
  const feedback = (o.str('feedback') ?? 'mtp') as FeedbackPolicy;
  if (protocol === 'classic' && feedback !== 'mtp') throw new UsageError('simulate: --feedback ack-all and nack need the default protocol (classic ACKs name no client)');
  s.protocol = protocol as Scenario['protocol'];
  s.feedback = feedback;
  if (o.flag('group-repairs')) s.unicastRepairs = false;
  if (o.flag('plain-repairs')) s.codedRepairs = false;
  const shape = o.str('artp-shape');
  if (shape) s.artpShape = shape as 'uniform' | 'exp';
  if (s.payload !== undefined && s.protocol === 'default' && s.payload > s.mtu - 52) throw new UsageError(`simulate: --payload ${s.payload} does not fit a datagram at MTU ${s.mtu} (at most ${s.mtu - 52})`);
  if (s.lans === 1 && (o.num('lan-delay') !== undefined || o.num('lan-rate') !== undefined)) throw new UsageError('simulate: --lan-delay and --lan-rate need --lans 2 or more');
  return s;
}

export async function simulate(o: Options): Promise<number> {
  const s = scenarioOf(o);
  const m = run(s);
  if (o.flag('json')) {
    console.log(JSON.stringify({ scenario: s, metrics: m }));
  } else {
    const f = (x: number, d = 1): string => (Number.isFinite(x) ? x.toFixed(d) : '-');
    console.log(`simulate: ${s.clients} clients${s.slow ? ` + 1 at ${s.slow} Mbit/s` : ''}, ${s.size} MiB, ${s.rate || 'unlimited'} Mbit/s, ${s.delay} ms one way, ${s.loss}% loss` +
      `${s.burst > 1 ? ` in bursts of ${s.burst}` : ''}${s.lans > 1 ? `, ${s.lans} LANs` : ''}; ${s.protocol} mode, feedback ${s.feedback}, seed ${s.seed}`);
    console.log(`${m.ok ? 'ok' : 'FAILED'}: done in ${f(m.done)} ms (${f(m.goodputMBps)} MB/s)${s.slow ? `, the others in ${f(m.doneOthers)} ms` : ''}; first pass ${f(m.pass)} ms (${f(m.passMBps)} MB/s)`);
    console.log(`feedback at the master: ${m.feedback} datagrams, ${m.acks} ACKs (${f(m.acksPerBlock, 2)} per block), ${m.requests} repair requests; ${m.timeouts} time-outs`);
    console.log(`repair: datagrams for ${f(m.repairShare * 100)}% of the packets (${f(m.unicastShare * 100)}% of them to one client only, ${f(m.codedShare * 100)}% coded);` +
      ` a client received ${f(m.receivedPerPacket, 3)} datagrams per packet; on the wire ${f(m.wirePerByte, 3)} bytes per image byte; simulated ${f(m.simulated / 1000, 2)} s in ${f(m.wall / 1000, 2)} s`);
  }
  return m.ok ? 0 : 1;
}
