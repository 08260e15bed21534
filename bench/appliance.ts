// The appliance's size and boot time: the initramfs against its 40 MiB goal, and seconds from
// QEMU's start (software emulation, as CI has it) to MUST's first screen, booted three ways:
// kernel + initramfs given to QEMU, PXE (iPXE fetching both over HTTP from the static tree),
// and the ISO as a CD. Needs root and a built appliance (scripts/build-appliance).
//
//   node bench/appliance.ts [--runs N]

import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { isRoot } from '../test/net/netns.ts';
import { createLan, servePxeTree } from '../test/vm/lan.ts';
import { APPLIANCE, applianceBuilt, startVm } from '../test/vm/qemu.ts';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '1' } } });
if (!isRoot()) { console.error('bench/appliance.ts: needs root (network namespaces, tap devices)'); process.exit(2); }
if (!applianceBuilt()) { console.error('bench/appliance.ts: no appliance in out/appliance: run scripts/build-appliance'); process.exit(2); }

const GOAL = 40 * 2 ** 20;
const dir = mkdtempSync(join(tmpdir(), 'must-bench-appliance-'));
const disk = join(dir, 'pc.img');
writeFileSync(disk, new Uint8Array(0));
execFileSync('truncate', ['-s', '64M', disk]);

// A bench stopped by a signal takes its VM with it.
let running: { kill(): void } | undefined;
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => { running?.kill(); rmSync(dir, { recursive: true, force: true }); process.exit(130); });

/** Seconds from QEMU's start until the console shows `screen`. */
async function boot(name: string, args: string[], screen: RegExp, wrap?: string[]): Promise<number> {
  const t0 = performance.now();
  const vm = startVm({ name, args, wrap });
  running = vm;
  try {
    await vm.waitFor(screen, 600_000);
    return (performance.now() - t0) / 1000;
  } finally { vm.kill(); await vm.exited; }
}

const CLIENT = /searching client=/;
const ways: Array<[string, () => Promise<number>]> = [
  ['kernel + initramfs', () => boot('bench-direct', [
    '-kernel', join(APPLIANCE, 'vmlinuz'), '-initrd', join(APPLIANCE, 'initrd.zst'),
    '-append', 'console=ttyS0,115200 panic=5 must.mode=client must.disk=auto must.auto=1',
    '-drive', `file=${disk},format=raw,if=virtio`, '-nic', 'user,model=virtio-net-pci',
  ], CLIENT)],
  ['PXE (iPXE, HTTP)', async () => {
    const lan = createLan('mustb-pxe');
    const pxe = servePxeTree(lan, { appliance: APPLIANCE, dir, cmdline: 'must.mode=client must.disk=auto must.auto=1 must.iface=eth0' });
    try {
      const tap = lan.tap('mbtap0');
      return await boot('bench-pxe', ['-boot', 'n', '-netdev', `tap,id=n0,ifname=${tap},script=no,downscript=no`, '-device', 'virtio-net-pci,netdev=n0,bootindex=0',
        '-drive', `file=${disk},format=raw,if=virtio`], CLIENT, lan.wrap);
    } finally { pxe.kill(); lan.destroy(); }
  }],
  ['ISO as CD (BIOS), to the menu', () => boot('bench-iso', [
    '-drive', `file=${join(APPLIANCE, 'must.iso')},format=raw,if=none,id=cd,readonly=on,media=cdrom`, '-device', 'ide-cd,drive=cd,bootindex=0',
    '-nic', 'none',
  ], /Choice: /)],
];

try {
  const size = statSync(join(APPLIANCE, 'initrd.zst')).size;
  console.log(`bench/appliance: ${new Date().toISOString()}, ${execFileSync('nproc', { encoding: 'utf8' }).trim()} cores, QEMU without KVM`);
  console.log(`initramfs ${(size / 2 ** 20).toFixed(1)} MiB (goal ${GOAL / 2 ** 20} MiB: ${size <= GOAL ? 'met' : `over by ${((size - GOAL) / 2 ** 20).toFixed(1)} MiB`}); must executable ${(statSync(join(APPLIANCE, 'must')).size / 2 ** 20).toFixed(1)} MiB; ISO ${(statSync(join(APPLIANCE, 'must.iso')).size / 2 ** 20).toFixed(1)} MiB\n`);
  console.log('| boot | seconds to the first MUST screen (each run) |');
  console.log('|---|---|');
  for (const [name, f] of ways) {
    const s: number[] = [];
    for (let i = 0; i < Number(values.runs); i++) s.push(await f());
    console.log(`| ${name} | ${s.map((x) => x.toFixed(1)).join(', ')} |`);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
