// What the master's screen shows (and `must master --json` prints): the session, one row per
// PC, the last events. Built from the Sender's records and counters, polled; PCs that ended
// move to `finished`, in the order they ended, so the screen can print them once above
// the live table.

import { Meter } from '../log/meter.ts';
import { ClientPhase, Phase, clientPhaseName, phaseName } from '../protocol/messages.ts';
import { type PcRow, type RelayReport, flatten } from '../relay/report.ts';
import type { ClientRecord, Sender } from '../session/sender.ts';
import { Store } from './store.ts';

export interface ClientRow extends PcRow {
  id: string;
  verified: boolean;
  /** Who serves it: the master, or the relay of its LAN. */
  via: string;
}

/** A relay of the tree, depth first: 1 right below the master. */
export interface RelayRow {
  name: string;
  /** The master, or the relay above. */
  upstream: string;
  depth: number;
  address: string;
  lan: string;
  state: string;
  /** Share of the stream it has received. */
  percent: number;
  received: number;
  bufferSize: number;
  held: number;
  peak: number;
  fetched: number;
  pcs: number;
  verified: number;
  final: boolean;
  ok: boolean;
}

/** One LAN's progress: the PCs on it and who serves them. */
export interface LanRow {
  lan: string;
  via: string;
  pcs: number;
  verified: number;
  /** The least any PC still imaging there holds (100 once they all ended). */
  percent: number;
  /** ACKs the master had from it (LANs the master serves itself). */
  acks: number | undefined;
}

export type MasterPrompt = { question: string; answer(yes: boolean): void };

export interface MasterView {
  image: string;
  size: number;
  group: string;
  port: number;
  mode: string;
  /** waiting, transfer, repair, done, or finished once the session is over. */
  state: string;
  rateMBps: number;
  elapsed: number;
  etaSeconds: number | undefined;
  sentPercent: number;
  clients: ClientRow[];
  finished: ClientRow[];
  relays: RelayRow[];
  lans: LanRow[];
  events: string[];
  selected: number;
  prompt: MasterPrompt | undefined;
  /** Set when the session is over: one line the screen ends with. */
  summary: string | undefined;
}

export interface SessionFacts { image: string; size: number; group: string; port: number; mode: string }

export function masterStore(f: SessionFacts): Store<MasterView> {
  return new Store<MasterView>({
    ...f, state: 'starting', rateMBps: 0, elapsed: 0, etaSeconds: undefined, sentPercent: 0,
    clients: [], finished: [], relays: [], lans: [], events: [], selected: 0, prompt: undefined, summary: undefined,
  });
}

/** Rows and session facts from the sender's records, with per-PC rates from their meters; and the relays' reports. */
export class MasterWatch {
  private readonly sender: Sender;
  private readonly relays: () => RelayReport[];
  private readonly meters = new Map<string, Meter>();
  private readonly bytes = new Meter();
  private readonly done: string[] = [];
  private readonly startedAt: number;

  constructor(sender: Sender, now: number, relays: () => RelayReport[] = () => []) {
    this.sender = sender;
    this.startedAt = now;
    this.relays = relays;
  }

  row(c: ClientRecord, now: number): ClientRow {
    const total = this.sender.geo.packets;
    let meter = this.meters.get(c.id);
    if (!meter) this.meters.set(c.id, meter = new Meter());
    const rate = c.state === 'active' ? meter.sample(now, c.have) : 0;
    return {
      id: c.id, name: c.name, mac: c.mac, ip: c.endpoint.address, lan: c.lan, via: 'master',
      state: c.state === 'active' ? clientPhaseName(c.phase) : c.state,
      percent: total > 0 ? Math.min(100, Math.floor((c.have / total) * 100)) : 0,
      rateMBps: (rate * this.sender.geo.payloadSize) / 1e6, missing: Math.max(0, total - c.have),
      verified: c.state === 'verified', seconds: c.doneAt !== undefined ? (c.doneAt - c.joinedAt) / 1000 : undefined, reason: c.reason,
    };
  }

