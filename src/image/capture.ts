// `must capture`: read a disk, a partition or a raw image file and write a MUST image of
// what matters in it. Partitions come from the table (sfdisk), filesystems from blkid,
// used blocks from partclone's domain map; what no tool describes is kept except for its
// zero blocks. Every region says which method chose its bytes.

import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { type FileHandle, mkdtemp, open, rename, rm, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { crc32 } from 'node:zlib';
import { pack } from '../disk/chunks.ts';
import { DiskError, probe } from '../disk/device.ts';
import { sealManifest } from '../disk/manifest-build.ts';
import type { Logger } from '../log/logger.ts';
import {
  type Chunk, type Extent, type Region, MAX_CHUNK_RAW, Method, RegionKind, methodName,
} from '../protocol/manifest.ts';
import { ImageKind } from '../protocol/messages.ts';
import { HEADER_BYTES, encodeImageHeader } from './format.ts';

const run = promisify(execFile);

/** Raw bytes per chunk of a captured image (Frisbee uses 1 MB of compressed output; we cut by input). */
export const IMAGE_CHUNK = 4 << 20;
/** Zero detection granularity. */
const BLOCK = 4096;
const READ = 1 << 20;
const IN_FLIGHT = 8;
/** Bytes at each end of a partclone-mapped partition that are kept whatever partclone says. */
const GUARD = 64 << 10;

/** blkid's filesystem names and the partclone program that maps each. */
const PARTCLONE: Record<string, string> = {
  ext2: 'extfs', ext3: 'extfs', ext4: 'extfs', vfat: 'fat', ntfs: 'ntfs', xfs: 'xfs', btrfs: 'btrfs', exfat: 'exfat',
  hfsplus: 'hfsp', f2fs: 'f2fs', minix: 'minix', apfs: 'apfs', reiser4: 'reiser4',
};

export interface CaptureOptions {
  source: string;
  output: string;
  level: number;
  chunkSize?: number;
  force?: boolean;
  log: Logger;
  signal?: AbortSignal;
  onProgress?: (p: CaptureProgress) => void;
}

export interface CaptureProgress {
  scanned: number;
  total: number;
  written: number;
}

export interface CaptureResult {
  regions: Region[];
  chunks: number;
  dataBytes: number;
  zeroBytes: number;
  streamBytes: number;
  imageBytes: number;
  seconds: number;
}

interface SourceRegion {
  region: Region;
  /** Block device holding just this region (a partition), for partclone and blkid. */
  node: string | undefined;
}

/** A program capture needs; one that is not installed is an error that names it, never "nothing found". */
async function tool(cmd: string, args: string[]): Promise<string> {
  try {
    const { stdout } = await run(cmd, args, { maxBuffer: 64 << 20 });
    return stdout;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new DiskError(`capture needs ${cmd} (util-linux), which this system does not have`);
    throw e;
  }
}

async function fsType(node: string): Promise<string> {
  try {
    return (await tool('blkid', ['-p', '-o', 'value', '-s', 'TYPE', node])).trim();
  } catch (e) {
    if (e instanceof DiskError) throw e;
    return ''; // blkid exits 2 when it recognises nothing
  }
}

interface Partition { number: number; start: number; length: number; node: string }

/**
 * Partitions of whole-disk device `dev` as sfdisk reads its table (MBR or GPT), each with a
 * block device of its own: the kernel's node when it made one, else a read-only loop device
 * over the partition's bytes (loop devices of files often get no partition nodes).
 */
async function partitions(dev: string, loops: string[]): Promise<Partition[]> {
  let table: { partitiontable?: { sectorsize?: number; partitions?: Array<{ node: string; start: number; size: number }> } };
  try {
    table = JSON.parse(await tool('sfdisk', ['--json', dev])) as typeof table;
  } catch (e) {
    if (e instanceof DiskError) throw e;
    return []; // no partition table
  }
  const sector = table.partitiontable?.sectorsize ?? 512;
  const out: Partition[] = [];
  for (const p of table.partitiontable?.partitions ?? []) {
    const number = Number(/(\d+)$/.exec(p.node)?.[1] ?? out.length + 1);
    const start = p.start * sector, length = p.size * sector;
    let node = p.node;
    if (!(await probe(node).then((i) => i.kind === 'block' && i.size === length, () => false))) {
      node = (await tool('losetup', ['--find', '--show', '--read-only', '--offset', String(start), '--sizelimit', String(length), dev])).trim();
      loops.push(node);
    }
    out.push({ number, start, length, node });
  }
  return out.sort((a, b) => a.start - b.start);
}

/** What the source holds, region by region; `release` undoes any loop device made to read a file. */
async function describe(path: string, log: Logger): Promise<{ dev: string; size: number; sectorSize: number; regions: SourceRegion[]; release: () => Promise<void> }> {
  const info = await probe(path);
  if (info.kind === 'missing') throw new DiskError(`${path} does not exist`);
  if (info.size === 0) throw new DiskError(`${path} is empty`);
  let dev = path;
  const loops: string[] = [];
  const release = async (): Promise<void> => {
    for (const l of loops.reverse()) await tool('losetup', ['-d', l]).catch(() => {});
  };
  if (info.kind === 'file') {
    // blkid and partclone read block devices: a read-only loop device over the file.
    dev = (await tool('losetup', ['--find', '--show', '--read-only', path])).trim();
    loops.push(dev);
  }
  try {
    const isPartition = info.name !== '' && existsSync(`/sys/class/block/${info.name}/partition`);
    const parts = isPartition ? [] : await partitions(dev, loops);
    const regions: SourceRegion[] = [];
    if (parts.length === 0) {
      const fs = await fsType(dev);
      regions.push({ region: { kind: RegionKind.Whole, number: 0, method: Method.Zeros, start: 0, length: info.size, fs }, node: dev });
    } else {
      regions.push({ region: { kind: RegionKind.Outside, number: 0, method: Method.Zeros, start: 0, length: info.size, fs: '' }, node: undefined });
      for (const p of parts) {
        regions.push({ region: { kind: RegionKind.Partition, number: p.number, method: Method.Zeros, start: p.start, length: p.length, fs: await fsType(p.node) }, node: p.node });
      }
    }
    log.debug('regions', { source: path, device: dev, regions: regions.length });
    return { dev, size: info.size, sectorSize: info.sectorSize, regions, release };
  } catch (e) {
    await release();
    throw e;
  }
}

/** The bytes of a region worth reading, as absolute extents; sets the region's method. */
async function usedExtents(sr: SourceRegion, all: SourceRegion[], tmp: string, log: Logger): Promise<Extent[]> {
  const r = sr.region;
  if (r.kind === RegionKind.Outside) {
    // The partition table and every gap between partitions.
    const out: Extent[] = [];
    let at = 0;
    for (const o of all.filter((x) => x.region.kind === RegionKind.Partition).map((x) => x.region)) {
      if (o.start > at) out.push({ offset: at, length: o.start - at });
      at = Math.max(at, o.start + o.length);
    }
    if (r.length > at) out.push({ offset: at, length: r.length - at });
    return out;
  }
  if (r.fs === 'swap') {
    r.method = Method.SwapHeader;
    return [{ offset: r.start, length: Math.min(BLOCK, r.length) }];
  }
  const program = PARTCLONE[r.fs];
  if (program && sr.node) {
    try {
      const used = (await partcloneBitmap(program, sr.node, join(tmp, 'partclone.log'), r.length)).map((e) => ({ offset: r.start + e.offset, length: e.length }));
      r.method = Method.Partclone;
      // Filesystems keep copies outside their blocks (NTFS: the backup boot sector in the partition's
      // last sector): the head and the tail of the partition always travel.
      const guard = Math.min(GUARD, r.length);
      return union([...used, { offset: r.start, length: guard }, { offset: r.start + r.length - guard, length: guard }]);
    } catch (e) {
      log.warn('partclone-failed', { partition: r.number, fs: r.fs, error: (e as Error).message.split('\n')[0], fallback: methodName(Method.Zeros) });
    }
  }
  r.method = Method.Zeros;
  return [{ offset: r.start, length: r.length }];
}

/** Fixed part of a partclone image header (format 0002, packed, little-endian). */
const PC_HEAD = 110;

/**
 * The used blocks of a filesystem, as partclone sees them: `partclone.X -c` writes its image
 * header and block bitmap first; we read those and stop it before it copies any block.
 * (Its -D domain map says the same, but partclone sleeps two seconds before writing it.)
 */
export async function partcloneBitmap(program: string, node: string, logFile: string, limit: number): Promise<Extent[]> {
  const child = spawn(`partclone.${program}`, ['-c', '-s', node, '-o', '-', '-q', '-L', logFile], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr.on('data', (d: Buffer) => { err = (err + d.toString()).slice(-2000); });
  const parts: Buffer[] = [];
  let have = 0, need = PC_HEAD;
  try {
    for await (const d of child.stdout as AsyncIterable<Buffer>) {
      parts.push(d);
      have += d.length;
      if (have >= PC_HEAD && need === PC_HEAD) need = PC_HEAD + Math.ceil(Number(Buffer.concat(parts).readBigUInt64LE(0x3c)) / 8) + 4;
      if (have >= need) break;
    }
  } finally {
    child.kill('SIGKILL');
  }
  const b = Buffer.concat(parts);
  if (b.length < PC_HEAD || b.length < need) throw new DiskError(`partclone.${program} gave no bitmap for ${node}: ${err.trim().split('\n').pop() ?? ''}`);
  return parsePartcloneHead(b, limit);
}

/** Used extents (bytes from the filesystem's start) from a partclone image header and bitmap. */
export function parsePartcloneHead(b: Buffer, limit: number): Extent[] {
  if (b.subarray(0, 15).toString('latin1') !== 'partclone-image' || b.subarray(0x1e, 0x22).toString('latin1') !== '0002' || b.readUInt16LE(0x22) !== 0xc0de)
    throw new DiskError('not a partclone 0002 image header');
  const total = Number(b.readBigUInt64LE(0x3c)), used = Number(b.readBigUInt64LE(0x44));
  const blockSize = b.readUInt32LE(0x54);
  if (b[0x69] !== 1) throw new DiskError(`partclone bitmap mode ${b[0x69]} (only the bit map is read)`);
  const bitmap = b.subarray(PC_HEAD, PC_HEAD + Math.ceil(total / 8));
  // partclone stores the CRC-32 without its final inversion.
  if (((~crc32(bitmap)) >>> 0) !== b.readUInt32LE(PC_HEAD + bitmap.length)) throw new DiskError('partclone bitmap checksum mismatch');
  const out: Extent[] = [];
  let count = 0;
  for (let block = 0; block < total;) {
    const byte = bitmap[block >>> 3]!;
    if (byte === 0 && (block & 7) === 0) { block += 8; continue; }
    if (!(byte & (1 << (block & 7)))) { block++; continue; }
    const first = block;
    while (block < total && bitmap[block >>> 3]! & (1 << (block & 7))) block++;
    count += block - first;
    const offset = first * blockSize, end = Math.min(limit, block * blockSize);
    if (end > offset) out.push({ offset, length: end - offset });
  }
  if (count !== used) throw new DiskError(`partclone bitmap has ${count} used blocks, its header says ${used}`);
  return out;
}

/**
 * Reads a region's extents straight into the chunk being filled, keeps its non-zero blocks
 * (moved together in place) and notes its zero blocks as extents; hands over full chunks.
 */
class Chunker {
  readonly zeros: Extent[] = [];
  private buf: Buffer;
  private fill = 0;
  private extents: Extent[] = [];
  private readonly chunkSize: number;
  private readonly emit: (extents: Extent[], raw: Uint8Array) => Promise<void>;
  private readonly pool: Uint8Array[];
  private static readonly ZERO = new Uint8Array(BLOCK);

  constructor(chunkSize: number, emit: (extents: Extent[], raw: Uint8Array) => Promise<void>, pool: Uint8Array[]) {
    this.chunkSize = chunkSize;
    this.emit = emit;
    this.pool = pool;
    this.buf = this.take();
  }

  /** A buffer of chunkSize + READ bytes, reused when one was given back. */
  private take(): Buffer {
    const b = this.pool.pop();
    return b ? Buffer.from(b.buffer, b.byteOffset, this.chunkSize + READ) : Buffer.allocUnsafe(this.chunkSize + READ);
  }

  /** Read [at, at+n) of the source (n <= READ) and sort its blocks. */
  async read(src: FileHandle, at: number, n: number, what: string): Promise<void> {
    const { bytesRead } = await src.read(this.buf, this.fill, n, at);
    if (bytesRead !== n) throw new DiskError(`${what}: short read at byte ${at}`);
    // Cut on absolute BLOCK boundaries: zero blocks become zero extents, the rest stays.
    let w = this.fill;
    for (let p = 0; p < n;) {
      const q = Math.min(n, p + BLOCK - ((at + p) % BLOCK));
      const from = this.fill + p, len = q - p;
      if (this.buf.compare(Chunker.ZERO, 0, len, from, from + len) === 0) {
        const last = this.zeros[this.zeros.length - 1];
        if (last && last.offset + last.length === at + p) last.length += len;
        else this.zeros.push({ offset: at + p, length: len });
      } else {
        if (w !== from) this.buf.copyWithin(w, from, from + len);
        const last = this.extents[this.extents.length - 1];
        if (last && last.offset + last.length === at + p) last.length += len;
        else this.extents.push({ offset: at + p, length: len });
        w += len;
      }
      p = q;
    }
    this.fill = w;
    if (this.fill >= this.chunkSize) await this.cut();
  }

  async cut(): Promise<void> {
    if (this.fill === 0) return;
    const raw = this.buf.subarray(0, this.fill), extents = this.extents;
    this.buf = this.take();
    this.fill = 0;
    this.extents = [];
    await this.emit(extents, raw);
  }
}

export async function capture(o: CaptureOptions): Promise<CaptureResult> {
  const started = performance.now();
  const chunkSize = o.chunkSize ?? IMAGE_CHUNK;
  if (chunkSize < BLOCK || chunkSize + BLOCK > MAX_CHUNK_RAW) throw new DiskError(`chunk size ${chunkSize} is outside ${BLOCK}..${MAX_CHUNK_RAW - BLOCK}`);
  if (!o.force && existsSync(o.output)) throw new DiskError(`${o.output} exists; pass --force to replace it`);
  const tmp = await mkdtemp(join(tmpdir(), 'must-capture-'));
  const partial = `${o.output}.partial`;
  let out: FileHandle | undefined;
  let src: FileHandle | undefined;
  let release = async (): Promise<void> => {};
  // Packing runs on the thread pool, several chunks at once; chunks land in the file in order.
  const pending: Array<Promise<void>> = [];
  let tail = Promise.resolve();
  try {
    const d = await describe(o.source, o.log);
    release = d.release;
    src = await open(d.dev, 'r');
    const plans: Array<{ sr: SourceRegion; extents: Extent[] }> = [];
    for (const sr of d.regions) plans.push({ sr, extents: await usedExtents(sr, d.regions, tmp, o.log) });
    const total = plans.reduce((s, p) => s + p.extents.reduce((t, e) => t + e.length, 0), 0);

    out = await open(partial, 'w');
    await out.write(new Uint8Array(HEADER_BYTES), 0, HEADER_BYTES, 0);
    const chunks: Array<Chunk | undefined> = [];
    const zeros: Extent[] = [];
    let streamAt = HEADER_BYTES, scanned = 0, dataBytes = 0;
    // Chunk buffers go back to the pool once written: no garbage per chunk.
    const pool: Uint8Array[] = [];
    const emitFor = (region: number) => async (extents: Extent[], raw: Uint8Array): Promise<void> => {
      dataBytes += raw.length;
      const packed = pack(raw, o.level);
      const slot = chunks.length;
      chunks.push(undefined);
      const write = tail.then(async () => {
        const p = await packed;
        chunks[slot] = { codec: p.codec, region, streamLength: p.stream.length, extents, rawLength: raw.length, digest: p.digest, rawDigest: p.rawDigest };
        await out!.write(p.stream, 0, p.stream.length, streamAt);
        streamAt += p.stream.length;
        pool.push(raw);
        o.onProgress?.({ scanned, total, written: streamAt });
      });
      tail = write;
      pending.push(write);
      if (pending.length >= IN_FLIGHT) await pending.shift();
    };

    for (let ri = 0; ri < plans.length; ri++) {
      const { sr, extents } = plans[ri]!;
      const chunker = new Chunker(chunkSize, emitFor(ri), pool);
      for (const e of extents) {
        for (let at = e.offset; at < e.offset + e.length;) {
          o.signal?.throwIfAborted();
          const n = Math.min(READ, e.offset + e.length - at);
          await chunker.read(src, at, n, o.source);
          at += n;
          scanned += n;
        }
      }
      await chunker.cut();
      zeros.push(...chunker.zeros);
      o.log.debug('region', { number: sr.region.number, fs: sr.region.fs || '-', method: methodName(sr.region.method) });
    }
    await Promise.all(pending);
    await tail;

    const built = sealManifest({
      kind: ImageKind.Disk, targetSize: d.size, sectorSize: d.sectorSize, label: o.source, createdMs: Date.now(),
      regions: plans.map((p) => p.sr.region), chunks: chunks.map((c, k) => {
        if (!c) throw new Error(`chunk ${k} was never written`);
        return c;
      }), zeros: union(zeros), files: [],
    });
    const manifestOffset = streamAt;
    await out.write(built.bytes, 0, built.bytes.length, manifestOffset);
    await out.sync();
    await out.write(encodeImageHeader({
      streamOffset: HEADER_BYTES, streamSize: streamAt - HEADER_BYTES, manifestOffset, manifestLength: built.bytes.length, manifestDigest: built.digest,
    }), 0, HEADER_BYTES, 0);
    await out.sync();
    await out.close();
    out = undefined;
    await rename(partial, o.output);
    return {
      regions: built.manifest.regions, chunks: chunks.length, dataBytes, zeroBytes: zeros.reduce((s, z) => s + z.length, 0),
      streamBytes: streamAt - HEADER_BYTES, imageBytes: manifestOffset + built.bytes.length, seconds: (performance.now() - started) / 1000,
    };
  } catch (e) {
    // Let chunks already on their way finish (or fail) before the file goes.
    await Promise.allSettled([...pending, tail]);
    await out?.close().catch(() => {});
    await unlink(partial).catch(() => {});
    throw e;
  } finally {
    await src?.close().catch(() => {});
    await release();
    await rm(tmp, { recursive: true, force: true });
  }
}

/** Extents covering every byte of the list once, in order (overlaps and neighbours merged). */
function union(list: Extent[]): Extent[] {
  const sorted = [...list].sort((a, b) => a.offset - b.offset);
  const out: Extent[] = [];
  for (const e of sorted) {
    const last = out[out.length - 1];
    if (last && e.offset <= last.offset + last.length) last.length = Math.max(last.length, e.offset + e.length - last.offset);
    else out.push({ ...e });
  }
  return out;
}
