// The screens on a real terminal: tmux runs a master and two clients on loopback. One client
// picks its disk (a loop device) in the picker, by keys; the master starts on its key; the
// panes are read back with capture-pane. With MUST_SCREENSHOTS=DIR the captures are also
// written there (scripts/screenshots keeps them in docs/screens/).

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { sampleDisk } from '../../src/demo/sample.ts';
import { isRoot } from './netns.ts';
import { freePort, sha256, sha256File, sleep } from './helpers.ts';

const MAIN = fileURLToPath(new URL('../../src/main.ts', import.meta.url));
const SOCKET = `must-screens-${process.pid}`;
const tmux = (...args: string[]): string => execFileSync('tmux', ['-L', SOCKET, ...args], { encoding: 'utf8' });
const hasTmux = ((): boolean => { try { execFileSync('tmux', ['-V']); return true; } catch { return false; } })();

let dir = '';
let loop = '';
before(async () => { dir = await mkdtemp(join(tmpdir(), 'must-screens-')); });
after(async () => {
  try { tmux('kill-server'); } catch { /* not started */ }
  if (loop) execFileSync('losetup', ['-d', loop]);
  await rm(dir, { recursive: true, force: true });
});

/** A window running `must ARGS` (its exit status shown after it), 110 x 34 like a PC's console. */
function window(name: string, args: string[]): void {
  const cmd = [process.execPath, '--disable-warning=ExperimentalWarning', MAIN, ...args].map((a) => `'${a}'`).join(' ');
  // The screen decides by the terminal alone: CI=true in the environment must not change it.
  const line = `env -u CI TERM=xterm-256color ${cmd}; echo "exit status $?"; sleep 3600`;
  if (name === 'master') tmux('new-session', '-d', '-s', 'lab', '-n', name, '-x', '110', '-y', '34', line);
  else tmux('new-window', '-d', '-t', 'lab', '-n', name, line);
}

const capture = (name: string): string => tmux('capture-pane', '-p', '-t', `lab:${name}`);

async function shows(name: string, re: RegExp, ms = 60_000): Promise<string> {
  const end = Date.now() + ms;
  for (;;) {
    const screen = capture(name);
    if (re.test(screen)) return screen;
    if (Date.now() > end) throw new Error(`window ${name} does not show ${re}:\n${screen}`);
    await sleep(100);
  }
}

const shots = process.env.MUST_SCREENSHOTS;
async function keep(file: string, screen: string): Promise<void> {
  if (!shots) return;
  await mkdir(shots, { recursive: true });
  await writeFile(join(shots, file), `${screen.replace(/\s+$/, '')}\n`);
}

test('tmux: the picker and the start key by send-keys, the master\'s table filling, the summary', { skip: !isRoot() || !hasTmux ? 'needs root (a loop device) and tmux' : false, timeout: 180_000 }, async () => {
  const bytes = sampleDisk(48 << 20, 7);
  const img = join(dir, 'lab.img');
  await writeFile(img, bytes);
  const disk = join(dir, 'pc1-disk.img');
  execFileSync('truncate', ['-s', '64M', disk]);
  loop = execFileSync('losetup', ['-f', '--show', disk], { encoding: 'utf8' }).trim();
  const port = String(freePort());
  const lo = ['--iface', '127.0.0.1', '--port', port];

  // Started only by its key: no client count, and a wait far longer than the test.
  window('master', ['master', '--image', img, '--name', 'lab-2026', '--wait', '3600', '--rate', '60', ...lo]);
  await keep('master-waiting.txt', await shows('master', /\(no PC has joined yet\)[\s\S]*keys: s start now/));

  window('pc1', ['client', '--name', 'pc1', '--after', 'reboot', '--countdown', '30', ...lo]);
  let screen = await shows('pc1', /Which disk gets "lab-2026" \(48\.0 MiB\)\?/);
  assert.match(screen, /cannot: \/dev\/\w+ is mounted on \//, 'the disk holding / is shown but refused');
  for (let i = 0; i < 20 && !new RegExp(`> ${loop} `).test(capture('pc1')); i++) { tmux('send-keys', '-t', 'lab:pc1', 'Down'); await sleep(150); }
  screen = await shows('pc1', new RegExp(`> ${loop} +64\\.0 MiB +file /`));
  await keep('client-picker.txt', screen);
  tmux('send-keys', '-t', 'lab:pc1', 'Enter');
  screen = await shows('pc1', new RegExp(`Write the image over ${loop} \\(file ${disk}, 64\\.0 MiB\\)\\?\\s+Everything on ${loop} is lost\\. \\[y/N\\]`));
  tmux('send-keys', '-t', 'lab:pc1', 'y');
  await shows('pc1', /State\s+Waiting for the start/);

  const file = join(dir, 'pc2.img');
  window('pc2', ['client', '--name', 'pc2', '--target', file, '--yes', '--simulate-loss', '2', ...lo]);
  screen = await shows('master', /> pc1 .* waiting[\s\S]* pc2 .* waiting/);
  await keep('master-joined.txt', screen);
  tmux('send-keys', '-t', 'lab:master', 's');

  // The table fills: both PCs receiving, one of them well into the pass.
  screen = await shows('master', /state transfer[\s\S]*pc\d .* receiving\s+[2-8]\d\s[\s\S]*pc\d .* receiving/);
  await keep('master-transfer.txt', screen);
  await keep('client-receiving.txt', await shows('pc1', /State\s+Receiving[\s\S]*\s[1-9]\d%\s+[\d.]+ MB\/s/));
  screen = await shows('master', /Finished: 2 of 2 PCs verified in [\d.]+ s/);
  assert.match(screen, /✓ pc\d .* verified in [\d.]+ s[\s\S]*✓ pc\d .* verified in [\d.]+ s/);
  await keep('master-finished.txt', screen);
  await shows('master', /exit status 0/);

  screen = await shows('pc1', /Reboot in \d+ s · press any key to cancel/);
  assert.match(screen, /State\s+Done: verified[\s\S]*100%/);
  await keep('client-countdown.txt', screen);
  tmux('send-keys', '-t', 'lab:pc1', 'x');
  await shows('pc1', /exit status 3/);
  await shows('pc2', /exit status 0/);
  assert.equal(sha256((await readFile(loop)).subarray(0, bytes.length)), sha256(bytes), `${loop} differs from the image`);
  assert.equal(await sha256File(file), sha256(bytes), 'pc2\'s file differs from the image');
});
