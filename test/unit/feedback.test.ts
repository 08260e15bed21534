// The feedback policies of the study (docs/TUNING.md): the same machines, ACKing as MTP,
// as udpcast (every client, every block) or not at all (NACK-only, as NORM).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type FeedbackPolicy, classicParams, defaultParams } from '../../src/session/params.ts';
import { type LabResult, runLab } from '../../src/sim/lab.ts';
import { assertAllIdentical } from './labs.ts';

const run = (feedback: FeedbackPolicy, clients: number, loss: number): LabResult =>
  runLab({ seed: 3, imageSize: 2 << 20, params: { ...defaultParams(), feedback }, clients: Array.from({ length: clients }, () => ({ loss })) });


test('ack-all: every client ACKs every block, N times the ACKs of MTP', () => {
  const mtp = run('mtp', 8, 0.01);
  const all = run('ack-all', 8, 0.01);
  assertAllIdentical(mtp);
  assertAllIdentical(all);
  const blocks = all.sender.geo.blocks;
  for (const c of all.clients) assert.ok(c.acksSent >= 0.9 * blocks, `client ${c.id} sent ${c.acksSent} ACKs for ${blocks} blocks`);
  assert.ok(all.sender.stats.ackDatagrams >= 8 * 0.9 * blocks, `${all.sender.stats.ackDatagrams} ACKs at the master`);
  assert.ok(all.sender.stats.ackDatagrams >= 4 * mtp.sender.stats.ackDatagrams,
    `ack-all ${all.sender.stats.ackDatagrams} ACKs, mtp ${mtp.sender.stats.ackDatagrams}`);
});

test('ack-all: a block waits for the last client\'s ACK; MTP takes the first', () => {
  // One client 5 ms away and a window of one block: each block waits for that client's ACK.
  const lab = (feedback: FeedbackPolicy, far: number): LabResult => runLab({
    seed: 4, imageSize: 1 << 20, params: { ...defaultParams(), feedback, window: 1 }, clients: [{}, { delay: far }],
  });
  const near = lab('ack-all', 0.1), far = lab('ack-all', 5), mtpNear = lab('mtp', 0.1), mtpFar = lab('mtp', 5);
  for (const r of [near, far, mtpNear, mtpFar]) assertAllIdentical(r);
  const blocks = far.sender.geo.blocks;
  assert.ok(far.passEndedAt > near.passEndedAt + blocks * 4, `ack-all: pass ${far.passEndedAt} ms with a far client, ${near.passEndedAt} ms without`);
  // MTP's first ACK usually comes from the near client (its ARTP wait, not the far RTT, sets the pace).
  assert.ok(mtpFar.passEndedAt < mtpNear.passEndedAt + blocks * 2, `mtp: pass ${mtpFar.passEndedAt} ms with a far client, ${mtpNear.passEndedAt} ms without`);
});

test('nack: no ACK at all, the losses come back by repair, disks identical', () => {
  const r = run('nack', 8, 0.03);
  assertAllIdentical(r);
  assert.equal(r.sender.stats.ackDatagrams, 0);
  assert.equal(r.sender.stats.blocksAcked + r.sender.stats.blocksTimedOut, 0, 'a block waited for an ACK');
  assert.ok(r.sender.stats.repairSent > 0 && r.clients.every((c) => c.repaired > 0));
});

test('classic mode refuses the other policies (its ACKs name no client)', () => {
  assert.throws(() => runLab({ seed: 1, imageSize: 64 << 10, params: { ...classicParams(), feedback: 'ack-all' }, clients: [{}] }), /needs the default mode/);
});
