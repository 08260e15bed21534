// The client's write queue: packets that arrive a few at a time reach the disk in few, large
// writes, in order, every byte where it belongs; a lone small write is not held past drain().

import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { DiskError } from '../../src/disk/device.ts';
import { pack } from '../../src/disk/chunks.ts';
import { type ByteTarget, RawTarget, WriteQueue } from '../../src/disk/writer.ts';
import { type Chunk, Codec, NO_REGION, sha256 } from '../../src/protocol/manifest.ts';

class MemoryTarget implements ByteTarget {
  readonly path = 'memory';
  readonly capacity: number;
  readonly kind = 'file' as const;
  readonly bytes: Uint8Array;
  writes = 0;
  reads = 0;
  inFlight = 0;
  maxInFlight = 0;
  constructor(size: number) { this.capacity = size; this.bytes = new Uint8Array(size); }
  async writev(offset: number, buffers: Uint8Array[]): Promise<void> {
    this.writes++;
    this.maxInFlight = Math.max(this.maxInFlight, ++this.inFlight);
    await new Promise((r) => setImmediate(r));
    for (const b of buffers) { this.bytes.set(b, offset); offset += b.length; }
    this.inFlight--;
  }
  async read(offset: number, length: number): Promise<Uint8Array> { this.reads++; return this.bytes.slice(offset, offset + length); }
  async sync(): Promise<void> {}
  async close(): Promise<void> {}
}

/** A memory target whose first write lands only once release() is called. */
function firstHeld(size: number): { target: MemoryTarget; release: () => void } {
  let release!: () => void;
  const first = new Promise<void>((r) => { release = r; });
  const target = new (class extends MemoryTarget {
    override async writev(offset: number, buffers: Uint8Array[]): Promise<void> {
      if (this.writes === 0) { this.writes++; await first; this.writes--; }
      return super.writev(offset, buffers);
    }
  })(size);
  return { target, release };
}

const events = { chunkChecked: () => {}, flushed: () => {}, flushFailed: () => {}, writeError: () => {} };

test('write queue: packets trickling in are written in few large writes, byte-exact', async () => {
  const PACKET = 1448, N = 2000;
  const target = new MemoryTarget(PACKET * N);
  const q = new WriteQueue(target, events);
  const want = new Uint8Array(PACKET * N);
  for (let i = 0; i < want.length; i++) want[i] = (i * 7 + (i >> 11)) & 0xff;
  // Four packets per turn of the event loop, as a socket delivers them at a modest rate.
  for (let i = 0; i < N; i++) {
    assert.ok(q.offer(i * PACKET, want, i * PACKET, PACKET));
    if (i % 4 === 3) await new Promise((r) => setImmediate(r));
  }
  await q.drain();
  assert.deepEqual(target.bytes, want);
  assert.ok(target.writes <= N / 50, `${target.writes} writes for ${N} packets`);
  assert.equal(q.written, want.length);
  assert.equal(q.queuedBytes, 0);
});

test('write queue: a lone small write lands by drain(), without waiting for company', async () => {
  const target = new MemoryTarget(4096);
  const q = new WriteQueue(target, events);
  q.offer(100, new Uint8Array([1, 2, 3]), 0, 3);
  await q.drain();
  assert.deepEqual([...target.bytes.subarray(99, 104)], [0, 1, 2, 3, 0]);
  assert.equal(target.writes, 1);
});

test('write queue: with holes (lost packets) the writes queued together run together, and keep up with the socket', async () => {
  const PACKET = 1448, N = 4000;
  const target = new MemoryTarget(PACKET * N);
  const q = new WriteQueue(target, events);
  const want = new Uint8Array(PACKET * N);
  for (let i = 0; i < want.length; i++) want[i] = (i * 13 + (i >> 9)) & 0xff;
  // Every 10th packet lost: each run of 9 is a write of its own. 32 packets per turn of the event
  // loop; one write per turn would fall behind by two thirds of what arrives.
  let refused = 0;
  for (let i = 0; i < N; i++) {
    if (i % 10 === 9) continue;
    if (!q.offer(i * PACKET, want, i * PACKET, PACKET)) refused++;
    if (i % 32 === 31) await new Promise((r) => setImmediate(r));
  }
  await q.drain();
  for (let i = 0; i < N; i++) {
    const got = target.bytes.subarray(i * PACKET, (i + 1) * PACKET);
    assert.ok(i % 10 === 9 ? got.every((b) => b === 0) : Buffer.from(got).equals(want.subarray(i * PACKET, (i + 1) * PACKET)), `packet ${i}`);
  }
  assert.ok(target.maxInFlight > 1, 'the writes went one at a time');
  assert.ok(q.peakQueued < 64 * PACKET * 9, `the queue grew to ${q.peakQueued} bytes: the writes did not keep up`);
  assert.equal(refused, 0);
});

