// The initramfs: busybox, the MUST single executable, the glibc pieces they need, the
// drivers listed in image/modules.txt with their dependencies, and the few files of
// initramfs/. A reproducible cpio, compressed with zstd by Node's own zlib.

import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, readFileSync, realpathSync, rmSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { constants, zstdCompressSync } from 'node:zlib';
import { type CpioEntry, writeCpio } from './cpio.ts';
import type { Kernel } from './kernel.ts';

export interface InitramfsInputs {
  root: string;
  kernel: Kernel;
  must: string;
  hostFiles: string[];
  modulesFile: string;
  epoch: number;
  zstdLevel: number;
  staging: string;
}

const run = (cmd: string, args: string[]): string => execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

/** Shared libraries an ELF file loads (as ldd resolves them on this host), interpreter included. */
export function sharedLibraries(elf: string): string[] {
  const out = run('ldd', [elf]);
  const libs = new Set<string>();
  for (const line of out.split('\n')) {
    const m = /=>\s+(\/\S+)/.exec(line) ?? /^\s*(\/\S+)\s+\(/.exec(line);
    if (m) libs.add(m[1]!);
  }
  return [...libs].sort();
}

/** Modules to ship: the listed ones and everything modules.dep says they need. */
export function resolveModules(names: string[], modulesDep: string): { files: string[]; missing: string[] } {
  const deps = new Map<string, string[]>();
  const byName = new Map<string, string>();
  for (const line of modulesDep.split('\n')) {
    const [file, rest] = line.split(':');
    if (!file || rest === undefined) continue;
    deps.set(file, rest.trim().split(/\s+/).filter(Boolean));
    byName.set(file.split('/').pop()!.replace(/\.ko(\.(xz|zst|gz))?$/, '').replaceAll('-', '_'), file);
  }
  const want = new Set<string>();
  const missing: string[] = [];
  const add = (f: string): void => { if (want.has(f)) return; want.add(f); for (const d of deps.get(f) ?? []) add(d); };
  for (const n of names) {
    const f = byName.get(n.replaceAll('-', '_'));
    if (f) add(f); else missing.push(n);
  }
  return { files: [...want].sort(), missing };
}

export function readModuleList(path: string): string[] {
  return readFileSync(path, 'utf8').split('\n').map((l) => l.replace(/#.*/, '').trim()).filter(Boolean);
}

export function buildInitramfs(o: InitramfsInputs, log: (s: string) => void): { zst: Uint8Array; cpioBytes: number; entries: number; libs: Set<string> } {
  const entries: CpioEntry[] = [];
  const dirs = new Set<string>();
  const dir = (p: string): void => {
    for (let d = p; d !== '/' && d !== '.' && !dirs.has(d); d = dirname(d)) { dirs.add(d); entries.push({ path: d, type: 'dir', mode: 0o755 }); }
  };
  const file = (path: string, data: Uint8Array, mode: number): void => { dir(dirname(path)); entries.push({ path, type: 'file', mode, data }); };
  const link = (path: string, target: string): void => { dir(dirname(path)); entries.push({ path, type: 'symlink', mode: 0o777, target }); };

  for (const d of ['/dev', '/proc', '/sys', '/run', '/tmp', '/mnt', '/root', '/etc', '/var']) dir(d);
  link('/sbin', 'bin');
  link('/usr/bin', '../bin');
  link('/usr/sbin', '../bin');
  const fromRepo = (p: string): Uint8Array => readFileSync(join(o.root, p));
  file('/init', fromRepo('initramfs/init'), 0o755);
  file('/etc/udhcpc.script', fromRepo('initramfs/udhcpc.script'), 0o755);
  file('/etc/passwd', fromRepo('initramfs/etc-passwd'), 0o644);
  file('/etc/group', fromRepo('initramfs/etc-group'), 0o644);

  // busybox and a link for each of its applets.
  file('/bin/busybox', readFileSync('/bin/busybox'), 0o755);
  // A host program of the same name (util-linux's sfdisk, losetup, blkid) replaces the applet.
  const hostNames = new Set(o.hostFiles.map((f) => f.split('/').pop()!));
  for (const applet of run('/bin/busybox', ['--list']).split('\n').filter(Boolean).sort()) {
    if (applet !== 'busybox' && !hostNames.has(applet)) link(`/bin/${applet}`, 'busybox');
  }
  // partclone and util-linux look for mounted filesystems in /etc/mtab.
  link('/etc/mtab', '../proc/self/mounts');
  file('/bin/must', readFileSync(o.must), 0o755);

  // Other host programs (dnsmasq for master mode) and every shared library anything needs.
  const libs = new Set<string>(sharedLibraries(o.must));
  for (const f of o.hostFiles.filter((f) => f !== '/bin/busybox')) {
    file(`/bin/${f.split('/').pop()}`, readFileSync(f), 0o755);
    for (const l of sharedLibraries(f)) libs.add(l);
  }
  for (const l of [...libs].sort()) file(l, readFileSync(realpathSync(l)), 0o755);

  // Drivers: listed modules and their dependencies, re-indexed by depmod for this subset.
  const rel = o.kernel.release;
  const src = join(o.kernel.root, 'lib/modules', rel);
  const { files, missing } = resolveModules(readModuleList(join(o.root, o.modulesFile)), readFileSync(join(src, 'modules.dep'), 'utf8'));
  const builtin = new Set(readFileSync(join(src, 'modules.builtin'), 'utf8').split('\n').map((l) => l.split('/').pop()!.replace(/\.ko$/, '').replaceAll('-', '_')));
  const stage = join(o.staging, 'lib/modules', rel);
  rmSync(o.staging, { recursive: true, force: true });
  mkdirSync(stage, { recursive: true });
  for (const f of files) { mkdirSync(dirname(join(stage, f)), { recursive: true }); cpSync(join(src, f), join(stage, f)); }
  for (const f of ['modules.builtin', 'modules.builtin.modinfo', 'modules.order']) cpSync(join(src, f), join(stage, f));
  run('depmod', ['-b', o.staging, rel]);
  const walk = (d: string): void => {
    for (const name of readdirSync(d).sort()) {
      const p = join(d, name);
      const target = `/${relative(o.staging, p)}`;
      if (statSync(p).isDirectory()) { dir(target); walk(p); } else file(target, readFileSync(p), 0o644);
    }
  };
  walk(join(o.staging, 'lib'));
  const unknown = missing.filter((m) => !builtin.has(m.replaceAll('-', '_')));
  // A name that is neither a module nor built in is a typo or a driver this kernel lacks: say so.
  if (unknown.length > 0) throw new Error(`${o.modulesFile} names modules kernel ${rel} has neither as a module nor built in: ${unknown.join(', ')}`);
  log(`initramfs: ${files.length} modules (${missing.length} listed ones are built into the kernel: ${missing.join(', ')})`);

  const cpio = writeCpio(entries, o.epoch);
  log(`initramfs: ${entries.length} entries, ${(cpio.length / 2 ** 20).toFixed(1)} MiB; compressing (zstd ${o.zstdLevel})`);
  const zst = zstdCompressSync(cpio, { params: { [constants.ZSTD_c_compressionLevel]: o.zstdLevel, [constants.ZSTD_c_nbWorkers]: 2, [constants.ZSTD_c_checksumFlag]: 1 } });
  return { zst, cpioBytes: cpio.length, entries: entries.length, libs };
}

/**
 * Programs for the boot medium's tools/: into `dir`/bin, and into `dir`/lib the shared
 * libraries they need that the initramfs (whose loader and libc they run on) does not have.
 */
export function stageMediumTools(programs: string[], initramfsLibs: Set<string>, dir: string): string[] {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(join(dir, 'bin'), { recursive: true });
  mkdirSync(join(dir, 'lib'), { recursive: true });
  const extra = new Set<string>();
  for (const p of programs) {
    cpSync(p, join(dir, 'bin', p.split('/').pop()!));
    for (const l of sharedLibraries(p)) if (!initramfsLibs.has(l)) extra.add(l);
  }
  for (const l of [...extra].sort()) cpSync(realpathSync(l), join(dir, 'lib', l.split('/').pop()!));
  return [...extra].sort();
}
