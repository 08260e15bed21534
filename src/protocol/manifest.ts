// The manifest: what a session (or an image file) holds, chunk by chunk. A chunk is a run
// of the stream that can be checked, unpacked and placed on its own: its stream bytes,
// their SHA-256, how they are packed (stored or zstd), the target extents its raw bytes
// fill, and the SHA-256 of those raw bytes. Extents listed as zeros must read as zero on
// the target; bytes in no extent at all are left as they are (free filesystem blocks).
// The same encoding travels in front of a session and sits inside an image file.
// Layout: docs/IMAGE-FORMAT.md ("Manifest"); its digest is in every ANNOUNCE.

import { createHash } from 'node:crypto';
import { DecodeError, Reader, Writer, utf8 } from './bytes.ts';
import { DIGEST_BYTES } from './codec.ts';
import { ImageKind } from './messages.ts';

const MANIFEST_MAGIC = new TextEncoder().encode('MUSTMAN1');
const MANIFEST_VERSION = 2;
const DIGEST_SHA256 = 1;
const FIXED = 8 + 2 + 2 + 1 + 1 + 2 + 8 + 4 + 4 + 4 + 2 + 2 + 4 + 8;
const CHUNK_ZSTD = 1;
const CHUNK_IDENTITY = 2;

/** Chunk size of manifests made for raw files and devices (verification granularity). */
export const DEFAULT_CHUNK_SIZE = 1 << 20;
/** Largest raw chunk a reader accepts (a client holds one whole chunk in memory to unpack it). */
export const MAX_CHUNK_RAW = 64 << 20;
/** No region: the chunk was not cut along a partition table. */
export const NO_REGION = 0xffff;

export const Codec = { Stored: 0, Zstd: 1 } as const;
export type Codec = (typeof Codec)[keyof typeof Codec];

export const EntryType = { File: 1, Directory: 2, Symlink: 3 } as const;
export type EntryType = (typeof EntryType)[keyof typeof EntryType];

/** How a region's bytes were chosen at capture. */
export const Method = {
  /** Every byte that is not zero. */
  Zeros: 0,
  /** The blocks partclone reports in use, less those that are zero. */
  Partclone: 1,
  /** Swap: only its header page (label, UUID); the rest is scratch. */
  SwapHeader: 2,
} as const;
export type Method = (typeof Method)[keyof typeof Method];
export const methodName = (m: Method): string => ['zero-skip', 'partclone', 'swap-header'][m] ?? `method ${m}`;

export const RegionKind = { Outside: 0, Partition: 1, Whole: 2 } as const;
export type RegionKind = (typeof RegionKind)[keyof typeof RegionKind];

export interface Extent {
  offset: number;
  length: number;
}

/** A stretch of the target the capture described: a partition, the space outside them, or the whole source. */
export interface Region {
  kind: RegionKind;
  /** Partition number (1-based); 0 otherwise. */
  number: number;
  method: Method;
  start: number;
  length: number;
  /** Filesystem as blkid names it ("ext4", "vfat", ...), or "" when none was recognised. */
  fs: string;
}

export interface Chunk {
  codec: Codec;
  /** Index into Manifest.regions, or NO_REGION. */
  region: number;
  streamLength: number;
  /** Target extents its raw bytes fill, in order. */
  extents: Extent[];
  rawLength: number;
  /** SHA-256 of the stream bytes. */
  digest: Uint8Array;
  /** SHA-256 of the raw bytes (the same as digest when stored). */
  rawDigest: Uint8Array;
}

/** One entry of a file set: a file's bytes sit at [offset, offset+size) of the target space. */
export interface FileEntry {
  type: EntryType;
  path: string;
  mode: number;
  mtimeMs: number;
  size: number;
  offset: number;
  target: string;
}

export interface Manifest {
  kind: ImageKind;
  /** Bytes the target must hold. */
  targetSize: number;
  sectorSize: number;
  /** What was captured ("/dev/sda"), for people. */
  label: string;
  /** Capture time (ms since the epoch); 0 for manifests made on the fly. */
  createdMs: number;
  regions: Region[];
  chunks: Chunk[];
  zeros: Extent[];
  files: FileEntry[];
}

export const sha256 = (b: Uint8Array): Uint8Array => new Uint8Array(createHash('sha256').update(b).digest());

