// `must master` and `must send-files`.

import { defaultRecordsPath } from '../boot/records.ts';
import { type Signer, keyText, loadSigner } from '../protocol/auth.ts';
import { loadSecret } from '../protocol/secret.ts';
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import { DEFAULT_KERNEL_ARGS, type PxeOptions } from '../boot/lab.ts';
import { isSea } from '../cli/self.ts';
import type { NetChoice } from './common.ts';
import type { Logger } from '../log/logger.ts';
import { type Options, UsageError } from '../cli/args.ts';
import { FileSetSource, scanPaths } from '../disk/fileset.ts';
import { RawSource } from '../disk/source.ts';
import { defaultCacheDir, manifestCache } from '../disk/manifest-cache.ts';
import { DEFAULT_CHUNK_SIZE } from '../protocol/manifest.ts';
import { looksLikeImage } from '../image/format.ts';
import { Caps, ImageKind } from '../protocol/messages.ts';
import { Hub } from '../relay/hub.ts';
import type { LanPolicy } from '../session/lans.ts';
import { type MasterControl, type MasterResult, type Served, runMaster, serveImageFile, serveRaw } from '../net/master.ts';
import type { MasterKeys } from '../tui/master-screen.ts';
import { MasterWatch, type SessionFacts, masterStore } from '../tui/master-view.ts';
import { type Mounted, mount, wantScreen } from '../tui/mount.ts';
import { eventSink } from '../tui/store.ts';
import { lanPolicy, makeLogger, netOptions, onSignal, startRules, mtuOption } from './common.ts';

export async function master(o: Options): Promise<number> {
  const image = o.str('image') ?? o.positionals[0];
  if (!image) throw new UsageError('master: the image is required (--image PATH)');
  const asImage = await looksLikeImage(image);
  if (asImage && o.str('protocol') === 'classic') throw new UsageError('master: classic mode sends raw sectors as the paper does; serve a raw disk or file, not a MUST image');
  const settings = serveSettings(o);
  if (asImage) return serve(o, settings, await serveImageFile(image), image);
  const source = await RawSource.open(image);
  const dir = o.str('hash-cache') ?? defaultCacheDir();
  const served = await closeOnError(source, async () => {
    const cache = dir === 'off' ? undefined : await manifestCache(image, dir, { chunkSize: DEFAULT_CHUNK_SIZE, kind: ImageKind.Disk });
    return serveRaw(source, ImageKind.Disk, undefined, makeLogger(o, 'master'), cache);
  });
  return serve(o, settings, served, image);
}

export async function sendFiles(o: Options): Promise<number> {
  if (o.positionals.length === 0) throw new UsageError('send-files: name at least one file or directory');
  const settings = serveSettings(o);
  const files = await scanPaths(o.positionals);
  const source = new FileSetSource(o.positionals, files);
  if (source.size === 0) throw new UsageError('send-files: the files are all empty; nothing to send');
  const served = await closeOnError(source, () => serveRaw(source, ImageKind.Files, files, makeLogger(o, 'master')));
  return serve(o, settings, served, o.positionals.join(' '));
}

/** What the command line asks of a session, checked before the image is opened and hashed (which can take minutes). */
interface ServeSettings {
  net: NetChoice;
  mtu: number;
  ttl: number;
  minClients: number;
  wait: number | undefined;
  protocol: 'default' | 'classic';
  signer: Signer | undefined;
  secret: Uint8Array | undefined;
  pxe: PxeOptions | undefined;
  lans: LanPolicy;
}

function serveSettings(o: Options): ServeSettings {
  const keyFile = o.str('key'), secretFile = o.str('secret');
  const protocol = (o.str('protocol') ?? 'default') as 'default' | 'classic';
  if ((keyFile || secretFile) && protocol === 'classic') throw new UsageError('--key and --secret: classic mode is the paper\'s protocol as written, unsigned and in the clear; use the default mode');
  const signer = keyFile ? loadSigner(keyFile) : undefined;
  const net = netOptions(o);
  const mtu = mtuOption(o, net.iface);
  const ttl = o.num('ttl') ?? 1;
  if (!Number.isInteger(ttl) || ttl < 1 || ttl > 255) throw new UsageError(`--ttl ${ttl}: a TTL is 1 to 255`);
  // Without a rule, start 10 s after the last client joined (and at once on the start key).
  const { minClients, wait } = startRules(o);
  return {
    net, mtu, ttl, minClients, wait, protocol, signer, secret: secretFile ? loadSecret(secretFile) : undefined,
    pxe: o.flag('pxe') ? pxeOptions(o, net, signer) : undefined, lans: lanPolicy(o),
  };
}

