import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DecodeError } from '../../src/protocol/bytes.ts';
import { EntryType, decodeManifest, encodeManifest, sha256 } from '../../src/protocol/manifest.ts';
import { ImageKind } from '../../src/protocol/messages.ts';

const digests = (n: number): Uint8Array => { const d = new Uint8Array(32 * n); for (let i = 0; i < n; i++) d.set(sha256(new Uint8Array([i])), 32 * i); return d; };

test('disk and file-set manifests round trip', () => {
  const disk = { kind: ImageKind.Disk, imageSize: (5 << 20) + 7, sectorSize: 512, chunkSize: 1 << 20, digests: digests(6), files: [] };
  assert.deepEqual(decodeManifest(encodeManifest(disk)), disk);
  const files = {
    kind: ImageKind.Files, imageSize: 10, sectorSize: 512, chunkSize: 1 << 20, digests: digests(1), files: [
      { type: EntryType.Directory, path: 'etc', mode: 0o755, mtimeMs: 1_700_000_000_000, size: 0, offset: 0, target: '' },
      { type: EntryType.File, path: 'etc/motd ✓', mode: 0o644, mtimeMs: 1_700_000_000_123, size: 10, offset: 0, target: '' },
      { type: EntryType.Symlink, path: 'etc/link', mode: 0o777, mtimeMs: 0, size: 0, offset: 10, target: 'motd ✓' },
    ],
  };
  assert.deepEqual(decodeManifest(encodeManifest(files)), files);
});

test('inconsistent manifests are refused', () => {
  const good = encodeManifest({ kind: ImageKind.Disk, imageSize: 3 << 20, sectorSize: 512, chunkSize: 1 << 20, digests: digests(3), files: [] });
  const reason = (b: Uint8Array): string => { try { decodeManifest(b); return 'accepted'; } catch (e) { assert.ok(e instanceof DecodeError, String(e)); return e.reason; } };
  assert.equal(reason(good), 'accepted');
  assert.equal(reason(good.subarray(0, good.length - 1)), 'short');
  assert.equal(reason(new Uint8Array([...good, 0])), 'length');
  const wrongCount = Uint8Array.from(good); wrongCount[35] = 4; // chunk count low byte
  assert.equal(reason(wrongCount), 'field');
  const magic = Uint8Array.from(good); magic[0] = 0;
  assert.equal(reason(magic), 'magic');
  assert.throws(() => encodeManifest({ kind: ImageKind.Disk, imageSize: 3 << 20, sectorSize: 512, chunkSize: 1 << 20, digests: digests(2), files: [] }));
});
