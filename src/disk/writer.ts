// The client's side of the disk: writes, and checks (finish a chunk, flush), in two lanes.
// Once the manifest is known, a chunk's bytes first gather in memory (up to HOLD bytes of
// chunks): when the last one comes, the chunk is matched to its digest there and written
// once, one write per extent, and nothing is read back. That spares a write per hole filled
// under loss and the read-back of every chunk. A chunk that cannot be held (memory is full
// and it is the oldest, it is longer than HOLD_CHUNK, or bytes of it reached the target
// before the manifest) takes the way below, written as its packets come and read back;
// when more of its bytes come and memory has room, it is read back into a buffer at once and
// gathers there from then on, as a held chunk.
// Writes start in the order queued, each as soon as it can grow no more, many at a time
// (they are disjoint, a packet being offered once, but for the zeros below); a check runs
// once every write queued before it landed (so a chunk is read back only after its bytes
// are written), one check at a time, while the writes queued after it go on: a chunk being
// read back and hashed holds up no write, and a busy CPU does not fill the queue with bytes
// waiting behind checks. Offered bytes are copied (the receive buffers are reused), and
// consecutive packets land side by side, so they go out in one pwritev of up to 1 MiB.
// A short hole left by lost packets does not end a write: where the caller says the hole's
// bytes are still to come, zeros fill it, and whatever is later written into the hole
// starts only once those zeros have landed. A lone small write waits a few milliseconds
// for company (each write is a round trip to the thread pool, and at line rate a write per
// handful of packets costs more than the copy). When the bytes queued exceed the bound,
// offer() says no and the packet counts as lost (repaired later): a slow disk slows this
// client's fill rate, never its socket.

import { read, writev } from 'node:fs';
import { type FileHandle, open } from 'node:fs/promises';
import type { Chunk, Extent } from '../protocol/manifest.ts';
import { Bitmap } from '../session/bitmap.ts';
import type { ClientStorage } from '../session/receiver.ts';
import { finishChunk, frontPieces, gather, unpack, zeroExtents } from './chunks.ts';
import { DiskError, busyReason, probe } from './device.ts';
import { holdsAppliance } from './inventory.ts';

export interface ByteTarget {
  readonly path: string;
  readonly capacity: number;
  readonly kind: 'block' | 'file';
  writev(offset: number, buffers: Uint8Array[]): Promise<void>;
  /** Read [offset, offset+length), into `into` when given (its first `length` bytes come back). */
  read(offset: number, length: number, into?: Uint8Array): Promise<Uint8Array>;
  sync(): Promise<void>;
  close(): Promise<void>;
}

/**
 * A target chosen after the master announced the image (its size decides which disks can take
 * it). Until then it holds nothing and takes nothing: the client writes no byte before the
 * choice is confirmed.
 */
export class LateTarget implements ByteTarget {
  private bound: (ByteTarget & { fit?(size: number): Promise<void> }) | undefined;

  bind(t: ByteTarget & { fit?(size: number): Promise<void> }): void { this.bound = t; }
  private get t(): ByteTarget {
    if (!this.bound) throw new DiskError('no target chosen yet');
    return this.bound;
  }
  get path(): string { return this.bound?.path ?? '(not chosen)'; }
  get capacity(): number { return this.bound?.capacity ?? Number.MAX_SAFE_INTEGER; }
  get kind(): 'block' | 'file' { return this.bound?.kind ?? 'block'; }
  writev(offset: number, buffers: Uint8Array[]): Promise<void> { return this.t.writev(offset, buffers); }
  read(offset: number, length: number, into?: Uint8Array): Promise<Uint8Array> { return this.t.read(offset, length, into); }
  sync(): Promise<void> { return this.t.sync(); }
  async fit(size: number): Promise<void> { await this.bound?.fit?.(size); }
  async close(): Promise<void> { await this.bound?.close(); }
}

/** A block device or a file, written in place. */
export class RawTarget implements ByteTarget {
  readonly path: string;
  readonly capacity: number;
  readonly kind: 'block' | 'file';
  private readonly fh: FileHandle;
  /** Reads and writes under way on the descriptor; and what close() waits for until they are all done. */
  private pending = 0;
  private idle: (() => void) | undefined;

