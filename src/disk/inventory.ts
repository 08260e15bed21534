// The disks of this machine, read from sysfs (no external command), and the rule that
// picks the one to image. Never the boot medium, never a read-only disk; a rule that
// matches two disks is refused, not guessed.

import { execFileSync } from 'node:child_process';
import { open, readFile, readdir, readlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { bytes } from '../log/logger.ts';
import { busyReason, partitionsIn } from './device.ts';

export interface Disk {
  name: string;
  path: string;
  size: number;
  removable: boolean;
  readOnly: boolean;
  transport: 'nvme' | 'sata' | 'virtio' | 'usb' | 'mmc' | 'scsi' | 'loop' | 'other';
  model: string;
  serial: string;
  /** Holds the MUST appliance (the CD or USB stick this machine booted from). */
  bootMedium: boolean;
}

/** Volume id of the appliance's ISO (image/appliance.json keeps the same). */
export const APPLIANCE_VOLUME = 'MUST_APPLIANCE';

/** A sysfs (or procfs) file's text, trimmed; '' when it cannot be read. */
export const text = async (p: string): Promise<string> => (await readFile(p, 'utf8').catch(() => '')).trim();

export async function listDisks(sys = '/sys', dev = '/dev'): Promise<Disk[]> {
  const names = (await readdir(join(sys, 'block')).catch(() => [] as string[])).sort();
  const out: Disk[] = [];
  for (const name of names) {
    // Not disks one images: RAM, compressed RAM, optical drives, device-mapper, floppies, and loop
    // devices with no file behind them. An attached loop device is offered (an admin trying MUST
    // on a server), never chosen by "auto".
    if (/^(ram|zram|sr|dm-|fd|md|nbd)/.test(name)) continue;
    const b = join(sys, 'block', name);
    const backing = name.startsWith('loop') ? await text(join(b, 'loop/backing_file')) : undefined;
    if (backing === '') continue;
    const size = Number(await text(join(b, 'size'))) * 512;
    if (!(size > 0)) continue;
    const target = await readlink(b).catch(() => '');
    const transport: Disk['transport'] = backing ? 'loop' : /\/usb\d*\//.test(target) ? 'usb'
      : name.startsWith('nvme') ? 'nvme' : name.startsWith('vd') ? 'virtio' : name.startsWith('mmcblk') ? 'mmc'
      : /\/ata\d+\//.test(target) ? 'sata' : name.startsWith('sd') ? 'scsi' : 'other';
    const model = backing ? `file ${backing}` : [await text(join(b, 'device/vendor')), await text(join(b, 'device/model'))].filter(Boolean).join(' ').replace(/\s+/g, ' ');
    const serial = await text(join(b, 'device/serial')) || await text(join(b, 'serial')) || (await text(join(b, 'device/wwid'))).replace(/\s+/g, ' ');
    out.push({
      name, path: join(dev, name), size, model, serial, transport,
      removable: (await text(join(b, 'removable'))) === '1' || transport === 'usb' || transport === 'loop',
      readOnly: (await text(join(b, 'ro'))) === '1',
      bootMedium: await holdsAppliance(join(dev, name)),
    });
  }
  return out;
}

/** An ISO 9660 primary volume descriptor at 32 KiB whose volume id is the appliance's. */
export async function holdsAppliance(path: string): Promise<boolean> {
  try {
    const fh = await open(path, 'r');
    try {
      const b = Buffer.alloc(2048);
      await fh.read(b, 0, 2048, 32768);
      return b.toString('latin1', 1, 6) === 'CD001' && b.toString('latin1', 40, 72).trim() === APPLIANCE_VOLUME;
    } finally { await fh.close(); }
  } catch {
    return false;
  }
}

export type Choice = { ok: true; disk: Disk } | { ok: false; reason: string };

/** Why a disk cannot be picked at all, or undefined. */
export function unusable(d: Disk, imageSize?: number): string | undefined {
  if (d.bootMedium) return 'it holds the MUST appliance this machine booted from';
  if (d.readOnly) return 'it is read-only';
  if (imageSize !== undefined && d.size < imageSize) return `too small (${bytes(d.size)}; the image needs ${bytes(imageSize)})`;
  return undefined;
}

/** One disk as a person picks it: it can be chosen unless `why` says why not. */
export interface DiskOption { path: string; model: string; size: number; transport: string; removable: boolean; why: string | undefined }

/** Every disk, with why it cannot take an image of `imageSize` bytes (boot medium, read-only, too small, in use). */
export async function diskOptions(disks: Disk[], imageSize: number): Promise<DiskOption[]> {
  return Promise.all(disks.map(async (d) => ({
    path: d.path, model: d.model, size: d.size, transport: d.transport, removable: d.removable,
    why: unusable(d, imageSize) ?? await busyReason(d.path).catch(() => undefined),
  })));
}

/**
 * An unattended rule: "auto" (the largest fixed disk that fits; removable and USB disks only
 * if named), a path ("/dev/nvme0n1"), "serial:TEXT" or "model:TEXT" (whole serial, or part of model).
 */
export function chooseDisk(disks: Disk[], rule: string, imageSize?: number): Choice {
  const describe = (d: Disk): string => `${d.path} (${d.model || 'unknown model'}, ${d.size} bytes)`;
  let matches: Disk[];
  if (rule === 'auto') {
    const fixed = disks.filter((d) => !d.removable && !unusable(d, imageSize));
    if (fixed.length === 0) return { ok: false, reason: `must.disk=auto: no fixed disk can take the image (${disks.map((d) => `${describe(d)}: ${unusable(d, imageSize) ?? 'removable'}`).join('; ') || 'no disks'})` };
    const largest = Math.max(...fixed.map((d) => d.size));
    matches = fixed.filter((d) => d.size === largest);
  } else if (rule.startsWith('/dev/')) {
    matches = disks.filter((d) => d.path === rule);
  } else if (rule.startsWith('serial:')) {
    matches = disks.filter((d) => d.serial === rule.slice(7));
  } else if (rule.startsWith('model:')) {
    const want = rule.slice(6).toLowerCase();
    matches = disks.filter((d) => d.model.toLowerCase().includes(want));
  } else {
    return { ok: false, reason: `must.disk=${rule}: expected auto, a /dev path, serial:... or model:...` };
  }
  if (matches.length === 0) return { ok: false, reason: `must.disk=${rule} matches no disk (have: ${disks.map(describe).join(', ') || 'none'})` };
  if (matches.length > 1) return { ok: false, reason: `must.disk=${rule} is ambiguous: ${matches.map(describe).join(' and ')}` };
  const why = unusable(matches[0]!, imageSize);
  return why ? { ok: false, reason: `must.disk=${rule} names ${describe(matches[0]!)}, which cannot be imaged: ${why}` } : { ok: true, disk: matches[0]! };
}

/** A filesystem on a disk or partition of this machine: where image files can be read or written. */
export interface Volume {
  path: string;
  /** The whole disk it is on (its path), so a capture does not write onto the disk it reads. */
  disk: string;
  size: number;
  fs: string;
  label: string;
}

/** Filesystems this appliance can mount and write (kernel drivers in image/modules.txt; Debian's 6.1 kernel has no NTFS driver). */
const MOUNTABLE: Record<string, string> = { vfat: 'vfat', exfat: 'exfat', ext4: 'ext4', ext3: 'ext4', ext2: 'ext4' };
export const mountType = (fs: string): string | undefined => MOUNTABLE[fs];

/** The filesystems on the disks (whole disks and partitions) that blkid recognises and we can mount. */
export async function listVolumes(disks: Disk[], sys = '/sys'): Promise<Volume[]> {
  // Synchronous: a few milliseconds per device, and on the appliance's console an asynchronous
  // child with piped output was seen finished only at the next key press.
  const probe = (path: string): Record<string, string> => {
    try {
      const stdout = execFileSync('blkid', ['-p', '-o', 'export', path], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
      return Object.fromEntries(stdout.split('\n').filter((l) => l.includes('=')).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new Error('blkid (util-linux) is missing: cannot look for filesystems');
      return {}; // nothing recognised
    }
  };
  const out: Volume[] = [];
  for (const d of disks) {
    const parts: Array<{ path: string; size: number }> = [{ path: d.path, size: d.size }];
    for (const e of await partitionsIn(join(sys, 'block', d.name))) {
      parts.push({ path: join(dirname(d.path), e), size: Number(await text(join(sys, 'block', d.name, e, 'size'))) * 512 });
    }
    for (const p of parts) {
      const id = probe(p.path);
      if (id.TYPE && mountType(id.TYPE)) out.push({ path: p.path, disk: d.path, size: p.size, fs: id.TYPE, label: id.LABEL ?? '' });
    }
  }
  return out;
}
