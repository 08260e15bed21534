// The master's record of every PC, by MAC: kept in a JSON file that survives restarts
// (written to a temporary file and renamed, so a crash never leaves half a file), and
// exported as CSV or JSON.

import { readFileSync, renameSync, writeFileSync } from 'node:fs';

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
      const list = JSON.parse(text) as PcRecord[];
      if (!Array.isArray(list)) throw new Error(`${path} is not a MUST records file`);
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
    writeFileSync(tmp, `${JSON.stringify(this.all(), null, 2)}\n`);
    renameSync(tmp, this.path);
  }

  toCsv(): string {
    const cell = (v: string): string => (/[",\n]/.test(v) ? `"${v.replaceAll('"', '""')}"` : v);
    return [FIELDS.join(','), ...this.all().map((r) => FIELDS.map((f) => cell(String(r[f]))).join(','))].join('\n') + '\n';
  }
}
