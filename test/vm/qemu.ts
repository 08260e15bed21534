// QEMU under software emulation (no KVM here), read through its serial console.
// Failures end fast: every wait has a deadline, and the VM is killed after.

import { type ChildProcess, spawn } from 'node:child_process';
import { copyFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';

export const APPLIANCE = process.env.MUST_APPLIANCE_OUT ?? join(import.meta.dirname, '../../out/appliance');
export const applianceBuilt = (): boolean => ['vmlinuz', 'initrd.zst', 'must.iso', 'pxe/boot.ipxe'].every((f) => existsSync(join(APPLIANCE, f)));

export interface Vm {
  name: string;
  child: ChildProcess;
  serial(): string;
  /** Wait until the serial console shows re (after its first `from` characters); fails with the console's tail after ms. */
  waitFor(re: RegExp, ms: number, from?: number): Promise<RegExpExecArray>;
  exited: Promise<number>;
  kill(): void;
}

export interface VmOptions {
  name: string;
  args: string[];
  /** Run inside a network namespace (argv prefix). */
  wrap?: string[];
  memory?: number;
  /** UEFI firmware (OVMF) instead of SeaBIOS; vars are copied to `vars`. */
  uefi?: { vars: string };
  /** Let a guest reboot restart the VM instead of ending QEMU. */
  reboot?: boolean;
  cpus?: number;
}

export function startVm(o: VmOptions): Vm {
  const firmware = o.uefi ? (copyFileSync('/usr/share/OVMF/OVMF_VARS_4M.fd', o.uefi.vars), [
    '-machine', 'q35',
    // Like a lab PC set up for IPv4 PXE: without IPv6, OVMF does not try PXE and HTTP boot over
    // IPv6 (waiting long for offers nobody sends) before it reaches the disk.
    '-fw_cfg', 'name=opt/org.tianocore/IPv6Support,string=no',
    '-drive', 'if=pflash,format=raw,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd',
    '-drive', `if=pflash,format=raw,file=${o.uefi.vars}`,
  ]) : [];
  const argv = [
    ...(o.wrap ?? []), 'qemu-system-x86_64', '-name', o.name, '-m', String(o.memory ?? 1024), '-smp', String(o.cpus ?? 2),
    '-display', 'none', '-monitor', 'none', '-chardev', 'stdio,id=s0,signal=off', '-serial', 'chardev:s0',
    ...(o.reboot ? [] : ['-no-reboot']), ...firmware, ...o.args,
  ];
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => { out += d.toString('latin1'); });
  child.stderr!.on('data', (d: Buffer) => { out += d.toString('latin1'); });
  const exited = new Promise<number>((resolve) => child.on('exit', (code) => resolve(code ?? -1)));
  let dead = false;
  void exited.then(() => { dead = true; });
  const clean = (): string => out.replace(/\x1b\[[0-9;?=]*[A-Za-z]/g, '');
  return {
    name: o.name,
    child,
    serial: clean,
    exited,
    kill: () => { if (!dead) child.kill('SIGKILL'); },
    waitFor: async (re, ms, from = 0) => {
      const end = Date.now() + ms;
      for (;;) {
        const m = re.exec(clean().slice(from));
        if (m) return m;
        if (dead || Date.now() > end) {
          throw new Error(`${o.name}: ${dead ? 'QEMU exited' : `no ${re} within ${ms / 1000} s`}; serial console ends with:\n${clean().slice(-2500)}`);
        }
        await new Promise((r) => setTimeout(r, 200));
      }
    },
  };
}