test('write queue: it keeps a copy, so a caller may reuse its buffer at once (batched receive does)', async () => {
  const PACKET = 1448, N = 600;
  const target = new MemoryTarget(PACKET * N);
  const q = new WriteQueue(target, events);
  const want = new Uint8Array(PACKET * N);
  for (let i = 0; i < want.length; i++) want[i] = (i * 31 + (i >> 7)) & 0xff;
  // One receive buffer for every packet, overwritten as soon as offer() returns; every 7th packet
  // arrives out of order (a repair), so copies both extend a neighbour and start writes of their own.
  const slot = new Uint8Array(PACKET);
  const order = [...Array(N).keys()].filter((i) => i % 7 !== 3).concat([...Array(N).keys()].filter((i) => i % 7 === 3));
  for (const [n, i] of order.entries()) {
    slot.set(want.subarray(i * PACKET, (i + 1) * PACKET));
    assert.ok(q.offer(i * PACKET, slot, 0, PACKET));
    slot.fill(0xee);
    if (n % 16 === 15) await new Promise((r) => setImmediate(r));
  }
  await q.drain();
  assert.ok(Buffer.from(target.bytes).equals(want), 'the disk differs from what was offered');
  assert.equal(q.written, want.length);
});

test('write queue: slabs are reused only once every write in them is done, byte-exact', async () => {
  const PACKET = 1448, N = 12_000; // 17 MiB through the queue: 66 slabs' worth of copies
  // Writes that end in a random order: a reused slab still held by a write would show.
  const target = new (class extends MemoryTarget {
    override async writev(offset: number, buffers: Uint8Array[]): Promise<void> {
      await new Promise((r) => (Math.random() < 0.5 ? setImmediate(r) : setTimeout(r, 1)));
      return super.writev(offset, buffers);
    }
  })(PACKET * N);
  const q = new WriteQueue(target, events);
  const want = new Uint8Array(PACKET * N);
  for (let i = 0; i < want.length; i++) want[i] = (i * 7 + (i >> 11)) & 0xff;
  const slot = new Uint8Array(PACKET + 40);
  // Every 5th packet comes a turn late, as a repair would: writes of several runs, across slabs.
  const late: number[] = [];
  for (let i = 0; i < N; i++) {
    if (i % 5 === 2) late.push(i);
    else {
      slot.set(want.subarray(i * PACKET, (i + 1) * PACKET), 40);
      assert.ok(q.offer(i * PACKET, slot, 40, PACKET));
    }
    if (i % 64 === 63) {
      for (const j of late.splice(0)) assert.ok(q.offer(j * PACKET, want, j * PACKET, PACKET));
      await new Promise((r) => setTimeout(r, 2));
    }
  }
  for (const j of late) assert.ok(q.offer(j * PACKET, want, j * PACKET, PACKET));
  await q.drain();
  assert.ok(Buffer.from(target.bytes).equals(want), 'the disk differs from what was offered');
  assert.ok(q.slabs < 33, `${q.slabs} slabs allocated for ${Math.ceil(want.length / WriteQueue.SLAB)} slabs of copies: none reused`);
});

test('write queue: a chunk is read back only after its writes landed, and a slow check holds up no later write', async () => {
  const SIZE = 256 << 10;
  // Reads wait until the test lets them go: a check that takes as long as a busy CPU makes it.
  let release!: () => void;
  const gate = new Promise<void>((r) => { release = r; });
  const target = new (class extends MemoryTarget {
    override async read(offset: number, length: number): Promise<Uint8Array> {
      this.reads++;
      const bytes = this.bytes.slice(offset, offset + length);
      await gate;
      return bytes;
    }
  })(4 * SIZE);
  const checked: [number, boolean, string][] = [];
  const q = new WriteQueue(target, { ...events, chunkChecked: (k, ok, reason) => checked.push([k, ok, reason]) });
  const want = new Uint8Array(4 * SIZE);
  for (let i = 0; i < want.length; i++) want[i] = (i * 11 + (i >> 10)) & 0xff;
  const chunk = (k: number): Chunk => {
    const bytes = want.subarray(k * SIZE, (k + 1) * SIZE);
    return { codec: Codec.Stored, region: NO_REGION, streamLength: SIZE, rawLength: SIZE, extents: [{ offset: k * SIZE, length: SIZE }], digest: sha256(bytes), rawDigest: sha256(bytes) };
  };
  const PACKET = 1448;
  const offerChunk = (k: number): void => {
    for (let at = k * SIZE; at < (k + 1) * SIZE; at += PACKET) assert.ok(q.offer(at, want, at, Math.min(PACKET, (k + 1) * SIZE - at)));
  };
  offerChunk(0);
  q.finish(0, chunk(0));
  offerChunk(1);
  q.finish(1, chunk(1));
  offerChunk(2);
  // Chunk 0's read-back starts once its bytes are written, and stays stuck at the gate; the writes
  // queued after it land meanwhile, and chunk 1's check waits its turn.
  for (let i = 0; i < 200 && target.bytes[3 * SIZE - 1] !== want[3 * SIZE - 1]; i++) await new Promise((r) => setTimeout(r, 5));
  assert.ok(Buffer.from(target.bytes.subarray(0, 3 * SIZE)).equals(want.subarray(0, 3 * SIZE)), 'writes queued after a check waited for it');
  assert.equal(target.reads, 1, 'one check at a time');
  assert.deepEqual(checked, []);
  release();
  await q.drain();
  assert.deepEqual(checked, [[0, true, ''], [1, true, '']]);
  assert.equal(q.queuedBytes, 0);
});

