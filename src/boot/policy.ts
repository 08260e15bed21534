// What a PC gets when it network-boots, decided per MAC (like pixiecore's Booter): PCs
// not yet imaged boot the MUST client with the session's parameters; PCs that verified
// this image boot their own disk; PCs never seen follow the master's setting.

import type { Records } from './records.ts';

export type BootDecision =
  | { kind: 'image'; why: string }
  | { kind: 'local'; why: string };

export interface BootPolicy {
  decide(mac: string): BootDecision;
}

export interface LabPolicyOptions {
  records: Records;
  /** Digest of the manifest being served: a PC verified against another image is imaged again. */
  digest: string;
  unknown: 'image' | 'local';
}

export class LabPolicy implements BootPolicy {
  private readonly o: LabPolicyOptions;
  constructor(o: LabPolicyOptions) { this.o = o; }

  decide(mac: string): BootDecision {
    const r = this.o.records.get(mac);
    if (!r) return this.o.unknown === 'image' ? { kind: 'image', why: 'a new PC (the master images unknown PCs)' } : { kind: 'local', why: 'not on this master\'s list' };
    if (r.result === 'verified' && r.digest === this.o.digest) return { kind: 'local', why: `imaged and verified at ${r.end}` };
    return { kind: 'image', why: r.result === 'verified' ? 'verified an older image' : `last result: ${r.result}` };
  }
}

export interface ScriptParams {
  /** http://master:port */
  base: string;
  /** Kernel command line for the client (without initrd=). */
  cmdline: string;
}

/** The iPXE script for one decision. */
/**
 * Leave iPXE so that the firmware tries its next boot device (the disk). UEFI firmware
 * (OVMF, and many PCs) treats a boot program that returns success as "booted" and shows its
 * boot menu or tries the network again: exit with a failure status there.
 */
export const LOCAL_BOOT = 'iseq ${platform} efi && exit 1 || exit';

export function ipxeScript(d: BootDecision, p: ScriptParams): string {
  if (d.kind === 'local') {
    return ['#!ipxe', `echo MUST: this PC boots its local disk (${d.why})`, LOCAL_BOOT, ''].join('\n');
  }
  return ['#!ipxe', `echo MUST: imaging this PC (${d.why})`,
    // UEFI: the kernel's EFI stub loads the initramfs only when initrd= names it.
    `kernel ${p.base}/vmlinuz initrd=initrd.zst ${p.cmdline}`,
    `initrd ${p.base}/initrd.zst`,
    'boot || goto failed',
    ':failed',
    'echo MUST: could not load the appliance; booting the local disk in 10 s',
    'sleep 10',
    LOCAL_BOOT, ''].join('\n');
}

/** The first script every iPXE gets: it asks again for its own, by MAC. */
export function chainScript(base: string): string {
  return ['#!ipxe',
    // iPXE can miss the ProxyDHCP answer: make sure we have an address and know where we came from.
    'isset ${ip} || dhcp || dhcp || dhcp',
    `chain ${base}/ipxe/\${mac:hexhyp}?platform=\${platform} || goto local`, ':local', LOCAL_BOOT, ''].join('\n');
}
