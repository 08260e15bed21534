// The appliance booted for real: kernel + initramfs, the ISO as CD and as USB disk under
// BIOS and UEFI, and PXE through dnsmasq and iPXE in a network namespace, where the booted
// PC images its disk from a master and reboots. Assertions read the serial console.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { sampleDisk } from '../../src/demo/sample.ts';
import { must, sha256, waitFor } from '../net/helpers.ts';
import { isRoot } from '../net/netns.ts';
import { createLan, servePxeTree } from './lan.ts';
import { APPLIANCE, applianceBuilt, startVm } from './qemu.ts';

const skip = !isRoot() ? 'VM tests need root (network namespaces, tap devices)' : !applianceBuilt() ? 'no appliance: run scripts/build-appliance' : false;
let dir = '';
before(() => { if (!skip) dir = mkdtempSync(join(tmpdir(), 'must-vm-')); });
after(() => { if (dir) rmSync(dir, { recursive: true, force: true }); });

const BOOT = 120_000;

test('kernel + initramfs: drivers, DHCP, the hardware summary, and the client screen searching for a master on the PC\'s display', { skip }, async () => {
  const disk = join(dir, 'direct.img');
  writeFileSync(disk, new Uint8Array(0));
  execFileSync('truncate', ['-s', '64M', disk]);
  const monitor = join(dir, 'direct.monitor');
  const vm = startVm({
    name: 'direct', monitor, args: [
      '-kernel', join(APPLIANCE, 'vmlinuz'), '-initrd', join(APPLIANCE, 'initrd.zst'),
      // As on a lab PC: the screen (a VT) and a serial console.
      '-append', 'console=tty0 console=ttyS0,115200 panic=5 must.mode=client must.disk=auto must.auto=1',
      '-drive', `file=${disk},format=raw,if=virtio`, '-nic', 'user,model=virtio-net-pci',
    ],
  });
  try {
    await vm.waitFor(/MUST: drivers: \d+ modules loaded/, BOOT);
    await vm.waitFor(/MUST: network: eth0 inet 10\.0\.2\.15/, BOOT);
    await vm.waitFor(/must client --disk auto --yes --after reboot \(screen on tty1, events on ttyS0\)/, BOOT);
    // The events reach the serial console as lines; sysfs and procfs gave the hardware.
    await vm.waitFor(/searching client=pc-\w+ .*target="chosen when the master is found"/, BOOT);
    const hw = await vm.waitFor(/hardware model=.* nics="eth0 52:54:00:12:34:56 [^"]* 10\.0\.2\.15" disks="\/dev\/vda 64\.0 MiB [^"]*"/, BOOT);
    assert.doesNotMatch(hw[0], /model=unknown|cpu=unknown/, hw[0]);
    // The display shows the client's screen.
    let screen = '';
    for (let i = 0; i < 60 && !/State +Searching for a master/.test(screen); i++) { await new Promise((r) => setTimeout(r, 1000)); screen = await vm.vgaText(); }
    assert.match(screen, /MUST +Multicast Synchronous Transfer/, screen);
    assert.match(screen, /State +Searching for a master/, screen);
    assert.match(screen, /Network +eth0 +52:54:00:12:34:56/, screen);
    assert.match(screen, /Disks +\/dev\/vda +64\.0 MiB/, screen);
    // scripts/screenshots keeps what the PC's display showed.
    if (process.env.MUST_SCREENSHOTS) writeFileSync(join(process.env.MUST_SCREENSHOTS, 'appliance-vga.txt'), `${screen.trimEnd()}\n`);
  } finally { vm.kill(); }
});