  /** The view's session part, rows (the relays' PCs among them), finished list, relays and LANs as of now. */
  poll(now: number): Pick<MasterView, 'state' | 'rateMBps' | 'elapsed' | 'etaSeconds' | 'sentPercent' | 'clients' | 'finished' | 'relays' | 'lans'> {
    const s = this.sender;
    const records = [...s.clients.values()];
    const tree = flatten(this.relays());
    const remote: ClientRow[] = tree.flatMap(({ report: r }) => r.pcs.map((p) => ({ ...p, id: `${r.name}/${p.mac}/${p.name}`, via: r.name, verified: p.state === 'verified' })));
    const rows = [...records.map((c) => this.row(c, now)), ...remote];
    for (const r of rows) if (!isLive(r) && !this.done.includes(r.id)) this.done.push(r.id);
    // A PC that comes back (a reboot) is live again.
    for (const r of rows) if (isLive(r) && this.done.includes(r.id)) this.done.splice(this.done.indexOf(r.id), 1);
    const byId = new Map(rows.map((r) => [r.id, r]));
    const live = rows.filter(isLive);
    const etas = records.filter((c) => c.state === 'active' && c.phase >= ClientPhase.Receiving)
      .map((c) => this.meters.get(c.id)!.eta(s.geo.packets - c.have));
    return {
      state: phaseName(s.phase), rateMBps: this.bytes.sample(now, s.stats.bytesSent) / 1e6, elapsed: (now - this.startedAt) / 1000,
      etaSeconds: s.phase === Phase.Waiting || etas.length === 0 || etas.includes(undefined) ? undefined : Math.max(...(etas as number[])),
      sentPercent: Math.min(100, Math.floor((s.stats.dataSent / s.geo.packets) * 100)),
      clients: live, finished: this.done.map((id) => byId.get(id)!).filter(Boolean),
      relays: tree.map(({ report: r, depth }, i) => ({
        name: r.name, upstream: parentOf(tree, i), depth, address: r.address, lan: r.lan, state: r.state,
        percent: r.streamSize > 0 ? Math.floor((r.received / r.streamSize) * 100) : 0, received: r.received,
        bufferSize: r.buffer.size, held: r.buffer.held, peak: r.buffer.peak, fetched: r.fetched,
        pcs: r.pcs.length, verified: r.pcs.filter((p) => p.state === 'verified').length, final: r.final, ok: r.ok,
      })),
      lans: lanRows(rows, s.stats.acksByLan),
    };
  }
}

/** The relay above entry i of a depth-first tree (the master for the top level). */
function parentOf(tree: Array<{ report: RelayReport; depth: number }>, i: number): string {
  const d = tree[i]!.depth;
  for (let j = i - 1; j >= 0; j--) if (tree[j]!.depth === d - 1) return tree[j]!.report.name;
  return 'master';
}

function lanRows(rows: ClientRow[], acks: Record<string, number>): LanRow[] {
  const by = new Map<string, ClientRow[]>();
  for (const r of rows) by.set(`${r.via} ${r.lan}`, [...(by.get(`${r.via} ${r.lan}`) ?? []), r]);
  return [...by.values()].map((pcs) => {
    const live = pcs.filter(isLive);
    return {
      lan: pcs[0]!.lan, via: pcs[0]!.via, pcs: pcs.length, verified: pcs.filter((p) => p.verified).length,
      percent: live.length === 0 ? 100 : Math.min(...live.map((p) => p.percent)),
      acks: pcs[0]!.via === 'master' ? acks[pcs[0]!.lan] ?? 0 : undefined,
    };
  });
}

export const isLive = (r: ClientRow): boolean => r.state !== 'verified' && r.state !== 'failed' && r.state !== 'lost' && r.state !== 'dropped';
