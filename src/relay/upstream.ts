// A relay's link to its upstream (the master, or the relay above it): the stream link, whose
// bytes go into the ring in order, and which the relay stops reading while the ring is full
// (TCP then closes the window upstream: HRM's back-pressure); and the fetch link, for bytes the
// ring no longer holds and for the reports. A lost upstream is dialled again, and the stream
// resumes from the ring's input pointer.

import net from 'node:net';
import type { Logger } from '../log/logger.ts';
import { sha256 } from '../protocol/manifest.ts';
import { type Frame, FrameReader, FrameType, LinkError, LinkRole } from './frames.ts';
import { type HubSession, writeFrame } from './hub.ts';

export interface UpstreamOptions {
  host: string;
  port: number;
  /** Bind to this local address (the relay's interface towards its upstream). */
  localAddress?: string;
  name: string;
  lan: string;
  log: Logger;
  /** The session upstream serves: called again on each reconnection, with the same one. */
  onSession(s: HubSession): void;
  /** Where the stream continues (the ring's input pointer), and whether a stream frame fits now. */
  position(): number;
  fits(bytes: number): boolean;
  /** Stream bytes in order; called only when fits() said yes. */
  onStream(bytes: Uint8Array): void;
  /** Upstream refused this relay or broke the link's rules beyond retrying. */
  onFatal(reason: string): void;
}

interface Pending { offset: number; length: number; resolve(b: Uint8Array): void; reject(e: Error): void }

export class Upstream {
  private readonly o: UpstreamOptions;
  private stream: net.Socket | undefined;
  private fetchSock: net.Socket | undefined;
  /** The fetch link said HELLO: frames may follow. */
  private fetchOpen = false;
  private held: Frame | undefined;
  private reader = new FrameReader();
  private session: HubSession | undefined;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private stopped = false;
  private retry: NodeJS.Timeout | undefined;
  private delay = 200;
  /** Time the stream link spent paused because the ring was full (ms), and how often. */
  pausedMs = 0;
  pauses = 0;
  private pausedAt = 0;
  connected = false;

  constructor(o: UpstreamOptions) { this.o = o; }

  get address(): string { return `${this.o.host}:${this.o.port}`; }

  start(): void { this.connect(); }

