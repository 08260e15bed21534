// Faults a lab meets, each on a LAN of network namespaces: a disk that fails writes, a master
// that dies and comes back, a PC that crashes and boots again, a PC whose network goes away for
// seconds, a PC on a slow link. What each client ends with, what the master says, and the time
// it cost (printed as a `#` line, bounded where a bound is the point).

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { sampleDisk } from '../../src/demo/sample.ts';
import { dataPayloadFor } from '../../src/protocol/codec.ts';
import { freePort, must, sha256, sleep, waitFor } from './helpers.ts';
import { type NetLab, createLab, isRoot } from './netns.ts';

const skip = isRoot() ? false : 'needs root (tmpfs, network namespaces)';
const dir = mkdtempSync(join(tmpdir(), 'must-faults-'));
const mounts: string[] = [];
let lab: NetLab | undefined;
after(() => {
  for (const m of mounts) try { execFileSync('umount', [m]); } catch { /* gone */ }
  lab?.destroy();
  rmSync(dir, { recursive: true, force: true });
});

/** The LAN (created by the first test that runs), and `must` options for one of its sessions. */
const net = (): NetLab => (lab ??= createLab('mustf', ['m', 'c1', 'c2']));
const on = (host: string): { wrap: string[] } => ({ wrap: net().wrap(host) });
const lo = (port: number): string[] => ['--iface', 'eth0', '--port', String(port)];
const seconds = (out: string): number => Number(/ (?:verified|failed) client=.* seconds=([\d.]+)/.exec(out)?.[1] ?? NaN);

function image(name: string, mib: number, seed: number): { path: string; digest: string; bytes: Uint8Array } {
  const bytes = sampleDisk(mib << 20, seed);
  const path = join(dir, name);
  writeFileSync(path, bytes);
  return { path, digest: sha256(bytes), bytes };
}

test('a disk that fails writes: that client fails naming the target and the byte, the master reports it, the other PC ends verified', { skip, timeout: 120_000 }, async () => {
  const img = image('wr.img', 16, 1);
  // A 4 MiB tmpfs: the target file on it takes the image's size, and writes past 4 MiB get ENOSPC.
  const small = join(dir, 'small');
  mkdirSync(small);
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'must-faults', small]);
  mounts.push(small);
  const port = freePort();
  const started = Date.now();
  const master = must(['master', img.path, '--min-clients', '2', '--rate', '200', ...lo(port)], on('m'));
  const good = must(['client', '--target', join(dir, 'good.img'), '--yes', '--name', 'good', ...lo(port)], on('c1'));
  const bad = must(['client', '--target', join(small, 'bad.img'), '--yes', '--name', 'bad', ...lo(port)], on('c2'));
  const [g, b] = await Promise.all([good.done, bad.done]);
  assert.equal(g.code, 0, g.out.slice(-1500));
  assert.equal(sha256(readFileSync(join(dir, 'good.img'))), img.digest);
  assert.equal(b.code, 1);
  const reason = new RegExp(`write error at byte \\d+ of the target \\(8 so far\\): ${small}/bad.img: .*(ENOSPC|no space)`, 'i');
  assert.match(b.out, reason);
  const m = await master.done;
  assert.equal(m.code, 1, 'not every PC was imaged, so the master must not report success');
  assert.match(m.out, /WARN failed client=bad .*reason="write error at byte \d+/);
  assert.match(m.out, /summary client=good .*result=verified/);
  console.log(`# write errors: bad failed after ${seconds(b.out)} s, good verified in ${seconds(g.out)} s, master done ${((Date.now() - started) / 1000).toFixed(1)} s after start; image ${(((16 << 20) * 8) / 200e6).toFixed(1)} s at the rate`);
});

