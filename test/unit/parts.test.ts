// Small pieces of the machines: bitmap, intervals, timeout rule, ACK scheduling, geometry.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AckScheduler } from '../../src/session/acks.ts';
import { Bitmap } from '../../src/session/bitmap.ts';
import { Geometry } from '../../src/session/geometry.ts';
import { IntervalSet } from '../../src/session/intervals.ts';
import { drawWait } from '../../src/session/params.ts';
import { seeded } from '../../src/session/rng.ts';
import { AdaptiveTimeout } from '../../src/session/timeout.ts';

test('bitmap: set, clear, count, find and runs agree with a plain array', () => {
  const r = seeded(3), n = 1000, b = new Bitmap(n), ref = new Array<boolean>(n).fill(false);
  for (let i = 0; i < 5000; i++) {
    const k = Math.floor(r() * n);
    if (r() < 0.6) { assert.equal(b.set(k), !ref[k]); ref[k] = true; } else { assert.equal(b.clear(k), ref[k]); ref[k] = false; }
  }
  assert.equal(b.count, ref.filter(Boolean).length);
  for (let from = 0; from < n; from += 37) {
    assert.equal(b.find(true, from), ref.indexOf(true, from));
    assert.equal(b.find(false, from), ref.indexOf(false, from));
    // With an end: nothing at or past it, also where it cuts a word.
    for (const end of [from, from + 1, from + 31, from + 33, n]) {
      for (const v of [true, false]) {
        const at = ref.indexOf(v, from);
        assert.equal(b.find(v, from, end), at >= 0 && at < end ? at : -1, `find(${v}, ${from}, ${end})`);
      }
    }
  }
  // Full and empty words are skipped whole, bits past the size never count.
  const full = new Bitmap(70);
  full.setRange(0, 70);
  assert.equal(full.find(false, 0), -1);
  assert.equal(full.find(true, 65), 65);
  full.clear(69);
  assert.equal(full.find(false, 3), 69);
  const runs = b.clearRuns(0, n, 1e9);
  const flat = runs.flatMap((x) => Array.from({ length: x.count }, (_, i) => x.start + i));
  assert.deepEqual(flat, ref.flatMap((v, i) => (v ? [] : [i])));
});

test('intervals: subtract what was heard, forget what lies behind', () => {
  const s = new IntervalSet();
  s.add(10, 20); s.add(30, 40); s.add(15, 32); s.add(50, 51);
  assert.deepEqual(s.subtract({ start: 0, count: 60 }), [{ start: 0, count: 10 }, { start: 40, count: 10 }, { start: 51, count: 9 }]);
  assert.deepEqual(s.subtract({ start: 12, count: 5 }), []);
  // What lies wholly below a point goes; an interval across it stays whole.
  s.dropBelow(35);
  assert.deepEqual(s.ranges, [{ start: 10, count: 30 }, { start: 50, count: 1 }]);
  s.dropBelow(45);
  assert.deepEqual(s.ranges, [{ start: 50, count: 1 }]);
  s.add(5, 6);
  s.dropBelow(6);
  assert.deepEqual(s.ranges, [{ start: 50, count: 1 }]);
  s.clear();
  assert.deepEqual(s.subtract({ start: 3, count: 2 }), [{ start: 3, count: 2 }]);
});

test('Tout: times alpha on expiry, max(Tout/2, T0) on the right ACK, capped', () => {
  const t = new AdaptiveTimeout(10, 3, 100);
  t.expired(); assert.equal(t.value, 30);
  t.expired(); assert.equal(t.value, 90);
  t.expired(); assert.equal(t.value, 100);
  t.acknowledged(); assert.equal(t.value, 50);
  t.acknowledged(); t.acknowledged(); t.acknowledged(); assert.equal(t.value, 10);
});

test('Tout with round trips (default mode): never below the smoothed RTT plus four deviations', () => {
  const t = new AdaptiveTimeout(10, 2, 1000);
  // ACKs that take 30 ms: the floor is 30 + 4 * 15 (first sample) and tightens as the deviation shrinks.
  t.acknowledged(30); assert.equal(t.value, 90);
  for (let i = 0; i < 50; i++) t.acknowledged(30);
  assert.ok(t.value > 30 && t.value < 35, `Tout ${t.value} should settle just above the 30 ms round trip`);
  // Expiry still backs off; the next ACK halves it, but not under the floor.
  const settled = t.value;
  t.expired(); assert.equal(t.value, 2 * settled);
  t.acknowledged(30); assert.ok(t.value >= settled && t.value >= 30);
  // Jittery round trips keep a wider margin than steady ones.
  const j = new AdaptiveTimeout(10, 2, 1000);
  for (let i = 0; i < 50; i++) j.acknowledged(i % 2 ? 10 : 50);
  assert.ok(j.value > 60, `Tout ${j.value} should cover the jitter`);
});

test('ARTP draws stay in range; the exponential policy waits long more often', () => {
  const r = seeded(5);
  const u = Array.from({ length: 10000 }, () => drawWait({ kind: 'uniform', max: 20, lambda: 0 }, r()));
  const e = Array.from({ length: 10000 }, () => drawWait({ kind: 'exp', max: 20, lambda: 6 }, r()));
  for (const x of [...u, ...e]) assert.ok(x >= 0 && x <= 20);
  const early = (xs: number[]): number => xs.filter((x) => x < 5).length;
  assert.ok(early(e) < early(u) / 5, `exp: ${early(e)} early draws, uniform ${early(u)}`);
});

