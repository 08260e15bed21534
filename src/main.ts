// must: one executable, one subcommand per job.

import './cli/pool.ts';
import { initMain } from './boot/appliance.ts';
import { menu } from './boot/menu.ts';
import { Records, defaultRecordsPath } from './boot/records.ts';
import { Options, UsageError, help, parse } from './cli/args.ts';
import { capture, inspect, restore, verify } from './commands/image.ts';
import { keygen } from './commands/keys.ts';
import { client, receiveFiles } from './commands/receive.ts';
import { master, sendFiles } from './commands/serve.ts';
import { relay } from './commands/relay.ts';
import { demo } from './demo/demo.ts';
import { simulate } from './commands/simulate.ts';
import { DiskError } from './disk/device.ts';
import { IfaceError } from './net/iface.ts';
import { KeyError } from './protocol/auth.ts';

export const VERSION = '0.1.0';

const RUN: Record<string, (o: Options) => Promise<number>> = {
  master,
  client,
  relay,
  'send-files': sendFiles,
  'receive-files': receiveFiles,
  demo,
  simulate,
  keygen,
  capture,
  restore,
  verify,
  inspect,
  menu: () => menu(),
  records: async (o) => {
    const r = new Records(o.positionals[0] ?? defaultRecordsPath());
    process.stdout.write(o.flag('csv') ? r.toCsv() : `${JSON.stringify(r.all(), null, 2)}\n`);
    return 0;
  },
  init: () => initMain(),
  help: async (o) => { console.log(help(o.positionals[0])); return 0; },
  version: async () => { console.log(`must ${VERSION}`); return 0; },
};

export async function main(argv: readonly string[]): Promise<number> {
  try {
    const parsed = parse(argv);
    return await RUN[parsed.command]!(new Options(parsed));
  } catch (e) {
    // Errors a person can act on are one line; anything else is a bug and keeps its stack.
    if (e instanceof UsageError || e instanceof DiskError || e instanceof IfaceError || e instanceof KeyError) {
      console.error(`must: ${e.message}`);
      return 2;
    }
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EACCES' || code === 'EPERM' || code === 'ENOENT' || code === 'EADDRINUSE' || code === 'EISDIR' || code === 'EBUSY') {
      console.error(`must: ${(e as Error).message}`);
      return 2;
    }
    throw e;
  }
}

main(process.argv.slice(2)).then((code) => { process.exitCode = code; });
