// Block devices for real (loop devices): the master reads a whole disk or a partition,
// the client writes one, and a device that is too small or unconfirmed is refused.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { sampleDisk } from '../../src/demo/sample.ts';
import { freePort, must, sha256 } from './helpers.ts';
import { isRoot } from './netns.ts';

const skip = isRoot() ? false : 'loop devices need root';
let dir = '';
const loops: string[] = [];
const attach = (file: string, range: string[] = []): string => {
  const dev = execFileSync('losetup', ['-f', '--show', ...range, file], { encoding: 'utf8' }).trim();
  loops.push(dev);
  return dev;
};
const detach = (dev: string): void => {
  execFileSync('losetup', ['-d', dev]);
  loops.splice(loops.indexOf(dev), 1);
};
const lo = (): string[] => ['--iface', '127.0.0.1', '--port', String(freePort())];
const MIB = 1 << 20;
let disk: Uint8Array;
let src = '', dst = '', small = '', dstFile = '';

before(async () => {
  if (skip) return;
  dir = await mkdtemp(join(tmpdir(), 'must-blockdev-'));
  disk = sampleDisk(8 * MIB, 21);
  await writeFile(join(dir, 'src.img'), disk);
  // The target disk has the same partition table and nothing else.
  const blank = new Uint8Array(8 * MIB);
  blank.set(disk.subarray(0, 512));
  dstFile = join(dir, 'dst.img');
  await writeFile(dstFile, blank);
  await writeFile(join(dir, 'small.img'), new Uint8Array(4 * MIB));
  src = attach(join(dir, 'src.img'));
  dst = attach(dstFile);
  small = attach(join(dir, 'small.img'));
});
after(async () => {
  for (const l of loops) { try { execFileSync('losetup', ['-d', l]); } catch { /* gone */ } }
  if (dir) await rm(dir, { recursive: true, force: true });
});

test('without a terminal and without --yes a block device is not touched', { skip }, async () => {
  const r = await must(['client', '--target', dst, ...lo()]).done;
  assert.equal(r.code, 2);
  assert.match(r.out, new RegExp(`${dst} is a block device and there is no terminal to confirm on; pass --yes`));
});

test('a device smaller than the image is refused, naming the device and both sizes', { skip }, async () => {
  const net = lo();
  const master = must(['master', '--image', src, '--min-clients', '1', ...net]);
  const r = await must(['client', '--target', small, '--yes', ...net]).done;
  master.child.kill('SIGTERM');
  await master.done;
  assert.notEqual(r.code, 0);
  assert.match(r.out, new RegExp(`target=${small} .*target too small: it holds ${4 * MIB} bytes, the image needs ${8 * MIB} bytes`));
  assert.ok((await readFile(join(dir, 'small.img'))).every((b) => b === 0), 'the small device was written');
});

test('whole disk: block device to block device, byte-identical', { skip }, async () => {
  const net = lo();
  const master = must(['master', '--image', src, '--min-clients', '1', ...net]);
  const r = await must(['client', '--target', dst, '--yes', ...net]).done;
  assert.equal(r.code, 0, r.out.slice(-2000));
  assert.equal((await master.done).code, 0);
  assert.equal(sha256(await readFile(dstFile)), sha256(disk));
});

// This machine's kernel has no MSDOS partition support (CONFIG_MSDOS_PARTITION is off), so no
// /dev/loopNp1 appears: each partition is attached as its own loop device over its byte range,
// which is what a partition device is. The VM tests boot a kernel with real partitions.
test('one partition into the same partition of another disk', { skip }, async () => {
  await writeFile(dstFile, new Uint8Array(8 * MIB).fill(0x5a));
  const v = new DataView(disk.buffer, 446);
  const start = v.getUint32(8, true) * 512, len = v.getUint32(12, true) * 512;
  const range = ['--offset', String(start), '--sizelimit', String(len)];
  const srcPart = attach(join(dir, 'src.img'), range);
  const dstPart = attach(dstFile, range);
  const net = lo();
  try {
    const master = must(['master', '--image', srcPart, '--min-clients', '1', ...net]);
    const r = await must(['client', '--target', dstPart, '--yes', ...net]).done;
    assert.equal(r.code, 0, r.out.slice(-2000));
    assert.equal((await master.done).code, 0);
  } finally {
    // Gone before the next test: a second loop device over dst.img would make a model rule naming it ambiguous.
    detach(srcPart);
    detach(dstPart);
  }
  const got = await readFile(dstFile);
  assert.equal(sha256(got.subarray(start, start + len)), sha256(disk.subarray(start, start + len)), 'partition 1 differs');
  assert.ok(got.subarray(0, start).every((b) => b === 0x5a), 'bytes before the partition were touched');
  assert.ok(got.subarray(start + len).every((b) => b === 0x5a), 'bytes after the partition were touched');
});