test('write queue: in a long burst taken in one turn of the event loop, the writes start during the burst', async () => {
  const PACKET = 1448, N = 3000;
  const target = new MemoryTarget(PACKET * N);
  const q = new WriteQueue(target, events);
  const want = new Uint8Array(PACKET * N);
  for (let i = 0; i < want.length; i++) want[i] = (i * 17 + (i >> 8)) & 0xff;
  // 5% lost, and the whole burst offered without yielding (a socket drained on a busy CPU):
  // the pool is to have the writes before the turn ends, not after.
  for (let i = 0; i < N; i++) if (i % 20 !== 7) assert.ok(q.offer(i * PACKET, want, i * PACKET, PACKET));
  const startedInBurst = target.writes;
  await q.drain();
  assert.ok(startedInBurst >= N / 20 - 2, `${startedInBurst} writes started during a burst of ${N / 20} runs`);
  for (let i = 0; i < N; i++) {
    const got = target.bytes.subarray(i * PACKET, (i + 1) * PACKET);
    assert.ok(i % 20 === 7 ? got.every((b) => b === 0) : Buffer.from(got).equals(want.subarray(i * PACKET, (i + 1) * PACKET)), `packet ${i}`);
  }
});

test('write queue: a check waits for every write before it, even one that lands after later ones', async () => {
  const SIZE = 64 << 10, PACKET = 1448;
  // The first write to start is the last to land.
  const { target, release } = firstHeld(2 * SIZE);
  const checked: [number, boolean][] = [];
  const q = new WriteQueue(target, { ...events, chunkChecked: (k, ok) => checked.push([k, ok]) });
  const want = new Uint8Array(2 * SIZE);
  for (let i = 0; i < want.length; i++) want[i] = (i * 5 + (i >> 9)) & 0xff;
  // Chunk 0 in two runs (its second packet comes last, as a repair), then chunk 1 whole.
  for (let at = 0; at < SIZE; at += PACKET) if (at !== PACKET) assert.ok(q.offer(at, want, at, Math.min(PACKET, SIZE - at)));
  assert.ok(q.offer(PACKET, want, PACKET, PACKET));
  const bytes = want.subarray(0, SIZE);
  q.finish(0, { codec: Codec.Stored, region: NO_REGION, streamLength: SIZE, rawLength: SIZE, extents: [{ offset: 0, length: SIZE }], digest: sha256(bytes), rawDigest: sha256(bytes) });
  for (let at = SIZE; at < 2 * SIZE; at += PACKET) assert.ok(q.offer(at, want, at, Math.min(PACKET, 2 * SIZE - at)));
  for (let i = 0; i < 20; i++) await new Promise((r) => setTimeout(r, 2));
  assert.deepEqual(checked, [], 'the chunk was checked before its first write landed');
  release();
  await q.drain();
  assert.deepEqual(checked, [[0, true]]);
  assert.ok(Buffer.from(target.bytes).equals(want));
});

test('write queue: a short hole of packets still to come does not end a write, and they land over its zeros even while those are under way', async () => {
  const PACKET = 1448, N = 3000;
  // The first write to start is held until the repairs have been offered.
  const { target, release } = firstHeld(PACKET * N);
  const q = new WriteQueue(target, events);
  const want = new Uint8Array(PACKET * N);
  for (let i = 0; i < want.length; i++) want[i] = (i * 11 + (i >> 10)) & 0xff;
  // 5% lost in the pass, each packet saying that the one lost before it is still to come.
  const lost = (i: number): boolean => i % 20 === 7;
  for (let i = 0; i < N; i++) {
    if (lost(i)) continue;
    const holeFrom = i > 0 && lost(i - 1) ? (i - 1) * PACKET : i * PACKET;
    assert.ok(q.offer(i * PACKET, want, i * PACKET, PACKET, holeFrom));
  }
  // Every hole but one where a write reaches its 1 MiB is filled.
  const writesOfPass = Math.ceil((N * PACKET) / WriteQueue.COALESCE);
  assert.ok(q.holesFilled >= N / 20 - writesOfPass, `${q.holesFilled} holes filled`);
  // The repairs, while the first write (zeros over holes among its bytes) has not landed.
  for (let i = 0; i < N; i++) if (lost(i)) assert.ok(q.offer(i * PACKET, want, i * PACKET, PACKET));
  for (let i = 0; i < 10; i++) await new Promise((r) => setTimeout(r, 2));
  release();
  await q.drain();
  assert.ok(Buffer.from(target.bytes).equals(want), 'zeros landed over a repair');
  // Five 1 MiB writes for the pass, and one per repair: without the zeros, one per run as well.
  assert.ok(q.writeCount <= 2 * writesOfPass + N / 20, `${q.writeCount} writes`);
  assert.equal(q.written, want.length);
  assert.equal(q.queuedBytes, 0);
});

