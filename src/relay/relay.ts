// `must relay`: one node of a Hopwise Reliable Multicast tree. It takes the session from its
// upstream over TCP into a bounded ring, passes it on cut-through to the relays below it
// (TCP again) and to its own LAN over MTP multicast, as a master there, and reports its
// subtree upstream. The LAN's pass is one more output pointer in the ring: it holds the
// ring while it waits for the LAN's PCs and while it runs, and lets go once the pass is over.

import { decodeManifest } from '../protocol/manifest.ts';
import { Caps, Phase, phaseName } from '../protocol/messages.ts';
import { PageCache } from '../disk/source.ts';
import type { Logger } from '../log/logger.ts';
import type { Iface } from '../net/iface.ts';
import { type MasterControl, type MasterOptions, type MasterResult, runMaster } from '../net/master.ts';
import type { Sender } from '../session/sender.ts';
import { Hub, type HubSession, type Serving } from './hub.ts';
import { MasterWatch } from '../tui/master-view.ts';
import type { PcRow, RelayReport } from './report.ts';
import { Ring } from './ring.ts';
import { RelaySource } from './source.ts';
import { Upstream } from './upstream.ts';

export interface RelayOptions {
  upstream: { host: string; port: number };
  name: string;
  iface: Iface;
  /** The LAN session's group and ports, and the TCP port relays below connect to. */
  group: string;
  port: number;
  /** Ring size in bytes. */
  buffer: number;
  /** No LAN session: only relays below are served. */
  transit: boolean;
  log: Logger;
  /** The LAN session's settings, as a master's (rate, start rules, signing...). */
  lan: Omit<MasterOptions, 'image' | 'name' | 'iface' | 'group' | 'port' | 'log' | 'arriving' | 'hub' | 'onReady'>;
  linkTimeout: number;
  onReady?: (c: MasterControl) => void;
}

export interface RelayResult {
  ok: boolean;
  /** The last report sent upstream. */
  report: RelayReport;
}

