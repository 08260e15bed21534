// Individual files over the same transport (the paper: "not only a partition image,
// but also individual files"). The sender lays the files end to end into one byte
// space described by the manifest's file table; the receiver takes that space into a
// spool file like any image, verifies it, then writes the files out of it.

import { type FileHandle, lstat, mkdir, open, readdir, readlink, rm, symlink, utimes, chmod } from 'node:fs/promises';
import { basename, join, normalize, sep } from 'node:path';
import { type FileEntry, type Manifest, EntryType } from '../protocol/manifest.ts';
import { DiskError } from './device.ts';
import type { ByteSource } from './source.ts';

export async function scanPaths(paths: string[]): Promise<FileEntry[]> {
  const entries: FileEntry[] = [];
  let offset = 0;
  const visit = async (abs: string, rel: string): Promise<void> => {
    const st = await lstat(abs);
    const base = { path: rel, mode: st.mode & 0o7777, mtimeMs: Math.round(st.mtimeMs), size: 0, offset, target: '' };
    if (st.isDirectory()) {
      entries.push({ ...base, type: EntryType.Directory });
      for (const name of (await readdir(abs)).sort()) await visit(join(abs, name), `${rel}/${name}`);
    } else if (st.isSymbolicLink()) {
      entries.push({ ...base, type: EntryType.Symlink, target: await readlink(abs) });
    } else if (st.isFile()) {
      entries.push({ ...base, type: EntryType.File, size: st.size });
      offset += st.size;
    }
    // Sockets, devices and FIFOs have no bytes to send: skipped.
  };
  for (const p of paths) await visit(p, basename(normalize(p)));
  const names = new Set<string>();
  for (const e of entries) {
    if (names.has(e.path)) throw new DiskError(`two inputs are both named "${e.path}"`);
    names.add(e.path);
  }
  return entries;
}

/** The files of a set read as one contiguous byte space. */
export class FileSetSource implements ByteSource {
  readonly size: number;
  readonly sectorSize = 512;
  readonly label: string;
  private readonly files: Array<FileEntry & { abs: string }>;
  /** Open handles by path; the promise is kept, so reads running at once share one open. */
  private readonly handles = new Map<string, Promise<FileHandle>>();

  constructor(roots: string[], entries: FileEntry[]) {
    const byName = new Map(roots.map((r) => [basename(normalize(r)), r] as const));
    this.files = entries.filter((e) => e.type === EntryType.File && e.size > 0).map((e) => {
      const [top, ...rest] = e.path.split('/');
      return { ...e, abs: join(byName.get(top!)!, ...rest) };
    });
    this.size = this.files.reduce((s, f) => s + f.size, 0);
    this.label = roots.join(' ');
  }

  async read(offset: number, length: number): Promise<Uint8Array> {
    const end = Math.min(offset + length, this.size);
    const out = Buffer.alloc(Math.max(0, end - offset));
    for (const f of this.files) {
      const s = Math.max(offset, f.offset), e = Math.min(end, f.offset + f.size);
      if (s >= e) continue;
      let fh = this.handles.get(f.abs);
      if (!fh) { fh = open(f.abs, 'r'); this.handles.set(f.abs, fh); }
      const { bytesRead } = await (await fh).read(out, s - offset, e - s, s - f.offset);
      if (bytesRead !== e - s) throw new DiskError(`${f.abs} changed while being sent (short read)`);
    }
    return out;
  }

  async close(): Promise<void> {
    for (const fh of this.handles.values()) await (await fh.catch(() => undefined))?.close();
    this.handles.clear();
  }
}

/** A manifest path, made safe to join under the output directory (no absolute paths, no ".."). */
export function safeRelative(path: string): string {
  const n = normalize(path);
  if (n.startsWith(sep) || n === '..' || n.startsWith(`..${sep}`) || n.includes(`${sep}..${sep}`) || n.endsWith(`${sep}..`))
    throw new DiskError(`refusing path "${path}" that leaves the output directory`);
  return n;
}

/** Write the files of a verified set out of the spool into dir. */
export async function extractFiles(manifest: Manifest, spool: string, dir: string): Promise<number> {
  const src = await open(spool, 'r');
  try {
    for (const e of manifest.files) {
      const out = join(dir, safeRelative(e.path));
      switch (e.type) {
        case EntryType.Directory:
          await mkdir(out, { recursive: true });
          break;
        case EntryType.Symlink:
          await rm(out, { force: true });
          await symlink(e.target, out);
          break;
        case EntryType.File: {
          const fh = await open(out, 'w');
          try {
            const buf = Buffer.allocUnsafe(1 << 20);
            for (let done = 0; done < e.size;) {
              const n = Math.min(buf.length, e.size - done);
              const { bytesRead } = await src.read(buf, 0, n, e.offset + done);
              if (bytesRead !== n) throw new DiskError(`spool ${spool} is shorter than its manifest`);
              await fh.write(buf, 0, n);
              done += n;
            }
          } finally { await fh.close(); }
          await chmod(out, e.mode);
          break;
        }
      }
    }
    // Times last, deepest first, so that writing a file does not touch its directory's time again.
    for (const e of [...manifest.files].reverse()) {
      if (e.type !== EntryType.Symlink) await utimes(join(dir, safeRelative(e.path)), e.mtimeMs / 1000, e.mtimeMs / 1000);
    }
    for (const e of manifest.files) if (e.type === EntryType.Directory) await chmod(join(dir, safeRelative(e.path)), e.mode);
  } finally {
    await src.close();
  }
  return manifest.files.length;
}
