// The flagship: a master boots a lab. In a network namespace, `must master --pxe` and two
// PC VMs with empty disks set to boot from the network first: a BIOS PC (QEMU's iPXE ROM)
// and a UEFI PC (OVMF's own PXE, which fetches ipxe.efi over TFTP). The BIOS PC loses power
// mid-imaging and is switched on again. Both PXE-boot MUST, image their disks, reboot, are
// sent to their local disks and boot the image (a marker on the serial console); the
// records say verified; a second power-on of both goes straight to the local disk.

import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { PcRecord } from '../../src/boot/records.ts';
import { must, sha256, waitFor } from '../net/helpers.ts';
import { isRoot } from '../net/netns.ts';
import { buildBootDisk, MARKER } from './bootdisk.ts';
import { type Lan, createLan } from './lan.ts';
import { APPLIANCE, applianceBuilt, startVm, type Vm } from './qemu.ts';

const skip = !isRoot() ? 'VM tests need root' : !applianceBuilt() ? 'no appliance: run scripts/build-appliance' : false;
let dir = '';
let lan: Lan | undefined;
before(() => { if (!skip) dir = mkdtempSync(join(tmpdir(), 'must-lab-')); });
after(() => { lan?.destroy(); if (dir) rmSync(dir, { recursive: true, force: true }); });

const MIN = 60_000;

interface Pc { name: string; mac: string; uefi: boolean; disk: string; tap: string }

function powerOn(pc: Pc, l: Lan): Vm {
  return startVm({
    name: pc.name, wrap: l.wrap, reboot: true, memory: 1024, cpus: 1,
    uefi: pc.uefi ? { vars: join(dir, `${pc.name}.vars.fd`) } : undefined,
    args: [
      '-netdev', `tap,id=n0,ifname=${pc.tap},script=no,downscript=no`,
      // The UEFI PC uses the firmware's own PXE (no iPXE ROM), so the first stage comes over TFTP.
      '-device', `virtio-net-pci,netdev=n0,mac=${pc.mac},bootindex=0${pc.uefi ? ',romfile=' : ''}`,
      '-drive', `file=${pc.disk},format=raw,if=none,id=d0`, '-device', 'virtio-blk-pci,drive=d0,bootindex=1',
    ],
  });
}