/** `make()`'s result, or `source` closed and the error passed on. */
async function closeOnError<T>(source: { close(): Promise<void> }, make: () => Promise<T>): Promise<T> {
  try {
    return await make();
  } catch (e) {
    await source.close();
    throw e;
  }
}

/** Serves `image` to the end of the session, then closes it (also when the session fails). */
async function serve(o: Options, s: ServeSettings, image: Served, label: string): Promise<number> {
  const { net: n, signer, secret } = s;
  const name = o.str('name') ?? (label.split('/').pop() || hostname());
  // Should the screen fail to start, the image is closed all the same.
  const ui = await closeOnError(image.stream, () => masterUi(o, {
    image: name, size: image.built.manifest.targetSize, group: n.group, port: n.port,
    mode: [s.protocol, signer ? 'signed' : '', secret ? 'sealed' : ''].filter(Boolean).join(', '),
  }));
  const log = ui.log;
  let control: MasterControl | undefined;
  onSignal((sig) => control?.abort(`${sig}`));
  const clientTimeout = o.num('client-timeout') ?? 30;
  // Relays (must relay --upstream THIS) take the session over TCP on the control port.
  const hub = new Hub({
    address: n.iface.address, port: n.port, log, linkTimeout: clientTimeout * 1000,
    serving: async () => ({
      session: {
        streamSize: image.stream.size, caps: (image.mapped ? Caps.Mapped : 0) | (secret ? Caps.Sealed : 0), kind: image.built.manifest.kind,
        digest: image.built.digest, name, manifest: image.built.bytes,
      },
      source: image.stream,
    }),
  });
  try {
    await hub.listen();
    const result = await runMaster({
      pxe: s.pxe, signer, hub,
      records: image.built.manifest.kind === ImageKind.Disk ? o.str('records') ?? defaultRecordsPath() : undefined, secret,
      image, name, ...n,
      protocol: s.protocol, rate: o.num('rate'), mtu: s.mtu,
      ttl: s.ttl, lans: s.lans, minClients: s.minClients, wait: s.wait, clientTimeout, maxBehind: o.num('max-behind') ?? 0, log,
      onReady: (c) => { control = c; ui.follow(c); },
    });
    ui.finished(result);
    return result.ok ? 0 : 1;
  } finally {
    hub.close();
    await ui.close();
    await image.stream.close();
    process.stdin.pause();
  }
}

interface MasterUi { log: Logger; follow(c: MasterControl): void; finished(r: MasterResult): void; close(): Promise<void> }

