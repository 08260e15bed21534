// A rogue host on the lab network (test/net/rogue.ts) floods the session with forged data,
// AUTH, ANNOUNCEs, DROPs, ACKs, repair requests, and replays of another session: a host of
// its own on the lab's LAN (network namespaces on a bridge). The signatures keep its data and
// control messages off the disks; the master refuses feedback naming a client from another
// address, and both sides count what they refused.

import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { sampleDisk } from '../../src/demo/sample.ts';
import { fingerprint, parseTrust } from '../../src/protocol/auth.ts';
import { freePort, must, sha256, waitFor } from './helpers.ts';
import { type NetLab, createLab, isRoot } from './netns.ts';

const dir = mkdtempSync(join(tmpdir(), 'must-trust-'));
const rogues: ChildProcess[] = [];
let lab: NetLab | undefined;
after(() => { for (const r of rogues) r.kill('SIGKILL'); lab?.destroy(); rmSync(dir, { recursive: true, force: true }); });

const ROGUE = join(import.meta.dirname, 'rogue.ts');
function rogue(args: string[], wrap: string[] = []): Promise<{ sent: Record<string, number>; recorded: number; clients: number }> {
  const argv = [...wrap, process.execPath, '--disable-warning=ExperimentalWarning', ROGUE, ...args];
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'inherit'] });
  rogues.push(child);
  let out = '';
  child.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
  return new Promise((resolve, reject) => child.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out.trim().split('\n').pop()!)) : reject(new Error(`rogue exited ${code}: ${out}`)))));
}

/** Drop counts from a client's final line ("rejected=forged:12,unvouched:3"). */
const drops = (out: string, line = /(?:verified|failed) client=.* rejected=(\S+)/): Record<string, number> => {
  const m = line.exec(out);
  return Object.fromEntries((m?.[1] ?? '').split(',').filter(Boolean).map((kv) => { const [k, v] = kv.split(':'); return [k!, Number(v)]; }));
};
const verifyFailures = (out: string): number => Number(/(?:verified|failed) client=.* verifyFailures=(\d+)/.exec(out)?.[1] ?? NaN);

const image = join(dir, 'lab.img');
const bytes = sampleDisk(16 << 20, 21);
writeFileSync(image, bytes);
const digest = sha256(bytes);

function keygen(name: string): string {
  execFileSync(process.execPath, ['--disable-warning=ExperimentalWarning', join(import.meta.dirname, '../../src/main.ts'), 'keygen', '-o', join(dir, name)]);
  return join(dir, name);
}