/** Target offset of chunk c's stream byte `at` (stream bytes fill the extents from the front). */
function targetOf(c: Chunk, at: number): number {
  for (const e of c.extents) {
    if (at < e.length) return e.offset + at;
    at -= e.length;
  }
  throw new Error('past the chunk');
}

/** Offer chunk k's stream bytes [from, to) packet by packet, each piece within one extent, as the receiver does once the manifest is known. */
function offerStream(q: WriteQueue, chunks: Chunk[], streams: Uint8Array[], k: number, from: number, to: number, packet = 1448): void {
  const c = chunks[k]!;
  for (let at = from; at < to;) {
    let n = Math.min(packet, to - at);
    let base = 0;
    for (const e of c.extents) { if (at < base + e.length) { n = Math.min(n, base + e.length - at); break; } base += e.length; }
    assert.ok(q.offer(targetOf(c, at), streams[k]!, at, n, targetOf(c, at), k, at), `chunk ${k} byte ${at}`);
    at += n;
  }
}

test('write queue: once the manifest is known a chunk gathers in memory, is checked there and written once per extent; one with bytes on the target already is read back once into memory; a damaged one writes nothing', async () => {
  const SIZE = 256 << 10, PACKET = 1448;
  const target = new MemoryTarget(5 * SIZE);
  const checked: [number, boolean, string][] = [];
  const q = new WriteQueue(target, { ...events, chunkChecked: (k, ok, reason) => checked.push([k, ok, reason]) });
  const raw = (k: number): Uint8Array => Uint8Array.from({ length: SIZE }, (_, i) => (k === 1 ? (i >> 6) & 7 : (i * 13 + k + (i >> 11)) & 0xff));
  const stored = (k: number, extents: Chunk['extents'], bytes = raw(k)): Chunk => ({ codec: Codec.Stored, region: NO_REGION, streamLength: SIZE, rawLength: SIZE, extents, digest: sha256(bytes), rawDigest: sha256(bytes) });
  const packed = await pack(raw(1), 3);
  assert.equal(packed.codec, Codec.Zstd);
  const chunks: Chunk[] = [
    stored(0, [{ offset: 0, length: SIZE }]),
    { codec: Codec.Zstd, region: NO_REGION, streamLength: packed.stream.length, rawLength: SIZE, extents: [{ offset: SIZE, length: SIZE }], digest: packed.digest, rawDigest: packed.rawDigest },
    // Two extents, the second before the first on the target.
    stored(2, [{ offset: 2 * SIZE + SIZE / 2, length: SIZE / 2 }, { offset: 2 * SIZE, length: SIZE / 2 }]),
    // Its digest is another chunk's: the bytes that arrive do not match it.
    stored(3, [{ offset: 3 * SIZE, length: SIZE }], raw(0)),
    stored(4, [{ offset: 4 * SIZE, length: SIZE }]),
  ];
  const streams = [raw(0), packed.stream, raw(2), raw(3), raw(4)];
  // Chunk 4's first packets reach the storage before the manifest (an unmapped stream): when the rest comes it is read back into memory.
  for (let at = 0; at < 10 * PACKET; at += PACKET) assert.ok(q.offer(4 * SIZE + at, streams[4]!, at, PACKET));
  q.known(chunks);
  // Chunks 0 and 2 lose every 20th packet, which comes again after the chunk's other packets.
  for (const k of [0, 1, 2, 3]) {
    const len = chunks[k]!.streamLength;
    for (let at = 0, i = 0; at < len; at += PACKET, i++) if (k === 1 || k === 3 || i % 20 !== 7) offerStream(q, chunks, streams, k, at, Math.min(at + PACKET, len));
  }
  offerStream(q, chunks, streams, 4, 10 * PACKET, SIZE);
  for (const k of [0, 2]) for (let at = 7 * PACKET; at < SIZE; at += 20 * PACKET) offerStream(q, chunks, streams, k, at, Math.min(at + PACKET, SIZE));
  await q.drain();
  const early = target.writes;
  assert.ok(early >= 1, 'chunk 4 goes to the target as it comes');
  assert.ok(target.bytes.subarray(0, 4 * SIZE).every((b) => b === 0), 'a held chunk reached the target before it was whole');
  chunks.forEach((c, k) => q.finish(k, c));
  await q.drain();
  assert.deepEqual(checked.sort((a, b) => a[0] - b[0]), [[0, true, ''], [1, true, ''], [2, true, ''], [3, false, 'stream digest mismatch'], [4, true, '']]);
  for (const k of [0, 1, 2, 4]) {
    const want = raw(k);
    for (let at = 0; at < SIZE; at += PACKET) assert.equal(target.bytes[targetOf(chunks[k]!, at)], want[at], `chunk ${k} byte ${at} on the target`);
    assert.ok(Buffer.from(target.bytes.subarray(k * SIZE, (k + 1) * SIZE)).equals(k === 2 ? Buffer.concat([want.subarray(SIZE / 2), want.subarray(0, SIZE / 2)]) : want), `chunk ${k} on the target`);
  }
  assert.ok(target.bytes.subarray(3 * SIZE, 4 * SIZE).every((b) => b === 0), 'the damaged chunk was written');
  // One write per extent of the chunks checked in memory (chunk 4 among them); only chunk 4 was read, once.
  assert.equal(target.writes - early, 5);
  assert.equal(target.reads, 1);
  assert.deepEqual([q.checkedInMemory, q.readBack, q.spilled, q.reloaded], [4, 0, 0, 1]);
  assert.equal(q.queuedBytes, 0);
});