  private constructor(path: string, fh: FileHandle, capacity: number, kind: 'block' | 'file') {
    this.path = path;
    this.fh = fh;
    this.capacity = capacity;
    this.kind = kind;
  }

  /**
   * A block device holds its size. A regular file that is missing or empty is created and grows
   * to the image; a file with a size is treated like a disk of that size (a VM's raw disk).
   */
  static async open(path: string): Promise<RawTarget> {
    const info = await probe(path);
    if (info.kind === 'block') return new RawTarget(path, await open(path, 'r+'), info.size, 'block');
    // Under /dev only devices are targets: a missing partition node must not become a file in RAM.
    if (path.startsWith('/dev/')) throw new DiskError(info.kind === 'missing' ? `${path}: no such device` : `${path} is not a block device`);
    const growable = info.kind === 'missing' || info.size === 0;
    const fh = await open(path, info.kind === 'missing' ? 'w+' : 'r+');
    return new RawTarget(path, fh, growable ? Number.MAX_SAFE_INTEGER : info.size, 'file');
  }

  /**
   * open() for a target about to be overwritten: a block device that is in use (mounted, swap,
   * held by LVM/RAID/dm) or that holds the MUST appliance is refused, saying which and why.
   */
  static async openForWriting(path: string): Promise<RawTarget> {
    const t = await RawTarget.open(path);
    if (t.kind !== 'block') return t;
    const why = await busyReason(path) ?? (await holdsAppliance(path) ? 'it holds the MUST appliance (a MUST boot CD or stick)' : undefined);
    if (why) {
      await t.close();
      throw new DiskError(`${path} cannot be overwritten: ${why}`);
    }
    return t;
  }

  /** Size a growable file to the image (so the result has the image's length, holes included). */
  async fit(imageSize: number): Promise<void> {
    if (this.kind === 'file' && this.capacity === Number.MAX_SAFE_INTEGER) await this.fh.truncate(imageSize);
  }

  // Through fs's callbacks on the handle's descriptor, not the FileHandle's promises: a write under
  // 5% loss is often a single datagram, and FileHandle.writev cost about 2.5 times the CPU per call.
  writev(offset: number, buffers: Uint8Array[]): Promise<void> {
    this.pending++;
    return new Promise((resolve, reject) => {
      const go = (pos: number, rest: Uint8Array[]): void => writev(this.fh.fd, rest, pos, (e, written) => {
        if (e) return this.settle(() => reject(e));
        // A short write: continue after the bytes that went out.
        let skip = written;
        while (rest.length > 0 && skip >= rest[0]!.length) { skip -= rest[0]!.length; rest = rest.slice(1); }
        if (skip > 0) rest = [rest[0]!.subarray(skip), ...rest.slice(1)];
        if (rest.length === 0) return this.settle(resolve);
        if (written === 0) return this.settle(() => reject(new DiskError(`${this.path}: no progress writing at byte ${pos}`)));
        go(pos + written, rest);
      });
      go(offset, buffers);
    });
  }

  read(offset: number, length: number, into?: Uint8Array): Promise<Uint8Array> {
    const buf = into ? into.subarray(0, length) : Buffer.allocUnsafe(length);
    this.pending++;
    return new Promise((resolve, reject) => {
      const go = (done: number): void => {
        if (done === length) return this.settle(() => resolve(buf));
        read(this.fh.fd, buf, done, length - done, offset + done, (e, got) => {
          if (e) return this.settle(() => reject(e));
          if (got === 0) return this.settle(() => reject(new DiskError(`${this.path}: ends at byte ${offset + done}, expected ${offset + length}`)));
          go(done + got);
        });
      };
      go(0);
    });
  }

  /**
   * A read or write on the bare descriptor has ended. FileHandle.close() waits for the handle's
   * own operations, not for these: close() waits for them, so that a descriptor number reused
   * after it cannot take a late write.
   */
  private settle(then: () => void): void {
    then();
    if (--this.pending === 0) this.idle?.();
  }

  sync(): Promise<void> { return this.fh.sync(); }

