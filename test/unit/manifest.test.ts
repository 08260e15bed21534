import assert from 'node:assert/strict';
import { test } from 'node:test';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type BuiltManifest, buildManifest, manifestOfBytes, sealManifest } from '../../src/disk/manifest-build.ts';
import { manifestCache } from '../../src/disk/manifest-cache.ts';
import { RawSource } from '../../src/disk/source.ts';
import { DecodeError } from '../../src/protocol/bytes.ts';
import { DEFAULT_CHUNK_SIZE, Layout, decodeManifest, encodeManifest, streamSize } from '../../src/protocol/manifest.ts';
import { ImageKind } from '../../src/protocol/messages.ts';
import { sampleFiles, sampleManifest } from './samples.ts';

const reason = (b: Uint8Array): string => {
  try { decodeManifest(b); return 'accepted'; } catch (e) { assert.ok(e instanceof DecodeError, String(e)); return e.reason; }
};

test('manifests round trip: raw (identity chunks), captured (regions, packed chunks, extents, zeros), file sets', () => {
  const raw = manifestOfBytes(Uint8Array.from({ length: (5 << 20) + 7 }, (_, i) => i * 31), ImageKind.Disk);
  assert.deepEqual(decodeManifest(raw.bytes), raw.manifest);
  assert.equal(raw.manifest.chunks.length, 6);
  // Identity chunks carry no extent list: 39 bytes each.
  assert.ok(raw.bytes.length < 80 + 6 * 40, `${raw.bytes.length} bytes`);
  const captured = sampleManifest();
  assert.deepEqual(decodeManifest(captured.bytes), captured.manifest);
  const files = manifestOfBytes(new Uint8Array(10), ImageKind.Files);
  const withFiles = sealManifest({ ...files.manifest, files: sampleFiles });
  assert.deepEqual(decodeManifest(withFiles.bytes), withFiles.manifest);
});

test('inconsistent manifests are refused: truncated, trailing bytes, overlapping or outlying extents, packed larger than raw', () => {
  const good = sampleManifest();
  assert.equal(reason(good.bytes), 'accepted');
  assert.equal(reason(good.bytes.subarray(0, good.bytes.length - 1)), 'short');
  assert.equal(reason(new Uint8Array([...good.bytes, 0])), 'length');
  const magic = Uint8Array.from(good.bytes); magic[0] = 0;
  assert.equal(reason(magic), 'magic');
  const m = good.manifest;
  const variant = (change: (c: typeof m) => void): Uint8Array => { const c = structuredClone(m); change(c); return encodeManifest(c); };
  assert.equal(reason(variant((c) => { c.zeros.push({ offset: (1 << 20) + 100, length: 10 }); })), 'field', 'zeros over a chunk');
  assert.equal(reason(variant((c) => { c.chunks[2]!.extents[0]!.offset = (8 << 20) - 100; })), 'field', 'past the target');
  assert.equal(reason(variant((c) => { c.chunks[1]!.streamLength = 20000; })), 'field', 'packed larger than raw');
  assert.equal(reason(variant((c) => { c.chunks[0]!.streamLength = 1000; })), 'field', 'stored of another length than raw');
  assert.equal(reason(variant((c) => { c.chunks[0]!.region = 7; })), 'field', 'unknown region');
  // A count that claims more chunks than bytes is caught before anything is allocated for them.
  const huge = Uint8Array.from(good.bytes); huge.set([0x7f, 0xff, 0xff, 0xff], 32);
  assert.equal(reason(huge), 'length');
});

test('the layout maps stream bytes to target pieces, packed bytes waiting at the front of their chunk\'s extents', () => {
  const { manifest } = sampleManifest();
  const l = new Layout(manifest);
  assert.equal(l.streamSize, streamSize(manifest));
  assert.equal(l.streamSize, 1024 + 3000 + 512);
  assert.deepEqual([0, 1023, 1024, 4023, 4024, 4535].map((o) => l.chunkAt(o)), [0, 0, 1, 1, 2, 2]);
  assert.deepEqual(l.chunksOf(1000, 100), { first: 0, end: 2 });
  // A run straddling chunks 0 and 1, and chunk 1's two extents.
  assert.deepEqual(l.pieces(1000, 100), [
    { chunk: 0, from: 0, length: 24, offset: 1000 },
    { chunk: 1, from: 24, length: 76, offset: 1 << 20 },
  ]);
  // 3000 stream bytes of chunk 1 fit in its first extent (4096): no piece lands in the second.
  assert.deepEqual(l.pieces(1024 + 2990, 20), [
    { chunk: 1, from: 0, length: 10, offset: (1 << 20) + 2990 },
    { chunk: 2, from: 10, length: 10, offset: 4 << 20 },
  ]);
  // Every stream byte has exactly one target byte.
  const seen = new Set<number>();
  for (const p of l.pieces(0, l.streamSize)) for (let i = 0; i < p.length; i++) {
    assert.ok(!seen.has(p.offset + i));
    seen.add(p.offset + i);
  }
  assert.equal(seen.size, l.streamSize);
});

test('a raw file\'s manifest is kept between sessions, and not once the file is rewritten, changed just now, or the kept copy is damaged', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'must-cache-'));
  try {
    const path = join(dir, 'disk.img');
    writeFileSync(path, Uint8Array.from({ length: (3 << 20) + 5 }, (_, i) => i * 7));
    const what = { chunkSize: DEFAULT_CHUNK_SIZE, kind: ImageKind.Disk };
    const later = (): number => Date.now() + 10_000;
    const fresh = async (): Promise<BuiltManifest> => {
      const src = await RawSource.open(path);
      try { return await buildManifest(src, { kind: ImageKind.Disk }); } finally { await src.close(); }
    };
    const built = await fresh();
    // The parallel hash gives the chunks the in-memory (sequential) one gives.
    assert.deepEqual(built.manifest.chunks, manifestOfBytes(readFileSync(path), ImageKind.Disk).manifest.chunks);
    // Changed just now: a second write in the same clock tick could leave its times as they are.
    const racy = (await manifestCache(path, join(dir, 'c'), what))!;
    await racy.keep(built);
    assert.equal(await racy.load(), undefined);
    const slot = (await manifestCache(path, join(dir, 'c'), what, later))!;
    assert.equal(await slot.load(), undefined);
    await slot.keep(built);
    const again = await (await manifestCache(path, join(dir, 'c'), what, later))!.load();
    assert.ok(again, 'kept');
    assert.deepEqual(again.digest, built.digest);
    // Same size, other bytes: a miss, and hashing again gives another digest.
    writeFileSync(path, Uint8Array.from({ length: (3 << 20) + 5 }, (_, i) => i * 11));
    assert.equal(await (await manifestCache(path, join(dir, 'c'), what, later))!.load(), undefined);
    assert.notDeepEqual((await fresh()).digest, built.digest);
    // A damaged kept copy is a miss, never an error.
    const other = (await manifestCache(path, join(dir, 'c'), what, later))!;
    await other.keep(await fresh());
    for (const f of readdirSync(join(dir, 'c'))) writeFileSync(join(dir, 'c', f), 'garbage');
    assert.equal(await other.load(), undefined);
    // Block devices and directories have no slot.
    assert.equal(await manifestCache(dir, join(dir, 'c'), what), undefined);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