/** A chunk whose stream bytes are its raw bytes, placed at the same offset on the target. */
export const isIdentity = (c: Chunk, streamOffset: number): boolean =>
  c.codec === Codec.Stored && c.extents.length === 1 && c.extents[0]!.offset === streamOffset && c.extents[0]!.length === c.streamLength;

export function streamSize(m: Manifest): number {
  let s = 0;
  for (const c of m.chunks) s += c.streamLength;
  return s;
}

export function encodeManifest(m: Manifest): Uint8Array {
  const label = utf8(m.label, 255);
  const regions = m.regions.map((r) => ({ r, fs: utf8(r.fs, 32) }));
  const paths = m.files.map((f) => ({ f, path: utf8(f.path, 4095), target: utf8(f.target, 4095) }));
  let size = FIXED + label.length;
  for (const { fs } of regions) size += 1 + 1 + 2 + 8 + 8 + 1 + fs.length;
  let at = 0;
  const identity = m.chunks.map((c) => { const id = isIdentity(c, at); at += c.streamLength; return id; });
  m.chunks.forEach((c, i) => {
    size += 1 + 2 + 4 + DIGEST_BYTES + (identity[i] ? 0 : 2 + 12 * c.extents.length) + (c.codec === Codec.Zstd ? DIGEST_BYTES : 0);
  });
  size += m.zeros.length * 16;
  for (const p of paths) size += 1 + 4 + 8 + 8 + 8 + 2 + p.path.length + 2 + p.target.length;

  const w = new Writer(size);
  w.put(MANIFEST_MAGIC).u16(MANIFEST_VERSION).u16(0).u8(m.kind).u8(DIGEST_SHA256).u16(0)
    .u64(m.targetSize).u32(m.sectorSize).u32(m.chunks.length).u32(m.zeros.length).u16(m.regions.length)
    .u16(label.length).u32(m.files.length).u64(m.createdMs).put(label);
  for (const { r, fs } of regions) w.u8(r.kind).u8(r.method).u16(r.number).u64(r.start).u64(r.length).u8(fs.length).put(fs);
  m.chunks.forEach((c, i) => {
    w.u8((c.codec === Codec.Zstd ? CHUNK_ZSTD : 0) | (identity[i] ? CHUNK_IDENTITY : 0)).u16(c.region).u32(c.streamLength);
    if (!identity[i]) {
      w.u16(c.extents.length);
      for (const e of c.extents) w.u64(e.offset).u32(e.length);
    }
    w.put(c.digest);
    if (c.codec === Codec.Zstd) w.put(c.rawDigest);
  });
  for (const z of m.zeros) w.u64(z.offset).u64(z.length);
  for (const { f, path, target } of paths) {
    w.u8(f.type).u32(f.mode).u64(f.mtimeMs).u64(f.size).u64(f.offset).u16(path.length).put(path)
      .u16(target.length).put(target);
  }
  return w.done();
}

