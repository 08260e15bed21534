// Running the real program as child processes, and checking what they wrote.

import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';
import { fileURLToPath } from 'node:url';

const MAIN = fileURLToPath(new URL('../../src/main.ts', import.meta.url));

export interface Run {
  child: ChildProcess;
  done: Promise<{ code: number; out: string }>;
  output(): string;
}

// A test that fails before it stops its processes must not leave them holding the file's run open.
const live = new Set<ChildProcess>();
/** Where the masters of this test file keep their manifests (as root the default is /var/cache/must, which a test must not fill). */
let hashCache: string | undefined;
after(() => {
  for (const c of live) c.kill('SIGKILL');
  if (hashCache) rmSync(hashCache, { recursive: true, force: true });
});

/** Start `must ARGS` (optionally through a wrapper such as `ip netns exec NS`). A master keeps its manifests in the test's own directory unless ARGS name one. */
export function must(args: string[], o: { wrap?: string[]; env?: Record<string, string> } = {}): Run {
  const cache = args[0] === 'master' && !args.includes('--hash-cache') ? ['--hash-cache', hashCache ??= mkdtempSync(join(tmpdir(), 'must-hash-cache-'))] : [];
  const cmd = [...(o.wrap ?? []), process.execPath, '--disable-warning=ExperimentalWarning', MAIN, ...args, ...cache];
  const child = spawn(cmd[0]!, cmd.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...o.env } });
  live.add(child);
  child.on('exit', () => live.delete(child));
  let out = '';
  child.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
  child.stderr!.on('data', (d: Buffer) => { out += d.toString(); });
  const done = new Promise<{ code: number; out: string }>((resolve) => {
    child.on('exit', (code, signal) => resolve({ code: code ?? (signal === 'SIGKILL' ? 137 : 128), out }));
  });
  return { child, done, output: () => out };
}

export async function sha256File(path: string): Promise<string> {
  return createHash('sha256').update(await readFile(path)).digest('hex');
}

export const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

/** A port block of four, different for every call in this process and unlikely to collide with another run. */
let nextPort = 20000 + 4 * ((process.pid * 7) % 2000);
export const freePort = (): number => { nextPort += 4; return nextPort; };

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Resolve when the output of a run matches (or fail after ms). */
export async function waitFor(run: Run, re: RegExp, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!re.test(run.output())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${re} in:\n${run.output().slice(-3000)}`);
    await sleep(50);
  }
}