  async close(): Promise<void> {
    if (this.pending > 0) await new Promise<void>((r) => { this.idle = r; });
    await this.fh.close();
  }
}

/** A buffer that offered bytes are copied into; it goes back to the pool once no write holds any of it. */
interface Slab { readonly bytes: Buffer; holds: number }

/**
 * Bytes for [offset, offset+span): `buffers`, then the run that still grows at the end of
 * `slab`, [runStart, runEnd). Each slab in `slabs` counts this write among its holders once.
 * `bytes` of the span were offered; the rest are zeros over holes, all within [fillStart, fillEnd).
 */
interface Write {
  n: number; offset: number; span: number; bytes: number; buffers: Uint8Array[]; slabs: Slab[]; slab: Slab | undefined; runStart: number; runEnd: number;
  fillStart: number; fillEnd: number;
  /** A piece of a whole chunk's write: it grows no more, and `answer` reports on it once it has landed or failed. */
  answer?: (error: Error | undefined) => void;
}

/**
 * A chunk whose stream bytes gather in memory, at their offsets in `bytes`: [0, end) are those offered, or zeros where none was (yet),
 * or (a chunk read back from the target to be held again) what the target held there. `touched`: the offer that last brought it bytes.
 */
interface Held {
  readonly k: number; readonly chunk: Chunk; readonly bytes: Buffer; end: number; touched: number;
  /**
   * Being read back from the target: bytes offered meanwhile wait here, and a finish waits for the read;
   * `spill`: bytes came that the chunk cannot hold, so it goes back to the target once read.
   */
  loading?: { late: Late[]; finish: boolean; spill: boolean };
}

/** Bytes offered for a chunk while it was read back: a copy, its place in the stream and on the target. */
interface Late { readonly at: number; readonly offset: number; readonly bytes: Uint8Array }

/** A check, to run once the first `after` writes ever queued have landed. */
type Check =
  | { kind: 'finish'; after: number; k: number; chunk: Chunk }
  | { kind: 'load'; after: number; h: Held }
  | { kind: 'flush'; after: number; zeros: Extent[] };

export interface WriteQueueEvents {
  chunkChecked(k: number, ok: boolean, reason: string): void;
  flushed(): void;
  flushFailed(error: Error): void;
  writeError(offset: number, length: number, error: Error): void;
}

