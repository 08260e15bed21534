// What the master's screen shows (and `must master --json` prints): the session, one row per
// PC, the last events. Built from the Sender's records and counters, polled; PCs that ended
// move to `finished`, in the order they ended, so the screen can print them once above
// the live table.

import { Meter } from '../log/meter.ts';
import { ClientPhase, Phase, clientPhaseName, phaseName } from '../protocol/messages.ts';
import type { ClientRecord, Sender } from '../session/sender.ts';
import { Store } from './store.ts';

export interface ClientRow {
  id: string;
  name: string;
  mac: string;
  ip: string;
  lan: string;
  /** waiting, receiving, repairing, verifying (still active), or verified, failed, lost, dropped. */
  state: string;
  percent: number;
  rateMBps: number;
  missing: number;
  verified: boolean;
  seconds: number | undefined;
  reason: string;
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
    clients: [], finished: [], events: [], selected: 0, prompt: undefined, summary: undefined,
  });
}

/** The /24 a PC is on: what "its LAN" means until the master is told its LANs. */
export const lanOf = (ip: string): string => `${ip.split('.').slice(0, 3).join('.')}.0/24`;

/** Rows and session facts from the sender's records, with per-PC rates from their meters. */
export class MasterWatch {
  private readonly sender: Sender;
  private readonly meters = new Map<string, Meter>();
  private readonly bytes = new Meter();
  private readonly done: string[] = [];
  private readonly startedAt: number;

  constructor(sender: Sender, now: number) { this.sender = sender; this.startedAt = now; }

  row(c: ClientRecord, now: number): ClientRow {
    const total = this.sender.geo.packets;
    let meter = this.meters.get(c.id);
    if (!meter) this.meters.set(c.id, meter = new Meter());
    const rate = c.state === 'active' ? meter.sample(now, c.have) : 0;
    return {
      id: c.id, name: c.name, mac: c.mac, ip: c.endpoint.address, lan: lanOf(c.endpoint.address),
      state: c.state === 'active' ? clientPhaseName(c.phase) : c.state,
      percent: total > 0 ? Math.min(100, Math.floor((c.have / total) * 100)) : 0,
      rateMBps: (rate * this.sender.geo.payloadSize) / 1e6, missing: Math.max(0, total - c.have),
      verified: c.state === 'verified', seconds: c.doneAt !== undefined ? (c.doneAt - c.joinedAt) / 1000 : undefined, reason: c.reason,
    };
  }

  /** The view's session part, rows and finished list as of now. */
  poll(now: number): Pick<MasterView, 'state' | 'rateMBps' | 'elapsed' | 'etaSeconds' | 'sentPercent' | 'clients' | 'finished'> {
    const s = this.sender;
    const records = [...s.clients.values()];
    const rows = records.map((c) => this.row(c, now));
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
    };
  }
}

export const isLive = (r: ClientRow): boolean => r.state !== 'verified' && r.state !== 'failed' && r.state !== 'lost' && r.state !== 'dropped';
