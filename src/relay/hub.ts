// The downstream side of a hop: a TCP server that master and relays both run. Each relay
// below opens two connections: a stream link, which gets the session's description and then
// the stream in order from where the relay says it stands (cut-through: a relay passes on
// bytes as they arrive), paced by TCP alone; and a fetch link, which answers random reads and
// carries the relay's reports up. A relay that goes away and comes back resumes where it was.

import net from 'node:net';
import type { ByteSource } from '../disk/source.ts';
import type { Logger } from '../log/logger.ts';
import { type Frame, FrameReader, FrameType, LinkError, LinkRole, encodeFrame } from './frames.ts';
import { type RelayReport, parseReport, pcsOf } from './report.ts';
import type { RingReader } from './ring.ts';

/** Bytes per stream frame. */
export const STREAM_CHUNK = 256 << 10;

export interface HubSession {
  streamSize: number;
  caps: number;
  kind: number;
  digest: Uint8Array;
  name: string;
  manifest: Uint8Array;
}

/** What a hub serves, once it is known (a relay learns it from its own upstream). */
export interface Serving {
  session: HubSession;
  source: ByteSource;
  /** A relay's output pointer in its ring for a link at `pos` (the master reads a file and needs none). */
  hold?: (pos: number) => RingReader;
  /** A link moved its pointer: the ring may have room again. */
  advanced?: () => void;
}

export interface Downstream {
  name: string;
  address: string;
  lan: string;
  /** Stream bytes handed to this link. */
  sent: number;
  connected: boolean;
  report: RelayReport | undefined;
  /** Its part is over: it said so in a final report, or it was lost. */
  final: boolean;
  ok: boolean;
  lostAt: number | undefined;
}

export interface HubOptions {
  address: string;
  port: number;
  log: Logger;
  serving: () => Promise<Serving>;
  /** A relay gone this long (ms) without coming back is lost, and its part failed. */
  linkTimeout: number;
}

/** Write a frame whole (corked, so its parts leave together); false when the socket wants a drain. */
export function writeFrame(sock: net.Socket, f: Frame): boolean {
  const parts = encodeFrame(f);
  sock.cork();
  let ok = true;
  for (const p of parts) ok = sock.write(p);
  sock.uncork();
  return ok;
}

export class Hub {
  readonly links = new Map<string, Downstream>();
  private readonly o: HubOptions;
  private server: net.Server | undefined;
  private readonly sockets = new Set<net.Socket>();
  private lossTimer: NodeJS.Timeout | undefined;
  private readonly listeners: Array<() => void> = [];

  constructor(o: HubOptions) { this.o = o; }

