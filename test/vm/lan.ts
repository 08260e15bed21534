// A network namespace with one bridge for PC VMs: each PC gets a tap port on it; the
// host side (dnsmasq, HTTP, a MUST master) runs inside the namespace on the bridge.

import { execFileSync, spawn } from 'node:child_process';
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

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

/**
 * The static tree of out/appliance/pxe behind a plain dnsmasq (DHCP range, TFTP for the first stage)
 * and busybox httpd, as docs/PXE.md describes it; `cmdline` replaces the client line's mode settings.
 * `first: 'pxelinux'` hands every PC pxelinux.0 (the BIOS alternative, all over TFTP) instead of iPXE.
 */
export function servePxeTree(lan: Lan, o: { appliance: string; dir: string; cmdline: string; first?: 'ipxe' | 'pxelinux' }): { dnsLog(): string; kill(): void } {
  const tftp = join(o.dir, 'pxe');
  cpSync(join(o.appliance, 'pxe'), tftp, { recursive: true });
  writeFileSync(join(tftp, 'boot.ipxe'), readFileSync(join(tftp, 'boot.ipxe'), 'utf8').replace(/must\.mode=client$/m, o.cmdline));
  const cfg = join(tftp, 'pxelinux.cfg/default');
  writeFileSync(cfg, readFileSync(cfg, 'utf8').replace(/must\.mode=client$/m, o.cmdline));
  // QEMU's NICs boot iPXE from their own ROM, which runs pxelinux.0 as any PXE program.
  const boot = o.first === 'pxelinux' ? ['dhcp-boot=pxelinux.0'] : [
    'dhcp-match=set:ipxe,175', 'dhcp-match=set:efi64,option:client-arch,7',
    'dhcp-boot=tag:!ipxe,tag:!efi64,undionly.kpxe', 'dhcp-boot=tag:!ipxe,tag:efi64,ipxe.efi',
    `dhcp-boot=tag:ipxe,http://${lan.address}:8080/boot.ipxe`,
  ];
  writeFileSync(join(o.dir, 'dnsmasq.conf'), [
    'port=0', 'interface=br0', 'bind-interfaces', `dhcp-range=${lan.address.replace(/\.1$/, '.100')},${lan.address.replace(/\.1$/, '.199')},255.255.255.0,1h`,
    'enable-tftp', `tftp-root=${tftp}`, ...boot, `dhcp-leasefile=${join(o.dir, 'leases')}`, 'log-dhcp', 'user=root',
  ].join('\n'));
  const dnsmasq = spawn(lan.wrap[0]!, [...lan.wrap.slice(1), 'dnsmasq', '--no-daemon', `--conf-file=${join(o.dir, 'dnsmasq.conf')}`, '--pid-file='], { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  dnsmasq.stderr.on('data', (d: Buffer) => { log += d.toString(); });
  const httpd = spawn(lan.wrap[0]!, [...lan.wrap.slice(1), 'busybox', 'httpd', '-f', '-p', `${lan.address}:8080`, '-h', tftp], { stdio: 'ignore' });
  return { dnsLog: () => log, kill: () => { dnsmasq.kill(); httpd.kill(); } };
}
