// Which IPv4 interface the sockets use: --iface by name or address, else the first
// interface that is up and not loopback, else loopback (a demo on one machine).

import { networkInterfaces } from 'node:os';
import { readFileSync } from 'node:fs';

export interface Iface {
  name: string;
  address: string;
  mac: string;
  loopback: boolean;
}

export class IfaceError extends Error {
  constructor(message: string) { super(message); this.name = 'IfaceError'; }
}

export function listIfaces(): Iface[] {
  const out: Iface[] = [];
  for (const [name, addrs] of Object.entries(networkInterfaces())) {
    for (const a of addrs ?? []) {
      if (a.family === 'IPv4') out.push({ name, address: a.address, mac: a.mac, loopback: a.internal });
    }
  }
  return out;
}

/** Link speed in Mbit/s from sysfs, or undefined (virtual links, loopback). */
export function linkSpeed(name: string): number | undefined {
  try {
    const v = Number(readFileSync(`/sys/class/net/${name}/speed`, 'utf8').trim());
    return v > 0 ? v : undefined;
  } catch {
    return undefined;
  }
}

export function resolveIface(spec: string | undefined, all: Iface[] = listIfaces()): Iface {
  if (spec) {
    const hit = all.find((i) => i.name === spec || i.address === spec);
    if (!hit) throw new IfaceError(`no IPv4 interface named or addressed "${spec}" (have: ${all.map((i) => `${i.name}=${i.address}`).join(', ') || 'none'})`);
    return hit;
  }
  const hit = all.find((i) => !i.loopback) ?? all.find((i) => i.loopback);
  if (!hit) throw new IfaceError('no IPv4 interface is up');
  return hit;
}
