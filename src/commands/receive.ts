// `must client` and `must receive-files`.

import { parseTrust } from '../protocol/auth.ts';
import { loadSecret } from '../protocol/secret.ts';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline/promises';
import { type Options, UsageError } from '../cli/args.ts';
import { extractFiles } from '../disk/fileset.ts';
import { RawTarget } from '../disk/writer.ts';
import { bytes } from '../log/logger.ts';
import type { Manifest } from '../protocol/manifest.ts';
import { type AnnounceMsg, ImageKind } from '../protocol/messages.ts';
import { defaultName, runClient } from '../net/client.ts';
import { makeLogger, netOptions, onSignal } from './common.ts';

export async function client(o: Options): Promise<number> {
  const path = o.str('target');
  if (!path) throw new UsageError('client: the target is required (--target PATH)');
  const target = await RawTarget.openForWriting(path);
  let confirm: ((a: AnnounceMsg, m: string) => Promise<boolean>) | undefined;
  if (target.kind === 'block' && !o.flag('yes')) {
    if (process.stdin.isTTY !== true) {
      await target.close();
      throw new UsageError(`client: ${path} is a block device and there is no terminal to confirm on; pass --yes to overwrite it`);
    }
    confirm = async (a) => {
      const rl = createInterface({ input: process.stdin, output: process.stdout });
      const answer = await rl.question(`Write image "${a.name}" (${bytes(a.targetSize)}) over ${path} (${bytes(target.capacity)})? Everything on ${path} is lost. [y/N] `);
      rl.close();
      return /^y(es)?$/i.test(answer.trim());
    };
  }
  return receive(o, target, ImageKind.Disk, confirm, async () => {});
}

export async function receiveFiles(o: Options): Promise<number> {
  const dir = o.str('dir');
  if (!dir) throw new UsageError('receive-files: the output directory is required (--dir DIR)');
  await mkdir(dir, { recursive: true });
  const spool = join(dir, '.must-incoming');
  await rm(spool, { force: true });
  const target = await RawTarget.open(spool);
  const log = makeLogger(o, 'receive');
  return receive(o, target, ImageKind.Files, undefined, async (ok, manifest) => {
    if (ok && manifest) {
      const n = await extractFiles(manifest, spool, dir);
      log.info('extracted', { dir, entries: n });
    }
    await rm(spool, { force: true });
  });
}

async function receive(
  o: Options, target: RawTarget, kind: ImageKind, confirm: ((a: AnnounceMsg, m: string) => Promise<boolean>) | undefined,
  after: (ok: boolean, manifest: Manifest | undefined) => Promise<void>,
): Promise<number> {
  const n = netOptions(o);
  const name = o.str('name') ?? defaultName(n.iface);
  const log = makeLogger(o, `client/${name}`);
  const loss = (o.num('simulate-loss') ?? 0) / 100;
  if (loss >= 1) throw new UsageError('--simulate-loss must be below 100');
  let stop: (() => void) | undefined;
  onSignal(() => stop?.());
  const trustSpec = o.str('trust');
  const trust = trustSpec ? parseTrust(trustSpec) : undefined;
  const result = await runClient({ target, kind, ...n, server: o.str('server'), name, log, confirm, simulateLoss: loss, trust, secret: o.str('secret') ? loadSecret(o.str('secret')!) : undefined, onStart: (s) => { stop = s; } });
  await after(result.ok, result.receiver.manifest);
  process.stdin.pause();
  return result.ok ? 0 : 1;
}
