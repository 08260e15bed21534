// The master's pace (src/session/rate.ts): the clients' losses, each smoothed on its own, and
// the lower median of them sets it.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RateController } from '../../src/session/rate.ts';

const MAX = 1000, MIN = 10, INTERVAL = 20;
const fresh = (): RateController => new RateController({ initial: MAX, min: MIN, max: MAX }, INTERVAL);

/** One ACK from each client every `INTERVAL` ms for `ms`, each with its loss fraction (of one block). */
function feed(r: RateController, losses: Record<string, number>, from: number, ms: number): number {
  let now = from;
  for (; now < from + ms; now += INTERVAL) for (const [client, loss] of Object.entries(losses)) r.sample(client, loss, now);
  return now;
}

test('one client losing 90% (a slow link) among three leaves the pace alone', () => {
  const r = fresh();
  feed(r, { a: 0, b: 0.01, slow: 0.9 }, 0, 2000);
  assert.equal(r.rate, MAX);
});

test('most clients losing (a shared bottleneck) slows the pace; it comes back when the loss goes', () => {
  const r = fresh();
  const now = feed(r, { a: 0.3, b: 0.3, c: 0 }, 0, 1000);
  assert.ok(r.rate < 0.5 * MAX, `pace ${r.rate} after 1 s of 30% loss at two of three clients`);
  feed(r, { a: 0, b: 0, c: 0 }, now, 3000);
  assert.equal(r.rate, MAX);
});

test('a lone client is its own median: its loss slows the pace', () => {
  const r = fresh();
  feed(r, { only: 0.5 }, 0, 1000);
  assert.ok(r.rate < 0.5 * MAX, `pace ${r.rate}`);
});

test('a client not heard from for a while no longer counts', () => {
  const r = fresh();
  // Two lossy clients, then they go quiet (done, dropped) and a clean one is left.
  const now = feed(r, { a: 0.5, b: 0.5, c: 0 }, 0, 200);
  const slowed = r.rate;
  assert.ok(slowed < MAX);
  feed(r, { c: 0 }, now + RateController.FRESH + 1, 2000);
  assert.ok(r.rate > slowed, `pace ${r.rate}, was ${slowed}`);
});

test('random loss between the thresholds changes nothing', () => {
  const r = fresh();
  feed(r, { a: 0.05, b: 0.06, c: 0.07 }, 0, 3000);
  assert.equal(r.rate, MAX);
});

test('a pace cut by a burst of loss comes back to the top under random loss between the thresholds', () => {
  const r = fresh();
  // A start that loses 30% at every client for 300 ms (their code still compiling), then 5-7% for good.
  const now = feed(r, { a: 0.3, b: 0.3, c: 0.3 }, 0, 300);
  feed(r, { a: 0.05, b: 0.06, c: 0.07 }, now, 1000);
  assert.ok(r.rate < 0.6 * MAX, `pace ${r.rate} after the burst`);
  feed(r, { a: 0.05, b: 0.06, c: 0.07 }, now + 1000, 3000);
  assert.equal(r.rate, MAX);
});

test('behind a bottleneck the steps up between the thresholds stop where the loss grows: the pace settles', () => {
  for (const CAP of [100, 400, 700]) {
    const r = fresh();
    // Every client loses what the pace sends beyond CAP.
    let cuts = 0, highest = 0, before = r.rate;
    for (let now = 0; now < 30_000; now += INTERVAL) {
      const lost = Math.max(0, 1 - CAP / r.rate);
      for (const client of ['a', 'b', 'c']) r.sample(client, lost, now);
      if (now >= 10_000) { highest = Math.max(highest, r.rate); if (r.rate < before) cuts++; }
      before = r.rate;
    }
    // From 10 s on: about HIGH of loss at most (a pace of CAP / (1 - HIGH), 1.136 CAP), and no step up that runs into it and is cut again.
    assert.ok(highest <= 1.15 * CAP, `the pace reached ${highest.toFixed(0)} behind a bottleneck of ${CAP}`);
    assert.equal(cuts, 0, `the pace was cut ${cuts} times in 20 s behind a bottleneck of ${CAP}`);
  }
});

test('repair epochs: a whole epoch\'s loss cuts the pace to what got through, while clients that are gone no longer count', () => {
  const r = fresh();
  feed(r, { a: 0, b: 0, slow: 0.9 }, 0, 200);
  // The slow PC loses 90% of an epoch's repairs; the fast ones, still imaging, lose none: the pace stays.
  r.measured('slow', 0.9, 300);
  r.settle(300, MAX);
  assert.equal(r.rate, MAX);
  // The fast ones are done: the slow PC alone sets the pace, cut to the tenth that reached it.
  r.forget('a');
  r.forget('b');
  r.measured('slow', 0.9, 400);
  r.settle(400, MAX);
  assert.ok(Math.abs(r.rate - MAX / 10) < 1e-9, `pace ${r.rate}`);
  // The next measure is of an epoch sent before that cut, at MAX: the pace is not cut twice for it.
  r.measured('slow', 0.9, 450);
  r.settle(450, MAX);
  assert.ok(Math.abs(r.rate - MAX / 10) < 1e-9, `pace ${r.rate}`);
  // At most tenfold an epoch, and never below the floor.
  r.measured('slow', 0.999, 500);
  r.settle(500, MAX / 10);
  assert.equal(r.rate, MIN);
  // An epoch with little loss raises the pace, one within the thresholds holds it.
  r.measured('slow', 0.01, 600);
  r.settle(600, MIN);
  assert.ok(Math.abs(r.rate - MIN * RateController.INCREASE) < 1e-9, `pace ${r.rate}`);
  r.measured('slow', 0.05, 700);
  r.settle(700, MIN * RateController.INCREASE);
  assert.ok(Math.abs(r.rate - MIN * RateController.INCREASE) < 1e-9, `pace ${r.rate}`);
});

test('an ACK that samples n blocks moves the smoothed loss as n one-block samples would', () => {
  const one = fresh(), many = fresh();
  for (let i = 0; i < 20; i++) one.sample('a', 0.5, 0);
  many.sample('a', 0.5, 0, 20);
  // Both pass the 12% threshold by the same amount: one adjustment each, the same pace.
  one.sample('a', 0.5, INTERVAL);
  many.sample('a', 0.5, INTERVAL);
  assert.ok(one.rate < MAX, `pace ${one.rate}`);
  assert.equal(many.rate, one.rate);
});

