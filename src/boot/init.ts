// What the appliance does between the kernel and MUST: steps written as data (u-root's
// libinit does the same), run in order by a small interpreter over an injected system
// interface, so a unit test can check them without root. A step that fails prints what
// failed and opens a shell; leaving the shell retries from that step.

import type { BootSettings } from '../cli/kernel.ts';

export type Step =
  | { do: 'mkdir'; path: string }
  | { do: 'mount'; type: string; what: string; where: string; options?: string }
  | { do: 'write'; path: string; text: string; optional?: boolean }
  | { do: 'modules'; quiet: number; max: number }
  | { do: 'network'; seconds: number; optional?: boolean }
  | { do: 'console'; cols: number; rows: number };

/** The boot steps for a kernel line: the network is optional unless the mode needs it (menu, shell). */
export function initSteps(cmdline: string): Step[] {
  const needsNetwork = /(^|\s)must\.mode=(client|master|relay)(\s|$)/.test(cmdline);
  return INIT_STEPS.map((s) => (s.do === 'network' && !needsNetwork ? { ...s, optional: true } : s));
}

/** /dev, /proc and /sys are mounted by /init itself (Node needs them to start). */
export const INIT_STEPS: readonly Step[] = [
  { do: 'mkdir', path: '/dev/pts' },
  { do: 'mount', type: 'devpts', what: 'devpts', where: '/dev/pts', options: 'ptmxmode=0666' },
  { do: 'mount', type: 'tmpfs', what: 'tmpfs', where: '/run', options: 'mode=0755' },
  { do: 'mount', type: 'tmpfs', what: 'tmpfs', where: '/tmp', options: 'mode=1777' },
  { do: 'mkdir', path: '/mnt' },
  // Keep kernel chatter off the console MUST draws on.
  { do: 'write', path: '/proc/sys/kernel/printk', text: '3 4 1 3' },
  // Multicast at line rate needs socket buffers larger than the kernel's 208 KiB default.
  { do: 'write', path: '/proc/sys/net/core/rmem_max', text: String(32 << 20) },
  { do: 'write', path: '/proc/sys/net/core/wmem_max', text: String(8 << 20) },
  // Drivers for whatever hardware is there (NICs, disk controllers, USB), by modalias.
  // Loading a bus driver reveals more devices, some only seconds later (usb-storage lets a
  // stick settle before its SCSI disk appears, which then needs sd_mod): keep loading until
  // no new device has shown up for `quiet` ms.
  { do: 'modules', quiet: 2500, max: 30000 },
  { do: 'network', seconds: 30 },
  { do: 'console', cols: 100, rows: 30 },
];

export interface Sys {
  run(cmd: string, args: string[]): Promise<{ code: number; out: string }>;
  readFile(path: string): Promise<string>;
  writeFile(path: string, text: string): Promise<void>;
  mkdir(path: string): Promise<void>;
  list(dir: string): Promise<string[]>;
  sleep(ms: number): Promise<void>;
  log(line: string): void;
}

export class StepError extends Error {
  constructor(message: string) { super(message); this.name = 'StepError'; }
}

export function describe(s: Step): string {
  switch (s.do) {
    case 'mkdir': return `mkdir ${s.path}`;
    case 'mount': return `mount ${s.type} on ${s.where}`;
    case 'write': return `write ${s.path}`;
    case 'modules': return 'load drivers by modalias';
    case 'network': return 'bring up the network (DHCP on every NIC)';
    case 'console': return 'set the console size';
  }
}

async function must(sys: Sys, cmd: string, args: string[], what: string): Promise<string> {
  const r = await sys.run(cmd, args);
  if (r.code !== 0) throw new StepError(`${what}: ${cmd} ${args.join(' ')} exited ${r.code}${r.out ? `: ${r.out.trim().split('\n').slice(-3).join(' / ')}` : ''}`);
  return r.out;
}