  async listen(): Promise<void> {
    const server = net.createServer((s) => this.accept(s));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.o.port, this.o.address, () => { server.off('error', reject); resolve(); });
    });
    server.on('error', (e) => this.o.log.warn('relay-link', { error: e.message }));
    this.lossTimer = setInterval(() => this.checkLost(), 1000);
  }

  /** Called whenever a link connects, reports, ends or is lost. */
  onChange(f: () => void): void { this.listeners.push(f); }
  private changed(): void { for (const f of this.listeners) f(); }

  /** Relays that connected; and whether every one of them has ended its part, and ended it well. */
  get finished(): boolean { return [...this.links.values()].every((l) => l.final); }
  get ok(): boolean { return [...this.links.values()].every((l) => l.ok); }
  /** The latest report of each relay right below. */
  get reports(): RelayReport[] { return [...this.links.values()].flatMap((l) => (l.report ? [l.report] : [])); }

  close(): void {
    if (this.lossTimer) clearInterval(this.lossTimer);
    for (const s of this.sockets) s.destroy();
    this.server?.close();
  }

  private checkLost(): void {
    const now = performance.now();
    for (const l of this.links.values()) {
      if (l.connected || l.final || l.lostAt === undefined || now - l.lostAt < this.o.linkTimeout) continue;
      l.final = true;
      l.ok = false;
      this.o.log.warn('relay-lost', { relay: l.name, address: l.address, reason: `gone for ${Math.round((now - l.lostAt) / 1000)} s` });
      this.changed();
    }
  }

  private accept(sock: net.Socket): void {
    this.sockets.add(sock);
    sock.setNoDelay(true);
    const reader = new FrameReader();
    let link: Downstream | undefined;
    let role: LinkRole | undefined;
    let closed = false;
    const fail = (why: string): void => {
      this.o.log.warn('relay-link', { relay: link?.name, address: sock.remoteAddress, error: why });
      sock.destroy();
    };
    sock.on('error', () => sock.destroy());
    sock.on('close', () => {
      closed = true;
      this.sockets.delete(sock);
      if (link && role === LinkRole.Stream) {
        link.connected = false;
        link.lostAt = performance.now();
        if (!link.final) this.o.log.warn('relay-gone', { relay: link.name, address: link.address, sent: link.sent });
        this.changed();
      }
    });
    sock.on('data', (chunk: Buffer) => {
      reader.push(chunk);
      try {
        for (let f = reader.next(); f; f = reader.next()) {
          if (!role) {
            if (f.type !== FrameType.Hello) return fail('the first frame was not a HELLO');
            role = f.role;
            link = this.hello(f.name, sock.remoteAddress ?? '?', f.lan, f.role);
            if (f.role === LinkRole.Stream) void this.stream(sock, link, f.resumeFrom, f.digest, () => closed).catch((e: Error) => fail(e.message));
            continue;
          }
          if (role === LinkRole.Fetch) this.onFetchLink(sock, link!, f);
          else return fail(`frame ${f.type} on a stream link`);
        }
      } catch (e) {
        if (e instanceof LinkError) return fail(e.message);
        throw e;
      }
    });
  }

  private hello(name: string, address: string, lan: string, role: LinkRole): Downstream {
    let l = this.links.get(name);
    if (!l) {
      // Known from its fetch link only: lost unless its stream link comes soon.
      l = { name, address, lan, sent: 0, connected: false, report: undefined, final: false, ok: false, lostAt: performance.now() };
      this.links.set(name, l);
    }
    if (role === LinkRole.Stream) {
      // A relay that comes back is working again, whatever it said before.
      Object.assign(l, { address, lan, connected: true, final: false, ok: false, lostAt: undefined });
      this.o.log.info('relay', { relay: name, address, lan });
      this.changed();
    }
    return l;
  }

  /** Serve the stream in order from `from`, at the pace the socket drains. */
  private async stream(sock: net.Socket, link: Downstream, from: number, digest: Uint8Array | undefined, closed: () => boolean): Promise<void> {
    const { session, source, hold, advanced } = await this.o.serving();
    if (closed()) return;
    if (digest && Buffer.compare(digest, session.digest) !== 0) {
      writeFrame(sock, { type: FrameType.Refuse, reason: 'this relay holds part of another image; restart it to take this one' });
      sock.end();
      return;
    }
    writeFrame(sock, { type: FrameType.Session, ...session });
    let pos = digest ? Math.min(from, session.streamSize) : 0;
    const reader = hold?.(pos);
    try {
      while (pos < session.streamSize && !closed()) {
        const bytes = await source.read(pos, Math.min(STREAM_CHUNK, session.streamSize - pos));
        if (closed()) break;
        const flowing = writeFrame(sock, { type: FrameType.Stream, offset: pos, bytes });
        pos += bytes.length;
        link.sent = pos;
        if (reader) { reader.pos = pos; advanced?.(); }
        if (!flowing) await new Promise<void>((r) => { sock.once('drain', r); sock.once('close', r); });
      }
    } finally {
      reader?.release();
      advanced?.();
    }
  }

  private onFetchLink(sock: net.Socket, link: Downstream, f: Frame): void {
    switch (f.type) {
      case FrameType.Fetch:
        this.o.serving().then(({ session, source }) => {
          if (f.offset + f.length > session.streamSize) throw new Error(`bytes [${f.offset}, ${f.offset + f.length}) are past the stream's end`);
          return source.read(f.offset, f.length);
        }).then(
          (bytes) => { if (!sock.destroyed) writeFrame(sock, { type: FrameType.Fetched, id: f.id, offset: f.offset, bytes }); },
          (e: Error) => { if (!sock.destroyed) writeFrame(sock, { type: FrameType.FetchFailed, id: f.id, reason: e.message }); },
        );
        return;
      case FrameType.Report: {
        const r = parseReport(f.json);
        if (!r) return void this.o.log.debug('relay-report', { relay: link.name, error: 'malformed report' });
        link.report = r;
        if (r.final && !link.final) {
          link.final = true;
          link.ok = r.ok;
          const pcs = pcsOf([r]);
          this.o.log.info('relay-done', { relay: link.name, ok: r.ok, pcs: pcs.length, verified: pcs.filter((p) => p.state === 'verified').length });
        }
        this.changed();
        return;
      }
      default:
        this.o.log.debug('relay-link', { relay: link.name, error: `unexpected frame ${f.type} on a fetch link` });
    }
  }
}