export class WriteQueue implements ClientStorage {
  static readonly COALESCE = 1 << 20;
  /** A write smaller than this, with nothing queued behind it, waits up to BATCH_WAIT ms. */
  static readonly BATCH = 256 << 10;
  static readonly BATCH_WAIT = 4;
  /** Writes handed to the thread pool and not landed yet, at most. */
  static readonly IN_FLIGHT = 512;
  /** Offered bytes are copied into slabs of this size, reused once the writes in them are done. */
  static readonly SLAB = 256 << 10;
  /** The longest hole that zeros fill (longer ones end the write). */
  static readonly FILL = 64 << 10;
  private static readonly ZEROS = new Uint8Array(WriteQueue.FILL);
  /** Memory the chunks gathering in memory take at most (64 chunks of the default 1 MiB). */
  static readonly HOLD = 64 << 20;
  /** A chunk whose stream is longer than this is not held. */
  static readonly HOLD_CHUNK = 16 << 20;
  /**
   * A held chunk that no offer among the last this many brought bytes is idle: it may go to the target
   * to make room for a chunk read back (about 12 MiB of packets; the chunks of a pass in progress are
   * all fed more often than that, so they are never swapped for one another).
   */
  static readonly IDLE_OFFERS = 8192;
  /** Writes not started yet, in order; and checks not started yet, in order. */
  private readonly writes: Write[] = [];
  private readonly checks: Check[] = [];
  /** Writes ever queued (a write's number is its place among them); how many of the first of them have all landed. */
  private writesQueued = 0;
  private writesDone = 0;
  /** Numbers of the writes that landed while one before them was still under way. */
  private readonly landedEarly = new Set<number>();
  private inFlight = 0;
  /** Writes under way that hold zeros over holes: a write into one of those holes waits for them. */
  private readonly filling: Write[] = [];
  /** The last write (it may still grow) is to start at the end of this turn of the event loop. */
  private tailSoon = false;
  private slab: Slab = { bytes: Buffer.alloc(0), holds: 0 };
  private slabUsed = 0;
  /** Slabs no write holds. A fresh buffer is paged in (and later unmapped) by the kernel: reuse is cheaper. */
  private readonly spare: Slab[] = [];
  private queued = 0;
  /** Where finished chunks are read back to be checked, one at a time. */
  private scratch = Buffer.allocUnsafe(0);
  private checking = false;
  private waiting: NodeJS.Timeout | undefined;
  private readonly target: ByteTarget;
  private readonly limit: number;
  private readonly holdLimit: number;
  private readonly on: WriteQueueEvents;
  /** The manifest's chunks, once known. */
  private chunks: readonly Chunk[] = [];
  /** Bytes of the buffer a held chunk takes (the longest stream of a chunk); 0: no chunk is held. */
  private holdSize = 0;
  /** Chunks held, oldest first. */
  private readonly held = new Map<number, Held>();
  private readonly spareHolds: Buffer[] = [];
  /** Chunks with bytes written to the target as they came: those are read back to be checked. */
  private onDisk = new Bitmap(0);
  /** Chunks all of whose bytes were offered (finish was called). */
  private finished = new Bitmap(0);
  /** Target bytes [earlyStart, earlyEnd) take in what was offered before the manifest was known. */
  private earlyStart = Infinity;
  private earlyEnd = -Infinity;
  /** Held chunks being checked and written. */
  private placing = 0;
  written = 0;
  zeroed = 0;
  peakQueued = 0;
  /** Slabs allocated (the rest of the copies went to reused ones). */
  slabs = 0;
  /** Holes filled with zeros instead of ending a write. */
  holesFilled = 0;
  /** Chunks checked in memory and written whole; chunks read back from the target to be checked; held chunks that memory could not keep. */
  checkedInMemory = 0;
  readBack = 0;
  spilled = 0;
  /** Chunks with bytes on the target read back into memory when more of their bytes came (then checked there). */
  reloaded = 0;
  /** Offers made so far (Held.touched counts in them). */
  private offers = 0;

  constructor(target: ByteTarget, on: WriteQueueEvents, limitBytes = 64 << 20, holdBytes = WriteQueue.HOLD) {
    this.target = target;
    this.on = on;
    this.limit = limitBytes;
    this.holdLimit = holdBytes;
  }

  /** The manifest arrived: from now on a chunk's bytes are offered with the chunk's number, and may be held. */
  known(chunks: readonly Chunk[]): void {
    this.chunks = chunks;
    this.onDisk = new Bitmap(chunks.length);
    this.finished = new Bitmap(chunks.length);
    let longest = 0;
    chunks.forEach((c, k) => {
      longest = Math.max(longest, c.streamLength);
      if (c.extents.some((e) => e.offset < this.earlyEnd && this.earlyStart < e.offset + e.length)) this.onDisk.set(k);
    });
    this.holdSize = longest <= WriteQueue.HOLD_CHUNK && 2 * longest <= this.holdLimit ? longest : 0;
  }

  get queuedBytes(): number { return this.queued; }

  /** Chunks held in memory at once, at most (0 before the manifest, or when chunks are too long to hold). */
  get holds(): number { return this.holdSize > 0 ? Math.floor(this.holdLimit / this.holdSize) : 0; }

  /** Writes made so far (each a call to the thread pool). */
  get writeCount(): number { return this.writesQueued; }

  /**
   * Takes a copy of `bytes[from, from+length)` (the caller may reuse them at once), or says no.
   * `holeFrom`: target bytes [holeFrom, offset) belong to packets still to come, so zeros may
   * stand there meanwhile (see ClientStorage.offer). `k`, `at`: the bytes are chunk k's stream
   * from byte `at` (known once the manifest is).
   */
  offer(offset: number, bytes: Uint8Array, from: number, length: number, holeFrom = offset, k = -1, at = 0): boolean {
    if (offset + length > this.target.capacity) return false;
    this.offers++;
    if (k >= 0 && this.hold(k, at, offset, bytes, from, length)) return true;
    if (this.queued + length > this.limit) return false;
    if (k >= 0) this.onDisk.set(k);
    else { this.earlyStart = Math.min(this.earlyStart, offset); this.earlyEnd = Math.max(this.earlyEnd, offset + length); }
    this.queue(offset, bytes, from, length, holeFrom);
    return true;
  }