test('write queue: past its memory for held chunks the oldest goes to the target, zeros in its holes; when its late packets come it is read back into memory once its write has landed, and checked there', async () => {
  const SIZE = 256 << 10, PACKET = 1448;
  // The first write (the spilled chunk) lands only once its late packets have been offered.
  const { target, release } = firstHeld(3 * SIZE);
  const checked: [number, boolean][] = [];
  const q = new WriteQueue(target, { ...events, chunkChecked: (k, ok) => checked.push([k, ok]) }, 64 << 20, 2 * SIZE);
  const streams = [0, 1, 2].map((k) => Uint8Array.from({ length: SIZE }, (_, i) => (i * 7 + k * 3 + (i >> 9)) & 0xff));
  const chunks: Chunk[] = streams.map((b, k) => ({ codec: Codec.Stored, region: NO_REGION, streamLength: SIZE, rawLength: SIZE, extents: [{ offset: k * SIZE, length: SIZE }], digest: sha256(b), rawDigest: sha256(b) }));
  q.known(chunks);
  // Chunks 0 and 1 each lack their second packet; chunk 2 needs a third buffer.
  for (const k of [0, 1]) { offerStream(q, chunks, streams, k, 0, PACKET); offerStream(q, chunks, streams, k, 2 * PACKET, SIZE); }
  assert.equal(q.spilled, 0);
  // What a held chunk holds can be had from memory (a client decodes coded repairs with it).
  assert.equal(Buffer.compare(q.inMemory(1, 2 * PACKET, PACKET)!, streams[1]!.subarray(2 * PACKET, 3 * PACKET)), 0);
  assert.equal(q.inMemory(2, 0, PACKET), undefined, 'a chunk nothing of which came');
  offerStream(q, chunks, streams, 2, 0, SIZE);
  assert.equal(q.spilled, 1);
  assert.equal(q.inMemory(0, 2 * PACKET, PACKET), undefined, 'a chunk gone to the target');
  assert.equal(Buffer.compare(q.inMemory(2, SIZE - PACKET, PACKET)!, streams[2]!.subarray(SIZE - PACKET)), 0);
  q.finish(2, chunks[2]!);
  for (const k of [0, 1]) offerStream(q, chunks, streams, k, PACKET, 2 * PACKET);
  q.finish(0, chunks[0]!);
  q.finish(1, chunks[1]!);
  for (let i = 0; i < 10; i++) await new Promise((r) => setTimeout(r, 2));
  assert.deepEqual(checked.filter(([k]) => k === 0), [], 'the spilled chunk was checked before it was written');
  assert.equal(target.reads, 0, 'the spilled chunk was read back before its write landed');
  assert.equal(q.inMemory(0, 0, PACKET), undefined, 'a chunk being read back');
  release();
  await q.drain();
  assert.deepEqual(checked.sort((a, b) => a[0] - b[0]), [[0, true], [1, true], [2, true]]);
  assert.ok(Buffer.from(target.bytes).equals(Buffer.concat(streams)), 'zeros of the spilled chunk landed over its late packet');
  assert.deepEqual([q.checkedInMemory, q.readBack, q.spilled, q.reloaded], [3, 0, 1, 1]);
  assert.equal(target.reads, 1);
  assert.equal(q.queuedBytes, 0);
});

