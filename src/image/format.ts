// The MUST image file (docs/IMAGE-FORMAT.md): a 4 KiB header, the stream of chunks, the
// manifest. The header is written last, so a file cut short never looks complete.

import { type FileHandle, open } from 'node:fs/promises';
import { crc32 } from 'node:zlib';
import { DiskError } from '../disk/device.ts';
import type { ByteSource } from '../disk/source.ts';
import { DecodeError, Reader, Writer } from '../protocol/bytes.ts';
import { type Manifest, decodeManifest, sha256, streamSize } from '../protocol/manifest.ts';

export const IMAGE_MAGIC = new TextEncoder().encode('MUSTIMG1');
export const IMAGE_VERSION = 1;
export const HEADER_BYTES = 4096;
const HEADER_FIELDS = 80;

export interface ImageHeader {
  streamOffset: number;
  streamSize: number;
  manifestOffset: number;
  manifestLength: number;
  manifestDigest: Uint8Array;
}

export function encodeImageHeader(h: ImageHeader): Uint8Array {
  const w = new Writer(HEADER_FIELDS);
  w.put(IMAGE_MAGIC).u16(IMAGE_VERSION).u16(HEADER_BYTES).u32(0)
    .u64(h.streamOffset).u64(h.streamSize).u64(h.manifestOffset).u32(h.manifestLength).u32(0).put(h.manifestDigest);
  const fields = w.done();
  const out = new Uint8Array(HEADER_BYTES);
  out.set(fields.subarray(0, HEADER_FIELDS));
  new DataView(out.buffer).setUint32(HEADER_FIELDS, crc32(fields.subarray(0, HEADER_FIELDS)));
  return out;
}

export function decodeImageHeader(b: Uint8Array): ImageHeader {
  if (b.length < HEADER_FIELDS + 4) throw new DecodeError('short', 'shorter than an image header');
  const r = new Reader(b);
  const magic = r.take(8, 'image magic');
  if (!IMAGE_MAGIC.every((x, i) => magic[i] === x)) throw new DecodeError('magic', 'not a MUST image (or one whose capture did not finish)');
  const version = r.u16('image version');
  if (version !== IMAGE_VERSION) throw new DecodeError('version', `image version ${version}, this program reads ${IMAGE_VERSION}`);
  const headerBytes = r.u16('header length');
  r.u32('flags');
  const h: ImageHeader = {
    streamOffset: r.u64('stream offset'), streamSize: r.u64('stream size'), manifestOffset: r.u64('manifest offset'),
    manifestLength: r.u32('manifest length'), manifestDigest: new Uint8Array(0),
  };
  r.u32('reserved');
  h.manifestDigest = Uint8Array.from(r.take(32, 'manifest digest'));
  const crc = new DataView(b.buffer, b.byteOffset).getUint32(HEADER_FIELDS);
  if (crc !== crc32(b.subarray(0, HEADER_FIELDS))) throw new DecodeError('field', 'image header checksum mismatch');
  if (headerBytes < HEADER_FIELDS + 4 || h.streamOffset < headerBytes || h.streamOffset + h.streamSize > h.manifestOffset)
    throw new DecodeError('field', 'image header places the stream and manifest inconsistently');
  return h;
}

/** An image file opened for reading: its manifest checked against the header's digest. */
export interface OpenedImage {
  path: string;
  header: ImageHeader;
  manifest: Manifest;
  manifestBytes: Uint8Array;
  /** The stream of chunks, as a source (offsets from the first chunk). */
  stream: ByteSource;
  close(): Promise<void>;
}

async function readExactly(fh: FileHandle, offset: number, length: number, what: string): Promise<Uint8Array> {
  const buf = Buffer.alloc(length);
  let done = 0;
  while (done < length) {
    const { bytesRead } = await fh.read(buf, done, length - done, offset + done);
    if (bytesRead === 0) throw new DiskError(`${what} is cut short at byte ${offset + done}`);
    done += bytesRead;
  }
  return buf;
}

/** True when the file at `path` begins like a MUST image. */
export async function looksLikeImage(path: string): Promise<boolean> {
  let fh: FileHandle | undefined;
  try {
    fh = await open(path, 'r');
    const b = Buffer.alloc(8);
    const { bytesRead } = await fh.read(b, 0, 8, 0);
    return bytesRead === 8 && IMAGE_MAGIC.every((x, i) => b[i] === x);
  } catch {
    return false;
  } finally {
    await fh?.close();
  }
}

export async function openImage(path: string): Promise<OpenedImage> {
  const fh = await open(path, 'r');
  try {
    const size = (await fh.stat()).size;
    let header: ImageHeader;
    try {
      header = decodeImageHeader(await readExactly(fh, 0, Math.min(HEADER_BYTES, size), path));
    } catch (e) {
      throw new DiskError(`${path}: ${(e as Error).message}`);
    }
    if (header.manifestOffset + header.manifestLength > size) throw new DiskError(`${path}: the file ends before its manifest (${size} bytes)`);
    const manifestBytes = await readExactly(fh, header.manifestOffset, header.manifestLength, path);
    if (Buffer.compare(sha256(manifestBytes), header.manifestDigest) !== 0) throw new DiskError(`${path}: the manifest does not match the header's digest; the file is damaged`);
    let manifest: Manifest;
    try {
      manifest = decodeManifest(manifestBytes);
    } catch (e) {
      throw new DiskError(`${path}: bad manifest: ${(e as Error).message}`);
    }
    if (streamSize(manifest) !== header.streamSize) throw new DiskError(`${path}: the header and the manifest disagree on the stream size`);
    let closing: Promise<void> | undefined;
    const close = (): Promise<void> => (closing ??= fh.close());
    const stream: ByteSource = {
      size: header.streamSize, sectorSize: manifest.sectorSize, label: path,
      read: async (offset, length) => {
        const n = Math.max(0, Math.min(length, header.streamSize - offset));
        return readExactly(fh, header.streamOffset + offset, n, path);
      },
      close,
    };
    return { path, header, manifest, manifestBytes, stream, close };
  } catch (e) {
    await fh.close();
    throw e;
  }
}
