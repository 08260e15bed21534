// The hardware summary's processor line: the kernel's model string, made short, and the count.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { cpuName, readHardware } from '../../src/tui/hardware.ts';

test('a processor\'s model string loses its trade marks, its clock and its core count', () => {
  const cases: Array<[string, string]> = [
    ['Intel(R) Core(TM) i5-8500 CPU @ 3.00GHz', 'Intel Core i5-8500'],
    ['11th Gen Intel(R) Core(TM) i7-1165G7 @ 2.80GHz', '11th Gen Intel Core i7-1165G7'],
    ['Intel(R) Xeon(R) Gold 6230 CPU @ 2.10GHz', 'Intel Xeon Gold 6230'],
    ['AMD Ryzen 7 5800X 8-Core Processor', 'AMD Ryzen 7 5800X'],
    ['AMD EPYC', 'AMD EPYC'],
    ['QEMU Virtual CPU version 2.5+', 'QEMU Virtual CPU version 2.5+'],
  ];
  for (const [model, want] of cases) assert.equal(cpuName(model), want, model);
});

test('the summary names this machine\'s processor and counts its cores as /proc/cpuinfo does', async () => {
  const info = readFileSync('/proc/cpuinfo', 'utf8');
  const n = info.match(/^processor\s*:/gm)?.length ?? 0;
  const model = /^model name\s*:\s*(.*)$/m.exec(info)?.[1] ?? '';
  const hw = await readHardware([]);
  assert.ok(n > 0 && model, 'no processor in /proc/cpuinfo');
  assert.equal(hw.cpu, `${cpuName(model)}, ${n} core${n === 1 ? '' : 's'}`);
  assert.ok(hw.memory > 0);
});
