// `must restore`, `must verify`, `must inspect`: an image file on one machine, no network.

import { holdsChunk, nonZero, placeChunk, unpack, zeroExtents } from '../disk/chunks.ts';
import { DiskError } from '../disk/device.ts';
import { RawTarget } from '../disk/writer.ts';
import { bytes } from '../log/logger.ts';
import { type Chunk, type Manifest, Codec, NO_REGION, RegionKind, methodName } from '../protocol/manifest.ts';
import { type OpenedImage, openImage } from './format.ts';

export interface Progress { done: number; total: number }

/** Where a chunk lies, for messages a person reads. */
export function whereIs(m: Manifest, k: number): string {
  const c = m.chunks[k]!;
  const first = c.extents[0]!, last = c.extents[c.extents.length - 1]!;
  const r = c.region === NO_REGION ? undefined : m.regions[c.region];
  const region = !r ? '' : r.kind === RegionKind.Partition ? `partition ${r.number}${r.fs ? ` (${r.fs})` : ''}, ` : r.kind === RegionKind.Outside ? 'outside the partitions, ' : '';
  return `chunk ${k} (${region}target bytes ${first.offset}..${last.offset + last.length})`;
}

async function eachChunk(img: OpenedImage, f: (k: number, c: Chunk, stream: Uint8Array) => Promise<void>, signal?: AbortSignal): Promise<void> {
  let at = 0;
  for (let k = 0; k < img.manifest.chunks.length; k++) {
    signal?.throwIfAborted();
    const c = img.manifest.chunks[k]!;
    await f(k, c, await img.stream.read(at, c.streamLength));
    at += c.streamLength;
  }
}

export interface RestoreResult { chunks: number; rawBytes: number; zeroed: number; seconds: number }

/** Write an image to a device or file, check every chunk as it lands, zero what must read as zero. */
export async function restore(o: { image: string; target: string; signal?: AbortSignal; onProgress?: (p: Progress) => void }): Promise<RestoreResult> {
  const started = performance.now();
  const img = await openImage(o.image);
  let target: RawTarget | undefined;
  try {
    const m = img.manifest;
    target = await RawTarget.openForWriting(o.target);
    if (m.targetSize > target.capacity)
      throw new DiskError(`${o.target} is too small: it holds ${target.capacity} bytes (${bytes(target.capacity)}), ${o.image} needs ${m.targetSize} bytes (${bytes(m.targetSize)})`);
    await target.fit(m.targetSize);
    let rawBytes = 0, done = 0;
    const total = img.header.streamSize;
    await eachChunk(img, async (k, c, stream) => {
      const r = await placeChunk(target!, c, stream, false);
      if (!r.ok) throw new DiskError(`${whereIs(m, k)}: ${r.reason}; nothing after it was written`);
      rawBytes += c.rawLength;
      done += c.streamLength;
      o.onProgress?.({ done, total });
    }, o.signal);
    const zeroed = await zeroExtents(target, m.zeros);
    await target.sync();
    return { chunks: m.chunks.length, rawBytes, zeroed, seconds: (performance.now() - started) / 1000 };
  } finally {
    await target?.close();
    await img.close();
  }
}

export interface VerifyReport { chunks: number; bad: string[]; device?: string }

/** Every chunk of the image unpacks to its digests; with a device, the device holds every chunk and its zeros. */
export async function verify(o: { image: string; device?: string; signal?: AbortSignal; onProgress?: (p: Progress) => void }): Promise<VerifyReport> {
  const img = await openImage(o.image);
  let target: RawTarget | undefined;
  try {
    const m = img.manifest;
    const bad: string[] = [];
    if (o.device) {
      target = await RawTarget.open(o.device);
      if (target.capacity < m.targetSize) bad.push(`${o.device} holds ${target.capacity} bytes, the image covers ${m.targetSize}`);
    }
    let done = 0;
    await eachChunk(img, async (k, c, stream) => {
      const u = await unpack(c, stream);
      if (!u.ok) bad.push(`${whereIs(m, k)} in the image: ${u.reason}`);
      if (u.ok && target && !(await holdsChunk(target, c).catch(() => false))) bad.push(`${whereIs(m, k)} differs on ${o.device}`);
      done += c.streamLength;
      o.onProgress?.({ done, total: img.header.streamSize });
    }, o.signal);
    if (target) {
      const notZero = await nonZero(target, m.zeros);
      if (notZero > 0) bad.push(`${notZero} bytes that must read as zero do not on ${o.device}`);
    }
    return { chunks: m.chunks.length, bad, device: o.device };
  } finally {
    await target?.close();
    await img.close();
  }
}

/** What is in an image, per region: method, bytes kept, zeros, bytes stored, ratio. */
export async function inspect(path: string): Promise<string> {
  const img = await openImage(path);
  try {
    const m = img.manifest, h = img.header;
    const lines = [
      `image     ${path}`,
      `source    ${m.label}`,
      `captured  ${m.createdMs ? new Date(m.createdMs).toISOString() : '-'}`,
      `target    ${m.targetSize} bytes (${bytes(m.targetSize)}), sectors of ${m.sectorSize}`,
      `stream    ${h.streamSize} bytes in ${m.chunks.length} chunks (${m.chunks.filter((c) => c.codec === Codec.Zstd).length} zstd, ${m.chunks.filter((c) => c.codec === Codec.Stored).length} stored)`,
      `manifest  ${h.manifestLength} bytes, sha256 ${Buffer.from(h.manifestDigest).toString('hex')}`,
      '',
    ];
    const rows = [['region', 'fs', 'method', 'start', 'size', 'data', 'zeros', 'stored', 'ratio']];
    const regionRow = (name: string, fs: string, method: string, start: number, size: number, inRegion: (k: Chunk) => boolean, zeroIn: (o: number) => boolean): string[] => {
      const cs = m.chunks.filter(inRegion);
      const data = cs.reduce((s, c) => s + c.rawLength, 0), stored = cs.reduce((s, c) => s + c.streamLength, 0);
      const zeros = m.zeros.filter((z) => zeroIn(z.offset)).reduce((s, z) => s + z.length, 0);
      return [name, fs || '-', method, String(start), bytes(size), bytes(data), bytes(zeros), bytes(stored), stored ? `${(data / stored).toFixed(2)}x` : '-'];
    };
    m.regions.forEach((r, i) => {
      const name = r.kind === RegionKind.Partition ? `partition ${r.number}` : r.kind === RegionKind.Outside ? 'outside partitions' : 'whole source';
      const inside = (o: number): boolean => r.kind === RegionKind.Outside
        ? !m.regions.some((p) => p.kind === RegionKind.Partition && o >= p.start && o < p.start + p.length)
        : o >= r.start && o < r.start + r.length;
      rows.push(regionRow(name, r.fs, methodName(r.method), r.start, r.length, (c) => c.region === i, inside));
    });
    if (m.regions.length === 0) rows.push(regionRow('image', '', 'raw', 0, m.targetSize, () => true, () => true));
    const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
    for (const r of rows) lines.push(r.map((c, i) => (i < 3 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ').trimEnd());
    return lines.join('\n');
  } finally {
    await img.close();
  }
}
