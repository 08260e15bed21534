// QEMU under software emulation (no KVM here), read through its serial console.
// Failures end fast: every wait has a deadline, and the VM is killed after.

import { type ChildProcess, spawn } from 'node:child_process';
import { copyFileSync, existsSync } from 'node:fs';
import { createConnection } from 'node:net';
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
  /** The PC's own screen in VGA text mode (80 x 25 at 0xb8000), read through QEMU's monitor; needs `monitor`. */
  vgaText(): Promise<string>;
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
  /** A QEMU monitor on this Unix socket (for vgaText). */
  monitor?: string;
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
    '-display', 'none', '-monitor', o.monitor ? `unix:${o.monitor},server=on,wait=off` : 'none', '-chardev', 'stdio,id=s0,signal=off', '-serial', 'chardev:s0',
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
    vgaText: () => vgaText(o.monitor!),
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

/**
 * The visible characters of the VGA text screen. Linux's VGA console scrolls by moving the CRT
 * controller's start address through the 32 KiB of text memory, so the screen begins where
 * registers 0x0c/0x0d say (in cells), not at 0xb8000. Each cell is a character byte and an
 * attribute byte; 25 lines of 80.
 */
export function vgaText(socket: string): Promise<string> {
  const steps = ['o /b 0x3d4 0x0c', 'i /b 0x3d5', 'o /b 0x3d4 0x0d', 'i /b 0x3d5'];
  return new Promise((resolve, reject) => {
    const c = createConnection(socket);
    let out = '';
    let step = -1;
    const ports: number[] = [];
    c.setEncoding('latin1');
    c.on('error', reject);
    c.on('data', (d: string) => {
      out += d;
      if (!out.endsWith('(qemu) ')) return;
      const answer = out;
      out = '';
      const port = /portb\[0x0*3d5\] = 0x([0-9a-f]+)/i.exec(answer);
      if (port) ports.push(parseInt(port[1]!, 16));
      step++;
      if (step < steps.length) { c.write(`${steps[step]}\n`); return; }
      if (step === steps.length) {
        const start = ((ports[0] ?? 0) << 8) | (ports[1] ?? 0);
        c.write(`xp /2000hx ${0xb8000 + 2 * start}\n`);
        return;
      }
      c.end();
      // Lines of "ADDRESS: 0xCCAA 0xCCAA ..." (the echo of the command before them is not one).
      const cells = answer.split('\n').filter((l) => /^[0-9a-f]+: /.test(l)).flatMap((l) => [...l.matchAll(/0x([0-9a-f]{4})/g)].map((m) => parseInt(m[1]!, 16) & 0xff));
      const lines: string[] = [];
      // The bar's block characters (CP437 0xdb, 0xb0) as # and ., anything else unprintable as a dot.
      for (let i = 0; i < cells.length; i += 80) lines.push(String.fromCharCode(...cells.slice(i, i + 80)).replace(/[^\x20-\x7e]/g, (ch) => (ch === '\xdb' ? '#' : '.')).trimEnd());
      resolve(lines.join('\n'));
    });
  });
}
