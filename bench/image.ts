// Image size and capture time: `must capture` against the anchor tools, on the same
// test disks, in one run. Anchors: partclone.<fs> -c | zstd (what Clonezilla and FOG do),
// and zstd of the whole device. Same zstd level for all. Needs root (loop devices).
//
//   node bench/image.ts [--size MIB] [--level N] [--data MIB]
//
// The disks are made here from files already on this machine (/usr: libraries and
// documentation, a mix of binary and text), so every run measures the same kind of content.

import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

const { values } = parseArgs({ options: { size: { type: 'string', default: '512' }, level: { type: 'string', default: '3' }, data: { type: 'string', default: '200' } } });
const SIZE = Number(values.size) << 20, LEVEL = Number(values.level), DATA = Number(values.data) << 20;
const MAIN = join(import.meta.dirname, '../src/main.ts');
const dir = mkdtempSync(join(tmpdir(), 'must-bench-image-'));

const sh = (cmd: string, args: string[]): string => execFileSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 << 20, stdio: ['ignore', 'pipe', 'pipe'] });
const seconds = (f: () => void): number => { const t = performance.now(); f(); return (performance.now() - t) / 1000; };
const mb = (n: number): string => (n / 2 ** 20).toFixed(1);

/** Copy files from /usr into `to` until `limit` bytes. */
function stage(to: string, limit: number): number {
  let total = 0;
  const walk = (d: string): void => {
    for (const name of readdirSync(d).sort()) {
      if (total >= limit) return;
      const p = join(d, name);
      const st = statSync(p, { throwIfNoEntry: false });
      if (!st) continue;
      if (st.isDirectory()) walk(p);
      else if (st.isFile() && st.size > 0 && st.size < 32 << 20) {
        const rel = p.slice(1).replaceAll('/', '_');
        cpSync(p, join(to, rel));
        total += st.size;
      }
    }
  };
  for (const root of ['/usr/lib/x86_64-linux-gnu', '/usr/share/doc', '/usr/share/locale']) walk(root);
  return total;
}

function makeDisk(fs: string, path: string, staged: string): void {
  writeFileSync(path, '');
  sh('truncate', ['-s', String(SIZE), path]);
  if (fs === 'ext4') sh('mkfs.ext4', ['-q', '-F', '-d', staged, path]);
  if (fs === 'vfat') { sh('mkfs.vfat', ['-F', '32', path]); sh('mcopy', ['-s', '-i', path, ...readdirSync(staged).map((n) => join(staged, n)), '::/']); }
  if (fs === 'ntfs') {
    sh('mkntfs', ['-F', '-Q', '-q', path]);
    const mnt = join(dir, 'mnt');
    mkdirSync(mnt, { recursive: true });
    sh('ntfs-3g', [path, mnt]);
    try { sh('cp', ['-r', `${staged}/.`, mnt]); } finally { sh('umount', [mnt]); }
  }
}

/** Run a shell pipeline, return its seconds and the bytes it wrote to `out`. */
function pipeline(cmd: string, out: string): { s: number; bytes: number } {
  sh('sync', []);
  const s = seconds(() => {
    const r = spawnSync('sh', ['-c', `${cmd} > ${out}`], { stdio: ['ignore', 'ignore', 'pipe'] });
    if (r.status !== 0) throw new Error(`${cmd}: ${r.stderr.toString().slice(-500)}`);
  });
  return { s, bytes: statSync(out).size };
}

const PARTCLONE: Record<string, string> = { ext4: 'extfs', vfat: 'fat', ntfs: 'ntfs' };

try {
  const staged = join(dir, 'staged');
  mkdirSync(staged);
  const data = stage(staged, DATA);
  console.log(`# image bench: ${mb(SIZE)} MiB disks holding ${mb(data)} MiB of files from /usr; zstd level ${LEVEL}; ${sh('nproc', []).trim()} cores`);
  console.log('# partclone+zstd: partclone.<fs> -c -s DISK -o - | zstd -T1 (one thread, the zstd default)');
  console.log('# every source is in the page cache before it is measured (it was just written)');
  console.log('# pc+zstd -T0: the same with zstd on every core; raw zstd: zstd -T1 of the whole device');
  const rows: string[][] = [['fs', 'must MiB', 'pc+zstd MiB', 'size ratio', 'raw zstd MiB', 'must s', 'pc+zstd s', 'time ratio', 'pc+zstd -T0 s', 'raw zstd s']];
  for (const fs of ['ext4', 'vfat', 'ntfs']) {
    const disk = join(dir, `${fs}.disk`);
    makeDisk(fs, disk, staged);
    const img = join(dir, `${fs}.must`);
    sh('sync', []);
    const must = seconds(() => { sh(process.execPath, ['--disable-warning=ExperimentalWarning', MAIN, 'capture', disk, '-o', img, '--level', String(LEVEL), '--force']); });
    const mustBytes = statSync(img).size;
    const pc = pipeline(`partclone.${PARTCLONE[fs]} -c -s ${disk} -o - -q -L ${dir}/pc.log | zstd -T1 -${LEVEL} -c`, join(dir, `${fs}.pc.zst`));
    const pcMt = pipeline(`partclone.${PARTCLONE[fs]} -c -s ${disk} -o - -q -L ${dir}/pc.log | zstd -T0 -${LEVEL} -c`, join(dir, `${fs}.pcmt.zst`));
    const raw = pipeline(`zstd -T1 -${LEVEL} -c ${disk}`, join(dir, `${fs}.raw.zst`));
    rows.push([fs, mb(mustBytes), mb(pc.bytes), (mustBytes / pc.bytes).toFixed(3), mb(raw.bytes), must.toFixed(2), pc.s.toFixed(2), (must / pc.s).toFixed(2), pcMt.s.toFixed(2), raw.s.toFixed(2)]);
    rmSync(disk); rmSync(img);
  }
  const w = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  for (const r of rows) console.log(r.map((c, i) => (i === 0 ? c.padEnd(w[i]!) : c.padStart(w[i]!))).join('  '));
  console.log('# size ratio = must / (partclone | zstd); goal <= 1.05.  time ratio = must / (partclone | zstd); goal <= 1.');
} finally {
  rmSync(dir, { recursive: true, force: true });
}
