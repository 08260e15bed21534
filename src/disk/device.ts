// What a path names: a block device (size from sysfs), a regular file, or nothing yet.

import { open, readFile, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';

export interface DeviceInfo {
  path: string;
  kind: 'block' | 'file' | 'missing';
  /** Bytes; for a missing path 0. */
  size: number;
  /** Logical sector size (512 for files). */
  sectorSize: number;
  /** sysfs name of a block device ("sda", "nvme0n1p2"), else "". */
  name: string;
}

export class DiskError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DiskError';
  }
}

/** major/minor of a Linux dev_t as glibc encodes it. */
export function devNumbers(rdev: number): { major: number; minor: number } {
  const hi = Math.floor(rdev / 2 ** 32), lo = rdev >>> 0;
  return {
    major: ((lo >>> 8) & 0xfff) | (hi & 0xfffff000),
    minor: (lo & 0xff) | ((lo >>> 12) & 0xfff00) | ((hi & 0xfff) << 20),
  };
}

export async function probe(path: string): Promise<DeviceInfo> {
  let st;
  try {
    st = await stat(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { path, kind: 'missing', size: 0, sectorSize: 512, name: '' };
    throw new DiskError(`${path}: ${(e as Error).message}`);
  }
  if (st.isFile()) return { path, kind: 'file', size: st.size, sectorSize: 512, name: '' };
  if (!st.isBlockDevice()) throw new DiskError(`${path} is neither a block device nor a regular file`);
  const { major, minor } = devNumbers(st.rdev);
  const sys = `/sys/dev/block/${major}:${minor}`;
  try {
    const sectors = Number((await readFile(`${sys}/size`, 'utf8')).trim());
    const uevent = await readFile(`${sys}/uevent`, 'utf8');
    const name = /^DEVNAME=(.*)$/m.exec(uevent)?.[1] ?? '';
    const logical = await readFile(`${sys}/queue/logical_block_size`, 'utf8').then((s) => Number(s.trim()))
      .catch(async () => Number((await readFile(`${sys}/../queue/logical_block_size`, 'utf8')).trim()));
    return { path, kind: 'block', size: sectors * 512, sectorSize: logical || 512, name };
  } catch (e) {
    // Fall back to asking the device itself: the end of a block device is its size.
    const fh = await open(path, 'r');
    try {
      const size = (await fh.stat({ bigint: false })).size;
      if (size > 0) return { path, kind: 'block', size, sectorSize: 512, name: '' };
    } finally { await fh.close(); }
    throw new DiskError(`${path}: cannot read its size from ${sys} (${(e as Error).message})`);
  }
}

/** The partitions of a disk, given its sysfs directory: the subdirectories with a "partition" file, sorted. */
export async function partitionsIn(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of (await readdir(dir).catch(() => [] as string[])).sort()) {
    if (await stat(join(dir, e, 'partition')).then(() => true, () => false)) out.push(e);
  }
  return out;
}

/**
 * Why a block device must not be written now, or undefined: it (or a partition of it) is mounted,
 * is a swap area in use, or is held by another device (LVM, RAID, dm-crypt). The running system
 * lives on such a device; writing under it would corrupt both.
 */
export async function busyReason(path: string, proc = '/proc', sys = '/sys'): Promise<string | undefined> {
  const { major, minor } = devNumbers((await stat(path)).rdev);
  const base = join(sys, 'dev/block', `${major}:${minor}`);
  const name = /^DEVNAME=(.*)$/m.exec(await readFile(join(base, 'uevent'), 'utf8').catch(() => ''))?.[1];
  if (!name) return undefined;
  // The device and its partitions, by major:minor.
  const parts = new Map<string, string>([[`${major}:${minor}`, name]]);
  for (const e of await partitionsIn(base)) {
    const dev = (await readFile(join(base, e, 'dev'), 'utf8').catch(() => '')).trim();
    if (dev) parts.set(dev, e);
  }
  for (const line of (await readFile(join(proc, 'self/mountinfo'), 'utf8').catch(() => '')).split('\n')) {
    const f = line.split(' ');
    const on = parts.get(f[2] ?? '');
    if (on) return `/dev/${on} is mounted on ${f[4]!.replace(/\\040/g, ' ')}`;
  }
  for (const line of (await readFile(join(proc, 'swaps'), 'utf8').catch(() => '')).split('\n').slice(1)) {
    const dev = line.split(/\s+/)[0] ?? '';
    if ([...parts.values()].some((p) => dev === `/dev/${p}`)) return `${dev} is a swap area in use`;
  }
  for (const [, p] of parts) {
    const dir = p === name ? base : join(base, p);
    const holders = await readdir(join(dir, 'holders')).catch(() => [] as string[]);
    if (holders.length > 0) return `/dev/${p} is in use by ${holders.map((h) => `/dev/${h}`).join(', ')}`;
  }
  return undefined;
}