/** The master's screen and its keys, or lines on stdout (with per-PC rows under --json, and s/q keys on a terminal). */
async function masterUi(o: Options, facts: SessionFacts): Promise<MasterUi> {
  const timers: NodeJS.Timeout[] = [];
  const stopTimers = (): void => { for (const t of timers) clearInterval(t); };
  if (!wantScreen({ json: o.flag('json'), plain: o.flag('plain') })) {
    const log = makeLogger(o, 'master');
    const interactive = process.stdin.isTTY === true && !o.flag('json');
    let rows = (): void => {};
    return {
      log,
      follow: (c) => {
        if (interactive) {
          log.info('keys', { s: 'start now', q: 'quit' });
          keys((k) => {
            if (k === 's') c.startNow();
            if (k === 'q' || k === '\u0003') c.abort('quit by the operator');
          });
        }
        // Scripts get what the screen shows: a row per PC, per relay of the tree and per LAN every 2 s, and once more at the end.
        if (!o.flag('json')) return;
        const watch = new MasterWatch(c.sender, performance.now(), c.relays);
        rows = () => {
          const v = watch.poll(performance.now());
          for (const r of v.clients) {
            log.info('client', { client: r.name, id: r.id, mac: r.mac, ip: r.ip, lan: r.lan, via: r.via, state: r.state, percent: r.percent, rateMBps: r.rateMBps.toFixed(1), missing: r.missing });
          }
          for (const r of v.relays) {
            log.info('relay', {
              relay: r.name, upstream: r.upstream, depth: r.depth, address: r.address, lan: r.lan, state: r.state, percent: r.percent, received: r.received,
              buffer: r.bufferSize, held: r.held, peak: r.peak, fetched: r.fetched, pcs: r.pcs, verified: r.verified,
            });
          }
          for (const l of v.lans) log.info('lan', { lan: l.lan, via: l.via, pcs: l.pcs, verified: l.verified, percent: l.percent, acks: l.acks });
        };
        timers.push(setInterval(rows, 2000));
      },
      // The last rows hold the relays' final reports, which may come after the last tick.
      finished: () => { stopTimers(); rows(); },
      close: async () => { stopTimers(); if (interactive) process.stdin.setRawMode?.(false); },
    };
  }
  const store = masterStore(facts);
  let control: MasterControl | undefined;
  const keysOf: MasterKeys = {
    start: () => control?.startNow(),
    select: (d) => store.update((v) => ({ selected: Math.max(0, Math.min(v.clients.length - 1, v.selected + d)) })),
    drop: () => {
      const r = store.get().clients[store.get().selected];
      if (!r || !control) return;
      const c = control;
      store.update({ prompt: { question: `Drop ${r.name} (${r.ip})? It gets nothing more and ends failed.`, answer: (yes) => {
        store.update({ prompt: undefined });
        if (yes) c.drop(r.id, 'dropped by the operator');
      } } });
    },
    quit: () => {
      const imaging = store.get().clients.filter((r) => r.state !== 'waiting').length;
      if (!control) return;
      const c = control;
      if (imaging === 0) return c.abort('quit by the operator');
      store.update({ prompt: { question: `Abandon the running session? ${imaging} PC${imaging === 1 ? ' is' : 's are'} imaging.`, answer: (yes) => {
        store.update({ prompt: undefined });
        if (yes) c.abort('quit by the operator');
      } } });
    },
  };
  const screen: Mounted = await mount(async () => {
    const [{ createElement }, { MasterApp }] = await Promise.all([import('react'), import('../tui/master-screen.ts')]);
    return createElement(MasterApp, { store, keys: keysOf });
  });
  return {
    log: makeLogger(o, 'master', eventSink(store)),
    follow: (c) => {
      control = c;
      const watch = new MasterWatch(c.sender, performance.now(), c.relays);
      timers.push(setInterval(() => store.update((v) => {
        const p = watch.poll(performance.now());
        return { ...p, selected: Math.min(v.selected, Math.max(0, p.clients.length - 1)) };
      }), 500));
    },
    finished: (r) => {
      stopTimers();
      const verified = r.clients.filter((c) => c.state === 'verified').length;
      store.update({ state: 'finished', prompt: undefined, summary: `${r.ok ? 'Finished' : 'Ended'}: ${verified} of ${r.clients.length} PC${r.clients.length === 1 ? '' : 's'} verified in ${r.seconds.toFixed(1)} s` });
    },
    close: async () => { stopTimers(); await screen.close(); },
  };
}

function keys(f: (k: string) => void): void {
  process.stdin.setRawMode?.(true);
  process.stdin.setEncoding('utf8');
  process.stdin.on('data', (d: string) => f(d));
}

/** Where the appliance is when --appliance is not given: beside the single executable, or the build output. */
function defaultAppliance(): string {
  return isSea() ? dirname(process.execPath) : join(import.meta.dirname, '../../out/appliance');
}

function pxeOptions(o: Options, n: NetChoice, signer: Signer | undefined): PxeOptions {
  const range = o.str('dhcp-range');
  let dhcp: PxeOptions['dhcp'];
  if (range) {
    const [start, end, mask] = range.split(',');
    if (!start || !end) throw new UsageError(`--dhcp-range ${range}: want START,END[,MASK]`);
    dhcp = { kind: 'range', start, end, mask: mask ?? '255.255.255.0' };
  } else {
    dhcp = { kind: 'proxy', subnet: n.iface.network.split('/')[0]! };
  }
  return {
    appliance: o.str('appliance') ?? defaultAppliance(), dhcp, httpPort: o.num('http-port') ?? 8080,
    records: o.str('records') ?? defaultRecordsPath(), unknown: (o.str('unknown') ?? 'image') as 'image' | 'local',
    disk: o.str('disk') ?? 'auto', attended: o.flag('attended'), kernelArgs: `${o.str('kernel-args') ?? DEFAULT_KERNEL_ARGS}${signer ? ` must.key=${keyText(signer.publicKey)}` : ''}`,
  };
}
