// Images of real filesystems and real partition tables, built here with Debian's tools:
// capture, restore, fsck, the same files; tables sfdisk reads back identically; a damaged
// chunk caught by `must verify` and refused by a client over the network.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, readSync, rmSync, writeFileSync, writeSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { openImage } from '../../src/image/format.ts';
import { Method, methodName } from '../../src/protocol/manifest.ts';
import { freePort, must, waitFor } from './helpers.ts';

const root = process.getuid?.() === 0;
const tools = ['partclone.extfs', 'partclone.fat', 'partclone.ntfs', 'mkntfs', 'ntfscp', 'ntfscat', 'mcopy', 'mkfs.vfat', 'fsck.vfat', 'debugfs', 'sfdisk', 'losetup'];
const missing = tools.filter((t) => { try { execFileSync('sh', ['-c', `command -v ${t}`], { stdio: 'ignore' }); return false; } catch { return true; } });
const skip = !root ? 'needs root (loop devices, partclone)' : missing.length ? `missing ${missing.join(', ')}` : false;

const dir = mkdtempSync(join(tmpdir(), 'must-image-'));
const loops: string[] = [];
after(() => {
  for (const l of loops) try { execFileSync('losetup', ['-d', l], { stdio: 'ignore' }); } catch { /* gone */ }
  rmSync(dir, { recursive: true, force: true });
});

const sh = (cmd: string, args: string[]): Buffer => execFileSync(cmd, args, { maxBuffer: 256 << 20, stdio: ['ignore', 'pipe', 'pipe'] });
const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');
const mib = (n: number): number => n << 20;

function blank(path: string, bytes: number, fill = 0): void {
  if (fill === 0) { writeFileSync(path, ''); sh('truncate', ['-s', String(bytes), path]); return; }
  writeFileSync(path, new Uint8Array(bytes).fill(fill));
}

/** Deterministic file contents: some random-looking, some text, one with zero runs inside. */
function sampleFiles(seed: number): Map<string, Uint8Array> {
  let x = seed * 2654435761 >>> 0;
  const rnd = (n: number): Uint8Array => Uint8Array.from({ length: n }, () => { x = (x * 1103515245 + 12345) >>> 0; return x >>> 24; });
  const text = new TextEncoder().encode(Array.from({ length: 30000 }, (_, i) => `line ${i} of the lab image\n`).join(''));
  const holes = new Uint8Array(mib(1));
  holes.set(rnd(4096), 0); holes.set(rnd(4096), mib(1) - 4096); // zeros in the middle of a used file
  return new Map([['random.bin', rnd(1_500_000)], ['notes.txt', text], ['holes.bin', holes]]);
}

/** A loop device over [offset, offset+size) of a file. */
function loop(file: string, offset = 0, size?: number): string {
  const args = ['--find', '--show', '--offset', String(offset), ...(size ? ['--sizelimit', String(size)] : []), file];
  const dev = sh('losetup', args).toString().trim();
  loops.push(dev);
  return dev;
}
function unloop(dev: string): void {
  execFileSync('losetup', ['-d', dev]);
  loops.splice(loops.indexOf(dev), 1);
}

type Fs = 'ext4' | 'vfat' | 'ntfs';

/** Make filesystem `fs` on a device or file and write the files into it, without mounting. */
function makeFs(fs: Fs, dev: string, files: Map<string, Uint8Array>): void {
  const src = join(dir, `src-${fs}-${Math.random().toString(16).slice(2)}`);
  mkdirSync(src);
  for (const [name, data] of files) writeFileSync(join(src, name), data);
  if (fs === 'ext4') sh('mkfs.ext4', ['-q', '-F', '-d', src, dev]);
  if (fs === 'vfat') {
    sh('mkfs.vfat', [dev]);
    for (const name of files.keys()) sh('mcopy', ['-i', dev, join(src, name), `::${name}`]);
  }
  if (fs === 'ntfs') {
    sh('mkntfs', ['-F', '-Q', '-q', dev]);
    for (const name of files.keys()) sh('ntfscp', ['-f', dev, join(src, name), name]);
  }
  rmSync(src, { recursive: true });
}

