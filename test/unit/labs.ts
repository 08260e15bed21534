// What every simulated lab must end with, whatever else a test asks of it.
import assert from 'node:assert/strict';
import type { LabResult } from '../../src/sim/lab.ts';

/** The lab ended in time, every client verified with a disk that holds the image, and the master says so. */
export function assertAllIdentical(r: LabResult): void {
  assert.equal(r.timedOut, false, `simulation hit its time limit at ${r.finishedAt} ms`);
  for (const c of r.clients) {
    assert.ok(c.ok, `client ${c.id} did not end verified: ${c.reason}`);
    assert.ok(c.identical, `client ${c.id} reported verified but its disk differs from the image`);
  }
  assert.ok(r.masterOk, 'master did not report every client verified');
}