export async function runRelay(o: RelayOptions): Promise<RelayResult> {
  const log = o.log;
  const ready = Promise.withResolvers<Serving & { ring: Ring; source: RelaySource }>();
  const fatal = Promise.withResolvers<never>();
  let ring: Ring | undefined;
  let source: RelaySource | undefined;
  let sender: Sender | undefined;
  let watch: MasterWatch | undefined;
  let lanPointer: { pos: number; release(): void } | undefined;
  let rssPeak = 0;
  const more: Array<() => void> = [];

  const hub = new Hub({ address: o.iface.address, port: o.port, log, serving: () => ready.promise, linkTimeout: o.linkTimeout });
  await hub.listen();

  const up: Upstream = new Upstream({
    host: o.upstream.host, port: o.upstream.port, localAddress: o.iface.loopback ? undefined : o.iface.address, name: o.name, lan: o.iface.network, log,
    position: () => ring?.end ?? 0,
    fits: (n) => ring !== undefined && ring.space >= n,
    onSession: (s: HubSession) => {
      if (ring) return;
      ring = new Ring(Math.max(1, Math.min(o.buffer, s.streamSize)));
      const r = ring;
      // The LAN's pass is an output pointer: from the start while it waits for PCs, then at the page the pass
      // reads. A transit relay has no LAN to serve, but keeps the stream from the start until a relay below takes it.
      lanPointer = r.reader(0);
      source = new RelaySource(r, s.streamSize, `relay of ${s.name} from ${up.address}`, (offset, length) => up.fetch(offset, length));
      log.info('session', { name: s.name, size: s.streamSize, upstream: up.address, buffer: r.size });
      ready.resolve({ session: s, source, ring: r, hold: (pos) => r.reader(pos), advanced: () => up.resume() });
    },
    onStream: (bytes) => {
      ring!.write(bytes);
      source!.grew();
      for (const f of more) f();
    },
    onFatal: (reason) => fatal.reject(new Error(reason)),
  });
  let control: MasterControl | undefined;
  let failure = '';
  fatal.promise.catch((e: Error) => { failure = e.message; control?.abort(e.message); });
  const report = (final: boolean, ok: boolean): RelayReport => {
    const r = ring!;
    return {
      name: o.name, address: o.iface.address, lan: o.iface.network, upstream: up.address,
      state: !sender ? (o.transit ? 'transit' : 'connecting') : sender.phase === Phase.Waiting ? 'waiting for PCs' : phaseName(sender.phase),
      received: r.end, streamSize: source!.size, buffer: { size: r.size, held: r.held, peak: r.peak },
      fetched: source!.fetched, rssPeak, pcs: watch ? lanPcs(watch) : [], relays: hub.reports, final, ok,
    };
  };
  const follow = (): void => {
    rssPeak = Math.max(rssPeak, process.memoryUsage.rss());
    if (!lanPointer || !sender) return;
    const pos = sender.phase === Phase.Waiting ? 0
      : sender.phase === Phase.Transfer ? Math.floor(sender.passOffset / PageCache.PAGE) * PageCache.PAGE : Infinity;
    if (pos !== lanPointer.pos) { lanPointer.pos = pos; up.resume(); }
  };
  const timers: NodeJS.Timeout[] = [];
  try {
    up.start();
    const serving = await Promise.race([ready.promise, fatal.promise]);
    const { session } = serving;
    if ((session.caps & Caps.Sealed) && !o.lan.secret) throw new Error('upstream serves a sealed (encrypted) session: give this relay the secret (--secret FILE) to serve its LAN');
    timers.push(setInterval(follow, 20), setInterval(() => up.report(JSON.stringify(report(false, false))), 1000));
    let lan: MasterResult | undefined;
    if (o.transit) {
      hub.onChange(() => { if ([...hub.links.values()].some((l) => l.connected)) lanPointer?.release(); });
      await Promise.race([fatal.promise, new Promise<void>((resolve) => { hub.onChange(() => { if (hub.links.size > 0 && hub.finished) resolve(); }); })]);
    } else {
      lan = await runMaster({
        ...o.lan, name: session.name, iface: o.iface, group: o.group, port: o.port, log, hub,
        image: { stream: serving.source, built: { manifest: decodeManifest(session.manifest), bytes: session.manifest, digest: session.digest }, mapped: (session.caps & Caps.Mapped) !== 0 },
        arriving: {
          // A whole page at a time: the pass then never asks for a page the ring cannot give yet.
          have: () => (ring!.end >= session.streamSize ? session.streamSize : Math.floor(ring!.end / PageCache.PAGE) * PageCache.PAGE),
          onMore: (f) => more.push(f),
        },
        onReady: (c) => {
          control = c;
          sender = c.sender;
          watch = new MasterWatch(c.sender, performance.now());
          if (failure) c.abort(failure);
          o.onReady?.(c);
        },
      });
      // Once the LAN is done it needs nothing more from the ring.
      lanPointer?.release();
    }
    if (failure) throw new Error(failure);
    follow();
    const ok = (lan?.ok ?? true) && hub.ok;
    const last = report(true, ok);
    await up.stop(JSON.stringify(last));
    log.info('relay-finished', {
      ok, received: last.received, buffer: last.buffer.size, peak: last.buffer.peak, paused: up.pauses, pausedSeconds: (up.pausedMs / 1000).toFixed(1),
      fetched: last.fetched, rssPeak: last.rssPeak, relays: hub.links.size,
    });
    return { ok, report: last };
  } finally {
    for (const t of timers) clearInterval(t);
    await up.stop();
    hub.close();
    await source?.close();
  }
}

/** This relay's own PCs, as rows for its report (those that ended first). */
function lanPcs(watch: MasterWatch): PcRow[] {
  const v = watch.poll(performance.now());
  return [...v.finished, ...v.clients].map(({ id: _id, verified: _verified, via: _via, ...pc }) => pc);
}