test('signed session under a rogue flood from a host on the LAN: zero forged bytes reach a disk, every client ends verified, the rogue is counted on both sides', { skip: isRoot() ? false : 'needs root (network namespaces)', timeout: 240_000 }, async () => {
  const key = keygen('master.key'), rogueKey = keygen('rogue.key');
  lab = createLab('mustr', ['m', 'a', 'b', 'rogue']);
  const on = (h: string): { wrap: string[] } => ({ wrap: lab!.wrap(h) });
  const net = (p: number): string[] => ['--iface', 'eth0', '--port', String(p)];
  // The rogue also sends from the master's address, added to its interface: it never answers or asks
  // ARP with it (poisoning the clients' ARP caches is another attack), and still takes the master's
  // datagrams in.
  execFileSync(lab.wrap('rogue')[0]!, [...lab.wrap('rogue').slice(1), 'sysctl', '-qw', 'net.ipv4.conf.eth0.arp_ignore=8', 'net.ipv4.conf.eth0.arp_announce=2', 'net.ipv4.conf.eth0.accept_local=1']);
  execFileSync(lab.wrap('rogue')[0]!, [...lab.wrap('rogue').slice(1), 'ip', 'addr', 'add', `${lab.address('m')}/32`, 'dev', 'eth0']);
  const rogueAt = (p: number, more: string[]): ReturnType<typeof rogue> =>
    rogue(['--group', '239.255.77.77', '--port', String(p), '--iface', lab!.address('rogue'), '--spoof', lab!.address('m'), ...more], lab!.wrap('rogue'));

  // Another session of the same image, recorded for replay.
  const p1 = freePort();
  const recording = rogueAt(p1, ['--seconds', '8', '--record', join(dir, 'replay.json')]);
  const m1 = must(['master', image, '--key', key, '--min-clients', '1', '--rate', '200', ...net(p1)], on('m'));
  const c1 = await must(['client', '--target', join(dir, 'first.img'), '--yes', '--trust', `${key}.pub`, ...net(p1)], on('a')).done;
  assert.equal(c1.code, 0, c1.out.slice(-1500));
  await m1.done;
  assert.ok((await recording).recorded > 100);

  // The session under attack: throttled so the flood overlaps the whole transfer.
  const p2 = freePort();
  const master = must(['master', image, '--key', key, '--min-clients', '2', '--rate', '40', ...net(p2)], on('m'));
  const flood = rogueAt(p2, ['--seconds', '12', '--rate', '3000', '--replay', join(dir, 'replay.json'), '--key', rogueKey]);
  const clients = ['a', 'b'].map((n) => must(['client', '--target', join(dir, `${n}.img`), '--yes', '--name', n, '--trust', `${key}.pub`, ...net(p2)], on(n)));
  await waitFor(master, /phase phase=transfer/, 30_000);
  const results = await Promise.all(clients.map((c) => c.done));
  const sent = (await flood).sent;
  const m = await master.done;
  for (const [i, r] of results.entries()) {
    assert.equal(r.code, 0, r.out.slice(-2500));
    assert.equal(sha256(readFileSync(join(dir, `${'ab'[i]}.img`))), digest, `client ${i} disk differs`);
    // A forged byte written to a stored chunk would have failed its check: none did.
    assert.equal(verifyFailures(r.out), 0, r.out.slice(-1500));
    // From its own address it is refused by source; from the master's, by the signatures.
    const d = drops(r.out);
    assert.ok((d.source ?? 0) > 0 && (d.forged ?? 0) > 0 && (d.unsigned ?? 0) + (d.key ?? 0) > 0, `client ${i} counted ${JSON.stringify(d)} against ${JSON.stringify(sent)}`);
  }
  assert.equal(m.code, 0, m.out.slice(-2000));
  for (const k of ['data', 'auth', 'announce', 'ack', 'repair-request', 'replay']) assert.ok((sent[k] ?? 0) > 100, `the rogue sent too little ${k}: ${JSON.stringify(sent)}`);
  // The master refused the forged feedback: ACKs and repair requests naming the real clients from
  // the rogue's address, and those naming nobody it knows.
  const md = drops(m.out, / finished .*rejected=(\S+)/);
  assert.ok((md.address ?? 0) > 0 && (md.unknown ?? 0) > 0, `the master counted ${JSON.stringify(md)} against ${JSON.stringify(sent)}`);
  console.log(`# rogue sent ${JSON.stringify(sent)}; clients refused ${results.map((r) => JSON.stringify(drops(r.out))).join(' and ')}; the master refused ${JSON.stringify(md)}`);
});