/** fsck passes, and every file reads back with the same bytes. */
function checkFs(fs: Fs, dev: string, files: Map<string, Uint8Array>): void {
  if (fs === 'ext4') sh('e2fsck', ['-fn', dev]);
  if (fs === 'vfat') sh('fsck.vfat', ['-n', dev]);
  if (fs === 'ntfs') sh('ntfsfix', ['-n', dev]);
  for (const [name, data] of files) {
    const back = fs === 'ext4' ? sh('debugfs', ['-R', `cat /${name}`, dev])
      : fs === 'vfat' ? sh('mcopy', ['-n', '-i', dev, `::${name}`, '-'])
      : sh('ntfscat', [dev, name]);
    assert.equal(sha(back), sha(data), `${fs}: ${name} differs after the round trip`);
  }
}

const capture = (src: string, out: string, ...more: string[]): string => {
  const r = execFileSync(process.execPath, ['--disable-warning=ExperimentalWarning', join(import.meta.dirname, '../../src/main.ts'), 'capture', src, '-o', out, ...more], { encoding: 'utf8' });
  return r;
};
const cli = (...args: string[]): { code: number; out: string } => {
  try {
    return { code: 0, out: execFileSync(process.execPath, ['--disable-warning=ExperimentalWarning', join(import.meta.dirname, '../../src/main.ts'), ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }) };
  } catch (e) {
    const x = e as { status: number; stdout: string; stderr: string };
    return { code: x.status, out: `${x.stdout}${x.stderr}` };
  }
};

for (const fs of ['ext4', 'vfat', 'ntfs'] as const) {
  test(`${fs}: capture keeps only used blocks (partclone), restore gives a filesystem fsck passes with the same files`, { skip }, () => {
    const files = sampleFiles(fs.length);
    const disk = join(dir, `${fs}.fs`), image = join(dir, `${fs}.must`), back = join(dir, `${fs}.back`);
    blank(disk, mib(48));
    makeFs(fs, disk, files);
    capture(disk, image);
    const info = cli('inspect', image);
    assert.equal(info.code, 0, info.out);
    assert.match(info.out, new RegExp(`whole source\\s+${fs}\\s+partclone`), info.out);
    // Used blocks only: far less than the filesystem, and no more than its files plus metadata.
    const size = readFileSync(image).length;
    const payload = [...files.values()].reduce((s, f) => s + f.length, 0);
    assert.ok(size < payload + mib(2), `${fs}: image of ${size} bytes for ${payload} bytes of files`);
    assert.equal(cli('verify', image).code, 0);
    // Restore over garbage: what was zero must come back zero.
    blank(back, mib(48), 0xa5);
    const r = cli('restore', image, back, '--yes');
    assert.equal(r.code, 0, r.out);
    checkFs(fs, back, files);
    assert.equal(cli('verify', image, back).code, 0);
  });
}

function partitionTable(path: string, script: string): Array<{ start: number; size: number }> {
  execFileSync('sfdisk', ['-q', path], { input: script });
  const t = JSON.parse(sh('sfdisk', ['--json', path]).toString()) as { partitiontable: { partitions: Array<{ start: number; size: number }> } };
  return t.partitiontable.partitions.map((p) => ({ start: p.start * 512, size: p.size * 512 }));
}

