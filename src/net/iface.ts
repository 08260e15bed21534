// Which IPv4 interface the sockets use: --iface by name or address, else the first
// interface that is up and not loopback, else loopback (a demo on one machine).

import { execFileSync } from 'node:child_process';
import { networkInterfaces } from 'node:os';
import { readFileSync } from 'node:fs';
import { networkOf } from '../session/lans.ts';

export interface Iface {
  name: string;
  address: string;
  /** Network in CIDR form ("10.78.0.0/24"). */
  network: string;
  mac: string;
  loopback: boolean;
}

export class IfaceError extends Error {
  constructor(message: string) { super(message); this.name = 'IfaceError'; }
}

/** The IPv4 interfaces Node sees: those with a carrier. */
function nodeIfaces(): Iface[] {
  const out: Iface[] = [];
  for (const [name, addrs] of Object.entries(networkInterfaces())) {
    for (const a of addrs ?? []) {
      if (a.family === 'IPv4') {
        const prefix = Number((a.cidr ?? `${a.address}/32`).split('/')[1]);
        out.push({ name, address: a.address, network: networkOf(a.address, prefix), mac: a.mac, loopback: a.internal });
      }
    }
  }
  return out;
}

/** Node's list (`fromNode`) and then what only the kernel's adds. */
function withKernel(fromNode: Iface[]): Iface[] {
  const out = [...fromNode];
  // Node (libuv) leaves out interfaces without carrier: a master on a switch nobody has
  // plugged into yet, or a bridge whose ports are still down. The kernel still has them.
  for (const i of ipAddrShow()) if (!out.some((o) => o.name === i.name && o.address === i.address)) out.push(i);
  return out;
}

/** `ip -o -4 addr show` parsed: "3: br0    inet 10.78.0.1/24 brd ... scope global br0". */
export function parseIpAddr(text: string, macOf: (name: string) => string): Iface[] {
  const out: Iface[] = [];
  for (const line of text.split('\n')) {
    const m = /^\d+:\s+(\S+?)(?:@\S+)?\s+inet\s+(\d+\.\d+\.\d+\.\d+)\/(\d+)/.exec(line);
    if (!m) continue;
    const [, name, address, prefix] = m as unknown as [string, string, string, string];
    out.push({ name, address, network: networkOf(address, Number(prefix)), mac: macOf(name), loopback: name === 'lo' });
  }
  return out;
}

function ipAddrShow(): Iface[] {
  try {
    const text = execFileSync('ip', ['-o', '-4', 'addr', 'show'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    return parseIpAddr(text, (n) => { try { return readFileSync(`/sys/class/net/${n}/address`, 'utf8').trim(); } catch { return '00:00:00:00:00:00'; } });
  } catch {
    return [];
  }
}

/** A positive number from /sys/class/net/NAME/FILE, or undefined. */
function linkNumber(name: string, file: string): number | undefined {
  try {
    const v = Number(readFileSync(`/sys/class/net/${name}/${file}`, 'utf8').trim());
    return v > 0 ? v : undefined;
  } catch {
    return undefined;
  }
}

/** Link speed in Mbit/s from sysfs, or undefined (virtual links, loopback). */
export const linkSpeed = (name: string): number | undefined => linkNumber(name, 'speed');

/** The interface's MTU from sysfs, if it has one to read. */
export const linkMtu = (name: string): number | undefined => linkNumber(name, 'mtu');

/**
 * The interface --iface names (or the first that is up and not loopback, else loopback). The
 * kernel's list is asked only when Node's has no answer: `ip` is a process to start, 5-10 ms
 * at every start of the program.
 */
export function resolveIface(spec: string | undefined): Iface {
  const pick = (list: Iface[]): Iface | undefined => (spec ? list.find((i) => i.name === spec || i.address === spec) : list.find((i) => !i.loopback));
  const fromNode = nodeIfaces();
  const quick = pick(fromNode);
  if (quick) return quick;
  const list = withKernel(fromNode);
  const hit = pick(list) ?? (spec ? undefined : list.find((i) => i.loopback));
  if (hit) return hit;
  if (spec) throw new IfaceError(`no IPv4 interface named or addressed "${spec}" (have: ${list.map((i) => `${i.name}=${i.address}`).join(', ') || 'none'})`);
  throw new IfaceError('no IPv4 interface is up');
}
