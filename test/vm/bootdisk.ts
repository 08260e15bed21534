// A small bootable disk for the end-to-end tests: an MBR (syslinux boot code) with one FAT
// partition holding syslinux (BIOS) and a unified kernel image at \EFI\BOOT\BOOTX64.EFI
// (UEFI). Both boot Debian's kernel with a tiny initramfs that prints a marker on the
// serial console and powers off. If a PC prints the marker, its disk holds this image.

import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { writeCpio } from '../../scripts/appliance/cpio.ts';
import { unifiedKernel } from '../../scripts/appliance/iso.ts';

export const MARKER = 'MUST-TEST-MARKER: this PC booted the image from its own disk';

const run = (cmd: string, args: string[]): void => { execFileSync(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] }); };

export function buildBootDisk(work: string, vmlinuz: string): { path: string; bytes: Uint8Array } {
  rmSync(work, { recursive: true, force: true });
  mkdirSync(join(work, 'EFI/BOOT'), { recursive: true });
  const init = `#!/bin/busybox sh\n/bin/busybox echo "${MARKER}"\n/bin/busybox sleep 1\n/bin/busybox poweroff -f\n`;
  const initrd = gzipSync(writeCpio([
    { path: 'bin', type: 'dir', mode: 0o755 },
    { path: 'bin/busybox', type: 'file', mode: 0o755, data: readFileSync('/bin/busybox') },
    { path: 'dev', type: 'dir', mode: 0o755 },
    { path: 'init', type: 'file', mode: 0o755, data: new TextEncoder().encode(init) },
  ], 0));
  writeFileSync(join(work, 'marker.gz'), initrd);
  const args = 'console=ttyS0,115200n8 panic=-1';
  writeFileSync(join(work, 'syslinux.cfg'), `SERIAL 0 115200\nDEFAULT marker\nPROMPT 0\nLABEL marker\n  KERNEL vmlinuz\n  INITRD marker.gz\n  APPEND ${args}\n`);
  unifiedKernel({ vmlinuz, initrd: join(work, 'marker.gz'), cmdline: args, work, out: join(work, 'EFI/BOOT/BOOTX64.EFI'), epoch: 0 });

  const part = join(work, 'part.img');
  const partMiB = 24;
  run('mkfs.vfat', ['-C', '-n', 'MUSTTEST', part, String(partMiB * 1024)]);
  run('syslinux', ['--install', part]);
  run('mmd', ['-i', part, '::/EFI', '::/EFI/BOOT']);
  for (const f of ['syslinux.cfg', 'marker.gz']) run('mcopy', ['-i', part, join(work, f), `::/${f}`]);
  run('mcopy', ['-i', part, vmlinuz, '::/vmlinuz']);
  run('mcopy', ['-i', part, join(work, 'EFI/BOOT/BOOTX64.EFI'), '::/EFI/BOOT/BOOTX64.EFI']);

  // The disk: 1 MiB of MBR and gap, then the partition (active, type EF: an EFI system partition).
  const start = 2048, sectors = partMiB * 2048;
  const disk = new Uint8Array((start + sectors) * 512);
  disk.set(readFileSync('/usr/lib/syslinux/mbr/mbr.bin').subarray(0, 440));
  const v = new DataView(disk.buffer);
  disk[446] = 0x80;
  disk.set([0xfe, 0xff, 0xff], 447);
  disk[450] = 0xef;
  disk.set([0xfe, 0xff, 0xff], 451);
  v.setUint32(454, start, true);
  v.setUint32(458, sectors, true);
  disk[510] = 0x55;
  disk[511] = 0xaa;
  disk.set(readFileSync(part), start * 512);
  const path = join(work, 'bootdisk.img');
  writeFileSync(path, disk);
  return { path, bytes: disk };
}
