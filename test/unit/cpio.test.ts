// The initramfs writer: what it writes, the host's cpio reads back; twice the same bytes.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { type CpioEntry, writeCpio } from '../../scripts/appliance/cpio.ts';

const entries: CpioEntry[] = [
  { path: 'bin', type: 'dir', mode: 0o755 },
  { path: 'bin/sh', type: 'symlink', mode: 0o777, target: 'busybox' },
  { path: 'bin/busybox', type: 'file', mode: 0o755, data: new Uint8Array([1, 2, 3, 4, 5]) },
  { path: 'init', type: 'file', mode: 0o755, data: new TextEncoder().encode('#!/bin/sh\necho hi\n') },
  { path: 'etc', type: 'dir', mode: 0o755 },
  { path: 'etc/empty', type: 'file', mode: 0o600 },
];

test('an archive the system cpio unpacks to the same tree', () => {
  const a = writeCpio(entries, 1_700_000_000);
  const dir = mkdtempSync(join(tmpdir(), 'must-cpio-'));
  try {
    writeFileSync(join(dir, 'a.cpio'), a);
    execFileSync('sh', ['-c', `mkdir out && cd out && busybox cpio -i -d < ../a.cpio`], { cwd: dir, stdio: 'pipe' });
    const out = join(dir, 'out');
    assert.deepEqual([...readFileSync(join(out, 'bin/busybox'))], [1, 2, 3, 4, 5]);
    assert.equal(readlinkSync(join(out, 'bin/sh')), 'busybox');
    assert.equal(readFileSync(join(out, 'init'), 'utf8'), '#!/bin/sh\necho hi\n');
    assert.equal(statSync(join(out, 'init')).mode & 0o777, 0o755);
    assert.equal(statSync(join(out, 'etc/empty')).size, 0);
    const listing = execFileSync('busybox', ['cpio', '-t'], { input: a, encoding: 'utf8', stdio: ['pipe', 'pipe', 'ignore'] }).trim().split('\n');
    assert.deepEqual(listing, ['bin', 'bin/busybox', 'bin/sh', 'etc', 'etc/empty', 'init'], 'entries are not in sorted order');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the same entries in another order give the same bytes', () => {
  assert.deepEqual(writeCpio([...entries].reverse(), 5), writeCpio(entries, 5));
  assert.throws(() => writeCpio([...entries, entries[0]!], 5), /repeated/);
});
