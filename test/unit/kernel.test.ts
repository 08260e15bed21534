import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CmdlineError, parseCmdline, tokenize } from '../../src/cli/kernel.ts';

test('tokenize like the kernel: spaces separate, quotes group', () => {
  assert.deepEqual(tokenize(' a=1  b="x y" "c d"=e f\n'), ['a=1', 'b=x y', 'c d=e', 'f']);
  assert.deepEqual(tokenize(''), []);
});

test('a client line from the PXE menu', () => {
  const s = parseCmdline('BOOT_IMAGE=/vmlinuz initrd=initrd.zst console=ttyS0 quiet must.mode=client must.server=10.0.0.1 must.group=239.1.2.3 must.port=7800 must.disk=auto must.auto=1 must.after=poweroff');
  assert.equal(s.mode, 'client');
  assert.equal(s.server, '10.0.0.1');
  assert.equal(s.group, '239.1.2.3');
  assert.equal(s.port, 7800);
  assert.equal(s.disk, 'auto');
  assert.equal(s.auto, true);
  assert.equal(s.after, 'poweroff');
  assert.equal(s.other.get('console'), 'ttyS0');
  assert.equal(s.other.has('quiet'), true);
});

test('defaults: the menu, reboot after, attended', () => {
  const s = parseCmdline('root=/dev/ram0');
  assert.equal(s.mode, 'menu');
  assert.equal(s.after, 'reboot');
  assert.equal(s.auto, false);
  assert.equal(s.disk, undefined);
});

test('mistakes are refused with the setting named', () => {
  assert.throws(() => parseCmdline('must.mode=cleint'), (e: Error) => e instanceof CmdlineError && /must.mode=cleint/.test(e.message));
  assert.throws(() => parseCmdline('must.after=sleep'), /must.after=sleep/);
  assert.throws(() => parseCmdline('must.port=0'), /must.port=0/);
  assert.throws(() => parseCmdline('must.dsik=auto'), /unknown setting must.dsik/);
  assert.throws(() => parseCmdline('must.mode=client must.auto=1'), /explicit disk rule/);
});
