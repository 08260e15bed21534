// `must client`: find a master, confirm the target, run the Receiver machine on real
// sockets, write through the bounded queue, and end verified or failed.

import { type Verifier } from '../protocol/auth.ts';
import { createHash } from 'node:crypto';
import { hostname } from 'node:os';
import { resolve as resolvePath } from 'node:path';
import { type ByteTarget, WriteQueue } from '../disk/writer.ts';
import { type Logger, bytes } from '../log/logger.ts';
import { type AnnounceMsg, type ClientId, type ImageKind, Caps, clientPhaseName } from '../protocol/messages.ts';
import { Receiver } from '../session/receiver.ts';
import { type Transmit, dropSummary } from '../session/types.ts';
import type { Iface } from './iface.ts';
import { Pump } from './pump.ts';
import { closeAll, groupSocket, unicastSocket } from './udp.ts';

export interface ClientOptions {
  target: ByteTarget & { fit?(size: number): Promise<void> };
  kind: ImageKind;
  iface: Iface;
  group: string;
  port: number;
  server: string | undefined;
  name: string;
  log: Logger;
  /** Ask the operator before writing (undefined: write without asking). */
  confirm?: (a: AnnounceMsg, master: string) => Promise<boolean>;
  /** Drop this share of incoming datagrams at random (a test and demo aid). */
  simulateLoss: number;
  /** Called once running, with a function that interrupts the client (a signal). */
  onStart?: (stop: () => void) => void;
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
  let pump: Pump | undefined;
  const now = (): number => performance.now();
  const queue = new WriteQueue(o.target, {
    chunkChecked: (k, ok, reason) => {
      if (!ok) log.warn('chunk-refused', { chunk: k, reason });
      receiver.onChunkChecked(k, ok, now());
      pump?.kick();
    },
    flushed: () => { receiver.onFlushed(now()); pump?.kick(); },
    flushFailed: (e) => { receiver.onStorageFailure(`cannot flush ${o.target.path}: ${e.message}`, now()); pump?.kick(); },
    writeError: (offset, length, e) => {
      log.warn('write-error', { target: o.target.path, offset, length, error: e.message });
      receiver.onWriteError(offset, length, `${o.target.path}: ${e.message}`, now());
      pump?.kick();
    },
  });
  const id = clientId(o.name, o.iface, o.target.path);
  const receiver: Receiver = new Receiver({
    id, name: o.name, mac: o.iface.mac, capacity: o.target.capacity, kind: o.kind, controlPort: o.port, server: o.server,
    autoConfirm: o.confirm === undefined, trust: o.trust, secret: o.secret,
  }, queue, Math.random, now());

  const sockOpts = { group: o.group, iface: o.iface.address, ttl: 1, loop: o.iface.loopback, rcvbuf: 8 << 20, sndbuf: 1 << 20 };
  const input = (b: Uint8Array, from: { address: string; port: number }, port: number): void => {
    if (o.simulateLoss > 0 && Math.random() < o.simulateLoss) return;
    pump?.input(b, from, port);
  };
  const ctl = await unicastSocket(sockOpts, input);
  // Control/data, feedback, and the classic pair: the session's mode decides which carry traffic.
  const groups = await Promise.all([0, 1, 2, 3].map((i) => groupSocket(sockOpts, o.port + i, input)));
  const send = (t: Transmit): boolean => {
    const [port, address] = t.dest.kind === 'group' ? [t.dest.port, o.group] : [t.dest.to.port, t.dest.to.address];
    ctl.send(t.parts, port, address);
    return true;
  };
  const done = new Promise<void>((resolve) => { pump = new Pump(receiver, send, now, resolve); });

  log.info('searching', { client: o.name, id, target: o.target.path, capacity: o.target.capacity === Number.MAX_SAFE_INTEGER ? 'grows' : o.target.capacity, group: o.group, port: o.port, iface: `${o.iface.name}/${o.iface.address}` });
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
        if (o.target.fit && e.announce.targetSize <= o.target.capacity) {
          o.target.fit(e.announce.targetSize).catch((err: Error) => log.error('resize', { target: o.target.path, error: err.message }));
        }
        break;
      case 'confirm':
        o.confirm!(e.announce, e.announce.name).then((yes) => {
          if (yes) { receiver.confirm(now()); pump?.kick(); }
          else { log.warn('declined', { target: o.target.path }); pump?.stop(); abortResolve(); }
        }, () => abortResolve());
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
  o.onStart?.(() => { log.warn('interrupted', { target: o.target.path }); abortResolve(); });

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
  await o.target.close();
  const seconds = (now() - started) / 1000;
  const s = receiver.stats;
  const fields = {
    client: o.name, target: o.target.path, seconds: seconds.toFixed(1), received: s.received, repaired: s.repaired, duplicates: s.duplicates,
    queueFull: s.queueFull, verifyFailures: s.verifyFailures, rejected: dropSummary(s.drops),
    manifest: receiver.announce ? Buffer.from(receiver.announce.manifestDigest).toString('hex').slice(0, 16) : undefined,
  };
  if (receiver.ok) log.info('verified', fields);
  else log.error('failed', { ...fields, reason: receiver.reason || 'interrupted' });
  return { ok: receiver.ok, reason: receiver.reason || (receiver.finished ? '' : 'interrupted'), receiver, seconds };
}
