// Requests during the pass (default mode, docs/PROTOCOL.md 5.2): holes are repaired while the pass
// runs, so that little is left for the repair phase; classic keeps the paper's rule (no NACK in the
// transfer); a PC on a slow link asks for nothing in the pass and does not slow it for the others.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { classicParams, defaultParams } from '../../src/session/params.ts';
import { type LabOptions, type LabResult, runLab } from '../../src/sim/lab.ts';
import { assertAllIdentical } from './labs.ts';


const lab = (o: Partial<LabOptions> & Pick<LabOptions, 'clients'>): LabResult => runLab({ seed: 5, imageSize: 16 << 20, params: defaultParams(), ...o });
const lossy = (n: number, loss: number): LabOptions['clients'] => Array.from({ length: n }, () => ({ loss }));

test('5% loss at 3 clients: nearly every repair goes during the pass, and the repair phase is short', () => {
  // Five seeds: what is left for the repair phase varies from run to run (4-20% of the pass's repairs),
  // and so does the time it takes (a few round trips and epochs: 45-100 ms after a pass of 160-175 ms).
  const left: number[] = [], tail: number[] = [];
  for (const seed of [1, 2, 3, 4, 5]) {
    // Packet by packet: coded repairs (coded.test.ts) send fewer, each carrying several.
    const r = lab({ seed, clients: lossy(3, 0.05), params: { ...defaultParams(), codedRepairs: false } });
    assertAllIdentical(r);
    const s = r.sender.stats;
    // The union of three clients' 5% is about 14% of the packets.
    assert.ok(s.passRepairSent >= 0.1 * s.dataSent, `seed ${seed}: ${s.passRepairSent} repairs in the pass for ${s.dataSent} packets`);
    // What is left: the holes of the pass's last request intervals, and repairs lost twice.
    left.push((s.repairSent - s.passRepairSent) / s.passRepairSent);
    // Done within a few round trips and epochs of the pass's end, not a pass of repairs later.
    const done = Math.max(...r.clients.map((c) => c.finishedAt));
    assert.ok(done - r.passEndedAt < r.passEndedAt, `seed ${seed}: pass ended at ${r.passEndedAt} ms, every client done at ${done} ms`);
    tail.push((done - r.passEndedAt) / r.passEndedAt);
    // Each hole is asked for once in the pass, and again only if its repair was lost: no storm of requests.
    const asked = r.clients.reduce((n, c) => n + c.requestsSent, 0);
    assert.ok(asked <= s.dataSent / 100, `seed ${seed}: ${asked} requests for ${s.dataSent} packets`);
  }
  const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[2]!;
  // (Seeds 1-5: median 0.07 with every repair to the group, 0.10 with unicast repairs, where a packet two
  // clients lost goes twice when the second asks after the first's repair left.)
  assert.ok(median(left) <= 0.15, `repairs after the pass, per repair in it: ${left.map((x) => x.toFixed(3)).join(', ')}`);
  assert.ok(median(tail) <= 0.5, `time from the pass's end to the last client done, per time of the pass: ${tail.map((x) => x.toFixed(2)).join(', ')}`);
});

test('without the requests in the pass (or without loss) nothing is repaired before the repair phase', () => {
  const off = lab({ clients: lossy(3, 0.05), params: { ...defaultParams(), passRequests: 0 } });
  assertAllIdentical(off);
  assert.equal(off.sender.stats.passRepairSent, 0);
  assert.ok(off.sender.stats.repairSent >= 0.1 * off.sender.stats.dataSent);
  const clean = lab({ clients: lossy(3, 0) });
  assertAllIdentical(clean);
  assert.equal(clean.sender.stats.repairSent, 0);
  assert.equal(clean.clients.reduce((n, c) => n + c.requestsSent, 0), 0, 'a client without loss asked for something');
});

test('classic mode (the paper): no request during the pass, losses wait for the repair phase', () => {
  const r = lab({ imageSize: 256 << 10, params: classicParams(), clients: lossy(3, 0.05) });
  assertAllIdentical(r);
  assert.equal(r.sender.stats.passRepairSent, 0);
  assert.ok(r.sender.stats.repairSent > 0);
});

test('a PC on a slow link asks for nothing in the pass, and the others\' pass is no slower for it', () => {
  const alone = lab({ clients: lossy(3, 0.05) });
  const mixed = lab({ clients: [...lossy(3, 0.05), { rate: 4e6, queue: 64 << 10 }] });
  assertAllIdentical(mixed);
  // Its link takes 3% of what the pass sends: repairs for it in the pass would double the pass.
  assert.ok(mixed.passEndedAt <= 1.1 * alone.passEndedAt, `pass ${mixed.passEndedAt} ms with a slow PC, ${alone.passEndedAt} ms without`);
  assert.ok(mixed.sender.stats.passRepairSent <= 1.1 * alone.sender.stats.passRepairSent,
    `${mixed.sender.stats.passRepairSent} repairs in the pass with a slow PC, ${alone.sender.stats.passRepairSent} without`);
});

test('a PC that joins during the pass asks for the manifest at once, and takes coded repairs in the pass', () => {
  // The manifest leads the stream, so a late joiner missed it, and so much after it that it asks for none
  // of that in the pass. Without the manifest it holds no chunk in memory, decodes no coded repair, and
  // in the lab every chunk went to the disk in pieces, to be read back for its check (the bench's late
  // joiner: 725-1,018 of 1,024). Seeds 1, 2, 3, 5: 248-311 decoded with the request, 0-37 without.
  for (const seed of [1, 2, 3, 5]) {
    const r = lab({ seed, clients: [...lossy(2, 0.05), { loss: 0.05, startAt: 60 }] });
    assertAllIdentical(r);
    const late = r.clients[2]!;
    assert.ok(late.decoded >= 100, `seed ${seed}: the late joiner decoded ${late.decoded} coded repairs`);
  }
});
