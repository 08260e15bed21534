// `must master`: hash the image into a manifest, then run the Sender machine on real
// sockets until every client that joined is verified, failed or gone.

import { randomInt } from 'node:crypto';
import { type BuiltManifest, buildManifest } from '../disk/manifest-build.ts';
import type { ManifestCache } from '../disk/manifest-cache.ts';
import { type ByteSource, PageCache } from '../disk/source.ts';
import { openImage } from '../image/format.ts';
import { type Logger, bytes } from '../log/logger.ts';
import { type FileEntry, Layout } from '../protocol/manifest.ts';
import { type Signer, buildAuth, fingerprint } from '../protocol/auth.ts';
import { SEAL_OVERHEAD, SessionSeal } from '../protocol/secret.ts';
import { HEADER_LENGTH } from '../protocol/codec.ts';
import { Caps, type ImageKind, MsgType, Phase, phaseName } from '../protocol/messages.ts';
import { xorInto } from '../protocol/xor.ts';
import { MBIT, type TransferParams, classicParams, defaultParams } from '../session/params.ts';
import type { LanPolicy } from '../session/lans.ts';
import { type ClientRecord, Sender } from '../session/sender.ts';
import { type Transmit, countsText } from '../session/types.ts';
import { type PxeOptions, startPxe } from '../boot/lab.ts';
import { Records, recordSession } from '../boot/records.ts';
import { type Iface, linkSpeed } from './iface.ts';
import { BatchWriter, syscalls } from './batch.ts';
import { Pump } from './pump.ts';
import type { Hub } from '../relay/hub.ts';
import { type RelayReport, flatten, pcsOf } from '../relay/report.ts';
import { closeAll, groupSender, groupSocket, sendingSocket, unicastSocket } from './udp.ts';

/** Repairs whose image bytes are read at once when a repair round reads small pages. */
const PREFETCH_REPAIRS = 64;
/** Bytes of each slab coded repairs' payloads are cut from. */
const CODED_SLAB = 256 << 10;

/** What a master sends: a manifest and the stream it describes. */
export interface Served {
  stream: ByteSource;
  built: BuiltManifest;
  /** The stream goes through the manifest (a MUST image); otherwise it lands where it stands. */
  mapped: boolean;
}

/** A raw file, device or file set: hashed into a manifest of stored chunks in place (or the one kept for it). */
export async function serveRaw(source: ByteSource, kind: ImageKind, files: FileEntry[] | undefined, log: Logger, cache?: ManifestCache): Promise<Served> {
  const kept = await cache?.load();
  if (kept) {
    log.info('hashed before', { image: source.label, size: source.size });
    return { stream: source, built: kept, mapped: false };
  }
  log.info('hashing', { image: source.label, size: source.size });
  let lastReport = 0;
  const built = await buildManifest(source, {
    kind, files,
    onProgress: (done, total) => {
      const t = performance.now();
      if (t - lastReport > 2000) { lastReport = t; log.info('hashing', { percent: Math.floor((done / total) * 100) }); }
    },
  });
  await cache?.keep(built);
  return { stream: source, built, mapped: false };
}

/** A MUST image file: its manifest and its stream of packed chunks, sent as they are. */
export async function serveImageFile(path: string): Promise<Served> {
  const img = await openImage(path);
  return {
    stream: img.stream, mapped: true,
    built: { manifest: img.manifest, bytes: img.manifestBytes, digest: img.header.manifestDigest },
  };
}

export interface MasterOptions {
  /** Read, never closed: its opener closes it. */
  image: Served;
  name: string;
  iface: Iface;
  group: string;
  port: number;
  protocol: 'default' | 'classic';
  /** Mbit/s ceiling; undefined: the link speed, or 1000. */
  rate: number | undefined;
  mtu: number;
  ttl: number;
  /** How the clients' LANs are told apart (intra-campus rule; default: learned from their addresses). */
  lans?: LanPolicy;
  minClients: number;
  /** Seconds after the last join (undefined: not this rule). */
  wait: number | undefined;
  clientTimeout: number;
  /** Seconds; 0: a slow client is never dropped for being slow. */
  maxBehind?: number;
  log: Logger;
  /** Called once the master listens, with a function that starts the transfer now. */
  onReady?: (control: MasterControl) => void;
  /** Override tunables (tests, benchmarks). */
  tune?: (p: TransferParams) => TransferParams;
  /** Also boot the lab: DHCP/TFTP (dnsmasq), HTTP, boot policy, per-PC records. */
  pxe?: PxeOptions;
  /** Sign the session with this key (clients that trust it write only what it vouched for). */
  signer?: Signer;
  /** Seal every payload with this shared secret (clients need it to read anything). */
  secret?: Uint8Array;
  /** Keep per-PC records here (the --pxe lab keeps its own, in its options). */
  records?: string;
  /** The stream is still arriving (a relay passes it on cut-through): how much is here, and word when more is. */
  arriving?: { have(): number; onMore(f: () => void): void };
  /** Relays below (HRM): served by this hub; the session ends only once their part has ended too. */
  hub?: Hub;
}

