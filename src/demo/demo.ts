// `must demo`: a lab on this machine. One master and N clients, each a real process,
// over multicast on the loopback interface, imaging a generated disk with random loss
// at every client (repaired at the end). Ends with each disk's SHA-256 next to the image's.

import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { Options } from '../cli/args.ts';
import { UsageError } from '../cli/args.ts';
import { selfCommand } from '../cli/self.ts';
import { bytes } from '../log/logger.ts';
import { sampleDisk } from './sample.ts';

interface Child { name: string; code: number; seconds: number }

export async function demo(o: Options): Promise<number> {
  const n = o.num('clients') ?? 3;
  const mib = o.num('size') ?? 64;
  const loss = o.num('loss') ?? 2;
  if (!Number.isInteger(n) || n < 1 || n > 32) throw new UsageError('demo: --clients is 1 to 32');
  if (!Number.isInteger(mib) || mib < 2) throw new UsageError('demo: --size is a whole number of MiB, at least 2');
  const protocol = o.str('protocol') ?? 'default';
  const keep = o.str('dir') !== undefined;
  const dir = o.str('dir') ?? await mkdtemp(join(tmpdir(), 'must-demo-'));
  await mkdir(dir, { recursive: true });
  const port = o.num('port') ?? 20000 + 4 * Math.floor(Math.random() * 5000);
  const say = (s: string): void => console.log(s);

  const image = join(dir, 'sample-disk.img');
  await writeFile(image, sampleDisk(mib << 20, 1));
  say(`demo: ${n} clients image a ${bytes(mib << 20)} disk (MBR, two partitions) from one master, over multicast on loopback,`);
  say(`demo: ${loss}% of datagrams dropped at each client (repaired after the pass); protocol ${protocol}; files in ${dir}`);

  const self = selfCommand();
  const common = ['--iface', '127.0.0.1', '--port', String(port), ...(o.flag('json') ? ['--json'] : [])];
  const run = (name: string, args: string[]): Promise<Child> => new Promise((resolve) => {
    const started = performance.now();
    const child = spawn(self.cmd, [...self.args, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    for (const stream of [child.stdout, child.stderr]) {
      createInterface({ input: stream }).on('line', (line) => say(`[${name.padEnd(6)}] ${line}`));
    }
    child.on('exit', (code, signal) => resolve({ name, code: code ?? (signal ? 128 : 1), seconds: (performance.now() - started) / 1000 }));
  });

  const master = run('master', ['master', '--image', image, '--min-clients', String(n), '--name', 'sample-disk', '--protocol', protocol, ...common]);
  const targets = Array.from({ length: n }, (_, i) => join(dir, `pc-${i + 1}.img`));
  const clients = targets.map((t, i) => run(`pc-${i + 1}`, ['client', '--target', t, '--yes', '--name', `pc-${i + 1}`, '--simulate-loss', String(loss), ...common]));
  const results = await Promise.all([master, ...clients]);

  const digest = async (p: string): Promise<string> => {
    try { return createHash('sha256').update(await readFile(p)).digest('hex'); } catch { return '(missing)'; }
  };
  const want = await digest(image);
  say('');
  say(`  ${'disk'.padEnd(18)} ${'exit'.padEnd(5)} ${'seconds'.padEnd(8)} sha256`);
  say(`  ${'sample-disk.img'.padEnd(18)} ${''.padEnd(5)} ${''.padEnd(8)} ${want}`);
  let ok = results[0]!.code === 0;
  for (let i = 0; i < n; i++) {
    const got = await digest(targets[i]!);
    const r = results[i + 1]!;
    const same = got === want && r.code === 0;
    ok &&= same;
    say(`  ${`pc-${i + 1}.img`.padEnd(18)} ${String(r.code).padEnd(5)} ${r.seconds.toFixed(1).padEnd(8)} ${got} ${same ? 'identical' : 'DIFFERENT'}`);
  }
  say(`  master exit ${results[0]!.code} after ${results[0]!.seconds.toFixed(1)} s`);
  say(ok ? `demo: every disk is byte-identical to the image` : `demo: FAILED (see above)`);
  if (!keep) await rm(dir, { recursive: true, force: true });
  return ok ? 0 : 1;
}
