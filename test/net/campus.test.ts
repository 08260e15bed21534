// Across LANs (issue: the intra-campus rules and HRM relays), on campuses of network namespaces:
// LANs joined by a router that carries multicast (smcroute), where MTP's intra-campus rule keeps
// about one ACK per LAN per block; and LANs the router carries no multicast to, crossed by relays
// over TCP: a chain, a tree whose slow branch fills a relay's ring and holds back its upstream,
// and a relay that dies and is started again.

import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { sampleDisk } from '../../src/demo/sample.ts';
import { type Campus, createCampus } from './campus.ts';
import { type Run, must, sha256, sleep, waitFor } from './helpers.ts';
import { isRoot } from './netns.ts';

const skip = isRoot() ? false : 'needs root (network namespaces, smcroute)';
// The kernel lists its multicast routes here only where it can route multicast (CONFIG_IP_MROUTE).
const noMroute = !existsSync('/proc/net/ip_mr_vif') && 'this kernel cannot route multicast (no CONFIG_IP_MROUTE: /proc/net/ip_mr_vif is missing)';
const dir = mkdtempSync(join(tmpdir(), 'must-campus-'));
let campus: Campus | undefined;
after(() => { campus?.destroy(); rmSync(dir, { recursive: true, force: true }); });

const GROUP = '239.255.77.77';
const MIB = 1 << 20;

function image(name: string, mib: number, seed: number): { path: string; digest: string } {
  const bytes = sampleDisk(mib * MIB, seed);
  const path = join(dir, name);
  writeFileSync(path, bytes);
  return { path, digest: sha256(bytes) };
}

/** A new campus for the next test (the last one gone), and a folder for its PCs' disks. */
let disks = '';
function newCampus(lans: string[][]): Campus {
  campus?.destroy();
  disks = mkdtempSync(join(dir, 'disks-'));
  return (campus = createCampus('mustc', lans));
}
const disk = (host: string): string => join(disks, `${host}.img`);

/** A client on `host` writing a file of its own; resolves with its exit and output. */
function client(c: Campus, host: string): Run {
  return must(['client', '--target', disk(host), '--yes', '--name', host, '--iface', 'eth0'], { wrap: c.wrap(host) });
}

async function allVerified(runs: Map<string, Run>, digest: string): Promise<void> {
  await Promise.all([...runs].map(async ([host, r]) => {
    const d = await r.done;
    assert.equal(d.code, 0, `${host}: ${d.out.slice(-2000)}`);
    assert.equal(sha256(readFileSync(disk(host))), digest, `${host}'s disk differs from the image`);
  }));
}