test('a device path that does not exist is refused, not created', { skip }, async () => {
  const r = await must(['client', '--target', '/dev/must-no-such-disk', '--yes', ...lo()]).done;
  assert.equal(r.code, 2);
  assert.match(r.out, /\/dev\/must-no-such-disk: no such device/);
  await assert.rejects(readFile('/dev/must-no-such-disk'));
});

test('a device in use is refused, naming it: a mounted disk, a disk whose partition is mounted; nothing is written', { skip }, async () => {
  // A disk with one ext4 partition, mounted.
  const file = join(dir, 'busy.img');
  await writeFile(file, new Uint8Array(16 * MIB));
  execFileSync('sfdisk', ['-q', file], { input: 'start=2048, type=83\n' });
  const whole = attach(file, ['-P']);
  const part = `${whole}p1`;
  // The kernel's partition scan does not always make the node here: partx adds it if it is missing.
  if (!existsSync(part)) execFileSync('partx', ['-a', whole]);
  execFileSync('mkfs.ext4', ['-q', part]);
  const mnt = join(dir, 'busy mount');
  execFileSync('mkdir', ['-p', mnt]);
  execFileSync('mount', [part, mnt]);
  try {
    const before = sha256(await readFile(whole));
    for (const [target, named] of [[part, part], [whole, part]] as const) {
      const r = await must(['client', '--target', target, '--yes', ...lo()]).done;
      assert.equal(r.code, 2, r.out);
      assert.ok(r.out.includes(`must: ${target} cannot be overwritten: ${named} is mounted on ${mnt}`), r.out);
    }
    const img = join(dir, 'busy.must');
    const c = await must(['capture', src, '-o', img]).done;
    assert.equal(c.code, 0, c.out);
    const r = await must(['restore', img, whole, '--yes']).done;
    assert.equal(r.code, 2, r.out);
    assert.ok(r.out.includes(`${whole} cannot be overwritten: ${part} is mounted on ${mnt}`), r.out);
    assert.equal(sha256(await readFile(whole)), before, 'the busy disk changed');
  } finally {
    execFileSync('umount', [mnt]);
  }
});

test('--disk RULE: chosen once the image size is known; a rule that matches nothing or a disk too small is refused, naming why; --json gives a row per PC', { skip }, async () => {
  const net = lo();
  // 12 Mbit/s: the pass lasts about 6 s, long enough for the 2-s rows.
  const master = must(['master', '--image', src, '--min-clients', '1', '--json', '--rate', '12', ...net]);
  // The loop devices' model is their backing file: a model rule names one of them.
  const none = await must(['client', '--disk', 'model:no-such-disk', '--yes', '--name', 'none', ...net]).done;
  assert.equal(none.code, 1, none.out);
  assert.match(none.out, /declined reason="must\.disk=model:no-such-disk matches no disk/);
  const tooSmall = await must(['client', '--disk', small, '--yes', '--name', 'small', ...net]).done;
  assert.equal(tooSmall.code, 1, tooSmall.out);
  assert.match(tooSmall.out, new RegExp(`must\\.disk=${small} names ${small} .*which cannot be imaged: too small \\(4\\.0 MiB; the image needs 8\\.0 MiB\\)`));
  const r = await must(['client', '--disk', `model:${dstFile}`, '--yes', '--name', 'ruled', ...net]).done;
  assert.equal(r.code, 0, r.out);
  assert.match(r.out, new RegExp(`target target=${dst} capacity=${8 * MIB}`));
  assert.equal(sha256(await readFile(dst)), sha256(disk));
  const m = await master.done;
  assert.equal(m.code, 0, m.out);
  const lines = m.out.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.ok(lines.every((l) => typeof l.event === 'string' && typeof l.time === 'string'), 'every line is one JSON event');
  assert.ok(lines.some((l) => l.event === 'client' && l.client === 'ruled' && typeof l.percent === 'number' && l.ip === '127.0.0.1'), 'a client row for the PC');
});