  /** Queue a copy of `bytes[from, from+length)` to be written at `offset` (see offer). */
  private queue(offset: number, bytes: Uint8Array, from: number, length: number, holeFrom: number): void {
    this.queued += length;
    this.peakQueued = Math.max(this.peakQueued, this.queued);
    // Only a write not started yet grows (a check queued since then waits for it anyway).
    const last = this.writes[this.writes.length - 1];
    const end = last ? last.offset + last.span : -1;
    const hole = offset - end;
    let w: Write;
    if (last && !last.answer && (hole === 0 || (hole > 0 && hole <= WriteQueue.FILL && end >= holeFrom)) && last.span + hole + length <= WriteQueue.COALESCE) {
      w = last;
      if (hole > 0) this.fill(w, hole);
    } else {
      this.writes.push(w = {
        n: this.writesQueued++, offset, span: 0, bytes: 0, buffers: [], slabs: [], slab: undefined, runStart: 0, runEnd: 0, fillStart: Infinity, fillEnd: -Infinity,
      });
      // The write before it grows no more: it goes to the thread pool at once. A burst of datagrams
      // is taken in one turn of the event loop, which on a busy CPU lasts tens of milliseconds;
      // the pool writes meanwhile instead of waiting for the turn to end.
      this.startWrites(true);
    }
    if (this.slabUsed + length > this.slab.bytes.length) this.nextSlab(length);
    const put = this.slabUsed;
    this.slab.bytes.set(bytes.subarray(from, from + length), put);
    this.slabUsed += length;
    // Packets in order land side by side in the slab: one run grows instead of a buffer per packet.
    if (w.slab !== this.slab || w.runEnd !== put) {
      this.closeRun(w);
      if (!w.slabs.includes(this.slab)) { w.slabs.push(this.slab); this.slab.holds++; }
      w.slab = this.slab;
      w.runStart = put;
    }
    w.runEnd = put + length;
    w.bytes += length;
    w.span += length;
    this.kickWrites();
  }

  /**
   * Copy chunk k's bytes into its buffer, or say no: it would need a buffer while the writes queued
   * are at their bound, or the chunk has bytes on the target already and memory has no room for it.
   * A new buffer beyond HOLD sends the oldest held chunk to the target. A chunk with bytes on the
   * target is read back into its buffer (where the bytes that come meanwhile are put over what is
   * read), so that the rest of it is not written packet by packet, and it is checked in memory
   * instead of read back once more: a PC far behind the others (a slow link) has its chunks on the
   * target, and would otherwise write its repairs a few packets at a time. It is read back only
   * where a buffer is free or the oldest held chunk is idle (IDLE_OFFERS).
   */
  private hold(k: number, at: number, offset: number, bytes: Uint8Array, from: number, length: number): boolean {
    const chunk = this.chunks[k];
    if (this.holdSize === 0 || !chunk) return false;
    let h = this.held.get(k);
    if (at + length > chunk.streamLength) {
      // Not the chunk's bytes as the manifest lays it out: the chunk goes the way of the disk, all of it.
      if (h?.loading) h.loading.spill = true;
      else if (h) this.spill(h);
      return false;
    }
    if (!h) {
      if (this.queued + length > this.limit) return false;
      // Bytes of a chunk already finished: it failed its check, and comes again.
      this.finished.clear(k);
      h = this.onDisk.has(k) ? this.reload(k) : this.buffer(k);
      if (!h) return false;
    }
    h.touched = this.offers;
    if (h.loading) {
      h.loading.late.push({ at, offset, bytes: bytes.slice(from, from + length) });
      return true;
    }
    // Zeros where packets are still to come, should the chunk go to the target before it is whole: put
    // over the gaps as they open, not over each buffer first (packets come mostly in order, and a 1 MiB
    // fill per chunk was a second pass over every byte a PC receives).
    if (at > h.end) h.bytes.fill(0, h.end, at);
    h.bytes.set(bytes.subarray(from, from + length), at);
    if (at + length > h.end) h.end = at + length;
    return true;
  }