const field = (out: string, line: RegExp, key: string): string | undefined => {
  const l = out.split('\n').find((x) => line.test(x));
  return l ? new RegExp(`${key}=("[^"]*"|\\S+)`).exec(l)?.[1]?.replace(/"/g, '') : undefined;
};

const LANS: Record<number, string[][]> = { 2: [['m', 'a1', 'a2'], ['b1', 'b2']], 3: [['m', 'a1', 'a2'], ['b1', 'b2'], ['d1', 'd2']] };
for (const n of [2, 3]) test(`routed multicast, ${n} LANs: every client verified, about one ACK per LAN per block at the master`, { skip: skip || noMroute, timeout: 240_000 }, async () => {
  const c = newCampus(LANS[n]!);
  await c.routeMulticast(GROUP);
  const img = image('routed.img', 24, 3);
  const pcs = LANS[n]!.flat().filter((h) => h !== 'm');
  const master = must(['master', img.path, '--iface', 'eth0', '--ttl', '4', '--min-clients', String(pcs.length), '--rate', '150'], { wrap: c.wrap('m') });
  const runs = new Map(pcs.map((h) => [h, client(c, h)] as const));
  await allVerified(runs, img.digest);
  const m = await master.done;
  assert.equal(m.code, 0, m.out.slice(-3000));
  const fin = /master finished /;
  const blocks = Number(field(m.out, fin, 'blocks'));
  const byLan = Object.fromEntries(field(m.out, fin, 'acksByLan')!.split(',').map((kv) => kv.split(':')).map(([k, v]) => [k, Number(v)]));
  console.log(`# routed, ${n} LANs: ${blocks} blocks, ACKs by LAN ${JSON.stringify(byLan)}, time-outs ${field(m.out, fin, 'timeouts')}`);
  assert.deepEqual(Object.keys(byLan).sort(), LANS[n]!.map((_, i) => c.network(i)), 'ACKs came from each LAN');
  for (const [lan, acks] of Object.entries(byLan)) {
    // One ACK confirms every block before it and each LAN has two PCs: about one ACK per block from the
    // LAN, where one per PC would be two.
    assert.ok(acks <= 1.2 * blocks, `${lan}: ${acks} ACKs for ${blocks} blocks from its 2 PCs: not suppressed within the LAN`);
  }
  // Clients on other LANs heard the routed ACKs and did not let them silence their own (else their LAN never confirms).
  assert.ok(Number(field(m.out, fin, 'timeouts')) < blocks / 4, `too many time-outs: ${field(m.out, fin, 'timeouts')} of ${blocks} blocks`);
});

const CHAIN: Record<number, string[][]> = { 2: [['m', 'a1'], ['r1', 'b1', 'b2']], 3: [['m', 'a1'], ['r1', 'b1', 'b2'], ['r2', 'd1', 'd2']] };
for (const n of [2, 3]) test(`relays, ${n} LANs without multicast routing: ${n === 2 ? 'a relay' : 'a chain of relays'} over TCP, every client verified, the master sees the tree`, { skip, timeout: 240_000 }, async () => {
  const c = newCampus(CHAIN[n]!);
  const img = image('relayed.img', 24, 4);
  const master = must(['master', img.path, '--iface', 'eth0', '--min-clients', '1', '--rate', '150', '--json'], { wrap: c.wrap('m') });
  await waitFor(master, /"event":"serving"/);
  // Each relay names its upstream: r1 the master, r2 r1.
  const relays = CHAIN[n]!.slice(1).map((lan, i) => [lan[0]!, must(['relay', '--upstream', c.address(i === 0 ? 'm' : `r${i}`), '--iface', 'eth0', '--name', lan[0]!, '--min-clients', '2', '--rate', '150'], { wrap: c.wrap(lan[0]!) })] as const);
  const pcs = CHAIN[n]!.flat().filter((h) => !/^(m|r\d)$/.test(h));
  const runs = new Map(pcs.map((h) => [h, client(c, h)] as const));
  await allVerified(runs, img.digest);
  for (const [name, r] of relays) {
    const d = await r.done;
    assert.equal(d.code, 0, `${name}: ${d.out.slice(-2000)}`);
    assert.match(d.out, /relay-finished ok=true/);
  }
  const m = await master.done;
  assert.equal(m.code, 0, m.out.slice(-3000));
  const lines = m.out.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
  const fin = lines.find((l) => l.event === 'finished')!;
  assert.equal(fin.ok, true);
  assert.equal(fin.clients, pcs.length);
  assert.equal(fin.verified, pcs.length);
  // The tree, as the master's JSON lines show it: r2 under r1, each with its LAN and its PCs.
  const rows = lines.filter((l) => l.event === 'relay');
  for (const [i, [name]] of relays.entries()) {
    const up = i === 0 ? 'master' : `r${i}`;
    assert.ok(rows.some((l) => l.relay === name && l.depth === i + 1 && l.lan === c.network(i + 1) && l.upstream === up), `${name} under ${up}: ${JSON.stringify(rows.slice(-4))}`);
  }
  const lans = lines.filter((l) => l.event === 'lan');
  for (let i = 0; i < n; i++) {
    const [lan, via] = [c.network(i), i === 0 ? 'master' : `r${i}`];
    assert.ok(lans.some((l) => l.lan === lan && l.via === via), `no per-LAN row for ${lan} via ${via}: ${JSON.stringify(lans.slice(-3))}`);
  }
  // Every PC behind a relay is in the master's summary, with the relay that served it.
  for (const [i, lan] of CHAIN[n]!.entries()) for (const pc of lan.slice(1)) {
    if (i === 0) continue;
    assert.ok(lines.some((l) => l.event === 'summary' && l.client === pc && l.via === lan[0] && l.result === 'verified'), `${pc} is not in the master's summary as verified via ${lan[0]}`);
  }
});

test('a relay tree with one branch at a tenth of the rate: the ring fills, back-pressure reaches the master, nothing is lost, memory stays bounded', { skip, timeout: 300_000 }, async () => {
  // r1 feeds r2 (fast) and r3 (slow, its LAN's downstream from the router shaped to a tenth).
  const c = newCampus([['m'], ['r1', 'b1'], ['r2', 'd1'], ['r3', 'e1']]);
  for (const lan of [1, 2]) c.setRouterRate(lan, 200);
  c.setRouterRate(3, 20);
  const img = image('tree.img', 48, 5);
  const master = must(['master', img.path, '--iface', 'eth0', '--min-clients', '1', '--json'], { wrap: c.wrap('m') });
  await waitFor(master, /"event":"serving"/);
  const relay = (name: string, up: string): Run => must(['relay', '--upstream', c.address(up), '--iface', 'eth0', '--name', name, '--min-clients', '1', '--buffer', '16', '--rate', '200', '--json'], { wrap: c.wrap(name) });
  const rs = new Map([['r1', relay('r1', 'm')], ['r2', relay('r2', 'r1')], ['r3', relay('r3', 'r1')]]);
  const runs = new Map(['b1', 'd1', 'e1'].map((h) => [h, client(c, h)] as const));
  // While it runs: how far r1 is ahead of its slow branch, from the master's view of the tree.
  let maxGap = 0, sampled = 0;
  const watch = setInterval(() => {
    const rows = master.output().split('\n').filter((l) => l.includes('"event":"relay"')).slice(-6).map((l) => JSON.parse(l) as { relay: string; received: number });
    const r1 = rows.findLast((r) => r.relay === 'r1'), r3 = rows.findLast((r) => r.relay === 'r3');
    if (r1 && r3) { maxGap = Math.max(maxGap, r1.received - r3.received); sampled++; }
  }, 1000);
  try {
    await allVerified(runs, img.digest);
    const done = new Map<string, Record<string, unknown>>();
    for (const [name, r] of rs) {
      const d = await r.done;
      assert.equal(d.code, 0, `${name}: ${d.out.slice(-2000)}`);
      done.set(name, JSON.parse(d.out.split('\n').find((l) => l.includes('"event":"relay-finished"'))!) as Record<string, unknown>);
    }
    const m = await master.done;
    assert.equal(m.code, 0, m.out.slice(-3000));
    const r1 = done.get('r1')!;
    console.log(`# tree: r1 ring ${Number(r1.buffer) / MIB} MiB, peak held ${Number(r1.peak) / MIB} MiB, upstream paused ${r1.paused} times for ${r1.pausedSeconds} s,`
      + ` r1 ahead of r3 by at most ${(maxGap / MIB).toFixed(1)} MiB (${sampled} samples), peak RSS r1 ${(Number(r1.rssPeak) / MIB).toFixed(0)} MiB,`
      + ` r2 ${(Number(done.get('r2')!.rssPeak) / MIB).toFixed(0)} MiB, r3 ${(Number(done.get('r3')!.rssPeak) / MIB).toFixed(0)} MiB`);
    // The slow branch held r1's ring full, and r1 stopped reading from the master (TCP back-pressure).
    assert.equal(r1.peak, r1.buffer, 'r1\'s ring never filled');
    assert.ok(Number(r1.paused) >= 1 && Number(r1.pausedSeconds) > 5, `r1 did not hold back its upstream: paused ${r1.paused} times, ${r1.pausedSeconds} s`);
    // r1 runs ahead of its slowest branch by its ring and what the sockets hold, not by the image.
    assert.ok(sampled >= 3 && maxGap <= 16 * MIB + 12 * MIB, `r1 was ${maxGap} bytes ahead of r3`);
    // Nothing lost: nothing had to be fetched again because the ring dropped it.
    for (const [name, d] of done) assert.equal(d.fetched, 0, `${name} had to fetch ${d.fetched} bytes the ring lost`);
    for (const [name, d] of done) assert.ok(Number(d.rssPeak) < 400 * MIB, `${name} peaked at ${d.rssPeak} bytes`);
  } finally {
    clearInterval(watch);
  }
});

test('a relay dies mid-transfer and is started again: the relay below resumes from what it has, every client verified', { skip, timeout: 300_000 }, async () => {
  const c = newCampus([['m'], ['r1', 'b1'], ['r2', 'd1']]);
  c.setRouterRate(1, 60);
  c.setRouterRate(2, 60);
  const img = image('restart.img', 32, 6);
  const master = must(['master', img.path, '--iface', 'eth0', '--min-clients', '1'], { wrap: c.wrap('m') });
  await waitFor(master, /master serving/);
  const relay = (name: string, up: string): Run => must(['relay', '--upstream', c.address(up), '--iface', 'eth0', '--name', name, '--min-clients', '1', '--buffer', '16', '--rate', '60'], { wrap: c.wrap(name) });
  let r1 = relay('r1', 'm');
  const r2 = relay('r2', 'r1');
  const runs = new Map(['b1', 'd1'].map((h) => [h, client(c, h)] as const));
  // Kill r1 once r2's LAN is part way through.
  await waitFor(runs.get('d1')!, /progress phase=receiving percent=([2-6]\d)/, 120_000);
  r1.child.kill('SIGKILL');
  await r1.done;
  await sleep(2000);
  r1 = relay('r1', 'm');
  await allVerified(runs, img.digest);
  const d2 = await r2.done;
  assert.equal(d2.code, 0, d2.out.slice(-2000));
  assert.match(d2.out, /WARN upstream-lost upstream=\S+ at=(\d+)/, 'r2 never noticed its upstream go');
  const at = Number(/upstream-lost upstream=\S+ at=(\d+)/.exec(d2.out)![1]);
  assert.ok(at > 0, 'r2 had received nothing before r1 died');
  const d1 = await r1.done;
  assert.equal(d1.code, 0, d1.out.slice(-2000));
  const b1 = await runs.get('b1')!.done;
  // r1's own PC followed the restarted relay's new session, keeping what it had.
  assert.match(b1.out, /client\/b1 verified/);
  const m = await master.done;
  assert.equal(m.code, 0, m.out.slice(-3000));
  console.log(`# relay restart: r2 had ${(at / MIB).toFixed(1)} MiB when r1 died and resumed from there`);
});

test('a transit relay (no session on its own LAN) passes the session on to the relay below it', { skip, timeout: 180_000 }, async () => {
  const c = newCampus([['m'], ['t'], ['r', 'd1']]);
  const img = image('transit.img', 8, 7);
  const master = must(['master', img.path, '--iface', 'eth0', '--min-clients', '1', '--rate', '100'], { wrap: c.wrap('m') });
  await waitFor(master, /master serving/);
  const t = must(['relay', '--upstream', c.address('m'), '--iface', 'eth0', '--name', 't', '--transit'], { wrap: c.wrap('t') });
  const r = must(['relay', '--upstream', c.address('t'), '--iface', 'eth0', '--name', 'r', '--min-clients', '1', '--rate', '100'], { wrap: c.wrap('r') });
  await allVerified(new Map([['d1', client(c, 'd1')]]), img.digest);
  for (const [name, run] of [['t', t], ['r', r], ['master', master]] as const) {
    const d = await run.done;
    assert.equal(d.code, 0, `${name}: ${d.out.slice(-2000)}`);
  }
  assert.match((await t.done).out, /relay-finished ok=true .*relays=1/);
  assert.match((await master.done).out, /finished ok=true clients=1 verified=1 relays=1/);
});
