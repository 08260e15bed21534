// A campus of network namespaces: several LANs (a Linux bridge each) joined by one router,
// which forwards unicast and, when asked, multicast too (smcroute, static (*,G) routes from
// every LAN to every other). Host k of LAN i is 10.<net>.<i+1>.<k+1>/24; the router is .254
// on each LAN and every host's default route. Everything carries the prefix and is removed by
// destroy() (and before a new campus).

import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { removeLab } from './netns.ts';

export interface Campus {
  address(host: string): string;
  /** argv prefix that runs a command inside the host's namespace. */
  wrap(host: string): string[];
  /** The LAN's network ("10.81.2.0/24"). */
  network(lan: number): string;
  /** Shape what the router sends into the LAN (its port on that LAN's switch): the LAN's downstream. */
  setRouterRate(lan: number, mbit: number): void;
  /** Shape a host's link in both directions. */
  setRate(host: string, mbit: number): void;
  /** Route the group between every pair of LANs (smcroute); resolves once it runs. */
  routeMulticast(group: string): Promise<void>;
  destroy(): void;
}

const ip = (...args: string[]): void => { execFileSync('ip', args, { stdio: ['ignore', 'pipe', 'pipe'] }); };

export function createCampus(prefix: string, lans: string[][], net = 81): Campus {
  if (prefix.length > 8) throw new Error('campus prefix longer than 8 characters');
  removeLab(prefix);
  const router = `${prefix}-rt`;
  const ns = (h: string): string => `${prefix}-${h}`;
  const addr = new Map<string, string>();
  /** Host -> its switch's namespace and its port there. */
  const port = new Map<string, [string, string]>();
  const procs: ChildProcess[] = [];
  const dir = mkdtempSync(join(tmpdir(), `${prefix}-`));
  try {
    ip('netns', 'add', router);
    ip('-n', router, 'link', 'set', 'lo', 'up');
    execFileSync('ip', ['netns', 'exec', router, 'sysctl', '-qw', 'net.ipv4.ip_forward=1']);
    lans.forEach((hosts, i) => {
      const sw = `${prefix}-s${i}`;
      ip('netns', 'add', sw);
      ip('-n', sw, 'link', 'add', 'br0', 'type', 'bridge', 'mcast_snooping', '0');
      ip('-n', sw, 'link', 'set', 'br0', 'up');
      ip('-n', sw, 'link', 'add', 'rt', 'type', 'veth', 'peer', 'name', `lan${i}`, 'netns', router);
      ip('-n', sw, 'link', 'set', 'rt', 'master', 'br0', 'up');
      ip('-n', router, 'addr', 'add', `10.${net}.${i + 1}.254/24`, 'broadcast', '+', 'dev', `lan${i}`);
      ip('-n', router, 'link', 'set', `lan${i}`, 'up');
      hosts.forEach((h, k) => {
        const a = `10.${net}.${i + 1}.${k + 1}`;
        addr.set(h, a);
        port.set(h, [sw, `p${k}`]);
        ip('netns', 'add', ns(h));
        ip('-n', sw, 'link', 'add', `p${k}`, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns(h));
        ip('-n', sw, 'link', 'set', `p${k}`, 'master', 'br0', 'up');
        ip('-n', ns(h), 'addr', 'add', `${a}/24`, 'broadcast', '+', 'dev', 'eth0');
        ip('-n', ns(h), 'link', 'set', 'eth0', 'up');
        ip('-n', ns(h), 'link', 'set', 'lo', 'up');
        ip('-n', ns(h), 'route', 'add', 'default', 'via', `10.${net}.${i + 1}.254`);
        ip('-n', ns(h), 'route', 'add', '224.0.0.0/4', 'dev', 'eth0');
      });
    });
  } catch (e) {
    removeLab(prefix);
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  return {
    address: (h) => addr.get(h)!,
    wrap: (h) => ['ip', 'netns', 'exec', ns(h)],
    network: (i) => `10.${net}.${i + 1}.0/24`,
    setRouterRate: (i, mbit) => {
      execFileSync('ip', ['netns', 'exec', router, 'tc', 'qdisc', 'replace', 'dev', `lan${i}`, 'root', 'tbf', 'rate', `${mbit}mbit`, 'burst', '64kb', 'latency', '50ms']);
    },
    setRate: (h, mbit) => {
      const shape = ['root', 'tbf', 'rate', `${mbit}mbit`, 'burst', '64kb', 'latency', '20ms'];
      const [sw, p] = port.get(h)!;
      execFileSync('ip', ['netns', 'exec', ns(h), 'tc', 'qdisc', 'replace', 'dev', 'eth0', ...shape]);
      execFileSync('ip', ['netns', 'exec', sw, 'tc', 'qdisc', 'replace', 'dev', p, ...shape]);
    },
    routeMulticast: async (group) => {
      const ifs = lans.map((_, i) => `lan${i}`);
      const conf = join(dir, 'smcroute.conf');
      writeFileSync(conf, [
        ...ifs.map((f) => `phyint ${f} enable`),
        // (*,G): whatever source; every LAN's datagrams to the group go to every other LAN.
        ...ifs.map((f) => `mroute from ${f} group ${group} to ${ifs.filter((g) => g !== f).join(' ')}`),
      ].join('\n') + '\n');
      const p = spawn('ip', ['netns', 'exec', router, 'smcrouted', '-n', '-N', '-f', conf, '-i', prefix, '-l', 'info',
        '-P', join(dir, 'smcroute.pid'), '-u', join(dir, 'smcroute.sock')], { stdio: ['ignore', 'pipe', 'pipe'] });
      procs.push(p);
      let out = '';
      p.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
      p.stderr!.on('data', (d: Buffer) => { out += d.toString(); });
      const end = Date.now() + 10_000;
      // Running once the kernel has its multicast interfaces.
      while (!/Ready|ready|Entering main loop/.test(out)) {
        if (p.exitCode !== null || Date.now() > end) throw new Error(`smcrouted did not start:\n${out}`);
        await new Promise((r) => setTimeout(r, 100));
      }
      // It starts even where it could not open the kernel's multicast routing, or read its routes.
      if (/No IPv4 multicast socket|Parse error/.test(out)) throw new Error(`smcrouted routes nothing:\n${out}`);
    },
    destroy: () => {
      for (const p of procs) p.kill('SIGKILL');
      removeLab(prefix);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
