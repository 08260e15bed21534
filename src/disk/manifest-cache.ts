// The manifest of a raw image file, kept between sessions. Hashing costs about a second per
// GiB before the first packet leaves, every time the same file is served; a lab serves the
// same file again and again. The key is what changes when the file's bytes can have changed:
// its path, device and inode, size, and mtime and ctime in nanoseconds (ctime moves on any
// write and cannot be set back, so a tool that restores mtime is still caught). A file changed
// less than RACY ago is not kept: a second write within the same clock tick could leave both
// times as they were (git's "racy" index entries). Block devices are never cached: their bytes
// change without their inode noticing.

import { createHash } from 'node:crypto';
import { mkdir, readFile, realpath, rename, stat, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { type BuiltManifest, sealManifest } from './manifest-build.ts';
import { decodeManifest, encodeManifest } from '../protocol/manifest.ts';
import type { ImageKind } from '../protocol/messages.ts';

/** /var/cache/must as root, else the user's cache directory. */
export function defaultCacheDir(): string {
  const base = process.getuid?.() === 0 ? '/var/cache/must' : join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'must');
  return join(base, 'manifests');
}

const RACY_NS = 2_000_000_000n;

export interface ManifestCache {
  /** The manifest kept for this file as it is now, if any. */
  load(): Promise<BuiltManifest | undefined>;
  /** Keep it for the next session (a failure to keep it costs only the next hash). */
  keep(built: BuiltManifest): Promise<void>;
}

/** A cache slot for the regular file at `path`, or undefined for anything else. */
export async function manifestCache(
  path: string, dir: string, what: { chunkSize: number; kind: ImageKind }, now: () => number = Date.now,
): Promise<ManifestCache | undefined> {
  const st = await stat(path, { bigint: true });
  if (!st.isFile()) return undefined;
  const key = JSON.stringify({
    path: await realpath(path), dev: String(st.dev), ino: String(st.ino), size: String(st.size),
    mtime: String(st.mtimeNs), ctime: String(st.ctimeNs), chunk: what.chunkSize, kind: what.kind,
  });
  const file = join(dir, `${createHash('sha256').update(key).digest('hex').slice(0, 32)}.manifest`);
  return {
    async load() {
      let bytes: Uint8Array;
      try { bytes = await readFile(file); } catch { return undefined; }
      try {
        const m = decodeManifest(bytes);
        return m.targetSize === Number(st.size) && m.kind === what.kind ? sealManifest(m) : undefined;
      } catch {
        return undefined;
      }
    },
    async keep(built) {
      if (BigInt(now()) * 1_000_000n - st.ctimeNs < RACY_NS) return;
      try {
        await mkdir(dir, { recursive: true });
        await writeFile(`${file}.tmp`, encodeManifest(built.manifest));
        await rename(`${file}.tmp`, file);
      } catch { /* read-only or full: the next session hashes again */ }
    },
  };
}
