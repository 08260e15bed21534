// LANs for MTP's intra-campus rule (MUST paper, section 3): a block is confirmed only by one
// ACK from each participating LAN, and a client lets only an ACK from its own LAN silence
// its own. A LAN is named by its network in CIDR form ("10.2.0.0/24"). Pure functions.

/** How the master tells its clients' LANs apart. */
export type LanPolicy =
  /** From each client's address and the prefix length it gives in its JOIN (a /24 if it gives none). */
  | { kind: 'learn' }
  /** The operator's list of networks; a client in none of them is on a LAN of its own (as learned). */
  | { kind: 'subnets'; subnets: string[] }
  /** The paper's manual setting: a block needs ACKs from this many distinct LANs. */
  | { kind: 'count'; count: number };

/** A LAN's prefix when a client does not say (an old client, or classic feedback with no JOIN behind it). */
export const DEFAULT_PREFIX = 24;

/** The address as a 32-bit unsigned number, or undefined if it is not dotted-quad IPv4. */
export function ipv4(address: string): number | undefined {
  const parts = address.split('.');
  if (parts.length !== 4) return undefined;
  let n = 0;
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p) || Number(p) > 255) return undefined;
    n = n * 256 + Number(p);
  }
  return n;
}

const quad = (n: number): string => [24, 16, 8, 0].map((s) => Math.floor(n / 2 ** s) % 256).join('.');

/** The network of address/prefix in CIDR form ("10.78.0.0/24"). */
export function networkOf(address: string, prefix: number): string {
  const n = ipv4(address) ?? 0;
  const size = 2 ** (32 - prefix);
  return `${quad(Math.floor(n / size) * size)}/${prefix}`;
}

/** "10.2.0.0/24" as a base and a prefix length, or undefined if it is not one. */
export function parseCidr(cidr: string): { base: number; prefix: number } | undefined {
  const [addr, len, ...rest] = cidr.split('/');
  if (rest.length > 0 || addr === undefined || len === undefined || !/^\d{1,2}$/.test(len)) return undefined;
  const base = ipv4(addr), prefix = Number(len);
  if (base === undefined || prefix > 32) return undefined;
  const size = 2 ** (32 - prefix);
  return { base: Math.floor(base / size) * size, prefix };
}

/** Whether address lies in the network cidr ("10.2.0.0/24"). */
export function inNetwork(address: string, cidr: string): boolean {
  const n = ipv4(address), net = parseCidr(cidr);
  if (n === undefined || !net) return false;
  return Math.floor(n / 2 ** (32 - net.prefix)) === Math.floor(net.base / 2 ** (32 - net.prefix));
}

/** The LAN a client at `address` is on, under the policy; `prefix` is what the client said of its network (0: nothing). */
export function lanOf(policy: LanPolicy, address: string, prefix: number): string {
  if (policy.kind === 'subnets') {
    const listed = policy.subnets.find((s) => inNetwork(address, s));
    if (listed) return listed;
  }
  return networkOf(address, prefix > 0 ? prefix : DEFAULT_PREFIX);
}

/**
 * The highest block every required LAN has acknowledged, from each LAN's highest ACK (-1: none yet).
 * `required` names the LANs that must answer (those with a client still imaging); under the count
 * policy any `count` distinct LANs will do. With nothing required, any ACK confirms.
 */
export function confirmedUpTo(policy: LanPolicy, acked: ReadonlyMap<string, number>, required: ReadonlySet<string>): number {
  if (policy.kind === 'count') {
    const marks = [...acked.values()].sort((a, b) => b - a);
    return marks.length >= policy.count ? marks[policy.count - 1]! : -1;
  }
  if (required.size === 0) return Math.max(-1, ...acked.values());
  let low = Infinity;
  for (const lan of required) low = Math.min(low, acked.get(lan) ?? -1);
  return low;
}
