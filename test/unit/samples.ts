// Manifests for tests: one of every kind of part the format has.

import { type BuiltManifest, sealManifest } from '../../src/disk/manifest-build.ts';
import { type Chunk, Codec, EntryType, Method, NO_REGION, RegionKind, sha256 } from '../../src/protocol/manifest.ts';
import { ImageKind } from '../../src/protocol/messages.ts';

const d = (s: string): Uint8Array => sha256(new TextEncoder().encode(s));

/** A captured disk: a table region, an ext4 partition with a packed chunk over two extents, zeros and a stored chunk. */
export function sampleManifest(): BuiltManifest {
  const chunks: Chunk[] = [
    { codec: Codec.Stored, region: 0, streamLength: 1024, extents: [{ offset: 0, length: 1024 }], rawLength: 1024, digest: d('a'), rawDigest: d('a') },
    { codec: Codec.Zstd, region: 1, streamLength: 3000, extents: [{ offset: 1 << 20, length: 4096 }, { offset: (1 << 20) + 65536, length: 8192 }], rawLength: 12288, digest: d('b'), rawDigest: d('c') },
    { codec: Codec.Stored, region: NO_REGION, streamLength: 512, extents: [{ offset: 4 << 20, length: 512 }], rawLength: 512, digest: d('e'), rawDigest: d('e') },
  ];
  return sealManifest({
    kind: ImageKind.Disk, targetSize: 8 << 20, sectorSize: 512, label: '/dev/sdz ✓', createdMs: 1_790_000_000_000,
    regions: [
      { kind: RegionKind.Outside, number: 0, method: Method.Zeros, start: 0, length: 1 << 20, fs: '' },
      { kind: RegionKind.Partition, number: 1, method: Method.Partclone, start: 1 << 20, length: 6 << 20, fs: 'ext4' },
    ],
    chunks, zeros: [{ offset: 2 << 20, length: 1 << 20 }], files: [],
  });
}

export const sampleFiles = [
  { type: EntryType.Directory, path: 'etc', mode: 0o755, mtimeMs: 1_700_000_000_000, size: 0, offset: 0, target: '' },
  { type: EntryType.File, path: 'etc/motd ✓', mode: 0o644, mtimeMs: 1_700_000_000_123, size: 10, offset: 0, target: '' },
  { type: EntryType.Symlink, path: 'etc/link', mode: 0o777, mtimeMs: 0, size: 0, offset: 10, target: 'motd ✓' },
];
