// `must client` and `must receive-files`.

import { type Verifier, parseTrust } from '../protocol/auth.ts';
import { loadSecret } from '../protocol/secret.ts';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { type Options, UsageError } from '../cli/args.ts';
import { extractFiles } from '../disk/fileset.ts';
import { chooseDisk, diskOptions, listDisks } from '../disk/inventory.ts';
import { RawTarget } from '../disk/writer.ts';
import { type Logger, bytes } from '../log/logger.ts';
import type { Manifest } from '../protocol/manifest.ts';
import { ImageKind } from '../protocol/messages.ts';
import { type ClientTarget, type TargetChoice, defaultName, runClient } from '../net/client.ts';
import type { Iface } from '../net/iface.ts';
import { type ClientView, clientStore, watchReceiver } from '../tui/client-view.ts';
import { type Store, eventSink } from '../tui/store.ts';
import { readHardware } from '../tui/hardware.ts';
import { type Mounted, mount, wantScreen } from '../tui/mount.ts';
import { type Asker, lineAsker, screenAsker } from './ask.ts';
import { CANCELLED, type NetChoice, makeLogger, netOptions, onSignal } from './common.ts';
import type { Receiver } from '../session/receiver.ts';

export async function client(o: Options): Promise<number> {
  const path = o.str('target'), rule = o.str('disk');
  if (path && rule) throw new UsageError('client: --target names the disk and --disk gives a rule to choose it by; give one of them');
  const yes = o.flag('yes');
  const terminal = process.stdin.isTTY === true;
  if (!path && !rule && !terminal) throw new UsageError('client: no disk named (--target PATH) and no rule to choose one (--disk auto|/dev/...|serial:...|model:...), and no terminal to choose one on');
  const settings = receiveSettings(o);
  const fixed = path ? await RawTarget.openForWriting(path) : undefined;
  if (fixed?.kind === 'block' && !yes && !terminal) {
    await fixed.close();
    throw new UsageError(`client: ${path} is a block device and there is no terminal to confirm on; pass --yes to overwrite it`);
  }
  return receive(o, settings, ImageKind.Disk, fixed, (ask) => {
    const sure = async (t: RawTarget, model: string): Promise<ClientTarget | { declined: string }> => {
      if (yes || t.kind !== 'block') return t;
      if (await ask.confirm(`Write the image over ${t.path} (${model}, ${bytes(t.capacity)})? Everything on ${t.path} is lost.`)) return t;
      await t.close();
      return { declined: `the operator did not confirm ${t.path}` };
    };
    if (fixed) {
      if (fixed.kind !== 'block' || yes) return undefined;
      return async () => sure(fixed, (await listDisks()).find((d) => d.path === fixed.path)?.model || 'unknown model');
    }
    return async (a) => {
      const disks = await listDisks();
      let chosen: string | undefined;
      if (rule) {
        const c = chooseDisk(disks, rule, a.targetSize);
        if (!c.ok) return { declined: c.reason };
        chosen = c.disk.path;
      } else {
        chosen = await ask.pick(a.name, a.targetSize, await diskOptions(disks, a.targetSize));
        if (!chosen) return { declined: 'no disk was chosen' };
      }
      const t = await RawTarget.openForWriting(chosen);
      const d = disks.find((x) => x.path === chosen);
      // Picked or chosen by the rule, the disk is named once more before anything is written (unless --yes).
      return sure(t, d?.model || 'unknown model');
    };
  });
}

export async function receiveFiles(o: Options): Promise<number> {
  const dir = o.str('dir');
  if (!dir) throw new UsageError('receive-files: the output directory is required (--dir DIR)');
  const settings = receiveSettings(o);
  await mkdir(dir, { recursive: true });
  const spool = join(dir, '.must-incoming');
  await rm(spool, { force: true });
  const target = await RawTarget.open(spool);
  return receive(o, settings, ImageKind.Files, target, () => undefined, async (ok, manifest, log) => {
    if (ok && manifest) {
      const n = await extractFiles(manifest, spool, dir);
      log.info('extracted', { dir, entries: n });
    }
    await rm(spool, { force: true });
  });
}

