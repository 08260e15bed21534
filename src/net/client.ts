// `must client`: find a master, confirm the target, run the Receiver machine on real
// sockets, write through the bounded queue, and end verified or failed.

import { type Verifier } from '../protocol/auth.ts';
import { createHash } from 'node:crypto';
import { hostname } from 'node:os';
import { resolve as resolvePath } from 'node:path';
import { type ByteTarget, LateTarget, WriteQueue } from '../disk/writer.ts';
import { type Logger, bytes } from '../log/logger.ts';
import { isData } from '../protocol/codec.ts';
import { type AnnounceMsg, type ClientId, type ImageKind, Caps, clientPhaseName } from '../protocol/messages.ts';
import { Receiver } from '../session/receiver.ts';
import { type Transmit, countsText } from '../session/types.ts';
import type { Iface } from './iface.ts';
import { Pump } from './pump.ts';
import { BatchedInput, classicBegins, closeAll, groupSocket, mustBegins, unicastSocket } from './udp.ts';
import type dgram from 'node:dgram';

/** A target to write, and how a growable file learns the image's size. */
export type ClientTarget = ByteTarget & { fit?(size: number): Promise<void> };

/**
 * Asked once the master's announcement says what the image is: the target to write (after the
 * operator chose or confirmed it), or why none will be written.
 */
export type TargetChoice = (a: AnnounceMsg) => Promise<ClientTarget | { declined: string }>;

export interface ClientOptions {
  /** The target, when it is known before the master is (undefined: `choose` picks it). */
  target: ClientTarget | undefined;
  /** Ask before writing (undefined: write `target` without asking). */
  choose?: TargetChoice;
  kind: ImageKind;
  iface: Iface;
  group: string;
  port: number;
  server: string | undefined;
  name: string;
  log: Logger;
  /** Drop this share of incoming datagrams at random (a test and demo aid). */
  simulateLoss: number;
  /** Called once running, with a function that interrupts the client (a signal). */
  onStart?: (stop: () => void) => void;
  /** Called with the machine once it exists (a screen follows it). */
  onSession?: (receiver: Receiver) => void;
  /** The master's public key to insist on (undefined: trust on first use, or unauthenticated). */
  trust?: Verifier;
  /** Shared secret for sealed sessions. */
  secret?: Uint8Array;
}

export interface ClientResult {
  ok: boolean;
  reason: string;
  receiver: Receiver;
  seconds: number;
}

/** Stable across restarts of the same machine and target, so the master recognises a rejoin. */
export function clientId(name: string, iface: Iface, target: string): ClientId {
  return createHash('sha256').update(`${name}|${iface.mac}|${resolvePath(target)}`).digest('hex').slice(0, 16);
}

/** The host name, unless the machine has none yet (an appliance before DHCP names it). */
export function defaultName(iface?: Iface): string {
  const h = hostname();
  if (h && h !== '(none)' && h !== 'localhost') return h;
  return iface && iface.mac !== '00:00:00:00:00:00' ? `pc-${iface.mac.split(':').slice(3).join('')}` : 'pc';
}

