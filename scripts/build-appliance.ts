// Builds the appliance from this repository: the single executable, the initramfs, the
// PXE tree and the hybrid ISO, into out/appliance/. Offline except for Debian's apt
// repositories (the pinned kernel .deb) and the npm registry (already installed).

import { mkdirSync, readFileSync, writeFileSync, copyFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join, resolve } from 'node:path';
import { fetchKernel, type KernelPin } from './appliance/kernel.ts';
import { buildInitramfs, stageMediumTools } from './appliance/initramfs.ts';
import { buildSea } from './appliance/sea.ts';
import { buildPxe } from './appliance/pxe.ts';
import { buildIso } from './appliance/iso.ts';

export interface ApplianceConfig {
  kernel: KernelPin;
  epoch: number;
  volume: string;
  zstdLevel: number;
  hostFiles: string[];
  mediumFiles: string[];
  modulesFile: string;
  cmdline: { serial: string; common: string };
}

const root = resolve(import.meta.dirname, '..');
const cfg = JSON.parse(readFileSync(join(root, 'image/appliance.json'), 'utf8')) as ApplianceConfig;
const out = process.env.MUST_APPLIANCE_OUT ?? join(root, 'out/appliance');
const build = join(root, 'out/build');
const cache = process.env.MUST_CACHE ?? join(root, 'out/cache');
const t0 = performance.now();
const log = (s: string): void => console.log(`[${((performance.now() - t0) / 1000).toFixed(1).padStart(6)} s] ${s}`);
const only = process.argv.slice(2);
const want = (stage: string): boolean => only.length === 0 || only.includes(stage);
mkdirSync(out, { recursive: true });

log('single executable (esbuild + node --build-sea)');
const must = await buildSea(root, build);
copyFileSync(must, join(out, 'must'));

const kernel = fetchKernel(cfg.kernel, cache, log);
copyFileSync(kernel.vmlinuz, join(out, 'vmlinuz'));

if (want('initramfs') || want('pxe') || want('iso')) {
  const r = buildInitramfs({
    root, kernel, must, hostFiles: cfg.hostFiles, modulesFile: cfg.modulesFile, epoch: cfg.epoch, zstdLevel: cfg.zstdLevel,
    staging: join(build, 'modules-staging'),
  }, log);
  writeFileSync(join(out, 'initrd.zst'), r.zst);
  log(`initrd.zst: ${(r.zst.length / 2 ** 20).toFixed(1)} MiB (cpio ${(r.cpioBytes / 2 ** 20).toFixed(1)} MiB)`);
  const libs = stageMediumTools(cfg.mediumFiles, r.libs, join(build, 'tools'));
  log(`medium tools/: ${cfg.mediumFiles.join(', ')} and ${libs.length} libraries the initramfs lacks`);
}
if (want('pxe')) buildPxe({ out, cfg }, log);
if (want('iso')) buildIso({ out, build, cfg }, log);

const sums = ['vmlinuz', 'initrd.zst', 'must', ...(want('iso') ? ['must.iso'] : [])].map((f) =>
  `${createHash('sha256').update(readFileSync(join(out, f))).digest('hex')}  ${f}`);
writeFileSync(join(out, 'SHA256SUMS'), `${sums.join('\n')}\n`);
log(`done: ${out}\n${sums.join('\n')}`);