for (const label of ['dos', 'gpt'] as const) {
  test(`whole disk with ${label === 'dos' ? 'an MBR' : 'a GPT'}: the table (and the GPT backup) reads back identically, every partition checks`, { skip }, async () => {
    const disk = join(dir, `${label}.disk`), image = join(dir, `${label}.must`), back = join(dir, `${label}.back`);
    blank(disk, mib(96));
    const parts = partitionTable(disk, label === 'dos'
      ? 'label: dos\n,32M,83\n,24M,c\n,,83\n'
      : 'label: gpt\n,32M,L\n,8M,S\n,24M,L\n,,L\n');
    const layout: Array<Fs | 'swap' | 'data'> = label === 'dos' ? ['ext4', 'vfat', 'data'] : ['ext4', 'swap', 'ntfs', 'data'];
    const files = sampleFiles(7);
    const unknown = Uint8Array.from({ length: 300_000 }, (_, i) => (i * 7919) % 251);
    layout.forEach((kind, i) => {
      const dev = loop(disk, parts[i]!.start, parts[i]!.size);
      if (kind === 'swap') sh('mkswap', [dev]);
      else if (kind === 'data') { const fd = openSync(dev, 'r+'); writeSync(fd, unknown, 0, unknown.length, 4096); closeSync(fd); }
      else makeFs(kind, dev, files);
      unloop(dev);
    });
    capture(disk, image);
    const opened = await openImage(image);
    const img = opened.manifest;
    await opened.close();
    const methods = img.regions.map((r) => `${r.number}:${r.fs || '-'}:${methodName(r.method)}`);
    const expected = ['0:-:zero-skip', ...layout.map((k, i) => `${i + 1}:${k === 'data' ? '-' : k}:${k === 'data' ? 'zero-skip' : k === 'swap' ? 'swap-header' : 'partclone'}`)];
    assert.deepEqual(methods, expected);
    assert.ok(img.regions.filter((r) => r.method === Method.Partclone).length >= 2);

    blank(back, mib(96), 0x5a);
    const r = cli('restore', image, back, '--yes');
    assert.equal(r.code, 0, r.out);
    const dump = (p: string): string => sh('sfdisk', ['-d', p]).toString().replaceAll(p, 'DISK');
    assert.equal(dump(back), dump(disk));
    if (label === 'gpt') sh('sfdisk', ['--verify', back]);
    // The bytes of the table areas, the GPT backup at the end included, are the source's.
    const head = (p: string, at: number, n: number): string => { const b = Buffer.alloc(n); const fd = openSync(p, 'r'); readSync(fd, b, 0, n, at); closeSync(fd); return sha(b); };
    assert.equal(head(back, 0, mib(1)), head(disk, 0, mib(1)), 'first MiB');
    assert.equal(head(back, mib(95), mib(1)), head(disk, mib(95), mib(1)), 'last MiB');
    layout.forEach((kind, i) => {
      const dev = loop(back, parts[i]!.start, parts[i]!.size);
      try {
        if (kind === 'swap') assert.match(sh('blkid', ['-p', dev]).toString(), /TYPE="swap"/);
        else if (kind === 'data') assert.equal(head(dev, 4096, unknown.length), sha(unknown));
        else checkFs(kind, dev, files);
      } finally { unloop(dev); }
    });
    assert.equal(cli('verify', image, back).code, 0);
  });
}

test('a partition image restores into a larger partition; a smaller target is refused with both sizes named', { skip }, () => {
  const files = sampleFiles(3);
  const part = join(dir, 'part.fs'), image = join(dir, 'part.must');
  blank(part, mib(24));
  makeFs('ext4', part, files);
  capture(part, image);
  const big = join(dir, 'bigger.part');
  blank(big, mib(40), 0x33);
  assert.equal(cli('restore', image, big, '--yes').code, 0);
  checkFs('ext4', big, files);
  const small = join(dir, 'smaller.part');
  blank(small, mib(16), 0x33);
  const r = cli('restore', image, small, '--yes');
  assert.equal(r.code, 2);
  assert.match(r.out, new RegExp(`${small} is too small: it holds ${mib(16)} bytes .*needs ${mib(24)} bytes`));
  assert.ok(readFileSync(small).every((b) => b === 0x33), 'the smaller target was written');
});

test('an interrupted capture leaves no file that looks complete', { skip }, async () => {
  const src = join(dir, 'slow.raw');
  writeFileSync(src, Uint8Array.from({ length: mib(64) }, (_, i) => (i * 2654435761) >>> 27));
  const out = join(dir, 'slow.must');
  const run = must(['capture', src, '-o', out, '--level', '19']);
  while (!existsSync(`${out}.partial`)) await new Promise((r) => setTimeout(r, 20));
  await new Promise((r) => setTimeout(r, 200));
  run.child.kill('SIGINT');
  const r = await run.done;
  assert.equal(r.code, 130, r.out);
  assert.match(r.out, /interrupted/);
  assert.ok(!existsSync(out) && !existsSync(`${out}.partial`), 'a file was left behind');
});