test('the master dies mid-transfer and is started again: the client follows the new session, keeps what it has, ends verified', { skip, timeout: 120_000 }, async () => {
  const img = image('restart.img', 32, 2);
  const port = freePort();
  const target = join(dir, 'restart-pc.img');
  const first = must(['master', img.path, '--min-clients', '1', '--rate', '50', ...lo(port)], on('m'));
  const client = must(['client', '--target', target, '--yes', '--name', 'pc', ...lo(port)], on('c1'));
  await waitFor(client, /phase phase=receiving/, 30_000);
  await sleep(2500);
  first.child.kill('SIGKILL');
  const killedAt = Date.now();
  await sleep(3000);
  const second = must(['master', img.path, '--min-clients', '1', '--rate', '50', ...lo(port)], on('m'));
  const c = await client.done;
  assert.equal(c.code, 0, c.out.slice(-2000));
  assert.equal(sha256(readFileSync(target)), img.digest);
  const m = await second.done;
  assert.equal(m.code, 0, m.out.slice(-2000));
  // It kept the first session's packets: the new master saw it join holding some, and it did not take the image twice.
  const have = Number(/joined client=pc .*have=(\d+)/.exec(m.out)?.[1] ?? 0);
  const packets = Math.ceil((32 << 20) / dataPayloadFor(1500));
  assert.ok(have > packets / 10, `the client joined the new master holding ${have} of ${packets} packets`);
  const received = Number(/verified client=pc .*received=(\d+)/.exec(c.out)?.[1]);
  assert.ok(received < packets * 1.2, `received ${received} packets for ${packets}`);
  console.log(`# master restart: down ${((Date.now() - killedAt) / 1000).toFixed(1)} s until the client finished; client total ${seconds(c.out)} s for an image of ${(((32 << 20) * 8) / 50e6).toFixed(1)} s at the rate`);
});

test('a PC crashes mid-transfer and boots again: it rejoins, starts afresh and ends verified; the other is not held back', { skip, timeout: 180_000 }, async () => {
  const img = image('crash.img', 24, 5);
  const port = freePort();
  const t = (c: string): string => join(dir, `crash-${c}.img`);
  const master = must(['master', img.path, '--min-clients', '2', '--rate', '60', ...lo(port)], on('m'));
  const steady = must(['client', '--target', t('c1'), '--yes', '--name', 'c1', ...lo(port)], on('c1'));
  let victim = must(['client', '--target', t('c2'), '--yes', '--name', 'c2', ...lo(port)], on('c2'));
  await waitFor(victim, /phase phase=receiving/, 30_000);
  const started = Date.now();
  await sleep(1500);
  victim.child.kill('SIGKILL');
  assert.equal((await victim.done).code, 137);
  await sleep(1000);
  victim = must(['client', '--target', t('c2'), '--yes', '--name', 'c2', ...lo(port)], on('c2'));
  const [r1, r2] = await Promise.all([steady.done, victim.done]);
  const finished = Date.now();
  assert.equal(r1.code, 0, r1.out.slice(-1500));
  assert.equal(r2.code, 0, r2.out.slice(-1500));
  for (const c of ['c1', 'c2']) assert.equal(sha256(readFileSync(t(c))), img.digest, `${c} differs`);
  const m = await master.done;
  assert.equal(m.code, 0, m.out.slice(-2000));
  assert.match(m.out, /rejoined client=c2/);
  assert.match(m.out, /summary client=c2 .*result=verified/);
  const nominal = ((24 << 20) * 8) / 60e6;
  assert.ok(seconds(r1.out) < nominal + 6, `c1 took ${seconds(r1.out)} s for a ${nominal.toFixed(1)} s image: held back by the crash`);
  console.log(`# crash: c1 ${seconds(r1.out)} s; c2 down 1 s, then ${seconds(r2.out)} s after it came back (${((finished - started) / 1000).toFixed(1)} s since it first received); image ${nominal.toFixed(1)} s at the rate`);
});

test('one PC loses its network for 5 s: the other is not held back, both end verified', { skip, timeout: 180_000 }, async () => {
  const lab = net();
  const img = image('outage.img', 24, 3);
  const port = String(freePort());
  const opts = ['--iface', 'eth0', '--port', port];
  const master = must(['master', img.path, '--min-clients', '2', '--rate', '60', ...opts], { wrap: lab.wrap('m') });
  const runs = ['c1', 'c2'].map((c) => must(['client', '--target', join(dir, `${c}.img`), '--yes', '--name', c, ...opts], { wrap: lab.wrap(c) }));
  await waitFor(runs[1]!, /phase phase=receiving/, 30_000);
  await sleep(1000);
  lab.setLoss('c2', 100);
  await sleep(5000);
  lab.setLoss('c2', 0);
  const [r1, r2] = await Promise.all(runs.map((r) => r.done));
  assert.equal(r1!.code, 0, r1!.out.slice(-1500));
  assert.equal(r2!.code, 0, r2!.out.slice(-1500));
  for (const c of ['c1', 'c2']) assert.equal(sha256(readFileSync(join(dir, `${c}.img`))), img.digest, `${c} differs`);
  const m = await master.done;
  assert.equal(m.code, 0, m.out.slice(-2000));
  // The pass went on at the rate while c2 was away: c1 needed no more than the image's time at the rate plus slack.
  const nominal = ((24 << 20) * 8) / 60e6;
  assert.ok(seconds(r1!.out) < nominal + 6, `c1 took ${seconds(r1!.out)} s for a ${nominal.toFixed(1)} s image: held back by c2`);
  console.log(`# outage: c1 ${seconds(r1!.out)} s, c2 ${seconds(r2!.out)} s (5 s without network), image ${nominal.toFixed(1)} s at the rate`);
});

