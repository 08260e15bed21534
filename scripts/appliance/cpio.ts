// A reproducible "newc" cpio writer for initramfs images: entries in sorted order, every
// mtime the same, owner root, inode numbers counted from 1. Same inputs, same bytes.

export interface CpioEntry {
  path: string;
  type: 'dir' | 'file' | 'symlink';
  mode: number;
  data?: Uint8Array;
  target?: string;
}

const S_IFDIR = 0o040000, S_IFREG = 0o100000, S_IFLNK = 0o120000;
const pad4 = (n: number): number => (4 - (n % 4)) % 4;
const hex8 = (n: number): string => n.toString(16).padStart(8, '0');

function header(ino: number, mode: number, nlink: number, mtime: number, size: number, nameSize: number): string {
  return `070701${[ino, mode, 0, 0, nlink, mtime, size, 0, 0, 0, 0, nameSize, 0].map(hex8).join('')}`;
}

export function writeCpio(entries: CpioEntry[], mtime: number): Uint8Array {
  const sorted = [...entries].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const seen = new Set<string>();
  const chunks: Uint8Array[] = [];
  let ino = 1;
  const enc = new TextEncoder();
  const push = (hdr: string, name: string, data: Uint8Array): void => {
    const nameBytes = enc.encode(`${name}\0`);
    const h = enc.encode(hdr);
    chunks.push(h, nameBytes, new Uint8Array(pad4(h.length + nameBytes.length)), data, new Uint8Array(pad4(data.length)));
  };
  for (const e of sorted) {
    const name = e.path.replace(/^\/+/, '');
    if (name === '' || seen.has(name)) throw new Error(`cpio: bad or repeated path "${e.path}"`);
    seen.add(name);
    const data = e.type === 'file' ? e.data ?? new Uint8Array(0) : e.type === 'symlink' ? enc.encode(e.target ?? '') : new Uint8Array(0);
    const kind = e.type === 'dir' ? S_IFDIR : e.type === 'symlink' ? S_IFLNK : S_IFREG;
    push(header(ino++, kind | (e.mode & 0o7777), e.type === 'dir' ? 2 : 1, mtime, data.length, enc.encode(name).length + 1), name, data);
  }
  push(header(0, 0, 1, 0, 0, 11), 'TRAILER!!!', new Uint8Array(0));
  const total = chunks.reduce((s, c) => s + c.length, 0);
  const out = new Uint8Array(total);
  let off = 0;
  for (const c of chunks) { out.set(c, off); off += c.length; }
  return out;
}