export async function runClient(o: ClientOptions): Promise<ClientResult> {
  const log = o.log;
  // A growable file takes the image's size (holes included); a disk keeps its own.
  const fit = (t: ClientTarget, size: number): void => {
    if (t.fit && size <= t.capacity) t.fit(size).catch((err: Error) => log.error('resize', { target: t.path, error: err.message }));
  };
  let pump: Pump | undefined;
  const now = (): number => performance.now();
  const late = o.target ? undefined : new LateTarget();
  const target: ClientTarget = o.target ?? late!;
  const queue = new WriteQueue(target, {
    chunkChecked: (k, ok, reason) => {
      if (!ok) log.warn('chunk-refused', { chunk: k, reason });
      receiver.onChunkChecked(k, ok, now());
      pump?.kick();
    },
    flushed: () => { receiver.onFlushed(now()); pump?.kick(); },
    flushFailed: (e) => { receiver.onStorageFailure(`cannot flush ${target.path}: ${e.message}`, now()); pump?.kick(); },
    writeError: (offset, length, e) => {
      log.warn('write-error', { target: target.path, offset, length, error: e.message });
      receiver.onWriteError(offset, length, `${target.path}: ${e.message}`, now());
      pump?.kick();
    },
  });
  // A disk chosen after the announcement is still this machine's: the id stays the same across reboots.
  const id = clientId(o.name, o.iface, o.target?.path ?? 'chosen');
  const receiver: Receiver = new Receiver({
    id, name: o.name, mac: o.iface.mac, network: o.iface.network, capacity: target.capacity, kind: o.kind, controlPort: o.port, server: o.server,
    autoConfirm: o.choose === undefined, trust: o.trust, secret: o.secret,
  }, queue, Math.random, now());
  o.onSession?.(receiver);

  const sockOpts = { group: o.group, iface: o.iface.address, ttl: 1, loop: o.iface.loopback, rcvbuf: 8 << 20, sndbuf: 1 << 20 };
  const input = (b: Uint8Array, from: { address: string; port: number }, port: number, transient: boolean): void => {
    if (o.simulateLoss > 0 && Math.random() < o.simulateLoss) return;
    // The machine keeps nothing of a DATA datagram past the call (storage copies what it takes);
    // anything else may be kept (an AUTH's hashes, an announcement), so it gets bytes of its own.
    pump?.input(transient && !isData(b) ? b.slice() : b, from, port);
  };
  // The unicast socket; then control/data, feedback, and the classic pair: the session's mode
  // decides which carry traffic. All take their datagrams in batches, together, polled while the
  // image streams: the other PCs' feedback too, which through libuv woke every PC for each
  // datagram any of them sent (4,800 a GiB at 6 PCs with 5% loss).
  const sockets: dgram.Socket[] = [];
  const image = new BatchedInput();
  try {
    sockets.push(await unicastSocket(sockOpts, input, image));
    // p and p+1 carry MUST's datagrams, p+2 and p+3 classic packets (docs/PROTOCOL.md, section 2).
    for (let i = 0; i < 4; i++) sockets.push(await groupSocket(sockOpts, o.port + i, input, image, i < 2 ? mustBegins : classicBegins));
  } catch (e) {
    // The target is this function's to close, also when the session cannot start.
    closeAll(sockets);
    await target.close();
    throw e;
  }
  const ctl = sockets[0]!, groups = sockets.slice(1);
  const send = (t: Transmit): boolean => {
    const [port, address] = t.dest.kind === 'group' ? [t.dest.port, o.group] : [t.dest.to.port, t.dest.to.address];
    ctl.send(t.parts, port, address);
    return true;
  };
  const done = new Promise<void>((resolve) => { pump = new Pump(receiver, { send }, now, resolve, () => image.catchUp()); });

  const capacity = (t: ClientTarget): number | string => (t.capacity === Number.MAX_SAFE_INTEGER ? 'grows' : t.capacity);
  log.info('searching', { client: o.name, id, target: o.target?.path ?? 'chosen when the master is found', capacity: o.target ? capacity(o.target) : undefined, group: o.group, port: o.port, iface: `${o.iface.name}/${o.iface.address}` });
  const started = now();
  let firstDataAt = 0;
  receiver.events.on((e) => {
    switch (e.type) {
      case 'found':
        log.info('found', {
          master: e.master.address, image: e.announce.name, size: e.announce.targetSize,
          stream: e.announce.targetSize !== e.announce.imageSize ? e.announce.imageSize : undefined,
          mode: e.announce.mode === 2 ? 'classic' : 'default', phase: e.announce.phase,
          sealed: e.announce.caps & Caps.Sealed ? 'AES-256-GCM' : undefined,
          auth: e.trust.kind === 'unauthenticated' ? 'none (unauthenticated: anyone on this network could have sent this image)' : `${e.trust.kind} key=${e.trust.fingerprint}`,
        });
        if (o.target) fit(o.target, e.announce.targetSize);
        // Feedback travels as far as the master's data does: across multicast routers when it says so.
        if (e.announce.ttl > 1) ctl.setMulticastTTL(e.announce.ttl);
        break;
      case 'confirm':
        o.choose!(e.announce).then((t) => {
          if ('declined' in t) { log.warn('declined', { reason: t.declined }); pump?.stop(); abortResolve(); return; }
          if (late) { late.bind(t); fit(t, e.announce.targetSize); }
          log.info('target', { target: t.path, capacity: capacity(t) });
          receiver.confirm(now(), t.capacity);
          pump?.kick();
        }, (err: Error) => { log.error('target', { error: err.message }); abortResolve(); });
        break;
      case 'phase':
        if (e.phase === 3 && !firstDataAt) firstDataAt = e.at;
        log.info('phase', { phase: clientPhaseName(e.phase) });
        break;
      case 'verify-failed': log.warn('verify-failed', { chunk: e.chunk < 0 ? 'manifest' : e.chunk }); break;
      case 'rejected': log.debug('rejected', { reason: e.reason, from: `${e.from.address}:${e.from.port}` }); break;
      case 'finished': break;
    }
  });
  let abortResolve!: () => void;
  const aborted = new Promise<void>((r) => { abortResolve = r; });
  o.onStart?.(() => { log.warn('interrupted', { target: target.path }); abortResolve(); });

  let lastHave = 0, lastAt = now();
  const progress = setInterval(() => {
    const geo = receiver.geo, have = receiver.have;
    if (!geo || !have) return;
    const t = now(), got = have.count;
    const mbps = (((got - lastHave) * geo.payloadSize) / ((t - lastAt) / 1000)) / 1e6;
    const left = geo.packets - got;
    lastHave = got; lastAt = t;
    log.info('progress', {
      phase: clientPhaseName(receiver.phase), percent: Math.floor((got / geo.packets) * 100), rateMBps: mbps.toFixed(1),
      eta: mbps > 0 ? `${Math.round((left * geo.payloadSize) / (mbps * 1e6))}s` : undefined,
      missing: left, repaired: receiver.stats.repaired, queued: bytes(queue.queuedBytes),
    });
  }, 2000);

  pump!.kick();
  await Promise.race([done, aborted]);
  pump!.stop();
  clearInterval(progress);
  await queue.drain();
  closeAll([ctl, ...groups]);
  await target.close();
  const seconds = (now() - started) / 1000;
  const s = receiver.stats;
  const fields = {
    client: o.name, target: target.path, seconds: seconds.toFixed(1), received: s.received, repaired: s.repaired, decoded: s.decoded, duplicates: s.duplicates,
    queueFull: s.queueFull, writes: queue.writeCount, holesFilled: queue.holesFilled,
    checkedInMemory: queue.checkedInMemory, readBack: queue.readBack, spilled: queue.spilled, reloaded: queue.reloaded, verifyFailures: s.verifyFailures, rejected: countsText(s.drops),
    manifest: receiver.announce ? Buffer.from(receiver.announce.manifestDigest).toString('hex').slice(0, 16) : undefined,
  };
  if (receiver.ok) log.info('verified', fields);
  else log.error('failed', { ...fields, reason: receiver.reason || 'interrupted' });
  return { ok: receiver.ok, reason: receiver.reason || (receiver.finished ? '' : 'interrupted'), receiver, seconds };
}
