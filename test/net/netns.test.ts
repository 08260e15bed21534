// A master and three clients, each in its own network namespace on a bridge, with
// random loss by nftables at every host: 0%, 5% and 20%, default and classic mode.

import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { sampleDisk } from '../../src/demo/sample.ts';
import { freePort, must, sha256, sha256File } from './helpers.ts';
import { type NetLab, createLab, isRoot } from './netns.ts';

const skip = isRoot() ? false : 'network namespaces need root';
let lab: NetLab;
let dir = '';
const CLIENTS = ['c1', 'c2', 'c3'];

before(async () => {
  if (skip) return;
  dir = await mkdtemp(join(tmpdir(), 'must-netns-'));
  lab = createLab('mustt', ['m', ...CLIENTS]);
});
after(async () => {
  lab?.destroy();
  if (dir) await rm(dir, { recursive: true, force: true });
});

for (const [protocol, mib] of [['default', 24], ['classic', 0.5]] as const) {
  for (const loss of [0, 5, 20]) {
    test(`${protocol} mode, ${loss}% loss at every host: 3 clients byte-identical`, { skip }, async () => {
      const bytes = sampleDisk(mib * (1 << 20), 11 + loss);
      const img = join(dir, `${protocol}-${loss}.img`);
      await writeFile(img, bytes);
      for (const h of lab.hosts) lab.setLoss(h, loss);
      const port = String(freePort());
      const master = must(['master', '--image', img, '--min-clients', '3', '--protocol', protocol, '--iface', 'eth0', '--port', port], { wrap: lab.wrap('m') });
      const targets = CLIENTS.map((c) => join(dir, `${protocol}-${loss}-${c}.img`));
      const clients = CLIENTS.map((c, i) => must(['client', '--target', targets[i]!, '--yes', '--name', c, '--iface', 'eth0', '--port', port], { wrap: lab.wrap(c) }));
      for (const [i, r] of (await Promise.all(clients.map((c) => c.done))).entries()) assert.equal(r.code, 0, `${CLIENTS[i]}: ${r.out.slice(-2500)}`);
      const m = await master.done;
      assert.equal(m.code, 0, m.out.slice(-2500));
      assert.match(m.out, /finished ok=true clients=3 verified=3/);
      const want = sha256(bytes);
      for (const t of targets) assert.equal(await sha256File(t), want, `${t} differs`);
      for (const c of CLIENTS) {
        assert.match(m.out, new RegExp(`ip=${lab.address(c).replaceAll('.', '\\.')}`), `master never saw ${c} at its own address`);
        if (loss > 0) assert.ok(lab.dropped(c) > 0, `nftables dropped nothing at ${c}`);
      }
    });
  }
}

test('an --mtu above the interface\'s own is refused, naming the interface and its MTU (the kernel would fragment every datagram)', { skip }, async () => {
  const img = join(dir, 'mtu.img');
  await writeFile(img, sampleDisk(1 << 20, 3));
  const r = await must(['master', '--image', img, '--min-clients', '1', '--iface', 'eth0', '--port', String(freePort()), '--mtu', '9000'], { wrap: lab.wrap('m') }).done;
  assert.equal(r.code, 2, r.out);
  assert.match(r.out, /--mtu 9000 is above eth0's MTU of 1500/);
  assert.doesNotMatch(r.out, /hashing/, 'the image was hashed before --mtu was checked');
});

/** Datagrams the kernel of `host` has cut into fragments so far (Ip: FragCreates of /proc/net/snmp). */
function fragmentsMade(host: string): number {
  const [names, values] = execFileSync(lab.wrap(host)[0]!, [...lab.wrap(host).slice(1), 'cat', '/proc/net/snmp'], { encoding: 'utf8' }).split('\n').filter((l) => l.startsWith('Ip:'));
  const i = names!.split(/\s+/).indexOf('FragCreates');
  assert.ok(i > 0, 'no FragCreates in /proc/net/snmp');
  return Number(values!.split(/\s+/)[i]);
}

test('without --mtu, datagrams fit an interface MTU below 1500: no fragments, clients byte-identical', { skip }, async () => {
  const hosts = ['m', 'c1'];
  for (const h of hosts) lab.setMtu(h, 1400);
  try {
    const bytes = sampleDisk(4 << 20, 7);
    const img = join(dir, 'mtu1400.img');
    await writeFile(img, bytes);
    const target = join(dir, 'mtu1400-c1.img');
    const before = fragmentsMade('m');
    const port = String(freePort());
    const master = must(['master', '--image', img, '--min-clients', '1', '--iface', 'eth0', '--port', port], { wrap: lab.wrap('m') });
    const client = must(['client', '--target', target, '--yes', '--name', 'c1', '--iface', 'eth0', '--port', port], { wrap: lab.wrap('c1') });
    const c = await client.done;
    assert.equal(c.code, 0, c.out.slice(-2500));
    const m = await master.done;
    assert.equal(m.code, 0, m.out.slice(-2500));
    assert.equal(await sha256File(target), sha256(bytes));
    assert.equal(fragmentsMade('m'), before, 'the master\'s kernel fragmented datagrams');
  } finally {
    for (const h of hosts) lab.setMtu(h, 1500);
  }
});
