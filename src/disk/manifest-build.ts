// Manifests made on the fly for what is served raw (a device, a plain image file, a file
// set): stored chunks placed where they stand, hashed in one read pass, a few chunks at a
// time on the thread pool.

import { type Chunk, type FileEntry, type Manifest, Codec, DEFAULT_CHUNK_SIZE, NO_REGION, encodeManifest, sha256 } from '../protocol/manifest.ts';
import type { ImageKind } from '../protocol/messages.ts';
import { sha256Async } from './chunks.ts';
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
  return placedChunk(offset, data.length, sha256(data));
}

function placedChunk(offset: number, length: number, digest: Uint8Array): Chunk {
  return { codec: Codec.Stored, region: NO_REGION, streamLength: length, extents: [{ offset, length }], rawLength: length, digest, rawDigest: digest };
}

/** The manifest of bytes held in memory (the simulator, tests). */
export function manifestOfBytes(image: Uint8Array, kind: ImageKind, chunkSize = DEFAULT_CHUNK_SIZE): BuiltManifest {
  const chunks: Chunk[] = [];
  for (let at = 0; at < image.length; at += chunkSize) chunks.push(identityChunk(at, image.subarray(at, at + chunkSize)));
  return sealManifest({ kind, targetSize: image.length, sectorSize: 512, label: 'memory', createdMs: 0, regions: [], chunks, zeros: [], files: [] });
}

/** Chunks read and hashed at once: the hashes run on the thread pool, one per core of a small machine. */
const IN_FLIGHT = 3;

export async function buildManifest(
  src: ByteSource,
  o: { kind: ImageKind; chunkSize?: number; files?: FileEntry[]; onProgress?: (done: number, total: number) => void },
): Promise<BuiltManifest> {
  const chunkSize = o.chunkSize ?? DEFAULT_CHUNK_SIZE;
  const n = Math.ceil(src.size / chunkSize);
  const hashOne = async (k: number): Promise<Chunk> => {
    const data = await src.read(k * chunkSize, Math.min(chunkSize, src.size - k * chunkSize));
    return placedChunk(k * chunkSize, data.length, await sha256Async(data));
  };
  const chunks: Chunk[] = [];
  const pending: Promise<Chunk>[] = [];
  for (let k = 0; k < n || pending.length > 0;) {
    while (k < n && pending.length < IN_FLIGHT) pending.push(hashOne(k++));
    const c = await pending.shift()!;
    chunks.push(c);
    o.onProgress?.(c.extents[0]!.offset + c.streamLength, src.size);
  }
  return sealManifest({
    kind: o.kind, targetSize: src.size, sectorSize: src.sectorSize, label: src.label.slice(0, 200), createdMs: 0,
    regions: [], chunks, zeros: [], files: o.files ?? [],
  });
}
