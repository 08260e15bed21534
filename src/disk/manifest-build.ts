// Hash a source chunk by chunk into a manifest (one read pass, the next read overlapping the hash).

import { createHash } from 'node:crypto';
import { type FileEntry, type Manifest, DEFAULT_CHUNK_SIZE, chunkCount, encodeManifest, sha256 } from '../protocol/manifest.ts';
import type { ImageKind } from '../protocol/messages.ts';
import type { ByteSource } from './source.ts';

export interface BuiltManifest {
  manifest: Manifest;
  bytes: Uint8Array;
  digest: Uint8Array;
}

export async function buildManifest(
  src: ByteSource,
  o: { kind: ImageKind; chunkSize?: number; files?: FileEntry[]; onProgress?: (done: number, total: number) => void },
): Promise<BuiltManifest> {
  const chunkSize = o.chunkSize ?? DEFAULT_CHUNK_SIZE;
  const n = chunkCount(src.size, chunkSize);
  const digests = new Uint8Array(n * 32);
  let next = n > 0 ? src.read(0, chunkSize) : undefined;
  for (let k = 0; k < n; k++) {
    const data = await next!;
    next = k + 1 < n ? src.read((k + 1) * chunkSize, chunkSize) : undefined;
    digests.set(createHash('sha256').update(data).digest(), k * 32);
    o.onProgress?.((k + 1) * chunkSize > src.size ? src.size : (k + 1) * chunkSize, src.size);
  }
  const manifest: Manifest = { kind: o.kind, imageSize: src.size, sectorSize: src.sectorSize, chunkSize, digests, files: o.files ?? [] };
  const bytes = encodeManifest(manifest);
  return { manifest, bytes, digest: sha256(bytes) };
}
