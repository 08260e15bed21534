// The hardware summary on the client's screen, read from the kernel alone: sysfs (DMI, NICs,
// disks), procfs and os. No process is started: the summary is read while a client starts and
// its transfer begins, and systeminformation (before) ran about 27 processes for it, dmidecode,
// lsblk and lscpu among them: about 0.1 s of a client's CPU (bench/RESULTS.md). A field says
// "unknown" only when the kernel says nothing. Never throws.

import { readdir } from 'node:fs/promises';
import { cpus, networkInterfaces as osNics, totalmem } from 'node:os';
import { join } from 'node:path';
import { type Disk, listDisks, text } from '../disk/inventory.ts';

export interface Nic { name: string; mac: string; speed: string; address: string }
export interface DiskInfo { path: string; model: string; size: number; type: string; serial: string }

export interface Hardware {
  model: string;
  cpu: string;
  memory: number;
  nics: Nic[];
  disks: DiskInfo[];
}

const UNKNOWN = 'unknown';

/** Placeholder strings firmware fills DMI fields with. */
const meaningful = (s: string | undefined): string => (s && !/^(-|none|not specified|to be filled by o\.e\.m\.|default string|system product name)$/i.test(s.trim()) ? s.trim() : '');

/** The machine's maker and model, as its firmware gives them (DMI), or a device tree's model (boards). */
async function machineModel(sys: string): Promise<string> {
  const dmi = (f: string): Promise<string> => text(join(sys, 'class/dmi/id', f)).then(meaningful);
  const fromDmi = [await dmi('sys_vendor'), await dmi('product_name')].filter(Boolean).join(' ');
  // A device tree's strings end in a NUL.
  return fromDmi || meaningful((await text(join(sys, 'firmware/devicetree/base/model'))).replace(/\0+$/, '')) || UNKNOWN;
}

/** The processor, as /proc/cpuinfo names it (os.cpus()), and its cores. */
function cpu(): string {
  const list = cpus();
  const name = meaningful(cpuName(list[0]?.model ?? ''));
  return name ? `${name}, ${list.length} core${list.length === 1 ? '' : 's'}` : list.length ? `${list.length} cores` : UNKNOWN;
}

/** A processor's model string without its trade marks and clock ("Intel(R) Core(TM) i5-8500 CPU @ 3.00GHz" is "Intel Core i5-8500"). */
export function cpuName(model: string): string {
  return model.replace(/\((R|TM|tm|r)\)|®|™/g, '').replace(/\s+CPU\s*@.*$|\s+@.*$|\s+\d+-Core Processor$|\s+Processor$/i, '').replace(/\s+/g, ' ').trim();
}

async function nics(sys: string): Promise<Nic[]> {
  const os = osNics();
  const v4 = (name: string): string => os[name]?.find((a) => a.family === 'IPv4')?.address ?? '';
  const names = (await readdir(join(sys, 'class/net')).catch(() => [] as string[])).filter((n) => n !== 'lo').sort();
  return Promise.all(names.map(async (name) => {
    // speed in Mbit/s; sysfs says -1 (or fails) when the link is down.
    const mbit = Number(await text(`${sys}/class/net/${name}/speed`));
    const carrier = await text(`${sys}/class/net/${name}/carrier`);
    return {
      name,
      mac: await text(`${sys}/class/net/${name}/address`) || os[name]?.[0]?.mac || UNKNOWN,
      speed: mbit > 0 ? (mbit >= 1000 ? `${mbit / 1000} Gbit/s` : `${mbit} Mbit/s`) : carrier === '0' ? 'no link' : UNKNOWN,
      address: v4(name) || 'no address',
    };
  }));
}

/** What kind of disk, as far as the kernel tells: spinning or not (queue/rotational) where that means something, and the bus. */
async function diskKind(d: Disk, sys: string): Promise<string> {
  // A loop device's or a virtual disk's "rotational" says nothing of the medium behind it.
  const medium = d.transport === 'nvme' ? 'SSD'
    : d.transport === 'loop' || d.transport === 'virtio' || d.transport === 'other' ? ''
    : ({ '0': 'SSD', '1': 'HDD' } as Record<string, string>)[await text(join(sys, 'block', d.name, 'queue/rotational'))] ?? '';
  return [medium, d.transport].filter(Boolean).join(', ');
}

export async function readHardware(disksNow?: Disk[], sys = '/sys'): Promise<Hardware> {
  const list = disksNow ?? await listDisks(sys);
  const [m, n, d] = await Promise.all([
    machineModel(sys), nics(sys),
    Promise.all(list.map(async (x) => ({ path: x.path, model: x.model || UNKNOWN, size: x.size, type: await diskKind(x, sys), serial: x.serial || UNKNOWN }))),
  ]);
  return { model: m, cpu: cpu(), memory: totalmem(), nics: n, disks: d };
}
