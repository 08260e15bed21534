// What the master reads: a raw image file or block device, through a page cache that
// reads ahead of the transfer so that sending never waits on the disk in the pass.

import { type FileHandle, open } from 'node:fs/promises';
import { DiskError, probe } from './device.ts';

export interface ByteSource {
  readonly size: number;
  readonly sectorSize: number;
  readonly label: string;
  /** Read exactly [offset, offset+length) (short only at the end of the source), into `into` where the source can. */
  read(offset: number, length: number, into?: Uint8Array): Promise<Uint8Array>;
  close(): Promise<void>;
}

export class RawSource implements ByteSource {
  readonly size: number;
  readonly sectorSize: number;
  readonly label: string;
  private readonly fh: FileHandle;

  private constructor(fh: FileHandle, size: number, sectorSize: number, label: string) {
    this.fh = fh;
    this.size = size;
    this.sectorSize = sectorSize;
    this.label = label;
  }

  static async open(path: string): Promise<RawSource> {
    const info = await probe(path);
    if (info.kind === 'missing') throw new DiskError(`image ${path} does not exist`);
    if (info.size === 0) throw new DiskError(`image ${path} is empty`);
    return new RawSource(await open(path, 'r'), info.size, info.sectorSize, path);
  }

  async read(offset: number, length: number, into?: Uint8Array): Promise<Uint8Array> {
    const n = Math.max(0, Math.min(length, this.size - offset));
    const buf = into && into.length >= n ? into.subarray(0, n) : Buffer.allocUnsafe(n);
    let done = 0;
    while (done < n) {
      const { bytesRead } = await this.fh.read(buf, done, n - done, offset + done);
      if (bytesRead === 0) throw new DiskError(`${this.label}: unexpected end at byte ${offset + done} of ${this.size}`);
      done += bytesRead;
    }
    return buf;
  }

  close(): Promise<void> { return this.fh.close(); }
}

/** Fixed-size pages of a source, kept in a small LRU, loaded ahead on request. */
export class PageCache {
  /** The pages of a pass: it reads the whole image in order. */
  static readonly PAGE = 4 << 20;
  /** The pages of a repair round that asks for few packets (a big page each would read most of the image for them). */
  static readonly SMALL = 64 << 10;
  /** The size of the pages now (clear() sets it). */
  pageSize = PageCache.PAGE;
  /** Bumped by clear(): a load started before it lands in no page. */
  private generation = 0;
  private readonly pages = new Map<number, Uint8Array>();
  /** The page last moved to the end of `pages` (the most recently used), -1 for none. */
  private newest = -1;
  /** The first and last page of the bytes get() handed out last. */
  private lastFirst = -1;
  private lastLast = -1;
  private readonly loading = new Map<number, Promise<void>>();
  /**
   * Memory of pages no longer in use, for the next loads, by page size. A pass reads the whole image
   * and a repair round reads it again: a fresh buffer per page keeps V8's collector busy (in a lab run
   * with loss it took a quarter of the master's CPU in the repair phase), and the kernel faults
   * in and zeroes every fresh page of memory. Every page size used keeps its own: the rounds of a PC
   * far behind go from big pages to small ones and back, nearly every round.
   */
  private readonly spares = new Map<number, Uint8Array[]>([[PageCache.PAGE, []]]);
  private readonly src: ByteSource;
  private readonly capacity: number;
  failure: Error | undefined;

  /** `capacityPages`: how many pass-sized pages it keeps (in small pages, as many as fit the same memory). */
  constructor(src: ByteSource, capacityPages = 16) {
    this.src = src;
    this.capacity = capacityPages;
  }

  /** Forget every loaded page (and the loads under way): the next reads go to the source again, in pages of `pageSize`. */
  clear(pageSize = this.pageSize): void {
    // The bytes get() handed out last (one or two pages) may still wait in a datagram; the other pages are free.
    for (const [p, page] of this.pages) if (p !== this.lastFirst && p !== this.lastLast) this.recycle(page);
    this.pages.clear();
    this.loading.clear();
    this.newest = this.lastFirst = this.lastLast = -1;
    this.pageSize = pageSize;
    if (!this.spares.has(pageSize)) this.spares.set(pageSize, []);
    this.generation++;
  }

  /** Keep a page's memory for a later load of its size, up to as much memory in spares of each size as in pages. */
  private recycle(page: Uint8Array): void {
    const size = page.buffer.byteLength, spare = this.spares.get(size);
    if (page.byteOffset === 0 && spare && spare.length < (this.capacity * PageCache.PAGE) / size) spare.push(new Uint8Array(page.buffer));
  }

  /** The bytes if every page they touch is loaded, as one or two views (no copy). */
  get(offset: number, length: number): Uint8Array[] | undefined {
    const P = this.pageSize;
    const first = Math.floor(offset / P), last = Math.floor((offset + length - 1) / P);
    const out: Uint8Array[] = [];
    for (let p = first; p <= last; p++) {
      const page = this.pages.get(p);
      if (!page) return undefined;
      // Refresh LRU position (a pass asks for the same page some 2,900 times in a row).
      if (p !== this.newest) {
        this.pages.delete(p);
        this.pages.set(p, page);
        this.newest = p;
      }
      const start = p === first ? offset - p * P : 0;
      const end = p === last ? offset + length - p * P : P;
      out.push(page.subarray(start, end));
    }
    this.lastFirst = first;
    this.lastLast = last;
    return out;
  }

  /** Start loading the pages of [offset, offset+length) and `ahead` pages after; resolves when the first range is in. */
  load(offset: number, length: number, ahead = 0): Promise<void> {
    const P = this.pageSize;
    const first = Math.floor(offset / P), last = Math.floor((offset + length - 1) / P);
    const waits: Promise<void>[] = [];
    for (let p = first; p <= last + ahead && p * P < this.src.size; p++) {
      const w = this.loadPage(p);
      if (p <= last) waits.push(w);
    }
    return Promise.all(waits).then(() => undefined);
  }

  private loadPage(p: number): Promise<void> {
    if (this.pages.has(p)) return Promise.resolve();
    const inFlight = this.loading.get(p);
    if (inFlight) return inFlight;
    const generation = this.generation;
    const w = this.src.read(p * this.pageSize, this.pageSize, this.spares.get(this.pageSize)!.pop()).then((b) => {
      if (generation !== this.generation) return void this.recycle(b);
      this.pages.set(p, b);
      this.newest = p;
      // The same memory in pages of either size.
      while (this.pages.size > (this.capacity * PageCache.PAGE) / this.pageSize) {
        const oldest = this.pages.keys().next().value!;
        const page = this.pages.get(oldest)!;
        this.pages.delete(oldest);
        // The least recently used page went out long ago (a datagram is handed to the kernel, or held
        // by Node until sent, only while it is the newest): its memory takes the next page.
        this.recycle(page);
      }
    }, (e: Error) => { this.failure = e; throw e; }).finally(() => { if (this.loading.get(p) === w) this.loading.delete(p); });
    this.loading.set(p, w);
    return w;
  }
}
