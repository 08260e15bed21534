// Two builds of the appliance from the same inputs give the same bytes.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { sha256 } from '../net/helpers.ts';
import { isRoot } from '../net/netns.ts';
import { APPLIANCE, applianceBuilt } from './qemu.ts';

const skip = !isRoot() ? 'the build installs Debian packages (root)' : !applianceBuilt() ? 'no first build to compare with' : false;

function digests(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string, rel: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (e.isDirectory()) walk(join(d, e.name), `${rel}${e.name}/`);
      else out[`${rel}${e.name}`] = sha256(readFileSync(join(d, e.name)));
    }
  };
  walk(dir, '');
  return out;
}

test('a second build is byte-identical: initramfs, kernel, executable, PXE tree, ISO', { skip, timeout: 600_000 }, () => {
  const second = mkdtempSync(join(tmpdir(), 'must-rebuild-'));
  try {
    execFileSync(join(import.meta.dirname, '../../scripts/build-appliance'), [], { env: { ...process.env, MUST_APPLIANCE_OUT: second }, stdio: 'ignore' });
    const a = digests(APPLIANCE), b = digests(second);
    assert.deepEqual(Object.keys(b).sort(), Object.keys(a).sort());
    for (const f of Object.keys(a)) assert.equal(b[f], a[f], `${f} differs between two builds`);
  } finally {
    rmSync(second, { recursive: true, force: true });
  }
});