test('ACK scheduling: one timer per client, suppression by a heard ACK, one ACK covers earlier blocks', () => {
  const a = new AckScheduler({ kind: 'uniform', max: 10, lambda: 0 }, 4, () => 0.5);
  a.packet(0, false, 0);
  a.packet(0, true, 1);          // block 0 ends: the timer starts, the ACK is due at 6
  a.packet(1, false, 2);
  a.packet(2, false, 3);         // block 1 ended by a packet of block 2: the same timer
  assert.equal(a.nextDue(), 6);
  assert.equal(a.due(5), undefined);
  // It names the highest block ended; its loss sample is of the block before (block 0: two packets).
  assert.deepEqual(a.due(6), { block: 1, received: 2, sampled: 1 });
  assert.equal(a.nextDue(), Infinity);
  a.packet(2, true, 10);         // block 2 ends: due at 15
  a.packet(3, false, 11);
  a.packet(3, true, 12);         // block 3 ends: still the one timer
  assert.equal(a.nextDue(), 15);
  a.ackedUpTo(2, 13);            // another client confirmed block 2, not 3: a fresh wait for block 3
  assert.equal(a.nextDue(), 18);
  a.ackedUpTo(2, 14);            // the same again (the master's echo of it): nothing new, the wait stands
  assert.equal(a.nextDue(), 18);
  a.ackedUpTo(3, 15);            // and then block 3: nothing left to say
  assert.equal(a.due(100), undefined);
  assert.equal(a.suppressed, 1);
  assert.equal(a.sent, 1);
});

test('ACK scheduling is not silenced by what it has not seen: an ACK or a packet far ahead', () => {
  const a = new AckScheduler({ kind: 'uniform', max: 10, lambda: 0 }, 4, () => 0.5);
  a.packet(0, true, 0);                // block 0 ends: ACK due at 5
  a.ackedUpTo(1_000_000, 1);           // a forged ACK for the far future: capped at block 0
  assert.equal(a.due(100), undefined); // block 0 itself is suppressed, as MTP wants
  a.packet(1, true, 101);              // block 1 ends: due at 106
  a.packet(500, false, 102);           // a packet far ahead (a forgery, or a long loss)
  a.packet(2, true, 103);              // block 2 ends; the jump must not have covered it
  // No counts are kept that far behind the jump: the sample is of block 2 alone.
  assert.deepEqual(a.due(200), { block: 2, received: 1, sampled: 0 });
});

test('ACK loss sample: every block since the last sample, not the newest with packets still on the way', () => {
  const a = new AckScheduler({ kind: 'uniform', max: 10, lambda: 0 }, 4, () => 0.5);
  for (let i = 0; i < 3; i++) a.packet(0, i === 2, i); // block 0: three packets
  a.packet(2, false, 3);                               // nothing of block 1 came: it counts as lost whole
  a.packet(2, false, 4);
  a.packet(3, true, 5);                                // block 3's LAST overtook its other packets
  assert.deepEqual(a.due(20), { block: 3, received: 5, sampled: 3 });
  a.packet(3, false, 21);                              // the straggler
  a.packet(4, true, 22);
  assert.deepEqual(a.due(40), { block: 4, received: 2, sampled: 1 });
});

test('geometry: manifest packets first, then the image; chunk packet ranges', () => {
  const g = new Geometry({ payloadSize: 1000, blockPackets: 4, manifestLength: 2500, imageSize: 10_500, segmentPackets: 0 });
  assert.equal(g.manifestPackets, 3);
  assert.equal(g.imagePackets, 11);
  assert.deepEqual(g.span(2), { region: 'manifest', offset: 2000, length: 500 });
  assert.deepEqual(g.span(13), { region: 'image', offset: 10_000, length: 500 });
  assert.equal(g.blocks, 4);
  assert.ok(g.isLastOfBlock(3) && g.isLastOfBlock(13) && !g.isLastOfBlock(12));
  assert.deepEqual(g.imagePacketsOf(4096, 4096), { first: 7, end: 12 });
});

test('interfaces from ip -o -4 addr (kept even without carrier), and their networks', async () => {
  const { parseIpAddr } = await import('../../src/net/iface.ts');
  const { networkOf } = await import('../../src/session/lans.ts');
  const text = '1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever\n' +
    '5: br0    inet 10.78.0.1/24 brd 10.78.0.255 scope global br0\\       valid_lft forever\n' +
    '7: eth0@if8    inet 192.168.17.200/20 brd 192.168.31.255 scope global eth0\n';
  assert.deepEqual(parseIpAddr(text, (n) => `mac-${n}`), [
    { name: 'lo', address: '127.0.0.1', network: '127.0.0.0/8', mac: 'mac-lo', loopback: true },
    { name: 'br0', address: '10.78.0.1', network: '10.78.0.0/24', mac: 'mac-br0', loopback: false },
    { name: 'eth0', address: '192.168.17.200', network: '192.168.16.0/20', mac: 'mac-eth0', loopback: false },
  ]);
  assert.equal(networkOf('200.1.2.3', 0), '0.0.0.0/0');
  assert.equal(networkOf('255.255.255.254', 31), '255.255.255.254/31');
});
