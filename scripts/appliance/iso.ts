// The hybrid ISO: boots BIOS (isolinux) and UEFI (a unified kernel image: systemd's EFI
// stub with kernel, initramfs and command line in one BOOTX64.EFI), from a CD and, written
// with dd, from a USB stick (isohybrid MBR and GPT). Every timestamp is the configured epoch.

import { execFileSync } from 'node:child_process';
import { copyFileSync, cpSync, mkdirSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { ApplianceConfig } from '../build-appliance.ts';
import { cmdline } from './pxe.ts';

const run = (cmd: string, args: string[], env: Record<string, string> = {}): string =>
  execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });

function touchTree(dir: string, epoch: number): void {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) touchTree(p, epoch);
    utimesSync(p, epoch, epoch);
  }
  utimesSync(dir, epoch, epoch);
}

/** kernel + initramfs + command line as one EFI program (the Arch wiki's objcopy recipe for systemd-stub 252). */
export function unifiedKernel(o: { vmlinuz: string; initrd: string; cmdline: string; work: string; out: string; epoch: number }): void {
  writeFileSync(join(o.work, 'cmdline.txt'), `${o.cmdline}\0`);
  writeFileSync(join(o.work, 'os-release'), 'NAME="MUST appliance"\nID=must\n');
  run('objcopy', [
    '--add-section', `.osrel=${join(o.work, 'os-release')}`, '--change-section-vma', '.osrel=0x20000',
    '--add-section', `.cmdline=${join(o.work, 'cmdline.txt')}`, '--change-section-vma', '.cmdline=0x30000',
    '--add-section', `.linux=${o.vmlinuz}`, '--change-section-vma', '.linux=0x2000000',
    '--add-section', `.initrd=${o.initrd}`, '--change-section-vma', '.initrd=0x3000000',
    '/usr/lib/systemd/boot/efi/linuxx64.efi.stub', o.out,
  ]);
  pinPeTimestamp(o.out, o.epoch);
}

/** objcopy stamps a PE file with the build time (binutils 2.40 has no switch for that): set it, and redo the checksum. */
export function pinPeTimestamp(path: string, epoch: number): void {
  const b = readFileSync(path);
  const pe = b.readUInt32LE(0x3c);
  if (b.toString('latin1', pe, pe + 4) !== 'PE\0\0') throw new Error(`${path} is not a PE file`);
  b.writeUInt32LE(epoch, pe + 8);
  const sumAt = pe + 24 + 64;
  b.writeUInt32LE(0, sumAt);
  let sum = 0;
  for (let i = 0; i + 1 < b.length; i += 2) {
    sum += b.readUInt16LE(i);
    sum = (sum & 0xffff) + (sum >>> 16);
  }
  if (b.length % 2) { sum += b[b.length - 1]!; sum = (sum & 0xffff) + (sum >>> 16); }
  b.writeUInt32LE(((sum & 0xffff) + b.length) >>> 0, sumAt);
  writeFileSync(path, b);
}

export function buildIso(o: { out: string; build: string; cfg: ApplianceConfig }, log: (s: string) => void): void {
  const root = resolve(import.meta.dirname, '../..');
  const epoch = o.cfg.epoch;
  const env = { SOURCE_DATE_EPOCH: String(epoch), TZ: 'UTC' };
  const stage = join(o.build, 'iso-root');
  const work = join(o.build, 'iso-work');
  rmSync(stage, { recursive: true, force: true });
  rmSync(work, { recursive: true, force: true });
  mkdirSync(join(stage, 'isolinux'), { recursive: true });
  mkdirSync(join(stage, 'boot'), { recursive: true });
  mkdirSync(join(work, 'EFI/BOOT'), { recursive: true });

  copyFileSync('/usr/lib/ISOLINUX/isolinux.bin', join(stage, 'isolinux/isolinux.bin'));
  copyFileSync('/usr/lib/syslinux/modules/bios/ldlinux.c32', join(stage, 'isolinux/ldlinux.c32'));
  writeFileSync(join(stage, 'isolinux/isolinux.cfg'), readFileSync(join(root, 'image/isolinux.cfg'), 'utf8').replaceAll('@CMDLINE@', cmdline(o.cfg)));
  // A master booted from this medium boots the lab with these (must.pxe=).
  mkdirSync(join(stage, 'pxe'), { recursive: true });
  copyFileSync('/usr/lib/ipxe/undionly.kpxe', join(stage, 'pxe/undionly.kpxe'));
  copyFileSync('/usr/lib/ipxe/ipxe.efi', join(stage, 'pxe/ipxe.efi'));
  copyFileSync(join(o.out, 'vmlinuz'), join(stage, 'boot/vmlinuz'));
  copyFileSync(join(o.out, 'initrd.zst'), join(stage, 'boot/initrd.zst'));
  // What only such a master needs (dnsmasq), kept out of the initramfs (scripts/build-appliance stages it).
  cpSync(join(o.build, 'tools'), join(stage, 'tools'), { recursive: true });

  // UEFI: one FAT image holding the unified kernel as the removable-media default loader.
  const uki = join(work, 'EFI/BOOT/BOOTX64.EFI');
  unifiedKernel({ vmlinuz: join(o.out, 'vmlinuz'), initrd: join(o.out, 'initrd.zst'), cmdline: `${cmdline(o.cfg)} must.mode=menu`, work, out: uki, epoch });
  touchTree(join(work, 'EFI'), epoch);
  const fat = join(stage, 'boot/efiboot.img');
  const kib = Math.ceil((statSync(uki).size + (2 << 20)) / (1 << 20)) * 1024;
  run('mkfs.vfat', ['-C', '--invariant', '-i', '4d555354', '-n', 'MUST_EFI', fat, String(kib)], env);
  run('mmd', ['-i', fat, '::/EFI', '::/EFI/BOOT'], env);
  run('mcopy', ['-m', '-i', fat, uki, '::/EFI/BOOT/BOOTX64.EFI'], env);

  touchTree(stage, epoch);
  const iso = join(o.out, 'must.iso');
  rmSync(iso, { force: true });
  run('xorriso', [
    '-as', 'mkisofs', '-o', iso, '-V', o.cfg.volume, '-r', '-J',
    '-isohybrid-mbr', '/usr/lib/ISOLINUX/isohdpfx.bin',
    '-c', 'isolinux/boot.cat', '-b', 'isolinux/isolinux.bin', '-no-emul-boot', '-boot-load-size', '4', '-boot-info-table',
    '-eltorito-alt-boot', '-e', 'boot/efiboot.img', '-no-emul-boot', '-isohybrid-gpt-basdat',
    stage,
  ], env);
  log(`iso: ${iso} (${(statSync(iso).size / 2 ** 20).toFixed(1)} MiB; BIOS isolinux, UEFI unified kernel)`);
}
