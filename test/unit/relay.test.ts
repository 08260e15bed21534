// The relay's pieces without a network: the link's frames (round trips, input cut anywhere,
// malformed input refused), the ring (output pointers hold it, a full ring takes nothing more,
// wrap-around), the source that waits for or fetches what the ring lacks, and reports.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type Frame, FrameReader, FrameType, LinkError, LinkRole, MAX_BODY, encodeFrame } from '../../src/relay/frames.ts';
import { type RelayReport, flatten, parseReport } from '../../src/relay/report.ts';
import { Ring } from '../../src/relay/ring.ts';
import { RelaySource } from '../../src/relay/source.ts';
import { seeded } from '../../src/session/rng.ts';

const bytes = (n: number, seed = 1): Uint8Array => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) & 255);
const concat = (parts: Uint8Array[]): Uint8Array => {
  const out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let at = 0;
  for (const p of parts) { out.set(p, at); at += p.length; }
  return out;
};

const FRAMES: Frame[] = [
  { type: FrameType.Hello, role: LinkRole.Stream, resumeFrom: 2 ** 40 + 7, digest: bytes(32), name: 'r1 ✓', lan: '10.81.2.0/24' },
  { type: FrameType.Hello, role: LinkRole.Fetch, resumeFrom: 0, digest: undefined, name: '', lan: '' },
  { type: FrameType.Session, streamSize: 3 * 2 ** 32 + 5, caps: 0x0005, kind: 1, digest: bytes(32, 9), name: 'lab image', manifest: bytes(3000, 2) },
  { type: FrameType.Stream, offset: 2 ** 33, bytes: bytes(70_000, 3) },
  { type: FrameType.Fetch, id: 0xfffffffe, offset: 12345, length: 4 << 20 },
  { type: FrameType.Fetched, id: 7, offset: 99, bytes: bytes(1000, 4) },
  { type: FrameType.FetchFailed, id: 8, reason: 'read error ✗' },
  { type: FrameType.Report, json: '{"name":"r1"}' },
  { type: FrameType.Refuse, reason: 'another image' },
];

const normal = (f: Frame): unknown => JSON.parse(JSON.stringify(f, (_k, v: unknown) => (v instanceof Uint8Array ? Buffer.from(v).toString('hex') : v)));

test('link frames: every type round-trips, through input cut at random places', () => {
  const wire = concat(FRAMES.flatMap(encodeFrame));
  const r = seeded(3);
  for (let trial = 0; trial < 50; trial++) {
    const reader = new FrameReader();
    const got: Frame[] = [];
    for (let at = 0; at < wire.length;) {
      const n = 1 + Math.floor(r() * (trial % 2 ? 50 : 20_000));
      reader.push(wire.subarray(at, at + n));
      at += n;
      for (let f = reader.next(); f; f = reader.next()) got.push(f);
    }
    assert.deepEqual(got.map(normal), FRAMES.map(normal));
    assert.equal(reader.pending, 0);
  }
});

test('link frames: a stranger, another version, an oversized or malformed frame is a LinkError, never a guess', () => {
  const wrong = (mutate: (b: Uint8Array) => void, base: Frame = FRAMES[4]!): void => {
    const b = concat(encodeFrame(base));
    mutate(b);
    const reader = new FrameReader();
    reader.push(b);
    assert.throws(() => reader.next(), LinkError);
  };
  wrong((b) => { b[0] = 0x47; });                     // magic: an HTTP request, say
  wrong((b) => { b[2] = 2; });                        // version
  wrong((b) => { new DataView(b.buffer).setUint32(4, MAX_BODY + 1); });
  wrong((b) => { b[3] = 99; });                       // type
  wrong((b) => { new DataView(b.buffer).setUint32(20, 0); });   // fetch of 0 bytes
  wrong((b) => { b[8] = 3; }, FRAMES[0]!);            // link role 3
  // A frame that is still coming is not an error.
  const part = new FrameReader();
  part.push(concat(encodeFrame(FRAMES[3]!)).subarray(0, 100));
  assert.equal(part.next(), undefined);
});