export async function runStep(s: Step, sys: Sys): Promise<void> {
  switch (s.do) {
    case 'mkdir': return sys.mkdir(s.path);
    case 'mount': {
      await sys.mkdir(s.where);
      await must(sys, 'mount', ['-t', s.type, ...(s.options ? ['-o', s.options] : []), s.what, s.where], describe(s));
      return;
    }
    case 'write':
      try { await sys.writeFile(s.path, s.text); } catch (e) { if (!s.optional) throw new StepError(`write ${s.path}: ${(e as Error).message}`); }
      return;
    case 'modules': {
      const loaded = new Set<string>();
      let quietFor = 0;
      for (let waited = 0; quietFor < s.quiet && waited < s.max; waited += 500) {
        const found = (await must(sys, 'find', ['/sys/devices', '-name', 'modalias'], 'list device modaliases')).split('\n').filter(Boolean);
        const fresh = new Set<string>();
        for (const f of found) {
          const a = (await sys.readFile(f).catch(() => '')).trim();
          if (a && !loaded.has(a)) fresh.add(a);
        }
        for (const a of fresh) loaded.add(a);
        // Most aliases match no module (built in, or no driver needed): modprobe -q stays quiet about those.
        if (fresh.size > 0) await sys.run('modprobe', ['-q', '-a', ...fresh]);
        quietFor = fresh.size > 0 ? 0 : quietFor + 500;
        await sys.sleep(500);
      }
      sys.log(`drivers: ${(await sys.run('lsmod', [])).out.split('\n').slice(1).filter(Boolean).length} modules loaded`);
      return;
    }
    case 'network': {
      if (s.optional) {
        // The menu (a single machine booted from a stick) captures and restores without a network.
        try { await runStep({ ...s, optional: false }, sys); } catch (e) { if (!(e instanceof StepError)) throw e; sys.log(`network: none (${e.message}); the menu works without it`); }
        return;
      }
      const nics = (await sys.list('/sys/class/net')).filter((n) => n !== 'lo').sort();
      await sys.run('ip', ['link', 'set', 'lo', 'up']);
      if (nics.length === 0) throw new StepError('no network interface: no driver for this machine\'s NIC?');
      for (const n of nics) await sys.run('ip', ['link', 'set', n, 'up']);
      const deadline = s.seconds * 1000;
      let waited = 0;
      const leases: string[] = [];
      while (leases.length === 0 && waited < deadline) {
        const results = await Promise.all(nics.map(async (n) => {
          const r = await sys.run('udhcpc', ['-i', n, '-f', '-q', '-n', '-t', '3', '-T', '2', '-s', '/etc/udhcpc.script']);
          return r.code === 0 ? n : undefined;
        }));
        for (const n of results) if (n) leases.push(n);
        if (leases.length === 0) { await sys.sleep(1000); waited += 7000; }
      }
      if (leases.length === 0) throw new StepError(`no DHCP answer on ${nics.join(', ')} within ${s.seconds} s (cable? DHCP server?)`);
      const addrs = (await sys.run('ip', ['-4', '-o', 'addr', 'show'])).out.split('\n').filter((l) => l && !/ lo /.test(l))
        .map((l) => l.split(/\s+/).slice(1, 4).join(' '));
      sys.log(`network: ${addrs.join('; ')}`);
      return;
    }
    case 'console': {
      // A serial console does not know its size; give the UI a sane one. A VT already knows.
      const active = (await sys.readFile('/sys/class/tty/console/active').catch(() => '')).trim().split(/\s+/);
      const serial = active.filter((n) => /^tty(S|AMA|USB)\d+$/.test(n));
      for (const n of serial) {
        const r = await sys.run('stty', ['-F', `/dev/${n}`, 'cols', String(s.cols), 'rows', String(s.rows)]);
        if (r.code !== 0) throw new StepError(`stty -F /dev/${n}: ${r.out.trim() || `exit ${r.code}`}`);
      }
      if (serial.length > 0) sys.log(`console: ${serial.map((n) => `/dev/${n}`).join(', ')} set to ${s.cols}x${s.rows}`);
      return;
    }
  }
}

