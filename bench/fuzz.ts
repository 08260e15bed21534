// A million (or more) random and mutated datagrams through every decoder: no exception
// but DecodeError, and the heap after the run no larger than a bounded margin over the
// heap before it (nothing accumulates per input).
//
//   node --expose-gc bench/fuzz.ts [--cases N]

import { parseArgs } from 'node:util';
import { fuzzDecoders } from '../test/fuzz.ts';

const { values } = parseArgs({ options: { cases: { type: 'string', default: '1000000' } } });
const cases = Number(values.cases);
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with --expose-gc (bench/run does)');
const heap = (): number => { gc(); return process.memoryUsage().heapUsed; };

const before = heap();
let peak = before;
const t = performance.now();
const { accepted, failures } = fuzzDecoders(cases, 20261122, (i) => { if (i % 100_000 === 99_999) peak = Math.max(peak, heap()); });
const seconds = (performance.now() - t) / 1000;
const after = heap();
const mib = (n: number): string => (n / 2 ** 20).toFixed(1);
console.log(`# decoder fuzz: ${cases} inputs, 3 decoders each, ${seconds.toFixed(1)} s (${Math.round(cases / seconds)} inputs/s)`);
console.log(`accepted ${accepted}  crashes ${failures.length}  heap before ${mib(before)} MiB  peak ${mib(peak)} MiB  after ${mib(after)} MiB`);
for (const f of failures) console.log(`CRASH ${f}`);
if (failures.length > 0 || after - before > 8 << 20) process.exit(1);