test('a damaged chunk: must verify names it; a client refuses it, asks again, and gets a good copy', { skip, timeout: 120_000 }, async () => {
  const files = sampleFiles(11);
  const disk = join(dir, 'net.fs'), image = join(dir, 'net.must'), good = join(dir, 'net.good'), target = join(dir, 'net.target');
  blank(disk, mib(32));
  makeFs('ext4', disk, files);
  capture(disk, image, '--chunk-size', '1');
  assert.equal(cli('restore', image, good, '--yes').code, 0);
  // Flip one bit in the middle of chunk 1's stream bytes.
  const img = await openImage(image);
  const c0 = img.manifest.chunks[0]!.streamLength, c1 = img.manifest.chunks[1]!.streamLength;
  const at = img.header.streamOffset + c0 + Math.floor(c1 / 2);
  await img.close();
  const flip = (): void => { const fd = openSync(image, 'r+'); const b = Buffer.alloc(1); readSync(fd, b, 0, 1, at); b[0]! ^= 0x10; writeSync(fd, b, 0, 1, at); closeSync(fd); };
  flip();
  const v = cli('verify', image);
  assert.equal(v.code, 1);
  assert.match(v.out, /chunk 1 \(.*\) in the image: stream digest mismatch/);

  const port = freePort();
  const lo = ['--iface', '127.0.0.1', '--port', String(port)];
  const master = must(['master', image, '--min-clients', '1', ...lo]);
  const client = must(['client', '--target', target, '--yes', ...lo]);
  await waitFor(client, /chunk-refused chunk=1 reason="stream digest mismatch"/, 60_000);
  flip(); // the operator puts a good image back; the next repair round reads it
  const r = await client.done;
  assert.equal(r.code, 0, r.out.slice(-3000));
  assert.match(r.out, /verified client=/);
  assert.equal((await master.done).code, 0);
  assert.equal(sha(readFileSync(target)), sha(readFileSync(good)), 'the client disk differs from a local restore');
  checkFs('ext4', target, files);
});

test('an image over the network with 5% loss: a client from the start and one joining mid-transfer (it asks for the manifest at once) both match a local restore', { skip, timeout: 180_000 }, async () => {
  const files = sampleFiles(5);
  const disk = join(dir, 'lossy.fs'), image = join(dir, 'lossy.must'), good = join(dir, 'lossy.good');
  blank(disk, mib(64));
  makeFs('ext4', disk, new Map([...files, ['more.bin', randomBytes(mib(24))]]));
  capture(disk, image, '--chunk-size', '1');
  assert.equal(cli('restore', image, good, '--yes').code, 0);
  const port = freePort();
  const lo = ['--iface', '127.0.0.1', '--port', String(port)];
  const master = must(['master', image, '--min-clients', '1', '--rate', '100', ...lo]);
  const early = must(['client', '--target', join(dir, 'lossy.a'), '--yes', '--name', 'early', '--simulate-loss', '5', ...lo]);
  await waitFor(master, /phase phase=transfer/, 30_000);
  const late = must(['client', '--target', join(dir, 'lossy.b'), '--yes', '--name', 'late', '--simulate-loss', '5', ...lo]);
  const [a, b] = await Promise.all([early.done, late.done]);
  assert.equal(a.code, 0, a.out.slice(-2000));
  assert.equal(b.code, 0, b.out.slice(-2000));
  assert.equal((await master.done).code, 0);
  for (const t of ['lossy.a', 'lossy.b']) assert.equal(sha(readFileSync(join(dir, t))), sha(readFileSync(good)), `${t} differs from a local restore`);
  // The late client found the master in its transfer phase (2): chunks were already flowing, and it
  // could place none before it had asked for and got the manifest.
  assert.match(b.out, /found master=\S+ .*phase=2/);
});