  /** A buffer for chunk k, which makes room for it by sending the oldest held chunk to the target; undefined if it cannot. */
  private buffer(k: number): Held | undefined {
    while (this.noFreeBuffer) {
      const oldest = this.oldestReady();
      if (!oldest) return undefined;
      this.spill(oldest);
    }
    const h: Held = { k, chunk: this.chunks[k]!, bytes: this.spareHolds.pop() ?? Buffer.allocUnsafeSlow(this.holdSize), end: 0, touched: this.offers };
    this.held.set(k, h);
    return h;
  }

  /** Start reading chunk k back from the target into a buffer, if memory has room (roomToLoad). */
  private reload(k: number): Held | undefined {
    const h = this.roomToLoad() ? this.buffer(k) : undefined;
    if (!h) return undefined;
    this.onDisk.clear(k);
    h.loading = { late: [], finish: false, spill: false };
    this.reloaded++;
    this.check({ kind: 'load', after: this.writesQueued, h });
    return h;
  }

  /** The held chunk that has been held longest and is not being read back. */
  private oldestReady(): Held | undefined {
    for (const h of this.held.values()) if (!h.loading) return h;
    return undefined;
  }

  /** Whether one more held chunk would take memory past HOLD. */
  private get noFreeBuffer(): boolean { return (this.held.size + 1) * this.holdSize > this.holdLimit; }

  /** Whether a chunk may be read back into memory: a buffer is free, or the oldest held chunk is idle. */
  private roomToLoad(): boolean {
    if (!this.noFreeBuffer) return true;
    const oldest = this.oldestReady();
    return oldest !== undefined && this.offers - oldest.touched > WriteQueue.IDLE_OFFERS;
  }

  /**
   * Chunk k's stream bytes [at, at+length) while the chunk is held and they were offered up to there, or
   * read back (ClientStorage.inMemory). Asked for a chunk that is on the target and not finished, this
   * reads it back into memory where there is room, for the next time.
   */
  inMemory(k: number, at: number, length: number): Uint8Array | undefined {
    const h = this.held.get(k);
    if (!h && this.holdSize > 0 && this.onDisk.has(k) && !this.finished.has(k)) this.reload(k);
    return h && !h.loading && at + length <= h.end ? h.bytes.subarray(at, at + length) : undefined;
  }

  /** Held chunk h's stream bytes as they stand, zeros where none was offered. */
  private stream(h: Held): Uint8Array {
    h.bytes.fill(0, h.end, h.chunk.streamLength);
    return h.bytes.subarray(0, h.chunk.streamLength);
  }

  /** Held chunk h goes to the target as it stands; the rest of its bytes follow it there (or it is read back into memory when they come: reload). */
  private spill(h: Held): void {
    this.held.delete(h.k);
    this.onDisk.set(h.k);
    this.spilled++;
    this.writeChunk(h.chunk, this.stream(h), true, (failed) => {
      this.recycle(h.bytes);
      for (const f of failed) this.on.writeError(f.offset, f.length, f.error);
    });
  }

  /**
   * Write `bytes` over `chunk`'s extents from the front, a write per extent; `done` once they have all
   * landed, with those that failed. `holes`: packets still to come land over these bytes, after them.
   */
  private writeChunk(chunk: Chunk, bytes: Uint8Array, holes: boolean, done: (failed: { offset: number; length: number; error: Error }[]) => void): void {
    const failed: { offset: number; length: number; error: Error }[] = [];
    const pieces = frontPieces(chunk.extents, bytes.length);
    let left = pieces.length;
    for (const p of pieces) {
      this.queued += p.length;
      this.writes.push({
        n: this.writesQueued++, offset: p.offset, span: p.length, bytes: p.length, buffers: [bytes.subarray(p.at, p.at + p.length)], slabs: [], slab: undefined, runStart: 0, runEnd: 0,
        fillStart: holes ? p.offset : Infinity, fillEnd: holes ? p.offset + p.length : -Infinity,
        answer: (error) => {
          if (error) failed.push({ offset: p.offset, length: p.length, error });
          if (--left === 0) done(failed);
        },
      });
    }
    this.startWrites();
  }

