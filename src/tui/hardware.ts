// The hardware summary on the client's screen, read with systeminformation (NICs from sysfs,
// the processor from the kernel). Inside the initramfs some of what it calls is missing or
// answers nothing (no dmidecode data in a VM, lsblk without udev), so every field falls back on
// what the kernel itself says (sysfs, procfs, os) and says "unknown" only when both are silent.
// Never throws, never waits long.

import { readFile, readdir } from 'node:fs/promises';
import { cpus, networkInterfaces as osNics, totalmem } from 'node:os';
import type Si from 'systeminformation';
import { type Disk, listDisks } from '../disk/inventory.ts';

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

/** A lookup that answers within `ms` or not at all (systeminformation shells out, and a tool may hang). */
async function within<T>(p: Promise<T>, ms = 5000): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<undefined>((r) => { timer = setTimeout(() => r(undefined), ms); });
  try { return await Promise.race([p.catch(() => undefined), late]); } finally { clearTimeout(timer); }
}

const sysText = async (p: string): Promise<string> => (await readFile(p, 'utf8').catch(() => '')).trim();
/** Placeholder strings firmware fills DMI fields with. */
const meaningful = (s: string | undefined): string => (s && !/^(-|none|not specified|to be filled by o\.e\.m\.|default string|system product name)$/i.test(s.trim()) ? s.trim() : '');

async function model(si: typeof Si): Promise<string> {
  const s = await within(si.system());
  const fromSi = [meaningful(s?.manufacturer), meaningful(s?.model)].filter(Boolean).join(' ');
  if (fromSi) return fromSi;
  const fromSys = [meaningful(await sysText('/sys/class/dmi/id/sys_vendor')), meaningful(await sysText('/sys/class/dmi/id/product_name'))].filter(Boolean).join(' ');
  return fromSys || UNKNOWN;
}

/**
 * The processor, from the kernel (os.cpus(), /proc/cpuinfo), not systeminformation: its cpu()
 * held a client's event loop for 18 ms (and took 27 ms of its CPU) on the build host, at the
 * moment a client starts and finds its master.
 */
function cpu(): string {
  const list = cpus();
  const name = meaningful(cpuName(list[0]?.model ?? ''));
  return name ? `${name}, ${list.length} core${list.length === 1 ? '' : 's'}` : list.length ? `${list.length} cores` : UNKNOWN;
}

/** A processor's model string without its trade marks and clock ("Intel(R) Core(TM) i5-8500 CPU @ 3.00GHz" is "Intel Core i5-8500"). */
export function cpuName(model: string): string {
  return model.replace(/\((R|TM|tm|r)\)|®|™/g, '').replace(/\s+CPU\s*@.*$|\s+@.*$|\s+\d+-Core Processor$|\s+Processor$/i, '').replace(/\s+/g, ' ').trim();
}

async function memory(si: typeof Si): Promise<number> {
  const m = await within(si.mem());
  return m?.total || totalmem();
}

async function nics(): Promise<Nic[]> {
  // From sysfs and the kernel's own list, not systeminformation: for NICs it runs its shell
  // commands synchronously, and a client's event loop stood still for about 0.12 s of its transfer.
  const os = osNics();
  const v4 = (name: string): string => os[name]?.find((a) => a.family === 'IPv4')?.address ?? '';
  const names = (await readdir('/sys/class/net').catch(() => [] as string[])).filter((n) => n !== 'lo').sort();
  return Promise.all(names.map(async (name) => {
    // speed in Mbit/s; sysfs says -1 (or fails) when the link is down.
    const mbit = Number(await sysText(`/sys/class/net/${name}/speed`));
    const carrier = await sysText(`/sys/class/net/${name}/carrier`);
    return {
      name,
      mac: await sysText(`/sys/class/net/${name}/address`) || os[name]?.[0]?.mac || UNKNOWN,
      speed: mbit > 0 ? (mbit >= 1000 ? `${mbit / 1000} Gbit/s` : `${mbit} Mbit/s`) : carrier === '0' ? 'no link' : UNKNOWN,
      address: v4(name) || 'no address',
    };
  }));
}

async function disks(si: typeof Si, fromSysfs: Disk[]): Promise<DiskInfo[]> {
  const layout = (await within(si.diskLayout())) ?? [];
  return fromSysfs.map((d) => {
    const l = layout.find((x) => x.device === d.path);
    return {
      path: d.path,
      model: meaningful(l?.name) || d.model || UNKNOWN,
      size: d.size,
      // systeminformation tells SSD from HDD (rotational) and NVMe; sysfs at least gives the bus.
      type: [meaningful(l?.type), d.transport].filter(Boolean).join(', '),
      serial: meaningful(l?.serialNum) || d.serial || UNKNOWN,
    };
  });
}

export async function readHardware(disksNow?: Disk[]): Promise<Hardware> {
  const list = disksNow ?? await listDisks();
  // Loaded here, not imported: only this summary needs systeminformation, and an import would
  // evaluate its modules at every start of the program, a master's too.
  const si = (await import('systeminformation')).default;
  const [m, mem, n, d] = await Promise.all([model(si), memory(si), nics(), disks(si, list)]);
  return { model: m, cpu: cpu(), memory: mem, nics: n, disks: d };
}
