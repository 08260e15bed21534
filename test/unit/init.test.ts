// The appliance's boot steps, run against a fake system: no root, no VM.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseCmdline } from '../../src/cli/kernel.ts';
import type { Disk } from '../../src/disk/inventory.ts';
import { chooseDisk } from '../../src/disk/inventory.ts';
import { INIT_STEPS, type Sys, initSteps, modeCommand, parseImageSpec, runSteps } from '../../src/boot/init.ts';

function fakeSys(o: { nics: string[]; dhcpOk: (nic: string, attempt: number) => boolean; aliasesAppear?: string[][] }): { sys: Sys; calls: string[]; logs: string[] } {
  const calls: string[] = [], logs: string[] = [], files = new Map<string, string>();
  let round = 0;
  const attempts = new Map<string, number>();
  const sys: Sys = {
    run: async (cmd, args) => {
      calls.push([cmd, ...args].join(' '));
      if (cmd === 'find') {
        const rounds = o.aliasesAppear ?? [['pci:v00001AF4d00001000', 'pci:v00008086d0000100E']];
        const now = rounds.slice(0, ++round).flat();
        now.forEach((a, i) => files.set(`/sys/devices/x${i}/modalias`, a));
        return { code: 0, out: now.map((_, i) => `/sys/devices/x${i}/modalias`).join('\n') };
      }
      if (cmd === 'udhcpc') {
        const nic = args[1]!;
        const n = (attempts.get(nic) ?? 0) + 1;
        attempts.set(nic, n);
        return { code: o.dhcpOk(nic, n) ? 0 : 1, out: '' };
      }
      if (cmd === 'ip' && args[0] === '-4') return { code: 0, out: `2: ${o.nics[0]}    inet 10.1.1.5/24 brd 10.1.1.255 scope global ${o.nics[0]}\n` };
      if (cmd === 'lsmod') return { code: 0, out: 'Module Size Used\nvirtio_net 1 0\n' };
      return { code: 0, out: '' };
    },
    readFile: async (p) => { const v = files.get(p); if (v === undefined) throw new Error('ENOENT'); return v; },
    writeFile: async (p, t) => { files.set(p, t); },
    mkdir: async (p) => { calls.push(`mkdir ${p}`); },
    list: async (d) => (d === '/sys/class/net' ? ['lo', ...o.nics] : ['vda']),
    sleep: async () => {},
    log: (l) => logs.push(l),
  };
  return { sys, calls, logs };
}

test('steps: mounts, sysctls, drivers by modalias over rounds, DHCP on every NIC', async () => {
  const { sys, calls, logs } = fakeSys({ nics: ['eth0', 'eth1'], dhcpOk: (n) => n === 'eth1', aliasesAppear: [['pci:a'], ['usb:b']] });
  await sys.writeFile('/sys/class/tty/console/active', 'tty0 ttyS0\n');
  let shells = 0;
  await runSteps(INIT_STEPS, sys, async () => { shells++; });
  assert.equal(shells, 0);
  assert.ok(calls.includes('mount -t devpts -o ptmxmode=0666 devpts /dev/pts'));
  assert.ok(calls.includes('modprobe -q -a pci:a'), 'first round loads what is there');
  assert.ok(calls.includes('modprobe -q -a usb:b'), 'second round loads what the first revealed, and only that');
  assert.ok(calls.some((c) => c.startsWith('udhcpc -i eth0')) && calls.some((c) => c.startsWith('udhcpc -i eth1')));
  assert.ok(logs.some((l) => /network: /.test(l)));
  // The serial console gets a size (the VT knows its own).
  assert.ok(calls.includes('stty -F /dev/ttyS0 cols 100 rows 30') && !calls.some((c) => c.includes('/dev/tty0')), calls.join('\n'));
});

test('a failing step opens a shell, then is tried again', async () => {
  const { sys } = fakeSys({ nics: ['eth0'], dhcpOk: (_, attempt) => attempt > 6 });
  const shells: string[] = [];
  await runSteps(INIT_STEPS, sys, async (why) => { shells.push(why); });
  assert.equal(shells.length, 1);
  assert.match(shells[0]!, /step \d+ of \d+ failed \(bring up the network \(DHCP on every NIC\)\): no DHCP answer on eth0/);
});

const disk = (name: string, size: number, extra: Partial<Disk> = {}): Disk => ({
  name, path: `/dev/${name}`, size, removable: false, readOnly: false, transport: 'sata', model: `model-${name}`, serial: `S-${name}`, bootMedium: false, ...extra,
});