export function decodeManifest(bytes: Uint8Array): Manifest {
  const r = new Reader(bytes);
  const dec = new TextDecoder();
  const magic = r.take(8, 'manifest magic');
  if (!MANIFEST_MAGIC.every((b, i) => magic[i] === b)) throw new DecodeError('magic', 'not a MUST manifest');
  const version = r.u16('manifest version');
  if (version !== MANIFEST_VERSION) throw new DecodeError('version', `manifest version ${version}, this program reads ${MANIFEST_VERSION}`);
  r.u16('flags');
  const kind = r.u8('kind');
  if (kind !== ImageKind.Disk && kind !== ImageKind.Files) throw new DecodeError('field', `manifest kind ${kind}`);
  if (r.u8('digest algorithm') !== DIGEST_SHA256) throw new DecodeError('field', 'unknown digest algorithm');
  r.u16('reserved');
  const targetSize = r.u64('target size');
  const sectorSize = r.u32('sector size');
  const chunkCount = r.u32('chunk count');
  const zeroCount = r.u32('zero count');
  const regionCount = r.u16('region count');
  const labelLength = r.u16('label length');
  const fileCount = r.u32('file count');
  const createdMs = r.u64('created');
  const label = dec.decode(r.take(labelLength, 'label'));
  // Counts are checked against what is left before anything is allocated for them.
  if (chunkCount * (1 + 2 + 4 + DIGEST_BYTES) + zeroCount * 16 > r.remaining) throw new DecodeError('length', 'counts exceed the manifest');

  const regions: Region[] = [];
  for (let i = 0; i < regionCount; i++) {
    const rk = r.u8('region kind');
    const method = r.u8('region method');
    if (rk > RegionKind.Whole) throw new DecodeError('field', `region kind ${rk}`);
    if (method > Method.SwapHeader) throw new DecodeError('field', `region method ${method}`);
    const number = r.u16('partition number');
    const start = r.u64('region start');
    const length = r.u64('region length');
    const fs = dec.decode(r.take(r.u8('fs length'), 'fs'));
    if (start + length > targetSize) throw new DecodeError('field', `region ${i} lies beyond the target`);
    regions.push({ kind: rk as RegionKind, number, method: method as Method, start, length, fs });
  }

  const chunks: Chunk[] = [];
  const placed: Extent[] = [];
  let at = 0;
  for (let i = 0; i < chunkCount; i++) {
    const flags = r.u8('chunk flags');
    if ((flags & ~(CHUNK_ZSTD | CHUNK_IDENTITY)) !== 0) throw new DecodeError('field', `chunk ${i} flags ${flags}`);
    const codec: Codec = flags & CHUNK_ZSTD ? Codec.Zstd : Codec.Stored;
    const region = r.u16('chunk region');
    if (region !== NO_REGION && region >= regions.length) throw new DecodeError('field', `chunk ${i} names region ${region}`);
    const streamLength = r.u32('stream length');
    if (streamLength === 0) throw new DecodeError('field', `chunk ${i} is empty`);
    let extents: Extent[];
    if (flags & CHUNK_IDENTITY) {
      if (codec !== Codec.Stored) throw new DecodeError('field', `chunk ${i}: identity chunks are stored`);
      extents = [{ offset: at, length: streamLength }];
    } else {
      const n = r.u16('extent count');
      if (n === 0) throw new DecodeError('field', `chunk ${i} has no extents`);
      extents = [];
      for (let e = 0; e < n; e++) {
        const offset = r.u64('extent offset');
        const length = r.u32('extent length');
        if (length === 0) throw new DecodeError('field', `chunk ${i} has an empty extent`);
        extents.push({ offset, length });
      }
    }
    const rawLength = extents.reduce((s, e) => s + e.length, 0);
    if (rawLength > MAX_CHUNK_RAW) throw new DecodeError('field', `chunk ${i} of ${rawLength} bytes exceeds ${MAX_CHUNK_RAW}`);
    // Stream bytes wait in the chunk's own extents until the chunk is whole, so they must fit there.
    if (codec === Codec.Stored ? streamLength !== rawLength : streamLength > rawLength)
      throw new DecodeError('field', `chunk ${i}: ${streamLength} stream bytes for ${rawLength} raw bytes`);
    const digest = Uint8Array.from(r.take(DIGEST_BYTES, 'chunk digest'));
    const rawDigest = codec === Codec.Zstd ? Uint8Array.from(r.take(DIGEST_BYTES, 'raw digest')) : digest;
    chunks.push({ codec, region, streamLength, extents, rawLength, digest, rawDigest });
    placed.push(...extents);
    at += streamLength;
  }
  const zeros: Extent[] = [];
  for (let i = 0; i < zeroCount; i++) zeros.push({ offset: r.u64('zero offset'), length: r.u64('zero length') });
  placed.push(...zeros);
  checkDisjoint(placed, targetSize);

  const files: FileEntry[] = [];
  for (let i = 0; i < fileCount; i++) {
    const type = r.u8('entry type');
    if (type !== EntryType.File && type !== EntryType.Directory && type !== EntryType.Symlink)
      throw new DecodeError('field', `entry type ${type}`);
    const mode = r.u32('mode');
    const mtimeMs = r.u64('mtime');
    const size = r.u64('size');
    const offset = r.u64('offset');
    const path = dec.decode(r.take(r.u16('path length'), 'path'));
    const target = dec.decode(r.take(r.u16('target length'), 'target'));
    if (offset + size > targetSize) throw new DecodeError('field', `${path} lies beyond the target`);
    files.push({ type: type as EntryType, path, mode, mtimeMs, size, offset, target });
  }
  if (r.remaining !== 0) throw new DecodeError('length', `${r.remaining} bytes after the manifest`);
  return { kind: kind as ImageKind, targetSize, sectorSize, label, createdMs, regions, chunks, zeros, files };
}

