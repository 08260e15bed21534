// The PXE tree: first stages (iPXE for BIOS and UEFI, pxelinux), the iPXE script, the
// pxelinux config, the kernel and the initramfs, ready for TFTP + HTTP.

import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { ApplianceConfig } from '../build-appliance.ts';

export const cmdline = (cfg: ApplianceConfig): string => `${cfg.cmdline.serial} ${cfg.cmdline.common}`.trim();

export function buildPxe(o: { out: string; cfg: ApplianceConfig }, log: (s: string) => void): void {
  const root = resolve(import.meta.dirname, '../..');
  const pxe = join(o.out, 'pxe');
  mkdirSync(join(pxe, 'pxelinux.cfg'), { recursive: true });
  const fill = (p: string): string => readFileSync(join(root, p), 'utf8').replaceAll('@CMDLINE@', cmdline(o.cfg));
  writeFileSync(join(pxe, 'boot.ipxe'), fill('pxe/boot.ipxe'));
  writeFileSync(join(pxe, 'pxelinux.cfg/default'), fill('pxe/pxelinux.cfg/default'));
  copyFileSync(join(root, 'pxe/dnsmasq.conf.example'), join(pxe, 'dnsmasq.conf.example'));
  const host: Array<[string, string]> = [
    ['/usr/lib/ipxe/undionly.kpxe', 'undionly.kpxe'],
    ['/usr/lib/ipxe/ipxe.efi', 'ipxe.efi'],
    ['/usr/lib/PXELINUX/pxelinux.0', 'pxelinux.0'],
    ['/usr/lib/syslinux/modules/bios/ldlinux.c32', 'ldlinux.c32'],
  ];
  for (const [from, to] of host) copyFileSync(from, join(pxe, to));
  copyFileSync(join(o.out, 'vmlinuz'), join(pxe, 'vmlinuz'));
  copyFileSync(join(o.out, 'initrd.zst'), join(pxe, 'initrd.zst'));
  log(`pxe: ${pxe} (TFTP: undionly.kpxe, ipxe.efi, pxelinux.0; HTTP: boot.ipxe, vmlinuz, initrd.zst)`);
}