test('ring: output pointers hold it; full, it takes nothing; pointers that move free it; wrap-around reads back', () => {
  const ring = new Ring(1000);
  const a = ring.reader(0), b = ring.reader(0);
  ring.write(bytes(600, 1));
  assert.equal(ring.space, 400);
  a.pos = 600;
  assert.equal(ring.space, 400, 'the slower pointer still holds all 600 bytes');
  b.pos = 300;
  assert.equal(ring.space, 700);
  ring.write(bytes(700, 2));
  assert.equal(ring.space, 0, 'full: b holds byte 300');
  assert.equal(ring.peak, 1000);
  assert.throws(() => ring.write(bytes(1)), /ring: 1 bytes written with 0 free/);
  // The stream as written, across the wrap.
  const stream = concat([bytes(600, 1), bytes(700, 2)]);
  assert.deepEqual(ring.read(300, 1000), stream.subarray(300, 1300));
  assert.equal(ring.low, 300);
  assert.equal(ring.has(299, 10), false);
  // A pointer that fell behind the ring (it fetches from upstream) holds nothing; a released one neither.
  b.pos = 100;
  assert.equal(ring.space, 1000 - (1300 - 600), 'b is behind the ring: only a (at 600) holds');
  a.release();
  assert.equal(ring.space, 1000);
  // A pointer ahead of the input pointer waits for bytes to come and holds everything from there on.
  ring.reader(2000);
  ring.write(bytes(600, 3));
  assert.equal(ring.space, 1000, 'the bytes before 2000 are nobody\'s');
  ring.write(bytes(400, 4));
  assert.equal(ring.held, 2300 - 2000, 'the bytes from 2000 on are held');
});

test('relay source: reads what the ring holds, waits for what is to come, fetches what the ring moved past', async () => {
  const ring = new Ring(1000);
  const stream = bytes(5000, 7);
  const fetched: Array<[number, number]> = [];
  const src = new RelaySource(ring, stream.length, 'test', async (o, n) => { fetched.push([o, n]); return stream.slice(o, o + n); });
  ring.write(stream.subarray(0, 800));
  assert.deepEqual(await src.read(100, 200), stream.subarray(100, 300));
  // Not here yet: the read waits for the upstream link.
  let late: Uint8Array | undefined;
  const waiting = src.read(900, 300).then((b) => { late = b; });
  await new Promise((r) => setTimeout(r, 10));
  assert.equal(late, undefined);
  ring.write(stream.subarray(800, 1000));
  src.grew();
  await new Promise((r) => setTimeout(r, 10));
  assert.equal(late, undefined, 'still short of byte 1200');
  ring.write(stream.subarray(1000, 1500));
  src.grew();
  await waiting;
  assert.deepEqual(late, stream.subarray(900, 1200));
  // Gone from the ring (it holds [500, 1500)): fetched from upstream.
  assert.deepEqual(await src.read(0, 400), stream.subarray(0, 400));
  assert.deepEqual(fetched, [[0, 400]]);
  assert.equal(src.fetched, 400);
  // Reads stop at the end of the stream.
  const tail = new Ring(100);
  tail.write(stream.subarray(0, 50));
  assert.deepEqual(await new RelaySource(tail, 50, 'tail', () => Promise.reject(new Error('no fetch'))).read(40, 4096), stream.subarray(40, 50));
});

const report = (name: string, relays: RelayReport[] = []): RelayReport => ({
  name, address: '10.81.2.1', lan: '10.81.2.0/24', upstream: '10.81.1.1:7700', state: 'transfer', received: 5, streamSize: 10,
  buffer: { size: 16, held: 8, peak: 16 }, fetched: 0, rssPeak: 1, final: false, ok: false, relays,
  pcs: [{ name: 'b1', mac: '52:54:00:00:00:01', ip: '10.81.2.2', lan: '10.81.2.0/24', state: 'receiving', percent: 50, rateMBps: 1.5, missing: 10, seconds: undefined, reason: '' }],
});

test('relay reports: a tree round-trips through JSON; anything malformed is refused whole', () => {
  const tree = report('r1', [report('r2', [report('r4')]), report('r3')]);
  const back = parseReport(JSON.stringify(tree))!;
  assert.deepEqual(JSON.parse(JSON.stringify(back)), JSON.parse(JSON.stringify(tree)));
  assert.deepEqual(flatten([back]).map((x) => `${x.report.name}@${x.depth}`), ['r1@1', 'r2@2', 'r4@3', 'r3@2']);
  assert.equal(parseReport('{"name":'), undefined);
  assert.equal(parseReport(JSON.stringify({ ...tree, received: 'lots' })), undefined);
  assert.equal(parseReport(JSON.stringify({ ...tree, relays: [{ ...report('r2'), pcs: [{ name: 'x' }] }] })), undefined, 'a bad PC deep down spoils the report');
});
