// The master's boot side without a network: policy decisions, iPXE scripts, dnsmasq's
// configuration and log, and the HTTP server answering per MAC.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { dnsmasqConfig, parseLease } from '../../src/boot/dnsmasq.ts';
import { macFromPath, startBootHttp } from '../../src/boot/http.ts';
import { LabPolicy, chainScript, ipxeScript } from '../../src/boot/policy.ts';
import { Records } from '../../src/boot/records.ts';

test('policy: new PCs per setting, verified PCs boot their disk, a new image images them again', () => {
  const dir = mkdtempSync(join(tmpdir(), 'must-policy-'));
  try {
    const records = new Records(join(dir, 'r.json'));
    records.update('52:54:00:00:00:01', { result: 'verified', digest: 'aaa' });
    records.update('52:54:00:00:00:02', { result: 'imaging' });
    records.update('52:54:00:00:00:03', { result: 'verified', digest: 'old' });
    const p = new LabPolicy({ records, digest: 'aaa', unknown: 'image' });
    assert.equal(p.decide('52:54:00:00:00:01').kind, 'local');
    assert.equal(p.decide('52:54:00:00:00:02').kind, 'image');
    assert.match(p.decide('52:54:00:00:00:03').why, /older image/);
    assert.equal(p.decide('52:54:00:00:00:99').kind, 'image');
    assert.equal(new LabPolicy({ records, digest: 'aaa', unknown: 'local' }).decide('52:54:00:00:00:99').kind, 'local');
    // A boot of an unknown PC does not put it on the list (with unknown=local it would be imaged next time).
    records.touch('52:54:00:00:00:99', { ip: '10.0.0.9' });
    assert.equal(records.get('52:54:00:00:00:99'), undefined);
  } finally { rmSync(dir, { recursive: true, force: true }); }
});

test('iPXE scripts: initrd= on the kernel line, local boot fails on UEFI so the firmware moves on', () => {
  const img = ipxeScript({ kind: 'image', why: 'x' }, { base: 'http://10.0.0.1:8080', cmdline: 'quiet must.mode=client' });
  assert.match(img, /^kernel http:\/\/10\.0\.0\.1:8080\/vmlinuz initrd=initrd\.zst quiet must\.mode=client$/m);
  assert.match(img, /^initrd http:\/\/10\.0\.0\.1:8080\/initrd\.zst$/m);
  assert.match(ipxeScript({ kind: 'local', why: 'done' }, { base: '', cmdline: '' }), /^iseq \$\{platform\} efi && exit 1 \|\| exit$/m);
  assert.match(chainScript('http://h:1'), /chain http:\/\/h:1\/ipxe\/\$\{mac:hexhyp\}\?platform=\$\{platform\}/);
});

test('dnsmasq: proxy and range configurations, leases from its log', () => {
  const base = { iface: 'br0', address: '10.0.0.1', tftpRoot: '/t', httpPort: 8080, leaseFile: '/l' };
  const proxy = dnsmasqConfig({ ...base, mode: { kind: 'proxy', subnet: '10.0.0.0' } });
  assert.match(proxy, /^dhcp-range=10\.0\.0\.0,proxy$/m);
  assert.match(proxy, /^pxe-service=tag:!ipxe,X86PC,"MUST \(BIOS\)",undionly\.kpxe$/m);
  assert.match(proxy, /^dhcp-boot=tag:ipxe,http:\/\/10\.0\.0\.1:8080\/boot\.ipxe$/m);
  const range = dnsmasqConfig({ ...base, mode: { kind: 'range', start: '10.0.0.100', end: '10.0.0.199', mask: '255.255.255.0' } });
  assert.match(range, /^dhcp-range=10\.0\.0\.100,10\.0\.0\.199,255\.255\.255\.0,1h$/m);
  assert.match(range, /^dhcp-boot=tag:!ipxe,tag:efi64,ipxe\.efi$/m);
  assert.doesNotMatch(range, /proxy/);
  assert.deepEqual(parseLease('dnsmasq-dhcp[77]: 1234567 DHCPACK(br0) 10.0.0.150 52:54:00:AB:cd:01 pc-7'), { ip: '10.0.0.150', mac: '52:54:00:ab:cd:01', hostname: 'pc-7' });
  assert.equal(parseLease('dnsmasq-dhcp[77]: DHCPOFFER(br0) 10.0.0.150 52:54:00:ab:cd:01'), undefined);
});

test('HTTP: the chain script, a script per MAC, the kernel, and 404 elsewhere', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'must-http-'));
  writeFileSync(join(dir, 'vmlinuz'), 'KERNEL');
  writeFileSync(join(dir, 'initrd.zst'), 'INITRD');
  const boots: string[] = [];
  const h = await startBootHttp({
    address: '127.0.0.1', port: 0, script: { cmdline: 'must.mode=client' }, files: { vmlinuz: join(dir, 'vmlinuz'), initrd: join(dir, 'initrd.zst') },
    policy: { decide: (mac) => (mac.endsWith('01') ? { kind: 'local', why: 'verified' } : { kind: 'image', why: 'new' }) },
    onBoot: (e) => boots.push(`${e.mac} ${e.platform} ${e.decision.kind}`),
  });
  try {
    const port = (h.server.address() as { port: number }).port;
    const get = async (p: string): Promise<[number, string]> => { const r = await fetch(`http://127.0.0.1:${port}${p}`); return [r.status, await r.text()]; };
    assert.match((await get('/boot.ipxe'))[1], /chain http:\/\/127\.0\.0\.1:0\/ipxe\//);
    assert.match((await get('/ipxe/52-54-00-00-00-01?platform=efi'))[1], /exit 1/);
    assert.match((await get('/ipxe/52-54-00-00-00-02?platform=pcbios'))[1], /must\.mode=client/);
    assert.deepEqual(await get('/vmlinuz'), [200, 'KERNEL']);
    assert.equal((await get('/etc/passwd'))[0], 404);
    assert.equal((await get('/ipxe/not-a-mac'))[0], 404);
    assert.deepEqual(boots, ['52:54:00:00:00:01 efi local', '52:54:00:00:00:02 pcbios image']);
    assert.equal(macFromPath('AA-bb-CC-dd-EE-ff'), 'aa:bb:cc:dd:ee:ff');
  } finally {
    await h.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