test('the same forged data against an unsigned session does reach the disk (only the chunk check catches it): why sessions are signed', { timeout: 120_000 }, async () => {
  const p = freePort();
  const lo = ['--iface', '127.0.0.1', '--port', String(p)];
  const master = must(['master', image, '--min-clients', '1', '--rate', '40', ...lo]);
  const flood = rogue(['--group', '239.255.77.77', '--port', String(p), '--seconds', '6', '--rate', '3000', '--only', 'data']);
  const client = must(['client', '--target', join(dir, 'plain.img'), '--yes', ...lo]);
  try {
    await waitFor(client, /auth="none \(unauthenticated/, 30_000);
    // Forged bytes were written, then refused when their chunk did not match the manifest.
    await waitFor(client, /chunk-refused chunk=\d+ reason="stream digest mismatch"/, 60_000);
  } finally {
    client.child.kill('SIGKILL');
    master.child.kill('SIGKILL');
    await flood;
  }
});

test('a sealed session: the image is on the wire only encrypted; a client without the secret refuses, saying why', { timeout: 120_000 }, async () => {
  const marker = 'LAB-LICENCE-KEY-7Q2X';
  const secretImage = join(dir, 'secret.img');
  writeFileSync(secretImage, Buffer.concat([Buffer.from(marker.repeat(4000)), Buffer.alloc(1 << 20)]));
  const secret = join(dir, 'lab.secret');
  execFileSync(process.execPath, ['--disable-warning=ExperimentalWarning', join(import.meta.dirname, '../../src/main.ts'), 'keygen', '--secret', '-o', secret]);
  const sniff = async (sealed: boolean, clientArgs: string[]): Promise<{ wire: string; target: string; client: { code: number; out: string }; master: { code: number; out: string } }> => {
    const p = freePort();
    const lo = ['--iface', '127.0.0.1', '--port', String(p)];
    const file = join(dir, `sniff-${p}.json`);
    const recording = rogue(['--group', '239.255.77.77', '--port', String(p), '--seconds', '6', '--record', file]);
    const master = must(['master', secretImage, '--min-clients', '1', ...(sealed ? ['--secret', secret] : []), ...lo]);
    const target = join(dir, `sniffed-${p}.img`);
    const client = await must(['client', '--target', target, '--yes', ...clientArgs, ...lo]).done;
    const m = await master.done;
    await recording;
    const wire = (JSON.parse(readFileSync(file, 'utf8')) as Array<{ hex: string }>).map((r) => Buffer.from(r.hex, 'hex').toString('latin1')).join('\n');
    return { wire, target, client, master: m };
  };
  const clear = await sniff(false, []);
  assert.equal(clear.client.code, 0);
  assert.ok(clear.wire.includes(marker), 'the sniffer saw nothing of a session in the clear: it is not listening');
  const sealed = await sniff(true, ['--secret', secret]);
  assert.equal(sealed.client.code, 0, sealed.client.out.slice(-1500));
  assert.equal(sha256(readFileSync(sealed.target)), sha256(readFileSync(secretImage)));
  assert.match(sealed.client.out, /sealed=AES-256-GCM/);
  assert.ok(!sealed.wire.includes(marker), 'the image crossed the wire readable in a sealed session');
  const locked = await sniff(true, []);
  assert.equal(locked.client.code, 1);
  assert.match(locked.client.out, /the session is sealed \(encrypted\) and this client holds no secret/);
  assert.match(locked.master.out, /WARN failed client=\S+ .*reason="the session is sealed/);
});

test('trust on first use: a client given no key follows a signed master, shows its key\'s fingerprint, and ends verified', { timeout: 120_000 }, async () => {
  const key = keygen('tofu.key');
  const pub = readFileSync(`${key}.pub`, 'utf8').trim();
  const p = freePort();
  const lo = ['--iface', '127.0.0.1', '--port', String(p)];
  const master = must(['master', image, '--key', key, '--min-clients', '1', ...lo]);
  const c = await must(['client', '--target', join(dir, 'tofu.img'), '--yes', ...lo]).done;
  assert.equal(c.code, 0, c.out.slice(-1500));
  assert.equal((await master.done).code, 0);
  assert.equal(sha256(readFileSync(join(dir, 'tofu.img'))), digest);
  const shown = /found .*auth="?first-use key=([\w:]+)/.exec(c.out)?.[1];
  assert.ok(shown, c.out.slice(0, 1500));
  assert.equal(shown, fingerprint(parseTrust(pub).publicKey), 'the fingerprint on screen is not the master\'s key');
});