test('the kernel line becomes a MUST command line', () => {
  assert.deepEqual(modeCommand(parseCmdline('must.mode=client must.disk=auto must.auto=1 must.server=10.0.0.1 must.port=7800')),
    { argv: ['client', '--disk', 'auto', '--yes', '--after', 'reboot', '--server', '10.0.0.1', '--port', '7800'], shell: false });
  // Attended with a rule: the client names the disk the rule chose and asks.
  assert.deepEqual(modeCommand(parseCmdline('must.mode=client must.disk=model:Samsung must.after=poweroff')),
    { argv: ['client', '--disk', 'model:Samsung', '--after', 'poweroff'], shell: false });
  // No rule: the client shows the disks (once it knows the image size) and asks.
  assert.deepEqual(modeCommand(parseCmdline('must.mode=client must.after=shell')), { argv: ['client'], shell: false });
  assert.deepEqual(modeCommand(parseCmdline('must.mode=master must.image=/dev/sdb1'), { image: '/dev/sdb1' }), { argv: ['master', '--image', '/dev/sdb1'], shell: false });
  assert.deepEqual(modeCommand(parseCmdline('must.mode=master must.image=LABEL=IMG:/lab.img must.pxe=range:10.0.0.100,10.0.0.200'), { image: '/mnt/image-source/lab.img', appliance: '/run/appliance' }),
    { argv: ['master', '--image', '/mnt/image-source/lab.img', '--pxe', '--appliance', '/run/appliance', '--records', '/run/must-records.json', '--dhcp-range', '10.0.0.100,10.0.0.200'], shell: false });
  assert.match((modeCommand(parseCmdline('must.mode=master must.image=/dev/sdb must.pxe=proxy'), { image: '/dev/sdb' }) as { error: string }).error, /CD or USB stick/);
  assert.match((modeCommand(parseCmdline('must.mode=master')) as { error: string }).error, /must.image/);
  assert.deepEqual(modeCommand(parseCmdline('must.mode=shell')), { argv: [], shell: true });
  assert.deepEqual(modeCommand(parseCmdline('must.mode=relay must.server=10.0.0.1:7800 must.port=7800')),
    { argv: ['relay', '--upstream', '10.0.0.1:7800', '--port', '7800'], shell: false });
  assert.match((modeCommand(parseCmdline('must.mode=relay')) as { error: string }).error, /must\.server=/);
});

test('disk rules: never the boot medium, refuse ambiguity, name what is wrong', () => {
  const stick = disk('sdc', 8e9, { removable: true, transport: 'usb', bootMedium: true });
  assert.equal((chooseDisk([disk('nvme0n1', 1e12), disk('sda', 5e11), stick], 'auto') as { disk: Disk }).disk.name, 'nvme0n1');
  assert.match((chooseDisk([disk('sda', 5e11), disk('sdb', 5e11)], 'auto') as { reason: string }).reason, /ambiguous: \/dev\/sda .* and \/dev\/sdb/);
  assert.match((chooseDisk([stick], '/dev/sdc') as { reason: string }).reason, /holds the MUST appliance/);
  assert.match((chooseDisk([disk('sda', 1e9)], 'auto', 2e9) as { reason: string }).reason, /no fixed disk can take the image/);
  assert.equal((chooseDisk([disk('sda', 5e11), disk('sdb', 5e11, { serial: 'WD-123' })], 'serial:WD-123') as { disk: Disk }).disk.name, 'sdb');
  assert.equal((chooseDisk([disk('sda', 5e11, { model: 'Samsung SSD 870' })], 'model:samsung') as { disk: Disk }).disk.name, 'sda');
  assert.match((chooseDisk([disk('sda', 5e11)], 'largest') as { reason: string }).reason, /expected auto/);
});

test('must.image= forms', () => {
  assert.deepEqual(parseImageSpec('/dev/nvme0n1'), { kind: 'device', path: '/dev/nvme0n1' });
  assert.deepEqual(parseImageSpec('/dev/sdb1:/images/lab 2026.img'), { kind: 'file', device: '/dev/sdb1', path: '/images/lab 2026.img' });
  assert.deepEqual(parseImageSpec('LABEL=IMAGES:/lab.img'), { kind: 'file', device: 'LABEL=IMAGES', path: '/lab.img' });
  assert.deepEqual(parseImageSpec('http://10.0.0.5/lab.img'), { kind: 'http', url: 'http://10.0.0.5/lab.img' });
  assert.match((parseImageSpec('lab.img') as { error: string }).error, /expected \/dev\/DEVICE/);
  assert.throws(() => parseCmdline('must.mode=master must.pxe=yes'), /must.pxe=yes/);
});

test('without a network the menu still comes up; a mode that needs the network stops at the step', async () => {
  for (const [cmdline, shellsWanted] of [['quiet', 0], ['quiet must.mode=shell', 0], ['must.mode=client must.disk=auto', 1]] as const) {
    const { sys, logs } = fakeSys({ nics: [], dhcpOk: () => false });
    const shells: string[] = [];
    await runSteps(initSteps(cmdline), sys, async (why) => { shells.push(why); throw new Error('stop at the first shell'); }).catch(() => {});
    assert.equal(shells.length, shellsWanted, `${cmdline}: ${shells.join('; ')}`);
    if (shellsWanted === 0) assert.ok(logs.some((l) => /network: none \(no network interface.*\); the menu works without it/.test(l)), logs.join('\n'));
    else assert.match(shells[0]!, /no network interface/);
  }
});
