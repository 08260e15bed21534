// Checking and placing one chunk (docs/IMAGE-FORMAT.md). A chunk's stream bytes are matched
// to the chunk's digest, unpacked, matched to its raw digest, and only then written over the
// extents: a packed chunk never reaches its place unchecked. Where a client wrote the stream
// bytes at the front of the chunk's extents as they came, they are read back first.

import { webcrypto } from 'node:crypto';
import { promisify } from 'node:util';
import { constants, zstdCompress, zstdDecompress } from 'node:zlib';
import { type Chunk, type Extent, Codec, sha256 } from '../protocol/manifest.ts';

const unzstd = promisify(zstdDecompress);
const zstd = promisify(zstdCompress);

export interface RandomAccess {
  /** Read [offset, offset+length), into `into` where the implementation can (no allocation). */
  read(offset: number, length: number, into?: Uint8Array): Promise<Uint8Array>;
  writev(offset: number, buffers: Uint8Array[]): Promise<void>;
}

export type Checked = { ok: true; raw: Uint8Array } | { ok: false; reason: string };

const same = (a: Uint8Array, b: Uint8Array): boolean => Buffer.compare(a, b) === 0;

/** Where the first `length` bytes laid over `extents` from the front lie: byte `at` of them at target `offset`, for `length` bytes. */
export function frontPieces(extents: Extent[], length: number): { offset: number; at: number; length: number }[] {
  const out: { offset: number; at: number; length: number }[] = [];
  let at = 0;
  for (const e of extents) {
    if (at >= length) break;
    const n = Math.min(e.length, length - at);
    out.push({ offset: e.offset, at, length: n });
    at += n;
  }
  return out;
}

/** The first `length` bytes held by `extents`, read in order. */
export async function gather(io: Pick<RandomAccess, 'read'>, extents: Extent[], length: number, into?: Uint8Array): Promise<Uint8Array> {
  const first = extents[0];
  if (first && first.length >= length) return io.read(first.offset, length, into && into.length >= length ? into : undefined);
  const out = new Uint8Array(length);
  for (const p of frontPieces(extents, length)) out.set(await io.read(p.offset, p.length), p.at);
  return out;
}

/** Write `bytes` across `extents`, in order. */
export async function scatter(io: Pick<RandomAccess, 'writev'>, extents: Extent[], bytes: Uint8Array): Promise<void> {
  for (const p of frontPieces(extents, bytes.length)) await io.writev(p.offset, [bytes.subarray(p.at, p.at + p.length)]);
}

/** Match a chunk's stream bytes to its digest and unpack them into its raw bytes, matched too. */
export async function unpack(c: Chunk, stream: Uint8Array): Promise<Checked> {
  if (stream.length !== c.streamLength) return { ok: false, reason: `${stream.length} stream bytes, the manifest says ${c.streamLength}` };
  if (!same(sha256(stream), c.digest)) return { ok: false, reason: 'stream digest mismatch' };
  if (c.codec === Codec.Stored) return { ok: true, raw: stream };
  let raw: Uint8Array;
  try {
    // One output buffer for the whole chunk: one trip to the thread pool, not one per 16 KiB.
    raw = await unzstd(stream, { maxOutputLength: c.rawLength, chunkSize: Math.max(64, c.rawLength) });
  } catch (e) {
    return { ok: false, reason: `cannot unpack: ${(e as Error).message}` };
  }
  if (raw.length !== c.rawLength) return { ok: false, reason: `unpacks to ${raw.length} bytes, the manifest says ${c.rawLength}` };
  if (!same(sha256(raw), c.rawDigest)) return { ok: false, reason: 'raw digest mismatch' };
  return { ok: true, raw };
}

/** SHA-256 on the thread pool (WebCrypto), leaving the event loop free. */
export const sha256Async = async (b: Uint8Array): Promise<Uint8Array> => new Uint8Array(await webcrypto.subtle.digest('SHA-256', b as Uint8Array<ArrayBuffer>));

