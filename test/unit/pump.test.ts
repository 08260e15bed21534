// The driver between a protocol machine and its sockets: a paced machine keeps its pace when
// handing datagrams to the kernel takes as long as sending them (the lab's veths and bridges
// make it so), and a long run leaves room for input.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type Machine, Pump } from '../../src/net/pump.ts';
import type { Transmit } from '../../src/session/types.ts';

/** 100 datagrams per ms, with the sender's rule: a late wake-up makes up at most 8 ms. */
class Paced implements Machine {
  next = 0;
  sent = 0;
  finished = false;
  /** Whether the last poll found nothing due: the next run is then a timer's, which comes late. */
  idle = false;
  wakeUp: () => void = () => {};
  onDatagram(): void {}
  onTimer(): void {
    if (this.idle) this.wakeUp();
    this.idle = false;
  }
  poll(now: number): Transmit | undefined {
    if (now < this.next) { this.idle = true; return undefined; }
    this.next = Math.max(this.next, now - 8) + 0.01;
    this.sent++;
    return { dest: { kind: 'group', port: 1 }, parts: [new Uint8Array(1)] };
  }
  nextWake(): number { return this.next; }
}

test('pump: a paced machine keeps its pace when handing datagrams over takes as long as sending them', async () => {
  let clock = 0;
  const m = new Paced();
  // A run woken by its timer starts 1 ms late, and the kernel takes 0.01 ms per datagram handed over.
  m.wakeUp = () => { clock += 1; };
  let queued = 0;
  const pump = new Pump(m, { send: () => { queued++; return true; }, flush: () => { clock += queued * 0.01; queued = 0; return true; } }, () => clock);
  const ran = new Promise<void>((resolve) => {
    const check = (): void => { if (clock >= 300) resolve(); else setTimeout(check, 1); };
    check();
  });
  pump.run();
  await ran;
  pump.stop();
  // Before, each run sent what the pace allowed when it began and lost what its own hand-over took beyond 8 ms.
  assert.ok(m.sent >= 0.97 * clock * 100, `${m.sent} datagrams in ${clock.toFixed(1)} ms at 100 per ms`);
});

test('pump: a run stops after a few ms and goes on in the next turn, so input is not held up', async () => {
  let clock = 0;
  const m = new Paced();
  const turns: number[] = [];
  // 64 datagrams (0.64 ms of pace) hand over in 0.6 ms: from 8 ms behind, a run would catch up in some 120 ms.
  const pump = new Pump(m, { send: () => true, flush: () => { clock += 0.6; return true; } }, () => clock);
  m.next = -1000;
  let inputs = 0;
  const feed = setInterval(() => { inputs++; turns.push(clock); }, 0);
  pump.run();
  const firstRun = clock;
  await new Promise((r) => setTimeout(r, 20));
  clearInterval(feed);
  pump.stop();
  assert.ok(firstRun <= 8, `the first run lasted ${firstRun} ms`);
  assert.ok(inputs > 0 && turns.some((t) => t > 0 && t < 100), 'no turn of the event loop between runs');
  assert.ok(clock > firstRun, 'the run did not go on');
});

test('pump: each run first takes the datagrams that wait unread, and those start no run of their own', async (t) => {
  let got = 0;
  const seen: number[] = [];
  const m: Machine = {
    finished: false,
    onDatagram: () => { got++; },
    onTimer: () => { seen.push(got); },
    poll: () => undefined,
    nextWake: (now) => now + 30,
  };
  let unread = 3, catchUps = 0;
  const from = { address: '127.0.0.1', port: 9 };
  const pump: Pump = new Pump(m, { send: () => true }, () => performance.now(), undefined, () => {
    catchUps++;
    for (; unread > 0; unread--) pump.input(new Uint8Array(1), from, 5);
  });
  t.after(() => pump.stop());
  pump.run();
  // The machine saw the three waiting datagrams before it decided.
  assert.deepEqual(seen, [3]);
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(seen, [3]);
  assert.equal(catchUps, 1);
  // A datagram delivered as it came starts a run, which looks too.
  unread = 1;
  pump.input(new Uint8Array(1), from, 5);
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(seen, [3, 5]);
  assert.equal(catchUps, 2);
  // So does the timer's run.
  unread = 2;
  await new Promise((r) => setTimeout(r, 60));
  assert.equal(seen[2], 7);
  assert.ok(catchUps >= 3);
});
