// `must master --pxe`: the master also boots the lab. dnsmasq (DHCP or ProxyDHCP, and
// TFTP for iPXE), an HTTP server for the per-PC iPXE scripts, kernel and initramfs, the
// boot policy and the per-PC records, fed by the session's events.

import { copyFile, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Logger } from '../log/logger.ts';
import type { Sender } from '../session/sender.ts';
import { Dnsmasq, type DhcpMode } from './dnsmasq.ts';
import { startBootHttp } from './http.ts';
import { LabPolicy } from './policy.ts';
import { Records, recordSession } from './records.ts';

export const DEFAULT_KERNEL_ARGS = 'console=tty0 console=ttyS0,115200n8 quiet';

export interface PxeOptions {
  /** Directory holding the appliance: out/appliance (a build), or the mounted CD/USB stick. */
  appliance: string;
  dhcp: DhcpMode;
  httpPort: number;
  records: string;
  unknown: 'image' | 'local';
  /** Disk rule the PCs apply (must.disk=). */
  disk: string;
  /** PCs ask on their screen before writing, instead of following the rule unattended. */
  attended: boolean;
  kernelArgs: string;
}

export interface PxeSession {
  iface: string;
  address: string;
  group: string;
  port: number;
  image: string;
  digest: string;
}

/** Where the appliance files are: a build's layout, or the ISO's. */
export interface ApplianceFiles {
  vmlinuz: string; initrd: string; undionly: string; ipxeEfi: string;
  /** dnsmasq: the boot medium's own (in tools/, with the libraries the initramfs lacks), or this system's. */
  dnsmasq: { binary: string; env: Record<string, string> };
}

export function applianceFiles(dir: string): ApplianceFiles {
  const pick = (...names: string[]): string => {
    for (const n of names) if (existsSync(join(dir, n))) return join(dir, n);
    throw new Error(`${dir} has no ${names.join(' or ')}: point --appliance at out/appliance or a MUST CD/USB stick`);
  };
  // Only a master needs dnsmasq, so the CD/USB stick carries it outside the initramfs every PC loads.
  const tools = join(dir, 'tools');
  return {
    vmlinuz: pick('vmlinuz', 'boot/vmlinuz'), initrd: pick('initrd.zst', 'boot/initrd.zst'),
    undionly: pick('pxe/undionly.kpxe'), ipxeEfi: pick('pxe/ipxe.efi'),
    dnsmasq: existsSync(join(tools, 'bin/dnsmasq'))
      ? { binary: join(tools, 'bin/dnsmasq'), env: { LD_LIBRARY_PATH: join(tools, 'lib') } }
      : { binary: 'dnsmasq', env: {} },
  };
}

export async function startPxe(o: PxeOptions, s: PxeSession, sender: Sender, log: Logger): Promise<{ records: Records; stop(): Promise<void> }> {
  const files = applianceFiles(o.appliance);
  const records = new Records(o.records);
  const policy = new LabPolicy({ records, digest: s.digest, unknown: o.unknown });
  const work = await mkdtemp(join(tmpdir(), 'must-pxe-'));
  const tftp = join(work, 'tftp');
  await mkdir(tftp);
  await copyFile(files.undionly, join(tftp, 'undionly.kpxe'));
  await copyFile(files.ipxeEfi, join(tftp, 'ipxe.efi'));

  const cmdline = [o.kernelArgs, 'must.mode=client', `must.server=${s.address}`, `must.group=${s.group}`, `must.port=${s.port}`,
    `must.disk=${o.disk}`, ...(o.attended ? [] : ['must.auto=1']), 'must.after=reboot'].join(' ');
  const dlog = log.child('dnsmasq');
  const http = await startBootHttp({
    address: s.address, port: o.httpPort, policy, script: { cmdline }, files,
    onBoot: (e) => {
      records.touch(e.mac, { ip: e.ip });
      log.info('boot', { mac: e.mac, ip: e.ip, platform: e.platform || undefined, gets: e.decision.kind === 'image' ? 'MUST client' : 'local disk', why: e.decision.why });
    },
    onRequest: (line) => log.debug('http', { request: line }),
  });
  const dnsmasq = new Dnsmasq({
    binary: files.dnsmasq.binary, env: files.dnsmasq.env, configPath: join(work, 'dnsmasq.conf'), iface: s.iface, address: s.address, mode: o.dhcp,
    tftpRoot: tftp, httpPort: o.httpPort, leaseFile: join(work, 'leases'),
    onLine: (line) => dlog.debug('log', { line }),
    onLease: (l) => {
      records.touch(l.mac, { ip: l.ip, ...(l.hostname ? { hostname: l.hostname } : {}) });
      dlog.info('lease', { mac: l.mac, ip: l.ip, hostname: l.hostname || undefined });
    },
    onExit: (why) => dlog.error('stopped', { why }),
  });
  await dnsmasq.start();
  log.info('pxe', {
    dhcp: o.dhcp.kind === 'proxy' ? `proxy on ${o.dhcp.subnet}` : `range ${o.dhcp.start}-${o.dhcp.end}`,
    http: http.base, records: o.records, unknown: o.unknown, disk: o.disk, unattended: !o.attended,
  });

  // The session's events are the per-PC record.
  recordSession(records, sender, s.image, s.digest);
  return {
    records,
    stop: async () => {
      await dnsmasq.stop();
      await http.close();
      await rm(work, { recursive: true, force: true });
    },
  };
}