export interface Packed { codec: Codec; stream: Uint8Array; digest: Uint8Array; rawDigest: Uint8Array }

/** Pack raw bytes at a zstd level (stored when packing does not make them smaller) and hash both sides, all off the event loop. */
export async function pack(raw: Uint8Array, level: number): Promise<Packed> {
  const [packed, rawDigest] = await Promise.all([
    zstd(raw, { chunkSize: raw.length + 4096, params: { [constants.ZSTD_c_compressionLevel]: level } }),
    sha256Async(raw),
  ]);
  if (packed.length >= raw.length) return { codec: Codec.Stored, stream: raw, digest: rawDigest, rawDigest };
  return { codec: Codec.Zstd, stream: packed, digest: await sha256Async(packed), rawDigest };
}

/**
 * Unpack checked stream bytes and write the raw bytes over the chunk's extents, then read
 * them back. `inPlace`: the stream bytes were just read from the extents, so a stored
 * chunk is already where it belongs and that read was its read-back.
 */
export async function placeChunk(io: RandomAccess, c: Chunk, stream: Uint8Array, inPlace: boolean): Promise<Checked> {
  const u = await unpack(c, stream);
  if (!u.ok || (inPlace && c.codec === Codec.Stored)) return u;
  try {
    await scatter(io, c.extents, u.raw);
    // The disk must hold what was unpacked, not just have been handed it.
    if (!same(sha256(await gather(io, c.extents, c.rawLength)), c.rawDigest)) return { ok: false, reason: 'reads back different' };
  } catch (e) {
    return { ok: false, reason: `cannot place it: ${(e as Error).message}` };
  }
  return u;
}

/**
 * Check the chunk whose stream bytes wait in its extents, and put its raw bytes in place.
 * `scratch`: a buffer to read them back into, reused from chunk to chunk (a GiB of fresh read
 * buffers keeps V8's collector busy); then what comes back may be a view of it.
 */
export async function finishChunk(io: RandomAccess, c: Chunk, scratch?: Uint8Array): Promise<Checked> {
  let stream: Uint8Array;
  try {
    stream = await gather(io, c.extents, c.streamLength, scratch);
  } catch (e) {
    return { ok: false, reason: `cannot read it back: ${(e as Error).message}` };
  }
  return placeChunk(io, c, stream, true);
}

/** Whether the target holds chunk c's raw bytes. */
export async function holdsChunk(io: Pick<RandomAccess, 'read'>, c: Chunk): Promise<boolean> {
  return same(sha256(await gather(io, c.extents, c.rawLength)), c.rawDigest);
}

const ZERO_STEP = 4 << 20;

/** Bytes of `extents` that do not read as zero. */
export async function nonZero(io: Pick<RandomAccess, 'read'>, extents: Extent[]): Promise<number> {
  let bad = 0;
  const zeros = new Uint8Array(ZERO_STEP);
  for (const e of extents) {
    for (let at = e.offset; at < e.offset + e.length; at += ZERO_STEP) {
      const n = Math.min(ZERO_STEP, e.offset + e.length - at);
      if (Buffer.compare(await io.read(at, n), zeros.subarray(0, n)) !== 0) bad += n;
    }
  }
  return bad;
}

/** Make `extents` read as zero, writing only where they do not already; returns bytes written. */
export async function zeroExtents(io: RandomAccess, extents: Extent[]): Promise<number> {
  let written = 0;
  const zeros = new Uint8Array(ZERO_STEP);
  for (const e of extents) {
    for (let at = e.offset; at < e.offset + e.length; at += ZERO_STEP) {
      const n = Math.min(ZERO_STEP, e.offset + e.length - at);
      const held = await io.read(at, n);
      if (Buffer.compare(held, zeros.subarray(0, n)) === 0) continue;
      await io.writev(at, [zeros.subarray(0, n)]);
      written += n;
    }
  }
  return written;
}