  /** Send the last report, let it leave, and close both links without dialling again. */
  async stop(lastReport?: string): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.retry) clearTimeout(this.retry);
    for (const p of this.pending.values()) p.reject(new Error('the relay is stopping'));
    this.pending.clear();
    this.stream?.destroy();
    const f = this.fetchSock;
    if (!f) return;
    if (lastReport && this.fetchOpen) writeFrame(f, { type: FrameType.Report, json: lastReport });
    await new Promise<void>((resolve) => {
      const t = setTimeout(() => { f.destroy(); resolve(); }, 2000);
      f.once('close', () => { clearTimeout(t); resolve(); });
      f.end();
    });
  }

  /** Bytes [offset, offset+length) of the stream from upstream (which may fetch them from further up). */
  fetch(offset: number, length: number): Promise<Uint8Array> {
    return new Promise((resolve, reject) => {
      const id = this.nextId++;
      this.pending.set(id, { offset, length, resolve, reject });
      if (this.fetchOpen) writeFrame(this.fetchSock!, { type: FrameType.Fetch, id, offset, length });
    });
  }

  report(json: string): void {
    if (this.fetchOpen) writeFrame(this.fetchSock!, { type: FrameType.Report, json });
  }

  /** The ring has room again: take in the frame that waited, and read on. */
  resume(): void {
    if (!this.held || !this.stream) return;
    this.drain();
  }

  private connect(): void {
    if (this.stopped) return;
    const dial = (role: LinkRole): net.Socket => {
      const s = net.connect({ host: this.o.host, port: this.o.port, localAddress: this.o.localAddress });
      s.setNoDelay(true);
      s.on('connect', () => writeFrame(s, {
        type: FrameType.Hello, role, resumeFrom: this.o.position(), digest: this.session?.digest, name: this.o.name, lan: this.o.lan,
      }));
      s.on('error', () => s.destroy());
      s.on('close', () => this.lost(s));
      return s;
    };
    this.reader = new FrameReader();
    this.held = undefined;
    const stream = dial(LinkRole.Stream);
    const fetchSock = dial(LinkRole.Fetch);
    this.stream = stream;
    this.fetchSock = fetchSock;
    stream.on('data', (chunk: Buffer) => { this.reader.push(chunk); this.drain(); });
    const fr = new FrameReader();
    fetchSock.on('connect', () => {
      this.fetchOpen = true;
      // Fetches asked while the link was down go out now.
      for (const [id, p] of this.pending) writeFrame(fetchSock, { type: FrameType.Fetch, id, offset: p.offset, length: p.length });
    });
    fetchSock.on('data', (chunk: Buffer) => {
      fr.push(chunk);
      try {
        for (let f = fr.next(); f; f = fr.next()) this.onFetchFrame(f);
      } catch (e) {
        if (!(e instanceof LinkError)) throw e;
        this.o.log.warn('upstream', { upstream: this.address, error: e.message });
        fetchSock.destroy();
      }
    });
  }

  private onFetchFrame(f: Frame): void {
    if (f.type === FrameType.Fetched || f.type === FrameType.FetchFailed) {
      const p = this.pending.get(f.id);
      if (!p) return;
      this.pending.delete(f.id);
      if (f.type === FrameType.FetchFailed) p.reject(new Error(`upstream could not read bytes [${p.offset}, ${p.offset + p.length}): ${f.reason}`));
      else if (f.bytes.length !== p.length || f.offset !== p.offset) p.reject(new Error(`upstream answered a fetch of ${p.length} bytes at ${p.offset} with ${f.bytes.length} at ${f.offset}`));
      else p.resolve(f.bytes);
    }
  }

  /** Frames from the stream link, as far as the ring takes them; the socket waits while it is full. */
  private drain(): void {
    const s = this.stream!;
    try {
      for (let f = this.held ?? this.reader.next(); f; f = this.reader.next()) {
        this.held = undefined;
        switch (f.type) {
          case FrameType.Session:
            if (Buffer.compare(sha256(f.manifest), f.digest) !== 0) return this.o.onFatal('upstream sent a manifest that does not match its digest');
            if (this.session && Buffer.compare(this.session.digest, f.digest) !== 0) return this.o.onFatal('upstream now serves another image');
            this.session = { streamSize: f.streamSize, caps: f.caps, kind: f.kind, digest: f.digest, name: f.name, manifest: f.manifest };
            this.connected = true;
            this.delay = 200;
            this.o.onSession(this.session);
            break;
          case FrameType.Stream:
            if (f.offset !== this.o.position()) throw new LinkError(`stream bytes at ${f.offset}, expected ${this.o.position()}`);
            if (!this.o.fits(f.bytes.length)) {
              // Full: keep this frame, stop reading. TCP's window closes upstream until the slowest output pointer moves.
              this.held = f;
              if (!s.isPaused()) { s.pause(); this.pauses++; this.pausedAt = performance.now(); }
              return;
            }
            this.o.onStream(f.bytes);
            break;
          case FrameType.Refuse:
            return this.o.onFatal(`upstream refused this relay: ${f.reason}`);
          default:
            throw new LinkError(`frame ${f.type} on the stream link`);
        }
      }
      if (s.isPaused()) { s.resume(); this.pausedMs += performance.now() - this.pausedAt; }
    } catch (e) {
      if (!(e instanceof LinkError)) throw e;
      this.o.log.warn('upstream', { upstream: this.address, error: e.message });
      s.destroy();
    }
  }

  private lost(s: net.Socket): void {
    if (this.stopped || (s !== this.stream && s !== this.fetchSock)) return;
    // Either link gone: drop both and dial again; the stream resumes where the ring stands.
    const wasConnected = this.connected;
    this.connected = false;
    this.fetchOpen = false;
    this.stream?.destroy();
    this.fetchSock?.destroy();
    this.stream = undefined;
    this.fetchSock = undefined;
    if (wasConnected) this.o.log.warn('upstream-lost', { upstream: this.address, at: this.o.position(), retry: `${this.delay} ms` });
    this.retry = setTimeout(() => this.connect(), this.delay);
    this.delay = Math.min(this.delay * 1.5, 5000);
  }
}