test('write queue: a chunk that goes to the target before it is whole has zeros in its holes, not the bytes of the chunk its buffer held before', async () => {
  const SIZE = 256 << 10, PACKET = 1448;
  const target = new MemoryTarget(4 * SIZE);
  const q = new WriteQueue(target, events, 64 << 20, 2 * SIZE);
  const streams = [0, 1, 2, 3].map((k) => Uint8Array.from({ length: SIZE }, (_, i) => 1 + ((i * 11 + k * 5 + (i >> 8)) % 255)));
  const chunks: Chunk[] = streams.map((b, k) => ({ codec: Codec.Stored, region: NO_REGION, streamLength: SIZE, rawLength: SIZE, extents: [{ offset: k * SIZE, length: SIZE }], digest: sha256(b), rawDigest: sha256(b) }));
  q.known(chunks);
  // Chunk 0 whole: checked, written, and its buffer goes back to the pool.
  offerStream(q, chunks, streams, 0, 0, SIZE);
  q.finish(0, chunks[0]!);
  await q.drain();
  // Chunk 1 (in chunk 0's buffer) lacks its second and last packets; chunks 2 and 3 need two more buffers,
  // one past the memory for held chunks, so chunk 1 goes to the target as it stands.
  offerStream(q, chunks, streams, 1, 0, PACKET);
  offerStream(q, chunks, streams, 1, 2 * PACKET, SIZE - PACKET);
  offerStream(q, chunks, streams, 2, 0, SIZE);
  assert.equal(q.spilled, 0);
  offerStream(q, chunks, streams, 3, 0, PACKET);
  assert.equal(q.spilled, 1);
  await q.drain();
  const on = target.bytes.subarray(SIZE, 2 * SIZE);
  assert.ok(on.subarray(PACKET, 2 * PACKET).every((b) => b === 0), 'a hole in the middle holds zeros');
  assert.ok(on.subarray(SIZE - PACKET).every((b) => b === 0), 'the missing end holds zeros');
  assert.ok(Buffer.from(on.subarray(0, PACKET)).equals(streams[1]!.subarray(0, PACKET)));
  assert.ok(Buffer.from(on.subarray(2 * PACKET, SIZE - PACKET)).equals(streams[1]!.subarray(2 * PACKET, SIZE - PACKET)));
});

test('write queue: bytes said to lie past the stream of a held chunk send the whole chunk to the target; sent again right, it is read back into memory and checked there', async () => {
  const SIZE = 64 << 10, PACKET = 1448;
  const target = new MemoryTarget(2 * SIZE);
  const checked: [number, boolean][] = [];
  const q = new WriteQueue(target, { ...events, chunkChecked: (k, ok) => checked.push([k, ok]) });
  const streams = [0, 1].map((k) => Uint8Array.from({ length: SIZE }, (_, i) => (i * 5 + k) & 0xff));
  const chunks: Chunk[] = streams.map((b, k) => ({ codec: Codec.Stored, region: NO_REGION, streamLength: SIZE, rawLength: SIZE, extents: [{ offset: k * SIZE, length: SIZE }], digest: sha256(b), rawDigest: sha256(b) }));
  q.known(chunks);
  offerStream(q, chunks, streams, 0, 0, SIZE - PACKET);
  // The last packet, its chunk offset wrong by a byte.
  assert.ok(q.offer(SIZE - PACKET, streams[0]!, SIZE - PACKET, PACKET, SIZE - PACKET, 0, SIZE - PACKET + 1));
  assert.equal(q.spilled, 1);
  // Sent again right: it lands over the spilled chunk's zeros as read back.
  offerStream(q, chunks, streams, 0, SIZE - PACKET, SIZE);
  q.finish(0, chunks[0]!);
  await q.drain();
  assert.deepEqual(checked, [[0, true]]);
  assert.deepEqual([q.checkedInMemory, q.readBack, q.reloaded], [1, 0, 1]);
  assert.ok(Buffer.from(target.bytes.subarray(0, SIZE)).equals(streams[0]!));
});