test('a PC on a slow link (20 Mbit/s against 60): the others finish at the full rate, the slow one completes afterwards', { skip, timeout: 240_000 }, async () => {
  const lab = net();
  for (const h of lab.hosts) lab.setLoss(h, 0);
  const img = image('slow.img', 24, 4);
  const port = String(freePort());
  const opts = ['--iface', 'eth0', '--port', port];
  lab.setRate('c2', 20);
  try {
    const records = join(dir, 'slow-records.json');
    const master = must(['master', img.path, '--min-clients', '2', '--rate', '60', '--records', records, ...opts], { wrap: lab.wrap('m') });
    const runs = ['c1', 'c2'].map((c) => must(['client', '--target', join(dir, `slow-${c}.img`), '--yes', '--name', c, ...opts], { wrap: lab.wrap(c) }));
    const [r1, r2] = await Promise.all(runs.map((r) => r.done));
    assert.equal(r1!.code, 0, r1!.out.slice(-1500));
    assert.equal(r2!.code, 0, r2!.out.slice(-1500));
    for (const c of ['c1', 'c2']) assert.equal(sha256(readFileSync(join(dir, `slow-${c}.img`))), img.digest, `${c} differs`);
    assert.equal((await master.done).code, 0);
    // The master keeps a record of each whole-disk write: which PC (MAC), which image, when, how it ended.
    const kept = JSON.parse(readFileSync(records, 'utf8')) as Array<{ mac: string; hostname: string; image: string; start: string; end: string; result: string; digest: string }>;
    assert.deepEqual(kept.map((r) => [r.hostname, r.image, r.result]).sort(), [['c1', 'slow.img', 'verified'], ['c2', 'slow.img', 'verified']]);
    for (const r of kept) assert.ok(/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/.test(r.mac) && r.start && r.end && r.digest.length === 64, JSON.stringify(r));
    const nominal = ((24 << 20) * 8) / 60e6;
    console.log(`# slow link: c1 ${seconds(r1!.out)} s, c2 ${seconds(r2!.out)} s; image ${nominal.toFixed(1)} s at 60 Mbit/s, ${(nominal * 3).toFixed(1)} s at 20`);
    assert.ok(seconds(r1!.out) < nominal * 1.5 + 2, `c1 took ${seconds(r1!.out)} s: held back by the slow PC`);
  } finally {
    lab.setRate('c2', 1000);
  }
});

test('the slow-client policy (--max-behind 2): the slow PC is dropped 2 s after the other finished, both sides say why', { skip, timeout: 120_000 }, async () => {
  const lab = net();
  for (const h of lab.hosts) lab.setLoss(h, 0);
  const img = image('behind.img', 24, 6);
  const port = freePort();
  const t = (c: string): string => join(dir, `behind-${c}.img`);
  lab.setRate('c2', 10);
  try {
    const started = Date.now();
    const master = must(['master', img.path, '--min-clients', '2', '--rate', '60', '--max-behind', '2', ...lo(port)], on('m'));
    const runs = ['c1', 'c2'].map((c) => must(['client', '--target', t(c), '--yes', '--name', c, ...lo(port)], on(c)));
    const [r1, r2] = await Promise.all(runs.map((r) => r.done));
    const m = await master.done;
    assert.equal(r1!.code, 0, r1!.out.slice(-1500));
    assert.equal(sha256(readFileSync(t('c1'))), img.digest);
    assert.equal(r2!.code, 1, r2!.out.slice(-1500));
    const why = /too slow: \d+% of the image still missing [23] s after the first PC finished \(limit 2 s\)/;
    assert.match(r2!.out, why);
    assert.match(m.out, new RegExp(`WARN dropped client=c2 .*${why.source}`));
    assert.equal(m.code, 1, 'a dropped PC is not a success');
    console.log(`# max-behind: c1 verified in ${seconds(r1!.out)} s, c2 dropped, master done ${((Date.now() - started) / 1000).toFixed(1)} s after start`);
  } finally {
    lab.setRate('c2', 1000);
  }
});
