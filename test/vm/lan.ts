// A network namespace with one bridge for PC VMs: each PC gets a tap port on it; the
// host side (dnsmasq, HTTP, a MUST master) runs inside the namespace on the bridge.

import { execFileSync } from 'node:child_process';

export interface Lan {
  ns: string;
  /** argv prefix running a command in the namespace. */
  wrap: string[];
  address: string;
  /** A new tap port on the bridge for one PC's NIC. */
  tap(name: string): string;
  destroy(): void;
}

export function createLan(ns: string, address = '10.78.0.1'): Lan {
  const ip = (...a: string[]): string => execFileSync('ip', ['netns', 'exec', ns, 'ip', ...a], { encoding: 'utf8' });
  try { execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' }); } catch { /* none left over */ }
  execFileSync('ip', ['netns', 'add', ns]);
  ip('link', 'set', 'lo', 'up');
  ip('link', 'add', 'br0', 'type', 'bridge', 'mcast_snooping', '0');
  ip('addr', 'add', `${address}/24`, 'dev', 'br0');
  ip('link', 'set', 'br0', 'up');
  ip('route', 'add', '224.0.0.0/4', 'dev', 'br0');
  return {
    ns,
    wrap: ['ip', 'netns', 'exec', ns],
    address,
    tap: (name) => {
      ip('tuntap', 'add', 'dev', name, 'mode', 'tap');
      ip('link', 'set', name, 'master', 'br0', 'up');
      return name;
    },
    destroy: () => { try { execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' }); } catch { /* gone */ } },
  };
}
