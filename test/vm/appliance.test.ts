// The appliance booted for real: kernel + initramfs, the ISO as CD and as USB disk under
// BIOS and UEFI, and PXE through dnsmasq and iPXE in a network namespace, where the booted
// PC images its disk from a master and reboots. Assertions read the serial console.

import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { sampleDisk } from '../../src/demo/sample.ts';
import { must, waitFor } from '../net/helpers.ts';
import { isRoot } from '../net/netns.ts';
import { createLan } from './lan.ts';
import { APPLIANCE, applianceBuilt, startVm } from './qemu.ts';

const skip = !isRoot() ? 'VM tests need root (network namespaces, tap devices)' : !applianceBuilt() ? 'no appliance: run scripts/build-appliance' : false;
let dir = '';
before(() => { if (!skip) dir = mkdtempSync(join(tmpdir(), 'must-vm-')); });
after(() => { if (dir) rmSync(dir, { recursive: true, force: true }); });

const BOOT = 120_000;

test('kernel + initramfs: drivers, DHCP, and the client searching for a master', { skip }, async () => {
  const disk = join(dir, 'direct.img');
  writeFileSync(disk, new Uint8Array(0));
  execFileSync('truncate', ['-s', '64M', disk]);
  const vm = startVm({
    name: 'direct', args: [
      '-kernel', join(APPLIANCE, 'vmlinuz'), '-initrd', join(APPLIANCE, 'initrd.zst'),
      '-append', 'console=ttyS0,115200 panic=5 must.mode=client must.disk=auto must.auto=1',
      '-drive', `file=${disk},format=raw,if=virtio`, '-nic', 'user,model=virtio-net-pci',
    ],
  });
  try {
    await vm.waitFor(/MUST: drivers: \d+ modules loaded/, BOOT);
    await vm.waitFor(/MUST: network: eth0 inet 10\.0\.2\.15/, BOOT);
    await vm.waitFor(/must client --target \/dev\/vda --yes/, BOOT);
    await vm.waitFor(/searching client=pc-\w+ .*target=\/dev\/vda capacity=67108864/, BOOT);
  } finally { vm.kill(); }
});

for (const [medium, uefi] of [['CD', false], ['CD', true], ['USB disk', false], ['USB disk', true]] as const) {
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

// The static tree of out/appliance/pxe behind a plain dnsmasq and HTTP server, as docs/PXE.md
// describes it. (Imaging, the reboot and the disk's bytes are the flagship's, test/vm/lab.test.ts.)
test('PXE through dnsmasq and iPXE from the static tree: the PC boots MUST and finds the master', { skip }, async () => {
  const lan = createLan('mustv-lab');
  const procs: Array<{ kill(): void }> = [];
  try {
    const tap = lan.tap('mtap0');
    // The boot tree, with an unattended client line (what the master's boot policy will decide per PC).
    const tftp = join(dir, 'pxe');
    cpSync(join(APPLIANCE, 'pxe'), tftp, { recursive: true });
    writeFileSync(join(tftp, 'boot.ipxe'), readFileSync(join(tftp, 'boot.ipxe'), 'utf8')
      .replace(/must\.mode=client$/m, 'must.mode=client must.disk=auto must.auto=1 must.after=reboot must.iface=eth0'));
    writeFileSync(join(dir, 'dnsmasq.conf'), [
      'port=0', 'interface=br0', 'bind-interfaces', 'dhcp-range=10.78.0.100,10.78.0.199,255.255.255.0,1h',
      'enable-tftp', `tftp-root=${tftp}`, 'dhcp-match=set:ipxe,175', 'dhcp-match=set:efi64,option:client-arch,7',
      'dhcp-boot=tag:!ipxe,tag:!efi64,undionly.kpxe', 'dhcp-boot=tag:!ipxe,tag:efi64,ipxe.efi',
      'dhcp-boot=tag:ipxe,http://10.78.0.1:8080/boot.ipxe', `dhcp-leasefile=${join(dir, 'leases')}`, 'log-dhcp', 'user=root',
    ].join('\n'));
    const dnsmasq = spawn(lan.wrap[0]!, [...lan.wrap.slice(1), 'dnsmasq', '--no-daemon', `--conf-file=${join(dir, 'dnsmasq.conf')}`, '--pid-file='], { stdio: ['ignore', 'pipe', 'pipe'] });
    let dnsLog = '';
    dnsmasq.stderr.on('data', (d: Buffer) => { dnsLog += d.toString(); });
    procs.push(dnsmasq);
    procs.push(spawn(lan.wrap[0]!, [...lan.wrap.slice(1), 'busybox', 'httpd', '-f', '-p', '10.78.0.1:8080', '-h', tftp], { stdio: 'ignore' }));

    writeFileSync(join(dir, 'lab.img'), sampleDisk(4 << 20, 31));
    const master = must(['master', '--image', join(dir, 'lab.img'), '--min-clients', '1', '--iface', 'br0'], { wrap: lan.wrap });
    procs.push(master.child);
    const disk = join(dir, 'pc.img');
    writeFileSync(disk, new Uint8Array(0));
    execFileSync('truncate', ['-s', '64M', disk]);
    const vm = startVm({
      name: 'pxe-bios', wrap: lan.wrap,
      args: ['-boot', 'n', '-netdev', `tap,id=n0,ifname=${tap},script=no,downscript=no`, '-device', 'virtio-net-pci,netdev=n0,bootindex=0',
        '-drive', `file=${disk},format=raw,if=virtio`],
    });
    procs.push(vm);
    try {
      await vm.waitFor(/MUST: network: eth0 inet 10\.78\.0\.1\d\d/, BOOT * 2);
      await vm.waitFor(/must client --target \/dev\/vda --yes/, BOOT);
      await vm.waitFor(/client\/\S+ found master=10\.78\.0\.1 image=lab\.img/, BOOT);
      await waitFor(master, /joined client=\S+ .*ip=10\.78\.0\.1\d\d/, 60_000);
      assert.match(dnsLog, /DHCPACK/);
      assert.match(dnsLog, /boot\.ipxe/, 'dnsmasq never pointed iPXE at the boot script');
    } finally { vm.kill(); }
  } finally {
    for (const p of procs) p.kill();
    await new Promise((r) => setTimeout(r, 300));
    lan.destroy();
  }
});
