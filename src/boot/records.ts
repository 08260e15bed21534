// The master's record of every PC, by MAC: kept in a JSON file that survives restarts
// (written to a temporary file and renamed, so a crash never leaves half a file), and
// exported as CSV or JSON.

import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { DiskError } from '../disk/device.ts';
import type { Sender } from '../session/sender.ts';

export type Result = 'booted' | 'imaging' | 'verified' | 'failed' | 'lost';

export interface PcRecord {
  mac: string;
  ip: string;
  hostname: string;
  image: string;
  /** Digest of the manifest the PC verified against (empty until verified). */
  digest: string;
  start: string;
  end: string;
  result: Result;
  reason: string;
}

const FIELDS: ReadonlyArray<keyof PcRecord> = ['mac', 'ip', 'hostname', 'image', 'digest', 'start', 'end', 'result', 'reason'];

export class Records {
  readonly path: string;
  private readonly byMac = new Map<string, PcRecord>();
  private readonly clock: () => Date;

  constructor(path: string, clock: () => Date = () => new Date()) {
    this.path = path;
    this.clock = clock;
    let text: string | undefined;
    try { text = readFileSync(path, 'utf8'); } catch (e) { if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e; }
    if (text !== undefined) {
      let list: PcRecord[];
      try { list = JSON.parse(text) as PcRecord[]; } catch (e) { throw new DiskError(`${path} is not a MUST records file (${(e as Error).message}); move it away or name another with --records`); }
      if (!Array.isArray(list)) throw new DiskError(`${path} is not a MUST records file; move it away or name another with --records`);
      for (const r of list) this.byMac.set(r.mac.toLowerCase(), r);
    }
  }

  get(mac: string): PcRecord | undefined { return this.byMac.get(mac.toLowerCase()); }
  all(): PcRecord[] { return [...this.byMac.values()].sort((a, b) => a.mac.localeCompare(b.mac)); }

  /** Add what was learnt about a PC this master already has a record of (a lease, a boot); others are not recorded. */
  touch(mac: string, change: Partial<Omit<PcRecord, 'mac'>>): void {
    if (this.get(mac)) this.update(mac, change);
  }

  /** Merge what is known about a PC (creating its record) and persist at once. */
  update(mac: string, change: Partial<Omit<PcRecord, 'mac'>>): PcRecord {
    const key = mac.toLowerCase();
    const now = this.clock().toISOString();
    const old = this.byMac.get(key) ?? { mac: key, ip: '', hostname: '', image: '', digest: '', start: '', end: '', result: 'booted' as Result, reason: '' };
    const next: PcRecord = { ...old, ...Object.fromEntries(Object.entries(change).filter(([, v]) => v !== undefined)) } as PcRecord;
    if (change.result === 'imaging' && old.result !== 'imaging') Object.assign(next, { start: now, end: '', digest: '', reason: change.reason ?? '' });
    if ((change.result === 'verified' || change.result === 'failed' || change.result === 'lost') && !change.end) next.end = now;
    this.byMac.set(key, next);
    this.save();
    return next;
  }

  private save(): void {
    const tmp = `${this.path}.tmp`;
    mkdirSync(dirname(this.path), { recursive: true });
    writeFileSync(tmp, `${JSON.stringify(this.all(), null, 2)}\n`);
    renameSync(tmp, this.path);
  }

  toCsv(): string {
    const cell = (v: string): string => (/[",\n]/.test(v) ? `"${v.replaceAll('"', '""')}"` : v);
    return [FIELDS.join(','), ...this.all().map((r) => FIELDS.map((f) => cell(String(r[f]))).join(','))].join('\n') + '\n';
  }
}

/** Where a master keeps its records unless told: /var/lib/must as root, else the user's state directory. */
export function defaultRecordsPath(): string {
  return process.getuid?.() === 0 ? '/var/lib/must/records.json' : join(process.env.XDG_STATE_HOME ?? join(homedir(), '.local/state'), 'must/records.json');
}

/** Keep a record of every PC a session images (by MAC): which image, when, and how it ended. */
export function recordSession(records: Records, sender: Sender, image: string, digest: string): void {
  sender.events.on((e) => {
    const c = 'client' in e ? e.client : undefined;
    if (!c || !c.mac || c.mac === '00:00:00:00:00:00') return;
    switch (e.type) {
      case 'joined': records.update(c.mac, { result: 'imaging', ip: c.endpoint.address, hostname: c.name, image }); break;
      case 'client-done':
        records.update(c.mac, c.state === 'verified' ? { result: 'verified', digest, reason: '' } : { result: 'failed', reason: c.reason });
        break;
      case 'lost': records.update(c.mac, { result: 'lost', reason: c.reason }); break;
      case 'dropped': records.update(c.mac, { result: 'failed', reason: c.reason }); break;
    }
  });
}
