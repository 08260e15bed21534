// What a relay tells its upstream every second, and once more when it ends: itself (its LAN,
// its buffer, how much of the stream it holds) and its subtree (its PCs, and the reports of the
// relays below it). The master's screen and its JSON lines show the tree from these.

/** A PC as the master's screen and JSON lines show it. */
export interface PcRow {
  name: string;
  mac: string;
  ip: string;
  lan: string;
  /** waiting, receiving, repairing, verifying (still active), or verified, failed, lost, dropped. */
  state: string;
  percent: number;
  rateMBps: number;
  missing: number;
  seconds: number | undefined;
  reason: string;
}

export interface RelayReport {
  name: string;
  address: string;
  /** The relay's LAN (a network in CIDR form). */
  lan: string;
  upstream: string;
  /** connecting, waiting for PCs, transfer, repair, done, transit. */
  state: string;
  /** Stream bytes received from upstream, of streamSize. */
  received: number;
  streamSize: number;
  buffer: { size: number; held: number; peak: number };
  /** Bytes fetched from upstream because the ring no longer held them. */
  fetched: number;
  /** Highest resident memory of the relay process, bytes. */
  rssPeak: number;
  pcs: PcRow[];
  relays: RelayReport[];
  /** The relay's part is over (its PCs and its subtree ended); ok: every PC in it verified. */
  final: boolean;
  ok: boolean;
}

const str = (v: unknown): v is string => typeof v === 'string';
const num = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
const obj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function parsePcRow(v: unknown): PcRow | undefined {
  if (!obj(v) || !str(v.name) || !str(v.mac) || !str(v.ip) || !str(v.lan) || !str(v.state) || !num(v.percent) || !num(v.rateMBps)
    || !num(v.missing) || !str(v.reason)) return undefined;
  // JSON has no undefined: a PC still imaging has no seconds.
  if (v.seconds !== undefined && !num(v.seconds)) return undefined;
  return {
    name: v.name, mac: v.mac, ip: v.ip, lan: v.lan, state: v.state, percent: v.percent, rateMBps: v.rateMBps, missing: v.missing,
    seconds: v.seconds, reason: v.reason,
  };
}

function relayReport(v: unknown, depth: number): RelayReport | undefined {
  if (depth > 16 || !obj(v)) return undefined;
  const b = v.buffer;
  if (!str(v.name) || !str(v.address) || !str(v.lan) || !str(v.upstream) || !str(v.state) || !num(v.received) || !num(v.streamSize)
    || !obj(b) || !num(b.size) || !num(b.held) || !num(b.peak) || !num(v.fetched) || !num(v.rssPeak)
    || !Array.isArray(v.pcs) || !Array.isArray(v.relays) || typeof v.final !== 'boolean' || typeof v.ok !== 'boolean') return undefined;
  const pcs = v.pcs.map(parsePcRow), relays = v.relays.map((r) => relayReport(r, depth + 1));
  if (pcs.includes(undefined) || relays.includes(undefined)) return undefined;
  return {
    name: v.name, address: v.address, lan: v.lan, upstream: v.upstream, state: v.state, received: v.received, streamSize: v.streamSize,
    buffer: { size: b.size, held: b.held, peak: b.peak }, fetched: v.fetched, rssPeak: v.rssPeak,
    pcs: pcs as PcRow[], relays: relays as RelayReport[], final: v.final, ok: v.ok,
  };
}

/** A report from the wire, or undefined if it is not one (a peer's bug or a stranger: ignored, never trusted in part). */
export function parseReport(json: string): RelayReport | undefined {
  try { return relayReport(JSON.parse(json), 0); } catch { return undefined; }
}

/** Every PC in the subtrees of these reports. */
export const pcsOf = (reports: RelayReport[]): PcRow[] => flatten(reports).flatMap(({ report }) => report.pcs);

/** Every relay of a tree of reports, depth first, with its depth (1: right below the master). */
export function flatten(reports: RelayReport[], depth = 1): Array<{ report: RelayReport; depth: number }> {
  return reports.flatMap((r) => [{ report: r, depth }, ...flatten(r.relays, depth + 1)]);
}
