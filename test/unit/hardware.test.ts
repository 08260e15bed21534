// The hardware summary: the processor line (the kernel's model string, made short, and the
// count), and the machine, disks and NICs read from a sysfs tree.

import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { cpuName, readHardware } from '../../src/tui/hardware.ts';

test('a processor\'s model string loses its trade marks, its clock and its core count', () => {
  const cases: Array<[string, string]> = [
    ['Intel(R) Core(TM) i5-8500 CPU @ 3.00GHz', 'Intel Core i5-8500'],
    ['11th Gen Intel(R) Core(TM) i7-1165G7 @ 2.80GHz', '11th Gen Intel Core i7-1165G7'],
    ['Intel(R) Xeon(R) Gold 6230 CPU @ 2.10GHz', 'Intel Xeon Gold 6230'],
    ['AMD Ryzen 7 5800X 8-Core Processor', 'AMD Ryzen 7 5800X'],
    ['AMD EPYC', 'AMD EPYC'],
    ['QEMU Virtual CPU version 2.5+', 'QEMU Virtual CPU version 2.5+'],
  ];
  for (const [model, want] of cases) assert.equal(cpuName(model), want, model);
});

test('the summary names this machine\'s processor and counts its cores as /proc/cpuinfo does', async () => {
  const info = readFileSync('/proc/cpuinfo', 'utf8');
  const n = info.match(/^processor\s*:/gm)?.length ?? 0;
  const model = /^model name\s*:\s*(.*)$/m.exec(info)?.[1] ?? '';
  const hw = await readHardware([]);
  assert.ok(n > 0 && model, 'no processor in /proc/cpuinfo');
  assert.equal(hw.cpu, `${cpuName(model)}, ${n} core${n === 1 ? '' : 's'}`);
  assert.ok(hw.memory > 0);
});

/** A sysfs tree: `files` by path under it, `links` (block devices) to where they point. */
function fakeSys(files: Record<string, string>, links: Record<string, string> = {}): string {
  const root = mkdtempSync(join(tmpdir(), 'must-sys-'));
  for (const [p, text] of Object.entries(files)) { mkdirSync(dirname(join(root, p)), { recursive: true }); writeFileSync(join(root, p), text); }
  for (const [p, to] of Object.entries(links)) { mkdirSync(dirname(join(root, p)), { recursive: true }); symlinkSync(to, join(root, p)); }
  return root;
}

/** Block device `name` under devices/`bus`, with its size (sectors), spinning or not, model and serial. */
function blockDevice(bus: string, name: string, rotational: string, model: string, serial: string): { files: Record<string, string>; links: Record<string, string> } {
  const dev = `devices/${bus}/block/${name}`;
  return {
    files: { [`${dev}/size`]: '2048\n', [`${dev}/queue/rotational`]: `${rotational}\n`, [`${dev}/device/model`]: `${model}\n`, [`${dev}/device/serial`]: `${serial}\n` },
    links: { [`block/${name}`]: `../${dev}` },
  };
}

test('the summary reads the machine, its disks and NICs from sysfs alone', async () => {
  const disks = [
    blockDevice('pci0000:00/0000:00:17.0/ata1/host0/target0:0:0/0:0:0:0', 'sda', '0', 'Samsung SSD 860', 'S3Z1NB0K'),
    blockDevice('pci0000:00/0000:00:14.0/usb2/2-1/2-1:1.0/host6/target6:0:0/6:0:0:0', 'sdb', '1', 'Expansion HDD', 'NA9X'),
    blockDevice('pci0000:00/0000:00:1d.0/0000:3d:00.0/nvme/nvme0', 'nvme0n1', '0', 'WDC PC SN730', 'W123'),
    blockDevice('pci0000:00/0000:00:05.0/virtio2', 'vda', '1', '', ''),
  ];
  const sys = fakeSys({
    'class/dmi/id/sys_vendor': 'Dell Inc.\n', 'class/dmi/id/product_name': 'OptiPlex 7070\n',
    'class/net/enp0s31f6/address': '8c:ec:4b:00:11:22\n', 'class/net/enp0s31f6/speed': '1000\n', 'class/net/enp0s31f6/carrier': '1\n',
    'class/net/wlp2s0/address': '8c:ec:4b:00:11:23\n', 'class/net/wlp2s0/speed': '-1\n', 'class/net/wlp2s0/carrier': '0\n',
    ...Object.assign({}, ...disks.map((d) => d.files)),
  }, Object.assign({}, ...disks.map((d) => d.links)));
  try {
    const hw = await readHardware(undefined, sys);
    assert.equal(hw.model, 'Dell Inc. OptiPlex 7070');
    assert.deepEqual(hw.disks.map((d) => [d.path, d.size, d.type, d.model, d.serial]), [
      ['/dev/nvme0n1', 1 << 20, 'SSD, nvme', 'WDC PC SN730', 'W123'],
      ['/dev/sda', 1 << 20, 'SSD, sata', 'Samsung SSD 860', 'S3Z1NB0K'],
      ['/dev/sdb', 1 << 20, 'HDD, usb', 'Expansion HDD', 'NA9X'],
      // A virtual disk's "rotational" says nothing of the medium: only the bus is named.
      ['/dev/vda', 1 << 20, 'virtio', 'unknown', 'unknown'],
    ]);
    assert.deepEqual(hw.nics.map((n) => [n.name, n.mac, n.speed]), [['enp0s31f6', '8c:ec:4b:00:11:22', '1 Gbit/s'], ['wlp2s0', '8c:ec:4b:00:11:23', 'no link']]);
  } finally { rmSync(sys, { recursive: true, force: true }); }
});

test('a board names itself by its device tree; firmware placeholders and silence say unknown', async () => {
  const board = fakeSys({ 'firmware/devicetree/base/model': 'Raspberry Pi 4 Model B Rev 1.4\0' });
  const placeholder = fakeSys({ 'class/dmi/id/sys_vendor': 'To Be Filled By O.E.M.\n', 'class/dmi/id/product_name': 'System Product Name\n' });
  const silent = fakeSys({});
  try {
    assert.equal((await readHardware([], board)).model, 'Raspberry Pi 4 Model B Rev 1.4');
    assert.equal((await readHardware([], placeholder)).model, 'unknown');
    const hw = await readHardware([], silent);
    assert.equal(hw.model, 'unknown');
    assert.deepEqual(hw.nics, []);
  } finally { for (const d of [board, placeholder, silent]) rmSync(d, { recursive: true, force: true }); }
});