/** Run the steps; a failure is shown and a shell opened, then the step is tried again. */
export async function runSteps(steps: readonly Step[], sys: Sys, shell: (why: string) => Promise<void>): Promise<void> {
  for (let i = 0; i < steps.length; i++) {
    const s = steps[i]!;
    try {
      await runStep(s, sys);
    } catch (e) {
      const why = `MUST: step ${i + 1} of ${steps.length} failed (${describe(s)}): ${(e as Error).message}`;
      sys.log(why);
      await shell(why);
      i--;
    }
  }
}

export interface Launch {
  argv: string[];
  /** A shell instead of MUST. */
  shell: boolean;
}

export type ImageSpec =
  | { kind: 'device'; path: string }
  | { kind: 'file'; device: string; path: string }
  | { kind: 'http'; url: string };

/** must.image=: a device (/dev/sdb, /dev/nvme0n1p3), a file on one (/dev/sdb1:/images/lab.img, LABEL=IMAGES:/lab.img), or a URL. */
export function parseImageSpec(spec: string): ImageSpec | { error: string } {
  if (/^https?:\/\//.test(spec)) return { kind: 'http', url: spec };
  const m = /^((?:\/dev\/\S+?)|(?:LABEL=[^:]+)|(?:UUID=[^:]+)):(\/.+)$/.exec(spec);
  if (m) return { kind: 'file', device: m[1]!, path: m[2]! };
  if (spec.startsWith('/dev/')) return { kind: 'device', path: spec };
  return { error: `must.image=${spec}: expected /dev/DEVICE, DEVICE:/path/file, LABEL=NAME:/path/file or http://...` };
}

/** What init prepared for master mode: the image as a local path, the appliance files if it booted from CD/USB. */
export interface Prepared { image?: string; appliance?: string }

/** The MUST command line for the mode the kernel line asks for. */
export function modeCommand(b: BootSettings, prepared: Prepared = {}): Launch | { error: string } {
  const net = [
    ...(b.server ? ['--server', b.server] : []), ...(b.group ? ['--group', b.group] : []),
    ...(b.port ? ['--port', String(b.port)] : []), ...(b.iface ? ['--iface', b.iface] : []),
  ];
  switch (b.mode) {
    case 'shell': return { argv: [], shell: true };
    case 'client': {
      // The client applies the disk rule once the master says how large the image is; with no
      // rule it shows the disks to pick from. Unattended only when the line says so.
      const disk = b.disk ? ['--disk', b.disk, ...(b.auto ? ['--yes'] : [])] : [];
      // The client counts down to the reboot (a key cancels it) and init then does it.
      const after = b.after === 'shell' ? [] : ['--after', b.after];
      return { argv: ['client', ...disk, ...after, ...(b.key ? ['--trust', b.key] : []), ...net], shell: false };
    }
    case 'master': {
      if (!b.image) return { error: 'must.mode=master needs must.image= (a disk, partition or image file to serve)' };
      if (!prepared.image) return { error: `must.image=${b.image} could not be made available` };
      const pxe: string[] = [];
      if (b.pxe) {
        if (!prepared.appliance) return { error: 'must.pxe needs the MUST CD or USB stick this machine booted from (its kernel and initramfs boot the lab)' };
        pxe.push('--pxe', '--appliance', prepared.appliance, '--records', '/run/must-records.json');
        if (b.pxe.startsWith('range:')) pxe.push('--dhcp-range', b.pxe.slice(6));
        if (b.disk) pxe.push('--disk', b.disk);
      }
      return { argv: ['master', '--image', prepared.image, ...pxe, ...net], shell: false };
    }
    case 'relay': {
      // A relay follows the upstream it is told, never the first master it hears.
      if (!b.server) return { error: 'must.mode=relay needs must.server= (the master or the relay above, HOST[:PORT])' };
      const lan = [...(b.group ? ['--group', b.group] : []), ...(b.port ? ['--port', String(b.port)] : []), ...(b.iface ? ['--iface', b.iface] : [])];
      return { argv: ['relay', '--upstream', b.server, ...lan], shell: false };
    }
    case 'menu': return { argv: ['menu'], shell: false };
  }
}
