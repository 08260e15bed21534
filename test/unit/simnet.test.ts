// The simulator's network models: bursty loss, token-bucket queues, LANs behind a router,
// the light disk. What the study's numbers rest on.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { manifestOfBytes } from '../../src/disk/manifest-build.ts';
import { ImageKind } from '../../src/protocol/messages.ts';
import { defaultParams } from '../../src/session/params.ts';
import { seeded } from '../../src/session/rng.ts';
import { LightDisk, type SimDisk } from '../../src/sim/disk.ts';
import { runLab, sampleImage } from '../../src/sim/lab.ts';
import { LossModel, Queue, WIRE_OVERHEAD } from '../../src/sim/net.ts';

test('Gilbert–Elliott loss keeps its long-run rate and has the mean burst it was given', () => {
  for (const [loss, burst] of [[0.01, 1], [0.05, 8], [0.2, 30]] as const) {
    const m = new LossModel({ loss, burst, delay: 0, jitter: 0, rate: Infinity, queue: 0 });
    const rng = seeded(9);
    let lost = 0, bursts = 0, prev = false;
    const n = 400_000;
    for (let i = 0; i < n; i++) {
      const l = m.lost(rng);
      if (l) lost++;
      if (l && !prev) bursts++;
      prev = l;
    }
    assert.ok(Math.abs(lost / n - loss) < loss * 0.1, `loss ${loss} burst ${burst}: measured ${lost / n}`);
    assert.ok(Math.abs(lost / bursts - burst) < burst * 0.1 + 0.05, `loss ${loss} burst ${burst}: mean burst ${lost / bursts}`);
  }
});

test('a queue passes a burst at once from a full bucket, then the rate; drops past its limit', () => {
  const q = new Queue(1e6, 10_000, 3000);
  const size = 1000 - WIRE_OVERHEAD;
  assert.equal(q.pass(0, size), 0, 'first datagram: bucket');
  assert.equal(q.pass(0, size), 0);
  assert.equal(q.pass(0, size), 0);
  assert.equal(q.pass(0, size), 1, 'bucket empty: one ms for 1000 bytes at 1 MB/s');
  for (let i = 0; i < 10; i++) q.pass(0, size);
  assert.equal(q.pass(0, size), undefined, 'ten ms of backlog at 1 MB/s is over the 10,000-byte limit');
  assert.ok(q.pass(1000, size)! < 1000 + 1, 'idle for a second, the bucket is full again');
});

test('LANs: clients in distinct /24s, and a slow router LAN behind 1 ms recovers by repair', () => {
  const r = runLab({
    seed: 5, imageSize: 1 << 20, params: defaultParams(), disk: 'light',
    lans: [{ delay: 0, rate: Infinity, queue: Infinity, loss: 0 }, { delay: 1, rate: 2e6, queue: 64 << 10, loss: 0 }],
    clients: [{ lan: 0 }, { lan: 0 }, { lan: 1 }, { lan: 1 }],
  });
  assert.equal(r.timedOut, false);
  for (const c of r.clients) assert.ok(c.ok && c.identical, `${c.id}: ${c.reason}`);
  const subnets = new Set([...r.sender.clients.values()].map((c) => c.endpoint.address.split('.').slice(0, 3).join('.')));
  assert.deepEqual([...subnets].sort(), ['10.1.0', '10.2.0']);
  const [a, , c] = r.clients;
  assert.ok(c!.repaired > a!.repaired, 'the LAN behind the slow router lost nothing in the pass');
});

test('the light disk: a wrong write fails its chunk once, the rewrite passes', () => {
  const image = sampleImage(3 << 20, 1);
  const { manifest } = manifestOfBytes(image, ImageKind.Disk, 1 << 20);
  const d: SimDisk = new LightDisk(image, 1 << 20);
  for (let k = 0; k < 3; k++) d.write(k << 20, image.subarray(k << 20, (k + 1) << 20));
  const bad = image.slice(100, 200);
  bad[5]! ^= 1;
  d.write((1 << 20) + 100, bad);
  assert.deepEqual(manifest.chunks.map((c, k) => d.check(k, c)), [true, false, true]);
  assert.equal(d.identical(), false);
  d.write((1 << 20) + 100, image.subarray((1 << 20) + 100, (1 << 20) + 200));
  assert.equal(d.check(1, manifest.chunks[1]!), true);
  assert.equal(d.identical(), true);
});