  private recycle(b: Buffer): void {
    if (b.length === this.holdSize && (this.spareHolds.length + 1) * this.holdSize <= this.holdLimit) this.spareHolds.push(b);
  }

  /** Zeros over the `hole` bytes after the end of write w. */
  private fill(w: Write, hole: number): void {
    this.closeRun(w);
    const at = w.offset + w.span;
    w.buffers.push(WriteQueue.ZEROS.subarray(0, hole));
    w.fillStart = Math.min(w.fillStart, at);
    w.fillEnd = at + hole;
    w.span += hole;
    this.holesFilled++;
  }

  private closeRun(w: Write): void {
    if (w.slab && w.runEnd > w.runStart) w.buffers.push(w.slab.bytes.subarray(w.runStart, w.runEnd));
    w.slab = undefined;
  }

  /** A slab with room for `length` bytes: a spare one, or a new one. */
  private nextSlab(length: number): void {
    if (this.slab.holds === 0 && this.slab.bytes.length === WriteQueue.SLAB) this.spare.push(this.slab);
    const reuse = length <= WriteQueue.SLAB ? this.spare.pop() : undefined;
    if (reuse) this.slab = reuse;
    else {
      this.slab = { bytes: Buffer.allocUnsafeSlow(Math.max(WriteQueue.SLAB, length)), holds: 0 };
      this.slabs++;
    }
    this.slabUsed = 0;
  }

  /** Write w is done with its slabs. */
  private release(w: Write): void {
    for (const s of w.slabs) if (--s.holds === 0 && s !== this.slab && s.bytes.length === WriteQueue.SLAB) this.spare.push(s);
    w.slabs = [];
  }

  finish(k: number, chunk: Chunk): void {
    this.finished.set(k);
    const h = this.held.get(k);
    if (!h) {
      this.readBack++;
      return this.check({ kind: 'finish', after: this.writesQueued, k, chunk });
    }
    if (h.loading) {
      h.loading.finish = true;
      return;
    }
    this.held.delete(k);
    this.placing++;
    void this.place(h);
  }

  /** Check held chunk h where it is, unpack it if packed, and write its raw bytes in place. */
  private async place(h: Held): Promise<void> {
    const u = await unpack(h.chunk, this.stream(h));
    const done = (): void => { this.placing--; this.recycle(h.bytes); };
    if (!u.ok) {
      done();
      return this.on.chunkChecked(h.k, false, u.reason);
    }
    // A read right after a write comes from the page cache: it would show what was handed over,
    // which is what was just matched. A write that fails is a write error, as any other.
    this.writeChunk(h.chunk, u.raw, false, (failed) => {
      done();
      if (failed.length === 0) {
        this.checkedInMemory++;
        return this.on.chunkChecked(h.k, true, '');
      }
      for (const f of failed) this.on.writeError(f.offset, f.length, f.error);
    });
  }

  flush(zeros: Extent[]): void { this.check({ kind: 'flush', after: this.writesQueued, zeros }); }

  private check(c: Check): void {
    this.checks.push(c);
    // A check waits for the writes before it: a small one among them waits for company no longer.
    this.startWrites();
    this.kickChecks();
  }