test('a master boots a lab: PXE, imaging, reboot into the image, records, second power-on', { skip, timeout: 30 * MIN }, async () => {
  lan = createLan('mustl-lab');
  const l = lan;
  const image = buildBootDisk(join(dir, 'bootdisk'), join(APPLIANCE, 'vmlinuz'));
  const pcs: Pc[] = [
    { name: 'pc1', mac: '52:54:00:4d:00:01', uefi: false },
    { name: 'pc2', mac: '52:54:00:4d:00:02', uefi: true },
  ].map((p, i) => {
    const disk = join(dir, `${p.name}.img`);
    writeFileSync(disk, new Uint8Array(0));
    execFileSync('truncate', ['-s', '64M', disk]);
    return { ...p, disk, tap: l.tap(`mtap${i}`) };
  });
  const records = join(dir, 'records.json');
  // 16 Mbit/s: the 25 MiB image takes ~13 s, so the power cut lands mid-imaging.
  const master = must(['master', '--image', image.path, '--pxe', '--dhcp-range', '10.78.0.100,10.78.0.199', '--iface', 'br0',
    '--appliance', APPLIANCE, '--records', records, '--wait', '15', '--rate', '16', '--client-timeout', '300'], { wrap: l.wrap });
  const vms = new Map<string, Vm>();
  try {
    await waitFor(master, /master pxe dhcp="range/, MIN);
    for (const pc of pcs) vms.set(pc.name, powerOn(pc, l));

    // pc1 loses power while it is being imaged, and is switched on again.
    const pc1 = vms.get('pc1')!;
    // Receiving for real: a progress line also comes while the PC waits for the start (phase=waiting),
    // and a cut then would land before the PC ever joined.
    await pc1.waitFor(/client\/\S+ (phase|progress) phase=(receiving|repairing)/, 8 * MIN);
    pc1.kill();
    await pc1.exited;
    assert.doesNotMatch(pc1.serial(), /client\/\S+ verified/, 'pc1 finished before the power cut');
    vms.set('pc1', powerOn(pcs[0]!, l));

    // Each PC: imaged and verified, reboots, is sent to its disk, boots the image, powers off.
    await Promise.all(pcs.map(async (pc) => {
      const vm = vms.get(pc.name)!;
      await vm.waitFor(/client\/\S+ verified /, 12 * MIN);
      await vm.waitFor(new RegExp(MARKER), 6 * MIN);
      assert.equal(await vm.exited, 0, `${pc.name} did not power off after the marker`);
      assert.equal(sha256(readFileSync(pc.disk).subarray(0, image.bytes.length)), sha256(image.bytes), `${pc.name}'s disk differs from the image`);
    }));
    assert.match(master.output(), /rejoined client=\S+/, 'pc1 was not recognised when it came back');
    const recs = JSON.parse(readFileSync(records, 'utf8')) as PcRecord[];
    for (const pc of pcs) {
      const r = recs.find((x) => x.mac === pc.mac);
      assert.ok(r, `no record for ${pc.name} (${pc.mac})`);
      assert.equal(r.result, 'verified', `${pc.name}: ${JSON.stringify(r)}`);
      assert.match(r.digest, /^[0-9a-f]{64}$/);
      assert.ok(r.start && r.end && r.end >= r.start, `${pc.name}: start ${r.start}, end ${r.end}`);
      assert.match(master.output(), new RegExp(`boot mac=${pc.mac} .*gets="local disk"`), `${pc.name} was never sent to its disk`);
    }

    // Switched on again, the PCs go straight to their disks.
    const before = master.output().length;
    const again = pcs.map((pc) => ({ pc, vm: powerOn(pc, l) }));
    for (const { pc, vm } of again) vms.set(`${pc.name}-again`, vm);
    await Promise.all(again.map(async ({ pc, vm }) => {
      await vm.waitFor(new RegExp(MARKER), 6 * MIN);
      assert.doesNotMatch(vm.serial(), /MUST: starting/, `${pc.name} booted MUST again`);
    }));
    assert.doesNotMatch(master.output().slice(before), /joined client=/, 'a PC joined the session on its second power-on');

    master.child.kill('SIGTERM');
    const m = await master.done;
    assert.equal(m.code, 0, `master: ${m.out.slice(-3000)}`);
    assert.match(m.out, /finished ok=true clients=2 verified=2/);
    const csv = execFileSync(process.execPath, ['--disable-warning=ExperimentalWarning', join(import.meta.dirname, '../../src/main.ts'), 'records', records, '--csv'], { encoding: 'utf8' });
    assert.equal(csv.trim().split('\n').length, 3, csv);
  } catch (e) {
    // What the master saw is half the story of a failure.
    (e as Error).message += `\n--- master's last lines ---\n${master.output().slice(-5000)}`;
    throw e;
  } finally {
    for (const vm of vms.values()) vm.kill();
    master.child.kill('SIGKILL');
  }
});

test('ProxyDHCP beside the lab\'s own DHCP server: a PC gets its address from one, MUST from the other', { skip, timeout: 10 * MIN }, async () => {
  const l = createLan('mustp-lab', '10.79.0.1');
  const router = 'mustp-dhcp';
  const procs: Array<{ kill(): void }> = [];
  try {
    // The lab's DHCP server, on another host on the same switch: addresses only, no boot information.
    try { execFileSync('ip', ['netns', 'del', router], { stdio: 'ignore' }); } catch { /* none */ }
    execFileSync('ip', ['netns', 'add', router]);
    const inLan = (...a: string[]): void => { execFileSync('ip', ['netns', 'exec', l.ns, 'ip', ...a]); };
    const inRouter = (...a: string[]): void => { execFileSync('ip', ['netns', 'exec', router, 'ip', ...a]); };
    inLan('link', 'add', 'vdhcp', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', router);
    inLan('link', 'set', 'vdhcp', 'master', 'br0', 'up');
    inRouter('addr', 'add', '10.79.0.2/24', 'dev', 'eth0');
    inRouter('link', 'set', 'eth0', 'up');
    inRouter('link', 'set', 'lo', 'up');
    const labDhcp = spawn('ip', ['netns', 'exec', router, 'dnsmasq', '--keep-in-foreground', '--log-facility=-', '--port=0', '--interface=eth0', '--bind-interfaces',
      '--dhcp-range=10.79.0.100,10.79.0.199,255.255.255.0,1h', `--dhcp-leasefile=${join(dir, 'lab-leases')}`, '--pid-file=', '--user=root', '--log-dhcp'], { stdio: 'ignore' });
    procs.push(labDhcp);

    const image = buildBootDisk(join(dir, 'proxy-disk'), join(APPLIANCE, 'vmlinuz'));
    const master = must(['master', '--image', image.path, '--pxe', '--iface', 'br0', '--appliance', APPLIANCE,
      '--records', join(dir, 'proxy-records.json'), '--wait', '600'], { wrap: l.wrap });
    procs.push(master.child);
    await waitFor(master, /master pxe dhcp="proxy on 10\.79\.0\.0"/, MIN);
    const disk = join(dir, 'proxy-pc.img');
    writeFileSync(disk, new Uint8Array(0));
    execFileSync('truncate', ['-s', '64M', disk]);
    const vm = powerOn({ name: 'proxy-pc', mac: '52:54:00:4d:00:09', uefi: false, disk, tap: l.tap('ptap0') }, l);
    procs.push(vm);
    try {
      await vm.waitFor(/MUST: network: eth0 inet 10\.79\.0\.1\d\d/, 4 * MIN);
      await vm.waitFor(/client\/\S+ found master=10\.79\.0\.1 /, 2 * MIN);
      await waitFor(master, /boot mac=52:54:00:4d:00:09 .*gets="MUST client"/, MIN);
      await waitFor(master, /joined client=\S+ .*ip=10\.79\.0\.1\d\d/, MIN);
      assert.doesNotMatch(master.output(), /dnsmasq\/lease/, 'the master handed out an address in proxy mode');
    } catch (e) {
      (e as Error).message += `\n--- master ---\n${master.output().slice(-3000)}`;
      throw e;
    }
  } finally {
    for (const p of procs) p.kill();
    await new Promise((r) => setTimeout(r, 300));
    l.destroy();
    try { execFileSync('ip', ['netns', 'del', router]); } catch { /* gone */ }
  }
});