test('write queue: a chunk on the target is read back into memory only where a buffer is free or the oldest held chunk is idle; else its late packets are written and it is read back when whole', async () => {
  const SIZE = 128 << 10, PACKET = 1448;
  const target = new MemoryTarget(4 * SIZE);
  const checked: [number, boolean][] = [];
  const q = new WriteQueue(target, { ...events, chunkChecked: (k, ok) => checked.push([k, ok]) }, 64 << 20, 2 * SIZE);
  const streams = [0, 1, 2, 3].map((k) => Uint8Array.from({ length: SIZE }, (_, i) => (i * 3 + k * 17 + (i >> 10)) & 0xff));
  const chunks: Chunk[] = streams.map((b, k) => ({ codec: Codec.Stored, region: NO_REGION, streamLength: SIZE, rawLength: SIZE, extents: [{ offset: k * SIZE, length: SIZE }], digest: sha256(b), rawDigest: sha256(b) }));
  // Chunk 3's first packet reaches the storage before the manifest.
  assert.ok(q.offer(3 * SIZE, streams[3]!, 0, PACKET));
  q.known(chunks);
  // Chunks 0 and 1 lack their second packet; chunk 2's first packet takes the buffer of chunk 0, which goes to the target.
  for (const k of [0, 1]) { offerStream(q, chunks, streams, k, 0, PACKET); offerStream(q, chunks, streams, k, 2 * PACKET, SIZE); }
  offerStream(q, chunks, streams, 2, 0, PACKET);
  assert.equal(q.spilled, 1);
  // Chunk 0's late packet: both buffers are taken, by chunks fed a moment ago, so it goes to the target.
  offerStream(q, chunks, streams, 0, PACKET, 2 * PACKET);
  assert.equal(q.reloaded, 0);
  assert.equal(q.inMemory(0, PACKET, PACKET), undefined);
  q.finish(0, chunks[0]!);
  // The rest of chunk 2 in 8-byte pieces: more offers than IDLE_OFFERS since chunk 1 had one.
  assert.ok((SIZE - PACKET) / 8 > WriteQueue.IDLE_OFFERS);
  offerStream(q, chunks, streams, 2, PACKET, SIZE, 8);
  // Chunk 3's rest, all in one turn while it is being read: chunk 1 (idle) gives up its buffer.
  offerStream(q, chunks, streams, 3, PACKET, SIZE);
  assert.deepEqual([q.spilled, q.reloaded], [2, 1]);
  assert.equal(q.inMemory(3, PACKET, PACKET), undefined, 'a chunk being read back');
  q.finish(3, chunks[3]!);
  // Chunk 1's late packet: chunk 2 was fed a moment ago, so this one goes to the target.
  offerStream(q, chunks, streams, 1, PACKET, 2 * PACKET);
  q.finish(1, chunks[1]!);
  q.finish(2, chunks[2]!);
  await q.drain();
  assert.deepEqual(checked.sort((a, b) => a[0] - b[0]), [[0, true], [1, true], [2, true], [3, true]]);
  assert.ok(Buffer.from(target.bytes).equals(Buffer.concat(streams)));
  assert.deepEqual([q.checkedInMemory, q.readBack, q.spilled, q.reloaded], [2, 2, 2, 1]);
  assert.equal(target.reads, 3, 'chunks 0 and 1 read back to be checked, chunk 3 to be held');
  assert.equal(q.queuedBytes, 0);
});

test('write queue: asked for the bytes of a chunk on the target, it reads the chunk back for the next time (a coded repair is decoded with them); not once the chunk is finished', async () => {
  const SIZE = 64 << 10, PACKET = 1448;
  const target = new MemoryTarget(2 * SIZE);
  const checked: [number, boolean][] = [];
  const q = new WriteQueue(target, { ...events, chunkChecked: (k, ok) => checked.push([k, ok]) });
  const streams = [0, 1].map((k) => Uint8Array.from({ length: SIZE }, (_, i) => (i * 9 + k * 7 + (i >> 8)) & 0xff));
  const chunks: Chunk[] = streams.map((b, k) => ({ codec: Codec.Stored, region: NO_REGION, streamLength: SIZE, rawLength: SIZE, extents: [{ offset: k * SIZE, length: SIZE }], digest: sha256(b), rawDigest: sha256(b) }));
  // Before the manifest: chunk 0 but its last packet, and chunk 1 whole.
  for (const k of [0, 1]) for (let at = 0; at < (k === 0 ? SIZE - PACKET : SIZE); at += PACKET) assert.ok(q.offer(k * SIZE + at, streams[k]!, at, Math.min(PACKET, SIZE - at)));
  q.known(chunks);
  q.finish(1, chunks[1]!);
  await q.drain();
  assert.equal(q.inMemory(1, 0, PACKET), undefined);
  assert.equal(q.inMemory(0, PACKET, PACKET), undefined, 'a chunk on the target');
  await q.drain();
  assert.equal(q.reloaded, 1, 'only the chunk not finished is read back');
  assert.ok(Buffer.from(q.inMemory(0, PACKET, PACKET)!).equals(streams[0]!.subarray(PACKET, 2 * PACKET)));
  offerStream(q, chunks, streams, 0, SIZE - PACKET, SIZE);
  q.finish(0, chunks[0]!);
  await q.drain();
  assert.deepEqual(checked, [[1, true], [0, true]]);
  assert.deepEqual([q.checkedInMemory, q.readBack, q.reloaded], [1, 1, 1]);
  assert.ok(Buffer.from(target.bytes).equals(Buffer.concat(streams)));
});