// (The USB disk under BIOS boots in the menu test below.)
for (const [medium, uefi] of [['CD', false], ['CD', true], ['USB disk', true]] as const) {
  test(`ISO as ${medium}, ${uefi ? 'UEFI (OVMF)' : 'BIOS'}: boots to the MUST menu`, { skip }, async () => {
    const iso = join(APPLIANCE, 'must.iso');
    const media = medium === 'CD'
      ? ['-drive', `file=${iso},format=raw,if=none,id=cd,readonly=on,media=cdrom`, '-device', uefi ? 'ide-cd,drive=cd,bootindex=0' : 'ide-cd,drive=cd,bootindex=0']
      : ['-device', 'qemu-xhci', '-drive', `file=${iso},format=raw,if=none,id=stick,readonly=on`, '-device', 'usb-storage,drive=stick,bootindex=0'];
    const vm = startVm({ name: `iso-${medium}-${uefi ? 'uefi' : 'bios'}`, args: [...media, '-nic', 'user,model=virtio-net-pci'], uefi: uefi ? { vars: join(dir, `vars-${medium}.fd`) } : undefined });
    try {
      await vm.waitFor(/MUST: starting \(kernel 6\./, BOOT * 1.5);
      await vm.waitFor(/1 {2}Image this PC from the network/, BOOT);
      await vm.waitFor(/Choice: /, 20_000);
      if (medium === 'USB disk') {
        // The stick the PC booted from is never offered as a target.
        vm.child.stdin!.write('1\n');
        await vm.waitFor(/\/dev\/sd\w+ .*\(not usable: it holds the MUST appliance this machine booted from\)/, 30_000);
      }
    } finally { vm.kill(); }
  });
}

test('ISO as USB disk, BIOS: the menu captures this PC\'s disk to a file on a USB drive and restores that file to another disk', { skip }, async () => {
  const MIB = 1 << 20;
  const pc = join(dir, 'menu-pc.img'), drive = join(dir, 'menu-drive.img'), blank = join(dir, 'menu-blank.img');
  const original = sampleDisk(32 * MIB, 41);
  writeFileSync(pc, original);
  // The USB drive: a FAT filesystem over the whole device, as many sticks come.
  writeFileSync(drive, new Uint8Array(0));
  execFileSync('truncate', ['-s', '96M', drive]);
  execFileSync('mkfs.vfat', ['-n', 'IMAGES', drive]);
  writeFileSync(blank, new Uint8Array(0));
  execFileSync('truncate', ['-s', '32M', blank]);
  const iso = join(APPLIANCE, 'must.iso');
  const vm = startVm({
    name: 'menu-usb', args: [
      '-device', 'qemu-xhci', '-drive', `file=${iso},format=raw,if=none,id=stick,readonly=on`, '-device', 'usb-storage,drive=stick,bootindex=0',
      '-drive', `file=${pc},format=raw,if=virtio`, '-drive', `file=${drive},format=raw,if=virtio`, '-drive', `file=${blank},format=raw,if=virtio`,
      '-nic', 'none',
    ],
  });
  // Answer a prompt with the number the console shows in front of `line`.
  const pick = async (line: RegExp, prompt: RegExp, from: number, ms = 30_000): Promise<void> => {
    await vm.waitFor(prompt, ms, from);
    const m = new RegExp(`(\\d+) {2}${line.source}`).exec(vm.serial().slice(from));
    assert.ok(m, `no ${line} offered:\n${vm.serial().slice(from)}`);
    vm.child.stdin!.write(`${m[1]}\n`);
  };
  try {
    await vm.waitFor(/MUST: starting \(kernel 6\./, BOOT * 1.5);
    await vm.waitFor(/Choice: /, BOOT);
    // The stick the PC booted from is never offered as a target.
    vm.child.stdin!.write('1\n');
    await vm.waitFor(/\/dev\/sd\w+ .*\(not usable: it holds the MUST appliance this machine booted from\)/, 30_000);
    await vm.waitFor(/Disk to overwrite \(number\): /, 30_000);
    let at = vm.serial().length;
    vm.child.stdin!.write('0\n');
    await vm.waitFor(/No such usable disk\.[\s\S]*Choice: /, 30_000, at);
    vm.child.stdin!.write('2\n');
    await pick(/\/dev\/vda /, /Disk to capture \(number\): /, at);
    await pick(/\/dev\/vdb .*vfat {2}"IMAGES"/, /Filesystem to write the image file to \(number\): /, at);
    // The menu comes back at once: its prompt may be on the console before this line reads it.
    await vm.waitFor(/Captured \/dev\/vda to \S+\.must on \/dev\/vdb\.[\s\S]*Choice: /, 300_000, at);
    at = vm.serial().length;
    vm.child.stdin!.write('3\n');
    await pick(/\/dev\/vdb .*vfat/, /Filesystem holding the image file \(number\): /, at);
    await pick(/\S+-vda-\d{8}-\d{4}\.must/, /Image file \(number\): /, at);
    await pick(/\/dev\/vdc /, /Disk to overwrite \(number\): /, at);
    await vm.waitFor(/Everything on \/dev\/vdc is lost\. \[y\/N\] /, 30_000, at);
    vm.child.stdin!.write('y\n');
    await vm.waitFor(/Restored \S+\.must to \/dev\/vdc\./, 300_000, at);
    await vm.waitFor(/Restored [\s\S]*Choice: /, 30_000, at);
  } finally { vm.kill(); }
  await vm.exited;
  assert.equal(sha256(readFileSync(blank)), sha256(original), 'the restored disk differs from the captured one');
});

// The static tree of out/appliance/pxe behind a plain dnsmasq and HTTP server, as docs/PXE.md
// describes it: iPXE (kernel and initramfs over HTTP), and pxelinux (everything over TFTP, the
// BIOS alternative). (Imaging, the reboot and the disk's bytes are the flagship's, test/vm/lab.test.ts.)
for (const first of ['ipxe', 'pxelinux'] as const) {
  test(`PXE through dnsmasq and ${first === 'ipxe' ? 'iPXE' : 'pxelinux'} from the static tree: the PC boots MUST and finds the master`, { skip }, async () => {
    const lan = createLan(`mustv-${first === 'ipxe' ? 'ip' : 'pl'}`);
    const procs: Array<{ kill(): void }> = [];
    try {
      const tap = lan.tap('mtap0');
      // The boot tree, with an unattended client line (what the master's boot policy will decide per PC).
      const pxe = servePxeTree(lan, { appliance: APPLIANCE, dir, first, cmdline: 'must.mode=client must.disk=auto must.auto=1 must.after=reboot must.iface=eth0' });
      procs.push(pxe);
      writeFileSync(join(dir, 'lab.img'), sampleDisk(4 << 20, 31));
      const master = must(['master', '--image', join(dir, 'lab.img'), '--min-clients', '1', '--iface', 'br0'], { wrap: lan.wrap });
      procs.push(master.child);
      const disk = join(dir, `pc-${first}.img`);
      writeFileSync(disk, new Uint8Array(0));
      execFileSync('truncate', ['-s', '64M', disk]);
      const vm = startVm({
        name: `pxe-bios-${first}`, wrap: lan.wrap,
        args: ['-boot', 'n', '-netdev', `tap,id=n0,ifname=${tap},script=no,downscript=no`, '-device', 'virtio-net-pci,netdev=n0,bootindex=0',
          '-drive', `file=${disk},format=raw,if=virtio`],
      });
      procs.push(vm);
      try {
        if (first === 'pxelinux') await vm.waitFor(/PXELINUX \d/, BOOT);
        // pxelinux fetches the 40 MiB initramfs over TFTP: slower than iPXE's HTTP.
        await vm.waitFor(/MUST: network: eth0 inet 10\.78\.0\.1\d\d/, BOOT * (first === 'ipxe' ? 2 : 3));
        await vm.waitFor(/must client --disk auto --yes --after reboot/, BOOT);
        await vm.waitFor(/client\/\S+ found master=10\.78\.0\.1 image=lab\.img/, BOOT);
        await waitFor(master, /joined client=\S+ .*ip=10\.78\.0\.1\d\d/, 60_000);
        assert.match(pxe.dnsLog(), /DHCPACK/);
        if (first === 'ipxe') assert.match(pxe.dnsLog(), /boot\.ipxe/, 'dnsmasq never pointed iPXE at the boot script');
        else assert.match(pxe.dnsLog(), /sent \S*pxelinux\.cfg\/default/, 'pxelinux never read its configuration');
      } finally { vm.kill(); }
    } finally {
      for (const p of procs) p.kill();
      await new Promise((r) => setTimeout(r, 300));
      lan.destroy();
    }
  });
}

// dnsmasq is not in the initramfs (only a master booting the lab needs it): the CD/USB stick
// carries it in tools/ with the libraries the initramfs lacks. It must run there, on the
// initramfs's own loader and libc: unpack both and run it in a chroot.
test('the medium\'s tools/dnsmasq runs on the initramfs\'s libraries', { skip }, () => {
  const root = join(dir, 'root');
  execFileSync('mkdir', ['-p', root]);
  execFileSync('sh', ['-c', `zstd -dc '${join(APPLIANCE, 'initrd.zst')}' | (cd '${root}' && busybox cpio -idm 2>/dev/null)`]);
  assert.throws(() => readFileSync(join(root, 'bin/dnsmasq')), /ENOENT/, 'dnsmasq is still in the initramfs');
  execFileSync('mknod', [join(root, 'dev/urandom'), 'c', '1', '9']); // dnsmasq seeds its random numbers first
  execFileSync('xorriso', ['-osirrox', 'on', '-indev', join(APPLIANCE, 'must.iso'), '-extract', '/tools', join(root, 'tools')], { stdio: 'ignore' });
  const out = execFileSync('/usr/sbin/chroot', [root, '/tools/bin/dnsmasq', '--version'], { encoding: 'utf8', env: { LD_LIBRARY_PATH: '/tools/lib', PATH: '/bin' } });
  assert.match(out, /^Dnsmasq version \d/);
});
