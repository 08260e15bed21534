// The session manifest: what the image is and a SHA-256 digest per chunk. It travels
// in front of the image in the session's object and its own digest is in every
// ANNOUNCE, so a client trusts a chunk only through a manifest whose digest matched.
// Layout: docs/PROTOCOL.md, "Manifest".

import { createHash } from 'node:crypto';
import { DecodeError, Reader, Writer, utf8 } from './bytes.ts';
import { DIGEST_BYTES } from './codec.ts';
import { ImageKind } from './messages.ts';

const MANIFEST_MAGIC = new TextEncoder().encode('MUSTMAN1');
const MANIFEST_VERSION = 1;
const DIGEST_SHA256 = 1;
const FIXED = 8 + 2 + 2 + 1 + 1 + 2 + 8 + 4 + 4 + 4 + 4;

export const DEFAULT_CHUNK_SIZE = 1 << 20;

export const EntryType = { File: 1, Directory: 2, Symlink: 3 } as const;
export type EntryType = (typeof EntryType)[keyof typeof EntryType];

/** One entry of a file set: a file's bytes sit at [offset, offset+size) of the image. */
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
  imageSize: number;
  sectorSize: number;
  chunkSize: number;
  /** chunks × 32 bytes. */
  digests: Uint8Array;
  files: FileEntry[];
}

export const chunkCount = (imageSize: number, chunkSize: number): number => Math.ceil(imageSize / chunkSize);

export function chunkDigest(m: Manifest, k: number): Uint8Array {
  return m.digests.subarray(k * DIGEST_BYTES, (k + 1) * DIGEST_BYTES);
}

export const sha256 = (b: Uint8Array): Uint8Array => new Uint8Array(createHash('sha256').update(b).digest());

export function encodeManifest(m: Manifest): Uint8Array {
  const n = chunkCount(m.imageSize, m.chunkSize);
  if (m.digests.length !== n * DIGEST_BYTES) throw new Error(`manifest needs ${n} digests, has ${m.digests.length / DIGEST_BYTES}`);
  const paths = m.files.map((f) => ({ f, path: utf8(f.path, 4095), target: utf8(f.target, 4095) }));
  const filesBytes = paths.reduce((s, p) => s + 1 + 4 + 8 + 8 + 8 + 2 + p.path.length + 2 + p.target.length, 0);
  const w = new Writer(FIXED + m.digests.length + filesBytes);
  w.put(MANIFEST_MAGIC).u16(MANIFEST_VERSION).u16(0).u8(m.kind).u8(DIGEST_SHA256).u16(0)
    .u64(m.imageSize).u32(m.sectorSize).u32(m.chunkSize).u32(n).u32(m.files.length)
    .put(m.digests);
  for (const { f, path, target } of paths) {
    w.u8(f.type).u32(f.mode).u64(f.mtimeMs).u64(f.size).u64(f.offset).u16(path.length).put(path)
      .u16(target.length).put(target);
  }
  return w.done();
}

export function decodeManifest(bytes: Uint8Array): Manifest {
  const r = new Reader(bytes);
  const magic = r.take(8, 'manifest magic');
  if (!MANIFEST_MAGIC.every((b, i) => magic[i] === b)) throw new DecodeError('magic', 'not a MUST manifest');
  const version = r.u16('manifest version');
  if (version !== MANIFEST_VERSION) throw new DecodeError('version', `manifest version ${version}`);
  r.u16('flags');
  const kind = r.u8('kind');
  if (kind !== ImageKind.Disk && kind !== ImageKind.Files) throw new DecodeError('field', `manifest kind ${kind}`);
  if (r.u8('digest algorithm') !== DIGEST_SHA256) throw new DecodeError('field', 'unknown digest algorithm');
  r.u16('reserved');
  const imageSize = r.u64('image size');
  const sectorSize = r.u32('sector size');
  const chunkSize = r.u32('chunk size');
  const n = r.u32('chunk count');
  const fileCount = r.u32('file count');
  if (chunkSize === 0 || n !== chunkCount(imageSize, chunkSize)) throw new DecodeError('field', 'chunk count disagrees with sizes');
  const digests = Uint8Array.from(r.take(n * DIGEST_BYTES, 'chunk digests'));
  const files: FileEntry[] = [];
  const dec = new TextDecoder();
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
    if (offset + size > imageSize) throw new DecodeError('field', `${path} lies beyond the image`);
    files.push({ type: type as EntryType, path, mode, mtimeMs, size, offset, target });
  }
  if (r.remaining !== 0) throw new DecodeError('length', `${r.remaining} bytes after the manifest`);
  return { kind: kind as ImageKind, imageSize, sectorSize, chunkSize, digests, files };
}