/** No two extents overlap and all lie inside the target (a chunk's bytes could otherwise land on another's). */
function checkDisjoint(extents: Extent[], targetSize: number): void {
  const sorted = [...extents].sort((a, b) => a.offset - b.offset);
  let end = 0;
  for (const e of sorted) {
    if (e.length <= 0) throw new DecodeError('field', 'empty extent');
    if (e.offset < end) throw new DecodeError('field', `extents overlap at byte ${e.offset}`);
    end = e.offset + e.length;
    if (end > targetSize) throw new DecodeError('field', `extent at byte ${e.offset} lies beyond the ${targetSize}-byte target`);
  }
}

/** Where a run of stream bytes lands on the target. */
export interface Piece {
  chunk: number;
  /** Offset of the piece inside the run that was asked about. */
  from: number;
  length: number;
  /** Target offset of the piece. */
  offset: number;
}

/** Stream offsets of a manifest's chunks, and the map from stream bytes to target bytes. */
export class Layout {
  readonly manifest: Manifest;
  readonly streamSize: number;
  /** starts[k]: stream offset of chunk k; starts[n] = stream size. */
  private readonly starts: Float64Array;
  /** The chunk chunkAt found last. */
  private hint = 0;

  constructor(m: Manifest) {
    this.manifest = m;
    this.starts = new Float64Array(m.chunks.length + 1);
    for (let k = 0; k < m.chunks.length; k++) this.starts[k + 1] = this.starts[k]! + m.chunks[k]!.streamLength;
    this.streamSize = this.starts[m.chunks.length]!;
  }

  get chunks(): number { return this.manifest.chunks.length; }
  start(k: number): number { return this.starts[k]!; }
  end(k: number): number { return this.starts[k + 1]!; }

  /** The chunk holding stream byte `offset`. */
  chunkAt(offset: number): number {
    // Packets come mostly in order: the last answer usually holds.
    const h = this.hint;
    if (this.starts[h]! <= offset && offset < this.starts[h + 1]!) return h;
    let lo = 0, hi = this.manifest.chunks.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.starts[mid]! <= offset) lo = mid; else hi = mid - 1;
    }
    this.hint = lo;
    return lo;
  }

  /** Where stream range [offset, offset+length) starts on the target if one extent of one chunk holds it all; else -1. */
  contiguous(offset: number, length: number): number {
    const k = this.chunkAt(offset);
    if (offset + length > this.starts[k + 1]!) return -1;
    let rel = offset - this.starts[k]!;
    for (const e of this.manifest.chunks[k]!.extents) {
      if (rel < e.length) return rel + length <= e.length ? e.offset + rel : -1;
      rel -= e.length;
    }
    return -1;
  }

  /** Chunks [first, end) that hold bytes of stream range [offset, offset+length). */
  chunksOf(offset: number, length: number): { first: number; end: number } {
    return { first: this.chunkAt(offset), end: this.chunkAt(offset + length - 1) + 1 };
  }

  /**
   * Target pieces of stream range [offset, offset+length). A chunk's stream bytes fill its
   * extents from the front, so packed bytes wait where the chunk's raw bytes will go.
   */
  pieces(offset: number, length: number): Piece[] {
    const out: Piece[] = [];
    const end = offset + length;
    for (let k = this.chunkAt(offset); k < this.manifest.chunks.length && this.starts[k]! < end; k++) {
      const c = this.manifest.chunks[k]!;
      let rel = Math.max(offset, this.starts[k]!) - this.starts[k]!;
      const relEnd = Math.min(end, this.starts[k + 1]!) - this.starts[k]!;
      let base = 0;
      for (const e of c.extents) {
        if (rel >= relEnd) break;
        if (rel < base + e.length) {
          const n = Math.min(relEnd, base + e.length) - rel;
          out.push({ chunk: k, from: this.starts[k]! + rel - offset, length: n, offset: e.offset + rel - base });
          rel += n;
        }
        base += e.length;
      }
    }
    return out;
  }
}