/** Where a client's events and questions go: a screen (its store), or lines on stdout. */
interface Ui { log: Logger; ask: Asker; store: Store<ClientView> | undefined; follow(r: Receiver): void; close(): Promise<void> }

async function clientUi(o: Options, name: string, iface: Iface): Promise<Ui> {
  const tag = `client/${name}`;
  if (!wantScreen({ json: o.flag('json'), plain: o.flag('plain') })) {
    const log = makeLogger(o, tag);
    return { log, ask: lineAsker((l) => { process.stdout.write(`${l}\n`); }), store: undefined, follow: () => {}, close: async () => {} };
  }
  const store = clientStore(name, `${iface.name} ${iface.address}`);
  const screen: Mounted = await mount(async () => {
    const [{ createElement }, { ClientApp }] = await Promise.all([import('react'), import('../tui/client-screen.ts')]);
    return createElement(ClientApp, { store });
  });
  let unwatch = (): void => {};
  return {
    log: makeLogger(o, tag, eventSink(store)),
    ask: screenAsker(store),
    store,
    follow: (r) => { unwatch = watchReceiver(store, r, () => performance.now()); },
    close: async () => { unwatch(); await screen.close(); },
  };
}

/** What the command line asks of a client, checked before a disk is opened. */
interface ReceiveSettings { net: NetChoice; name: string; loss: number; trust: Verifier | undefined; secret: Uint8Array | undefined }

function receiveSettings(o: Options): ReceiveSettings {
  const net = netOptions(o);
  const loss = (o.num('simulate-loss') ?? 0) / 100;
  if (loss >= 1) throw new UsageError('--simulate-loss must be below 100');
  const trustSpec = o.str('trust'), secretFile = o.str('secret');
  return {
    net, name: o.str('name') ?? defaultName(net.iface), loss,
    trust: trustSpec ? parseTrust(trustSpec) : undefined, secret: secretFile ? loadSecret(secretFile) : undefined,
  };
}

async function receive(
  o: Options, s: ReceiveSettings, kind: ImageKind, target: ClientTarget | undefined, choice: (ask: Asker) => TargetChoice | undefined,
  after?: (ok: boolean, manifest: Manifest | undefined, log: Logger) => Promise<void>,
): Promise<number> {
  const { net: n, name, loss, trust, secret } = s;
  const ui = await clientUi(o, name, n.iface);
  const log = ui.log;
  let stop: (() => void) | undefined;
  onSignal(() => stop?.());
  // What this PC is, for the screen and the log; the session does not wait for it.
  readHardware().then((hw) => {
    ui.store?.update({ hardware: hw });
    log.info('hardware', {
      model: hw.model, cpu: hw.cpu, memory: bytes(hw.memory),
      nics: hw.nics.map((x) => `${x.name} ${x.mac} ${x.speed} ${x.address}`).join('; ') || 'none',
      disks: hw.disks.map((d) => `${d.path} ${bytes(d.size)} ${d.type} ${d.model} serial ${d.serial}`).join('; ') || 'none',
    });
  }, () => {});
  if (target) ui.store?.update({ target: target.path });
  const chooser = choice(ui.ask);
  // The screen names the disk once it is chosen.
  const choose: TargetChoice | undefined = chooser && (async (a) => {
    const t = await chooser(a);
    if (!('declined' in t)) ui.store?.update({ target: t.path });
    return t;
  });
  try {
    const result = await runClient({
      target, choose, kind, ...n, server: o.str('server'), name, log, simulateLoss: loss, trust, secret,
      onStart: (s) => { stop = s; }, onSession: (r) => ui.follow(r),
    });
    await after?.(result.ok, result.receiver.manifest, log);
    const action = o.str('after');
    if (result.ok && action) {
      const go = await ui.ask.countdown(action, o.num('countdown') ?? 10);
      log.info(go ? action : 'cancelled', { what: go ? undefined : `${action} cancelled by the operator` });
      return go ? 0 : CANCELLED;
    }
    return result.ok ? 0 : 1;
  } finally {
    await ui.close();
    process.stdin.pause();
  }
}
