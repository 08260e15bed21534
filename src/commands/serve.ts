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
import { looksLikeImage } from '../image/format.ts';
import { ImageKind } from '../protocol/messages.ts';
import { type MasterControl, type Served, runMaster, serveImageFile, serveRaw } from '../net/master.ts';
import { makeLogger, netOptions, onSignal } from './common.ts';

export async function master(o: Options): Promise<number> {
  const image = o.str('image') ?? o.positionals[0];
  if (!image) throw new UsageError('master: the image is required (--image PATH)');
  const log = makeLogger(o, 'master');
  if (await looksLikeImage(image)) {
    if (o.str('protocol') === 'classic') throw new UsageError('master: classic mode sends raw sectors as the paper does; serve a raw disk or file, not a MUST image');
    return serve(o, await serveImageFile(image), image, log);
  }
  return serve(o, await serveRaw(await RawSource.open(image), ImageKind.Disk, undefined, log), image, log);
}

export async function sendFiles(o: Options): Promise<number> {
  if (o.positionals.length === 0) throw new UsageError('send-files: name at least one file or directory');
  const files = await scanPaths(o.positionals);
  const source = new FileSetSource(o.positionals, files);
  if (source.size === 0) throw new UsageError('send-files: the files are all empty; nothing to send');
  const log = makeLogger(o, 'master');
  return serve(o, await serveRaw(source, ImageKind.Files, files, log), o.positionals.join(' '), log);
}

async function serve(o: Options, image: Served, label: string, log: Logger): Promise<number> {
  const keyFile = o.str('key');
  const signer = keyFile ? loadSigner(keyFile) : undefined;
  if ((signer || o.str('secret')) && o.str('protocol') === 'classic') throw new UsageError('--key and --secret: classic mode is the paper\'s protocol as written, unsigned and in the clear; use the default mode');
  const n = netOptions(o);
  const minClients = o.num('min-clients') ?? 0;
  // Without a rule, start 10 s after the last client joined (and at once on the start key).
  const wait = o.num('wait') ?? (minClients > 0 ? undefined : 10);
  let control: MasterControl | undefined;
  const interactive = process.stdin.isTTY === true;
  onSignal((sig) => control?.abort(`${sig}`));
  if (interactive) keys((k) => {
    if (k === 's') control?.startNow();
    if (k === 'q' || k === '\u0003') control?.abort('quit by the operator');
  });
  const result = await runMaster({
    pxe: o.flag('pxe') ? pxeOptions(o, n, signer) : undefined, signer,
    records: image.built.manifest.kind === ImageKind.Disk ? o.str('records') ?? defaultRecordsPath() : undefined, secret: o.str('secret') ? loadSecret(o.str('secret')!) : undefined,
    image, name: o.str('name') ?? (label.split('/').pop() || hostname()), ...n,
    protocol: (o.str('protocol') ?? 'default') as 'default' | 'classic', rate: o.num('rate'), mtu: o.num('mtu') ?? 1500,
    ttl: o.num('ttl') ?? 1, minClients, wait, clientTimeout: o.num('client-timeout') ?? 30, maxBehind: o.num('max-behind') ?? 0, log,
    onReady: (c) => {
      control = c;
      if (interactive) log.info('keys', { s: 'start now', q: 'quit' });
    },
  });
  if (interactive) process.stdin.setRawMode?.(false);
  process.stdin.pause();
  return result.ok ? 0 : 1;
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
    disk: o.str('disk') ?? 'auto', attended: o.flag('attended'), kernelArgs: `${o.str('kernel-args') ?? DEFAULT_KERNEL_ARGS}${signer ? ` must.key=${keyText(signer.publicKey)}` : ''}`, dnsmasq: 'dnsmasq',
  };
}
