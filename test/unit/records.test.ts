import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { Records } from '../../src/boot/records.ts';

test('records survive a restart and export as CSV', () => {
  const dir = mkdtempSync(join(tmpdir(), 'must-rec-'));
  try {
    let t = Date.parse('2026-11-22T08:00:00Z');
    const clock = (): Date => new Date((t += 1000));
    const path = join(dir, 'records.json');
    const a = new Records(path, clock);
    a.update('52:54:00:AA:00:01', { ip: '10.0.0.101', hostname: 'pc-1', result: 'booted' });
    a.update('52:54:00:aa:00:01', { result: 'imaging', image: 'lab.img' });
    a.update('52:54:00:aa:00:02', { result: 'imaging', image: 'lab.img', hostname: 'pc "two", east' });
    a.update('52:54:00:aa:00:01', { result: 'verified', digest: 'abc123' });
    const b = new Records(path);
    const one = b.get('52:54:00:aa:00:01')!;
    assert.equal(one.result, 'verified');
    assert.equal(one.start, '2026-11-22T08:00:02.000Z');
    assert.equal(one.end, '2026-11-22T08:00:04.000Z');
    assert.equal(one.digest, 'abc123');
    assert.equal(one.hostname, 'pc-1', 'a later update forgot what an earlier one said');
    assert.equal(b.toCsv(), [
      'mac,ip,hostname,image,digest,start,end,result,reason',
      '52:54:00:aa:00:01,10.0.0.101,pc-1,lab.img,abc123,2026-11-22T08:00:02.000Z,2026-11-22T08:00:04.000Z,verified,',
      '52:54:00:aa:00:02,,"pc ""two"", east",lab.img,,2026-11-22T08:00:03.000Z,,imaging,',
      '',
    ].join('\n'));
    assert.equal(JSON.parse(readFileSync(path, 'utf8')).length, 2);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