test('write queue: a chunk that cannot be read back into memory goes to the target with the packets offered meanwhile, and is read back when whole', async () => {
  const SIZE = 64 << 10, PACKET = 1448;
  const target = new (class extends MemoryTarget {
    override async read(offset: number, length: number): Promise<Uint8Array> {
      if (this.reads++ === 0) throw new Error('EIO');
      return this.bytes.slice(offset, offset + length);
    }
  })(SIZE);
  const checked: [number, boolean][] = [];
  const q = new WriteQueue(target, { ...events, chunkChecked: (k, ok) => checked.push([k, ok]) });
  const stream = Uint8Array.from({ length: SIZE }, (_, i) => (i * 5 + (i >> 9)) & 0xff);
  const chunks: Chunk[] = [{ codec: Codec.Stored, region: NO_REGION, streamLength: SIZE, rawLength: SIZE, extents: [{ offset: 0, length: SIZE }], digest: sha256(stream), rawDigest: sha256(stream) }];
  assert.ok(q.offer(0, stream, 0, PACKET));
  q.known(chunks);
  offerStream(q, chunks, [stream], 0, PACKET, SIZE);
  assert.equal(q.reloaded, 1);
  q.finish(0, chunks[0]!);
  await q.drain();
  assert.deepEqual(checked, [[0, true]]);
  assert.ok(Buffer.from(target.bytes).equals(stream));
  assert.deepEqual([q.checkedInMemory, q.readBack, q.reloaded], [0, 1, 1]);
  assert.equal(q.queuedBytes, 0);
});

test('write queue: a held chunk whose write fails is a write error naming its extent, not a check', async () => {
  const SIZE = 64 << 10;
  const target = new (class extends MemoryTarget {
    override async writev(offset: number, buffers: Uint8Array[]): Promise<void> {
      if (offset === SIZE) throw new Error('ENOSPC: no space left on device, write');
      return super.writev(offset, buffers);
    }
  })(2 * SIZE);
  const checked: [number, boolean][] = [];
  const errors: [number, number, string][] = [];
  const q = new WriteQueue(target, { ...events, chunkChecked: (k, ok) => checked.push([k, ok]), writeError: (o, n, e) => errors.push([o, n, e.message]) });
  const streams = [0, 1].map((k) => Uint8Array.from({ length: SIZE }, (_, i) => (i * 3 + k) & 0xff));
  const chunks: Chunk[] = streams.map((b, k) => ({ codec: Codec.Stored, region: NO_REGION, streamLength: SIZE, rawLength: SIZE, extents: [{ offset: k * SIZE, length: SIZE }], digest: sha256(b), rawDigest: sha256(b) }));
  q.known(chunks);
  for (const k of [0, 1]) { offerStream(q, chunks, streams, k, 0, SIZE); q.finish(k, chunks[k]!); }
  await q.drain();
  assert.deepEqual(checked, [[0, true]]);
  assert.deepEqual(errors, [[SIZE, SIZE, 'ENOSPC: no space left on device, write']]);
  assert.equal(q.checkedInMemory, 1);
  assert.equal(q.queuedBytes, 0);
});

test('raw target: a file of fixed size takes gathered writes where asked, reads them back, and a read past its end names the file', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'must-raw-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'disk.img');
  writeFileSync(path, Buffer.alloc(1 << 20));
  const t = await RawTarget.open(path);
  assert.equal(t.capacity, 1 << 20);
  const parts = [1448, 7, 65536, 3].map((n, k) => Uint8Array.from({ length: n }, (_, i) => (i * 13 + k * 101) & 0xff));
  const total = parts.reduce((s, p) => s + p.length, 0);
  await Promise.all([t.writev(1000, parts), t.writev(900_000, [parts[0]!])]);
  assert.deepEqual(await t.read(1000, total), Buffer.concat(parts));
  const into = new Uint8Array(4096);
  assert.deepEqual(await t.read(900_000, 1448, into), parts[0]);
  await assert.rejects(t.read((1 << 20) - 10, 20), (e: Error) => e instanceof DiskError && e.message.includes(path) && e.message.includes('ends at byte 1048576'));
  await t.close();
  const file = readFileSync(path);
  assert.deepEqual(file.subarray(1000, 1000 + total), Buffer.concat(parts));
  assert.equal(file.subarray(0, 1000).some((b) => b !== 0), false, 'bytes before the write were touched');
});

test('raw target: close() waits for the writes under way, and each of them lands', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'must-raw-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'disk.img');
  const t = await RawTarget.open(path);
  // One long write among short ones: the thread pool closes the descriptor on another thread while it runs.
  const sizes = [64 << 20, 4096, 4096, 4096];
  const at = (k: number): number => sizes.slice(0, k).reduce((a, b) => a + b, 0);
  let settled = 0;
  const writes = sizes.map((n, k) => t.writev(at(k), [new Uint8Array(n).fill(k + 1)]).finally(() => { settled++; }));
  await t.close();
  assert.equal(settled, sizes.length, 'close() returned before every write had ended');
  await Promise.all(writes);
  const file = readFileSync(path);
  assert.equal(file.length, at(sizes.length));
  sizes.forEach((n, k) => assert.ok(file.subarray(at(k), at(k) + n).every((b) => b === k + 1), `write ${k} did not land`));
});