export interface MasterControl {
  sender: Sender;
  /** The latest reports of the relays right below (none without a hub). */
  relays(): RelayReport[];
  startNow(): void;
  drop(id: string, reason: string): void;
  abort(reason: string): void;
}

export interface MasterResult {
  ok: boolean;
  clients: ClientRecord[];
  /** The relays right below, as they last reported. */
  relays: RelayReport[];
  seconds: number;
  sender: Sender;
}

export function transferParams(o: Pick<MasterOptions, 'protocol' | 'rate' | 'mtu' | 'iface'>): TransferParams {
  if (o.protocol === 'classic') return classicParams();
  const mbit = o.rate ?? linkSpeed(o.iface.name) ?? 1000;
  return defaultParams(o.mtu, mbit * MBIT);
}

export async function runMaster(o: MasterOptions): Promise<MasterResult> {
  const log = o.log;
  const { built, stream } = o.image;
  const m = built.manifest;
  const base = transferParams(o);
  // A sealed payload carries a 16-byte tag: the plaintext per packet shrinks so datagrams keep their size.
  const sized = o.secret ? { ...base, payloadSize: base.payloadSize - SEAL_OVERHEAD } : base;
  const params = o.tune ? o.tune(sized) : { ...sized, clientTimeout: o.clientTimeout * 1000, maxBehind: (o.maxBehind ?? 0) * 1000 };
  const classic = o.protocol === 'classic';
  const dataPort = classic ? o.port + 2 : o.port;
  const feedbackPort = dataPort + 1;
  const session = randomInt(1, 0xffff_ffff);
  const sender = new Sender({
    session, params, kind: m.kind, name: o.name, caps: (o.image.mapped ? Caps.Mapped : 0) | (o.secret ? Caps.Sealed : 0), manifest: built.bytes, manifestDigest: built.digest,
    imageSize: stream.size, targetSize: m.targetSize, sectorSize: m.sectorSize, controlPort: o.port, dataPort, feedbackPort,
    minClients: o.minClients, waitAfterJoin: o.wait === undefined ? undefined : o.wait * 1000, linger: 1500,
    persistent: o.pxe !== undefined, signer: o.signer, ttl: o.ttl, lans: o.lans, layout: new Layout(m),
  }, Math.random, performance.now());

  const cache = new PageCache(stream);
  const seal = o.secret ? new SessionSeal(o.secret, session, built.digest) : undefined;
  const sockOpts = { group: o.group, iface: o.iface.address, ttl: o.ttl, loop: o.iface.loopback, rcvbuf: 4 << 20, sndbuf: 4 << 20 };
  let pump: Pump | undefined;
  const input = (b: Uint8Array, from: { address: string; port: number }, port: number): void => pump?.input(b, from, port);
  const tx = await unicastSocket(sockOpts, input);
  const fb = await groupSocket(sockOpts, feedbackPort, input);
  const data = await groupSender(sockOpts, dataPort);
  // Full DATA datagrams share messages the kernel cuts up (UDP segmentation): see batch.ts.
  const full = params.payloadSize + (seal ? SEAL_OVERHEAD : 0) + HEADER_LENGTH[MsgType.Data];
  const batch = BatchWriter.for(data, full);
  // Repairs for one PC (Caps.UnicastRepairs) leave in batches too, by a socket of their own: the
  // control socket's datagrams must never be cut to a DATA datagram's size.
  const pcs = sender.unicastRepairs && syscalls() ? await sendingSocket(sockOpts) : undefined;
  const pcBatch = pcs && BatchWriter.for(pcs, full, undefined, 'a PC');

  // Each repair round reads the image afresh: a bad read, or a file the operator repaired,
  // is not served again from memory.
  let cachedEpoch = -1;
  /** The page the last image bytes came from (-1: none since the cache was cleared). */
  let usedPage = -1;
  // The pass begins with the image's first pages: they are read while the master waits for its PCs,
  // not once the first has joined (a read of 12 MiB then held the first datagrams back by about 10 ms).
  if (!o.arriving) {
    cachedEpoch = sender.epoch;
    cache.load(0, 1, 2).catch(() => {});
  }
  // DATA leaves by the connected socket (in batches, after each turn of the machine), everything
  // else by the control socket (whose port the clients answer). A socket whose kernel queue is full
  // says so (dgram's datagrams then wait in Node, costlier).
  const send = (t: Transmit): boolean => {
    const toData = t.packet !== undefined && t.dest.kind === 'group' && t.dest.port === dataPort;
    const toPc = t.packet !== undefined && t.dest.kind === 'unicast' && pcBatch !== undefined;
    if (toData && batch ? !batch.ready : toPc ? !pcBatch!.ready : (toData ? data : tx).getSendQueueCount() > 0) return false;
    if (t.auth) {
      const bytes = authBytes(t.auth.first, t.auth.count);
      if (!bytes) return false;
      out(t, toData, toPc, [bytes]);
      return true;
    }
    let parts = t.parts;
    if (t.image) {
      const bytes = imageBytes(t.image.offset, t.image.length);
      if (!bytes) return false;
      if (t.xor) {
        const coded = codedPayload(bytes, t.xor);
        if (!coded) return false;
        parts = [parts[0]!, coded];
      } else parts = parts.length === 1 && bytes.length === 1 ? [parts[0]!, bytes[0]!] : [...parts, ...bytes];
    }
    // Sealed sessions: the header stays in the clear, the payload (manifest or image bytes) is sealed.
    if (seal && t.packet !== undefined) parts = [parts[0]!, seal.seal(t.packet, parts.slice(1))];
    out(t, toData, toPc, parts);
    return true;
  };
  // One function for every datagram, not a closure made per datagram (in a bundle that keeps
  // names, each closure made also costs a property definition: see scripts/appliance/sea.ts).
  const out = (t: Transmit, toData: boolean, toPc: boolean, parts: Uint8Array[]): void => {
    if (toData && batch) batch.add(parts);
    else if (toData) data.send(parts);
    else if (toPc && t.dest.kind === 'unicast') pcBatch!.add(parts, t.dest.to);
    else if (t.dest.kind === 'group') tx.send(parts, t.dest.port, o.group);
    else tx.send(parts, t.dest.to.port, t.dest.to.address);
  };

  /**
   * A coded repair's payload: `first`'s bytes XOR those of each range; undefined until all are read.
   * Payloads are cut from slabs, one buffer for a few hundred of them (each stays as it was made until
   * its datagram has gone: a slab is never reused, only dropped by the last of them).
   */
  const codedViews: Uint8Array[][] = [];
  let codedSlab = new Uint8Array(0), codedUsed = 0;
  const codedPayload = (first: Uint8Array[], ranges: NonNullable<Transmit['xor']>): Uint8Array | undefined => {
    codedViews.length = 0;
    for (const r of ranges) {
      const views = imageBytes(r.offset, r.length);
      if (!views) return undefined;
      codedViews.push(views);
    }
    const length = ranges[0]!.length;
    if (codedUsed + length > codedSlab.length) { codedSlab = new Uint8Array(Math.max(CODED_SLAB, length)); codedUsed = 0; }
    const out = codedSlab.subarray(codedUsed, codedUsed + length);
    // The next payload starts on an 8-byte boundary: xorInto goes a word at a time there.
    codedUsed += (length + 7) & ~7;
    let at = 0;
    for (const b of first) { out.set(b, at); at += b.length; }
    for (const views of codedViews) {
      at = 0;
      for (const b of views) { xorInto(out, at, b); at += b.length; }
    }
    return out;
  };

  /**
   * The pages to read the image in now. A repair round that asks for few packets (in small pages,
   * less than a quarter of the image) reads small pages: a big page each would read most of the
   * image again for them, round after round. Asked again at every miss: a round's requests come
   * in over some milliseconds, and the round shrinks as its repairs go out.
   */
  const pageSizeNow = (): number =>
    sender.phase === Phase.Repair && sender.repairPending * PageCache.SMALL < stream.size / 4 ? PageCache.SMALL : PageCache.PAGE;

  /** Forget the loaded pages: what is sent next is read again, in pages of `size`. */
  const reread = (size: number): void => { cache.clear(size); usedPage = -1; };

  /** Image bytes as views of loaded pages, or undefined (and a read started) until they are loaded. */
  const imageBytes = (offset: number, length: number): Uint8Array[] | undefined => {
    if (sender.epoch !== cachedEpoch) {
      cachedEpoch = sender.epoch;
      reread(pageSizeNow());
    }
    const data = cache.get(offset, length);
    if (!data) {
      if (cache.failure) throw cache.failure;
      const size = pageSizeNow();
      if (size !== cache.pageSize) reread(size);
      const kick = (): void => pump?.kick();
      if (size === PageCache.PAGE) cache.load(offset, length, 2).then(kick, kick);
      else {
        // Few and far between: read the pages of the next repairs all at once, not one after another.
        cache.load(offset, length).then(kick, kick);
        for (const p of sender.upcomingRepairs(PREFETCH_REPAIRS)) {
          const span = sender.geo.span(p);
          if (span.region === 'image') cache.load(span.offset, span.length).catch(() => {});
        }
      }
      return undefined;
    }
    // A page's first packet out: read the next pages while this one goes out. The pass enters a page
    // at its first packet; a repair round anywhere in it (and would otherwise wait for every page).
    const page = Math.floor(offset / cache.pageSize);
    if (page !== usedPage && cache.pageSize === PageCache.PAGE) { usedPage = page; cache.load(offset, length, 3).catch(() => {}); }
    return data;
  };

  /** AUTH for object packets [first, first+count), or undefined until their image bytes are read. */
  const authBytes = (first: number, count: number): Uint8Array | undefined => buildAuth(sender.geo, session, first, count, o.signer!, (span, packet) => {
    const bytes = span.region === 'manifest' ? built.bytes.subarray(span.offset, span.offset + span.length) : imageBytes(span.offset, span.length);
    if (!bytes) return undefined;
    // AUTH vouches for what travels: the sealed payload when the session is sealed.
    return seal ? seal.seal(packet, bytes) : bytes;
  });

  const started = performance.now();
  const hub = o.hub;
  // Done when this LAN's session is (or it never had a PC, while relays below had some) and every relay's part has ended.
  const done = new Promise<void>((resolve) => {
    let local = false;
    const check = (): void => {
      const lanOver = local || (hub !== undefined && hub.links.size > 0 && sender.clients.size === 0);
      if (lanOver && (!hub || hub.finished)) resolve();
    };
    // Both writers flush every turn: one whose socket is full must not hold the other's datagrams back.
    const flush = batch || pcBatch ? (): boolean => { const a = batch?.flush() ?? true; return (pcBatch?.flush() ?? true) && a; } : undefined;
    pump = new Pump(sender, { send, flush }, () => performance.now(), () => { local = true; check(); });
    hub?.onChange(check);
  });
  if (o.arriving) {
    const feed = o.arriving;
    const more = (): void => { sender.setAvailable(feed.have()); pump?.kick(); };
    more();
    feed.onMore(more);
  }
  const describe = (c: ClientRecord): Record<string, string | number> =>
    ({ client: c.name, id: c.id, ip: c.endpoint.address });
  sender.events.on((e) => {
    switch (e.type) {
      case 'phase':
        log.info('phase', { phase: phaseName(e.phase), segment: e.segment, epoch: e.epoch, clients: sender.activeClients.length });
        break;
      case 'joined': log.info(e.rejoined ? 'rejoined' : 'joined', { ...describe(e.client), capacity: e.client.capacity, have: e.client.have }); break;
      case 'client-done':
        if (e.client.state === 'verified') log.info('verified', { ...describe(e.client), seconds: ((e.at - e.client.joinedAt) / 1000).toFixed(1), repaired: e.client.repaired });
        else log.warn('failed', { ...describe(e.client), reason: e.client.reason });
        break;
      case 'lost': log.warn('lost', { ...describe(e.client), reason: e.client.reason }); break;
      case 'dropped': log.warn('dropped', { ...describe(e.client), reason: e.client.reason }); break;
      case 'rejected': log.debug('rejected', { reason: e.reason, from: `${e.from.address}:${e.from.port}` }); break;
      case 'finished': break;
    }
  });

  log.info('serving', {
    image: stream.label, size: m.targetSize, stream: o.image.mapped ? stream.size : undefined, name: o.name, protocol: o.protocol, group: o.group, port: o.port,
    iface: `${o.iface.name}/${o.iface.address}`, session: session.toString(16), manifest: Buffer.from(built.digest).toString('hex').slice(0, 16),
    rate: params.rate.max > 0 ? `${Math.round(params.rate.max / MBIT)}Mbit/s` : 'stop-and-wait',
    auth: o.signer ? `signed key=${fingerprint(o.signer.publicKey)}` : 'none (unauthenticated: clients cannot tell this master from anyone else)',
    sealed: o.secret ? 'AES-256-GCM' : undefined,
  });
  let lastBytes = 0, lastAt = performance.now();
  const progress = setInterval(() => {
    if (sender.phase === Phase.Waiting) {
      log.info('waiting', { clients: sender.activeClients.length, need: o.minClients || undefined });
      return;
    }
    const now = performance.now(), s = sender.stats;
    const rate = ((s.bytesSent - lastBytes) / ((now - lastAt) / 1000)) / 1e6;
    lastBytes = s.bytesSent; lastAt = now;
    const all = [...sender.clients.values()];
    log.info('progress', {
      phase: phaseName(sender.phase), sent: Math.min(100, Math.floor((s.dataSent / sender.geo.packets) * 100)), rateMBps: rate.toFixed(1),
      // The pace the rate controller has set (what the master would send at, were it never waiting for ACKs).
      paceMbit: sender.rate.paced ? Math.round(sender.rate.rate / MBIT) : undefined,
      active: all.filter((c) => c.state === 'active').length, verified: all.filter((c) => c.state === 'verified').length,
      repairPending: sender.repairPending, acks: s.ackDatagrams, timeouts: s.blocksTimedOut,
    });
  }, 2000);

  const digestHex = Buffer.from(built.digest).toString('hex');
  if (o.records && !o.pxe) recordSession(new Records(o.records), sender, o.name, digestHex);
  const pxe = o.pxe ? await startPxe(o.pxe, { iface: o.iface.name, address: o.iface.address, group: o.group, port: o.port, image: o.name, digest: digestHex }, sender, log) : undefined;
  let abortResolve!: () => void;
  const aborted = new Promise<void>((r) => { abortResolve = r; });
  o.onReady?.({
    sender,
    relays: () => hub?.reports ?? [],
    startNow: () => { sender.startNow(); pump!.kick(); },
    drop: (id, reason) => { sender.dropClient(id, reason, performance.now()); pump!.kick(); },
    abort: (reason) => { log.warn('aborted', { reason }); abortResolve(); },
  });
  pump!.kick();
  await Promise.race([done, aborted]);
  pump!.stop();
  clearInterval(progress);
  await pxe?.stop();
  closeAll(pcs ? [tx, fb, data, pcs] : [tx, fb, data]);

  const clients = [...sender.clients.values()];
  const seconds = (performance.now() - started) / 1000;
  for (const c of clients) {
    log.info('summary', {
      client: c.name, ip: c.endpoint.address, result: c.state, seconds: c.doneAt ? ((c.doneAt - c.joinedAt) / 1000).toFixed(1) : undefined,
      repaired: c.repaired, reason: c.reason || undefined,
    });
  }
  const relays = hub?.reports ?? [];
  for (const p of flatten(relays)) for (const pc of p.report.pcs) {
    log.info('summary', { client: pc.name, ip: pc.ip, result: pc.state, seconds: pc.seconds?.toFixed(1), via: p.report.name, reason: pc.reason });
  }
  const s = sender.stats;
  // A LAN with no PC of its own serving only relays is not a failure; the relays' parts must all have ended well.
  const lanOk = o.pxe ? sender.allVerified : sender.ok || (clients.length === 0 && relays.length > 0);
  const ok = lanOk && (hub?.ok ?? true);
  const remote = pcsOf(relays);
  log.info('finished', {
    ok, clients: clients.length + remote.length, verified: clients.filter((c) => c.state === 'verified').length + remote.filter((p) => p.state === 'verified').length, relays: relays.length || undefined, seconds: seconds.toFixed(1),
    sent: bytes(s.bytesSent), data: s.dataSent, repairs: s.repairSent, inPass: s.passRepairSent, toOnePc: s.unicastRepairSent, coded: s.codedSent, inCoded: s.codedPackets, acks: s.ackDatagrams, ackedBlocks: s.blocksAcked, timeouts: s.blocksTimedOut,
    blocks: sender.geo.blocks, acksByLan: countsText(s.acksByLan), solicited: s.solicited, rejected: countsText(s.drops),
  });
  return { ok, clients, relays, seconds, sender };
}
