// The master's page cache: what it hands out are the source's bytes, and it evicts the page
// used least recently, not one the pass is still sending from.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type ByteSource, PageCache } from '../../src/disk/source.ts';

const P = PageCache.PAGE;

/** A source of `pages` pages whose byte i is (i * 7) mod 251, counting the reads of each page. */
function source(pages: number): ByteSource & { reads: number[] } {
  const reads = new Array<number>(pages).fill(0);
  return {
    size: pages * P, sectorSize: 512, label: 'test', reads,
    async read(offset, length, into) {
      reads[offset / P]!++;
      const b = into && into.length >= length ? into.subarray(0, length) : new Uint8Array(length);
      for (let i = 0; i < length; i++) b[i] = ((offset + i) * 7) % 251;
      return b;
    },
    async close() {},
  };
}

const joined = (parts: Uint8Array[]): Uint8Array => new Uint8Array(Buffer.concat(parts));
const expected = (offset: number, length: number): Uint8Array => Uint8Array.from({ length }, (_, i) => ((offset + i) * 7) % 251);

test('page cache: bytes across a page boundary are the source\'s', async () => {
  const cache = new PageCache(source(3), 2);
  const at = P - 100;
  assert.equal(cache.get(at, 1448), undefined, 'nothing is loaded yet');
  await cache.load(at, 1448);
  assert.deepEqual(joined(cache.get(at, 1448)!), expected(at, 1448));
});

test('page cache: the page in use stays while pages load after it', async () => {
  const src = source(4);
  const cache = new PageCache(src, 2);
  await cache.load(0, 1);
  assert.ok(cache.get(0, 1448));
  await cache.load(P, 1);
  // Page 0 is used again after page 1 came in: page 1 is now the one used least recently.
  for (let at = 1448; at < 10 * 1448; at += 1448) assert.deepEqual(joined(cache.get(at, 1448)!), expected(at, 1448));
  await cache.load(2 * P, 1);
  assert.ok(cache.get(5 * 1448, 1448), 'page 0 was evicted although it was the one in use');
  assert.equal(cache.get(P, 1448), undefined, 'page 1 should have gone');
  assert.deepEqual(src.reads, [1, 1, 1, 0]);
});

test('page cache: pages of another size after clear(), and a load from before it lands in none', async () => {
  let release!: () => void;
  const gate = new Promise<void>((r) => { release = r; });
  const reads: [number, number][] = [];
  const src: ByteSource = {
    size: 4 * P, sectorSize: 512, label: 'test',
    async read(offset, length) {
      reads.push([offset, length]);
      const b = Uint8Array.from({ length }, (_, i) => ((offset + i) * 7) % 251);
      if (reads.length === 1) await gate; // the first read is slow: it ends after the clear
      return b;
    },
    async close() {},
  };
  const cache = new PageCache(src, 4);
  const slow = cache.load(P + 5000, 1448);
  cache.clear(PageCache.SMALL);
  const at = P + 5000;
  await cache.load(at, 1448);
  assert.deepEqual(reads[1], [Math.floor(at / PageCache.SMALL) * PageCache.SMALL, PageCache.SMALL], 'a small page read');
  assert.deepEqual(joined(cache.get(at, 1448)!), expected(at, 1448));
  release();
  await slow;
  // Page 1 of the old size is index 1 of the new one too: had the old load landed, it would serve the wrong bytes.
  assert.deepEqual(joined(cache.get(PageCache.SMALL + 10, 100) ?? [new Uint8Array(0)]), new Uint8Array(0), 'the load from before clear() landed');
  assert.deepEqual(joined(cache.get(at, 1448)!), expected(at, 1448));
});

test('page cache: clear() keeps the pages\' memory for the next reads, but not the bytes last handed out', async () => {
  const into: (ArrayBufferLike | undefined)[] = [];
  const src: ByteSource = {
    size: 4 * P, sectorSize: 512, label: 'test',
    async read(offset, length, buf) {
      into.push(buf?.buffer);
      const b = buf && buf.length >= length ? buf.subarray(0, length) : new Uint8Array(length);
      for (let i = 0; i < length; i++) b[i] = ((offset + i) * 7) % 251;
      return b;
    },
    async close() {},
  };
  const cache = new PageCache(src, 4);
  await cache.load(0, 4 * P);
  const held = [0, 1, 2, 3].map((p) => cache.get(p * P, 1)![0]!.buffer);
  // A datagram that spans pages 1 and 2 is the last thing handed out: it may still wait in a socket.
  const last = cache.get(2 * P - 700, 1448)!;
  cache.clear();
  into.length = 0;
  await cache.load(0, 4 * P);
  assert.deepEqual(new Set(into), new Set([held[0], held[3], undefined]), 'pages 0 and 3 reused, 1 and 2 left alone');
  assert.deepEqual(joined(last), expected(2 * P - 700, 1448), 'the bytes handed out before clear() changed');
  for (let p = 0; p < 4; p++) assert.deepEqual(joined(cache.get(p * P + 3, 1448)!), expected(p * P + 3, 1448));
  // Pages of another size take no memory of the old size.
  cache.clear(PageCache.SMALL);
  into.length = 0;
  await cache.load(0, 2 * PageCache.SMALL);
  assert.deepEqual(into, [undefined, undefined]);
  // And back: the big pages' memory (all but page 3's, handed out last) waited through the small ones.
  cache.clear(PageCache.PAGE);
  into.length = 0;
  await cache.load(0, 2 * P);
  // (assert.deepEqual above narrowed `into` to undefined[]: widen it again.)
  const reused = into as (ArrayBufferLike | undefined)[];
  assert.equal(reused.length, 2);
  assert.ok(reused.every((b) => b !== undefined && b.byteLength === P && b !== held[3]), 'big pages read into fresh memory after small ones');
  for (let p = 0; p < 2; p++) assert.deepEqual(joined(cache.get(p * P + 3, 1448)!), expected(p * P + 3, 1448));
});
