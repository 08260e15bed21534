// A lab of hosts in network namespaces on one Linux bridge: real kernels' IP stacks,
// real multicast, real loss (nftables) and real rate limits (tc tbf). Everything it
// creates carries its prefix and is removed by destroy() (and before a new lab).

import { execFileSync } from 'node:child_process';

export interface NetLab {
  prefix: string;
  hosts: string[];
  address(host: string): string;
  /** argv prefix that runs a command inside the host's namespace. */
  wrap(host: string): string[];
  /** Drop this share of the UDP frames (datagrams, or their fragments) the switch sends to the host. */
  setLoss(host: string, percent: number): void;
  /** Datagrams the loss rule dropped so far. */
  dropped(host: string): number;
  /** Shape the host's link in both directions. */
  setRate(host: string, mbit: number): void;
  /** Set the MTU of the host's link, both ends (9000: jumbo frames); the bridge follows its ports. */
  setMtu(host: string, mtu: number): void;
  destroy(): void;
}

const ip = (...args: string[]): string => execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
const inNs = (ns: string, cmd: string, args: string[], input?: string): string =>
  execFileSync('ip', ['netns', 'exec', ns, cmd, ...args], { encoding: 'utf8', input, stdio: ['pipe', 'pipe', 'pipe'] });

export const isRoot = (): boolean => process.getuid?.() === 0;

export function removeLab(prefix: string): void {
  const names = ip('netns', 'list').split('\n').map((l) => l.split(' ')[0]!).filter((n) => n.startsWith(`${prefix}-`));
  for (const n of names) { try { ip('netns', 'del', n); } catch { /* already gone */ } }
}

export function createLab(prefix: string, hosts: string[], subnet = '10.77.0'): NetLab {
  if (prefix.length > 8) throw new Error('lab prefix longer than 8 characters');
  removeLab(prefix);
  const sw = `${prefix}-sw`;
  const ns = (h: string): string => `${prefix}-${h}`;
  /** The switch's port that the host's link plugs into. */
  const port = (h: string): string => `p${hosts.indexOf(h)}`;
  const addr = new Map(hosts.map((h, i) => [h, `${subnet}.${i + 1}`]));
  try {
    ip('netns', 'add', sw);
    ip('-n', sw, 'link', 'add', 'br0', 'type', 'bridge', 'mcast_snooping', '0');
    ip('-n', sw, 'link', 'set', 'br0', 'up');
    // A switch, not a firewall: Linux hands bridged frames to iptables by default (br_netfilter),
    // which costs the host's CPU for every frame, and no switch in a lab does that.
    for (const t of ['iptables', 'ip6tables', 'arptables']) inNs(sw, 'sysctl', ['-qw', `net.bridge.bridge-nf-call-${t}=0`]);
    for (const h of hosts) {
      ip('netns', 'add', ns(h));
      ip('-n', sw, 'link', 'add', port(h), 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns(h));
      ip('-n', sw, 'link', 'set', port(h), 'master', 'br0', 'up');
      ip('-n', ns(h), 'addr', 'add', `${addr.get(h)}/24`, 'broadcast', '+', 'dev', 'eth0');
      ip('-n', ns(h), 'link', 'set', 'eth0', 'up');
      // A NIC without UDP segmentation offload, as most lab PCs have: a message the master hands the
      // kernel in one piece (UDP_SEGMENT) leaves as separate frames, each lost or delayed on its own.
      // Receive offload on, as Linux's drivers for real NICs have it by default (veths have it off): the
      // kernel may then hand a socket that asks for it (UDP_GRO) several datagrams of a flow at once.
      inNs(ns(h), 'ethtool', ['-K', 'eth0', 'tx-udp-segmentation', 'off', 'gro', 'on']);
      // The switch forwards frames one by one, as a real switch does (and a veth hands a frame to its
      // peer's GRO only when it does no TSO itself).
      inNs(sw, 'ethtool', ['-K', port(h), 'tso', 'off', 'gso', 'off']);
      ip('-n', ns(h), 'link', 'set', 'lo', 'up');
      ip('-n', ns(h), 'route', 'add', '224.0.0.0/4', 'dev', 'eth0');
    }
  } catch (e) {
    removeLab(prefix);
    throw e;
  }
  return {
    prefix,
    hosts,
    address: (h) => addr.get(h)!,
    wrap: (h) => ['ip', 'netns', 'exec', ns(h)],
    setLoss: (h, percent) => {
      const p = port(h);
      inNs(sw, 'nft', ['-f', '-'], [
        `table netdev must_loss_${p}`, `delete table netdev must_loss_${p}`,
        // Per frame, on the switch port's way out to the host, as a bad cable loses them: before the
        // host's receive offload can merge frames (a loss there would take a whole merged batch) and
        // before IP reassembly (a datagram larger than the MTU travels as fragments, and losing any one
        // of them loses the datagram).
        `table netdev must_loss_${p} {`,
        `  chain out { type filter hook egress device "${p}" priority 0; policy accept;`,
        percent >= 100 ? '    ip protocol udp counter drop' : `    ip protocol udp numgen random mod 100 < ${Math.round(percent)} counter drop`,
        '  }',
        '}',
      ].join('\n'));
    },
    dropped: (h) => {
      const m = /counter packets (\d+)/.exec(inNs(sw, 'nft', ['list', 'table', 'netdev', `must_loss_${port(h)}`]));
      return m ? Number(m[1]) : 0;
    },
    setRate: (h, mbit) => {
      const tbf = ['qdisc', 'replace', 'dev'];
      const shape = ['root', 'tbf', 'rate', `${mbit}mbit`, 'burst', '64kb', 'latency', '20ms'];
      inNs(ns(h), 'tc', [...tbf, 'eth0', ...shape]);
      inNs(sw, 'tc', [...tbf, port(h), ...shape]);
    },
    setMtu: (h, mtu) => {
      ip('-n', sw, 'link', 'set', port(h), 'mtu', String(mtu));
      ip('-n', ns(h), 'link', 'set', 'eth0', 'mtu', String(mtu));
    },
    destroy: () => removeLab(prefix),
  };
}
