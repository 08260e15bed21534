// Manifests made on the fly for what is served raw (a device, a plain image file, a file
// set): stored chunks placed where they stand, hashed in one read pass with the next read
// overlapping the hash.

import { type Chunk, type FileEntry, type Manifest, Codec, DEFAULT_CHUNK_SIZE, NO_REGION, encodeManifest, sha256 } from '../protocol/manifest.ts';
import type { ImageKind } from '../protocol/messages.ts';
import type { ByteSource } from './source.ts';

export interface BuiltManifest {
  manifest: Manifest;
  bytes: Uint8Array;
  digest: Uint8Array;
}

export function sealManifest(manifest: Manifest): BuiltManifest {
  const bytes = encodeManifest(manifest);
  return { manifest, bytes, digest: sha256(bytes) };
}

/** A stored chunk placed where it stands in the stream. */
export function identityChunk(offset: number, data: Uint8Array): Chunk {
  const digest = sha256(data);
  return { codec: Codec.Stored, region: NO_REGION, streamLength: data.length, extents: [{ offset, length: data.length }], rawLength: data.length, digest, rawDigest: digest };
}

/** The manifest of bytes held in memory (the simulator, tests). */
export function manifestOfBytes(image: Uint8Array, kind: ImageKind, chunkSize = DEFAULT_CHUNK_SIZE): BuiltManifest {
  const chunks: Chunk[] = [];
  for (let at = 0; at < image.length; at += chunkSize) chunks.push(identityChunk(at, image.subarray(at, at + chunkSize)));
  return sealManifest({ kind, targetSize: image.length, sectorSize: 512, label: 'memory', createdMs: 0, regions: [], chunks, zeros: [], files: [] });
}

export async function buildManifest(
  src: ByteSource,
  o: { kind: ImageKind; chunkSize?: number; files?: FileEntry[]; onProgress?: (done: number, total: number) => void },
): Promise<BuiltManifest> {
  const chunkSize = o.chunkSize ?? DEFAULT_CHUNK_SIZE;
  const n = Math.ceil(src.size / chunkSize);
  const chunks: Chunk[] = [];
  let next = n > 0 ? src.read(0, chunkSize) : undefined;
  for (let k = 0; k < n; k++) {
    const data = await next!;
    next = k + 1 < n ? src.read((k + 1) * chunkSize, chunkSize) : undefined;
    const offset = k * chunkSize;
    chunks.push(identityChunk(offset, data));
    o.onProgress?.(offset + data.length, src.size);
  }
  return sealManifest({
    kind: o.kind, targetSize: src.size, sectorSize: src.sectorSize, label: src.label.slice(0, 200), createdMs: 0,
    regions: [], chunks, zeros: [], files: o.files ?? [],
  });
}