  /** Resolves when every write and check queued so far has run. */
  async drain(): Promise<void> {
    for (;;) {
      this.startWrites();
      if (this.inFlight === 0 && !this.checking && this.placing === 0 && this.writes.length === 0 && this.checks.length === 0) return;
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  /** The last write starts at the end of this turn (once the current burst has been queued), or after BATCH_WAIT if it is small and alone. */
  private kickWrites(): void {
    if (this.writes.length === 0 || this.tailSoon) return;
    if (this.lonelyWrite) {
      this.waiting ??= setTimeout(() => { this.waiting = undefined; this.startWrites(); }, WriteQueue.BATCH_WAIT);
      return;
    }
    this.tailSoon = true;
    setImmediate(() => { this.tailSoon = false; this.startWrites(); });
  }

  private get lonelyWrite(): boolean {
    return this.writes.length === 1 && this.checks.length === 0 && this.writes[0]!.span < WriteQueue.BATCH;
  }

  /**
   * Start the writes queued, in order: every one, or (keepTail) every one but the last, which may
   * still grow and keeps its wait. A write that reaches into zeros still under way waits for them
   * (and the writes after it wait too), so that the zeros cannot land over it.
   */
  private startWrites(keepTail = false): void {
    if (!keepTail && this.waiting) { clearTimeout(this.waiting); this.waiting = undefined; }
    const keep = keepTail ? 1 : 0;
    while (this.writes.length > keep && this.inFlight < WriteQueue.IN_FLIGHT && !this.overZeros(this.writes[0]!)) this.start(this.writes.shift()!);
  }

  private overZeros(w: Write): boolean {
    for (const f of this.filling) if (f.fillStart < w.offset + w.span && w.offset < f.fillEnd) return true;
    return false;
  }

  private start(w: Write): void {
    this.closeRun(w);
    this.inFlight++;
    if (w.fillEnd > w.fillStart) this.filling.push(w);
    this.target.writev(w.offset, w.buffers).then(
      () => { this.written += w.bytes; this.landed(w); w.answer?.(undefined); },
      (e: Error) => {
        if (w.answer) w.answer(e); else this.on.writeError(w.offset, w.span, e);
        this.landed(w);
      },
    );
  }

  private landed(w: Write): void {
    if (w.fillEnd > w.fillStart) this.filling.splice(this.filling.indexOf(w), 1);
    this.release(w);
    this.queued -= w.bytes;
    this.inFlight--;
    if (w.n === this.writesDone) {
      this.writesDone++;
      while (this.landedEarly.delete(this.writesDone)) this.writesDone++;
    } else this.landedEarly.add(w.n);
    this.startWrites(true);
    this.kickWrites();
    this.kickChecks();
  }

  /**
   * Read held chunk h's stream back from the target (every write queued before it has landed), put
   * the bytes offered meanwhile over it, and hold it as any other; or, where the read fails, let it
   * go the way of the disk again, with those bytes.
   */
  private async load(h: Held): Promise<void> {
    const loading = h.loading!;
    // Read into the buffer where the target can (a chunk of one extent), else copied there.
    const got = await gather(this.target, h.chunk.extents, h.chunk.streamLength, h.bytes).catch(() => undefined);
    h.loading = undefined;
    if (got) {
      if (got.buffer !== h.bytes.buffer) h.bytes.set(got);
      for (const l of loading.late) h.bytes.set(l.bytes, l.at);
      h.end = h.chunk.streamLength;
      if (loading.spill) this.spill(h);
    } else {
      this.held.delete(h.k);
      this.onDisk.set(h.k);
      this.recycle(h.bytes);
      // Bytes the limit refuses here are as lost on the target: the read-back check finds the chunk wrong, and it comes again.
      for (const l of loading.late) if (this.queued + l.bytes.length <= this.limit) this.queue(l.offset, l.bytes, 0, l.bytes.length, l.offset);
    }
    if (loading.finish) this.finish(h.k, h.chunk);
  }

  private kickChecks(): void {
    if (this.checking || !this.checks[0] || this.checks[0].after > this.writesDone) return;
    this.checking = true;
    void this.runChecks();
  }

  private async runChecks(): Promise<void> {
    for (let c = this.checks[0]; c && c.after <= this.writesDone; c = this.checks[0]) {
      this.checks.shift();
      if (c.kind === 'finish') {
        if (this.scratch.length < c.chunk.streamLength) this.scratch = Buffer.allocUnsafe(c.chunk.streamLength);
        const r = await finishChunk(this.target, c.chunk, this.scratch);
        this.on.chunkChecked(c.k, r.ok, r.ok ? '' : r.reason);
      } else if (c.kind === 'load') {
        await this.load(c.h);
      } else {
        try {
          this.zeroed += await zeroExtents(this.target, c.zeros);
          await this.target.sync();
          this.on.flushed();
        } catch (e) {
          this.on.flushFailed(e as Error);
        }
      }
    }
    this.checking = false;
  }
}
