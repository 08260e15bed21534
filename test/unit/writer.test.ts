// The client's write queue: packets that arrive a few at a time reach the disk in few, large
// writes, in order, every byte where it belongs; a lone small write is not held past drain().

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type ByteTarget, WriteQueue } from '../../src/disk/writer.ts';

class MemoryTarget implements ByteTarget {
  readonly path = 'memory';
  readonly capacity: number;
  readonly kind = 'file' as const;
  readonly bytes: Uint8Array;
  writes = 0;
  constructor(size: number) { this.capacity = size; this.bytes = new Uint8Array(size); }
  async writev(offset: number, buffers: Uint8Array[]): Promise<void> {
    this.writes++;
    await new Promise((r) => setImmediate(r));
    for (const b of buffers) { this.bytes.set(b, offset); offset += b.length; }
  }
  async read(offset: number, length: number): Promise<Uint8Array> { return this.bytes.slice(offset, offset + length); }
  async sync(): Promise<void> {}
  async close(): Promise<void> {}
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
    assert.ok(q.offer(i * PACKET, want.slice(i * PACKET, (i + 1) * PACKET)));
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
  q.offer(100, new Uint8Array([1, 2, 3]));
  await q.drain();
  assert.deepEqual([...target.bytes.subarray(99, 104)], [0, 1, 2, 3, 0]);
  assert.equal(target.writes, 1);
});
