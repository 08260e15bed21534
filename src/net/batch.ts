// Batched datagrams through the C library (node:ffi, Node 26, experimental), for the two hot
// paths. Node's dgram costs about 7-9 us of CPU per datagram on either side before any work
// is done (a callback, a Buffer and an address object per datagram received; a request
// object and a system call per datagram sent): most of a node's budget at line rate.
//
// Receiving, recvmmsg(2) takes up to BATCH datagrams per system call into buffers allocated
// once. libuv still watches the socket: its callback delivers the first datagram of a wake-up
// as usual, and then drain() takes what waits (a few milliseconds of traffic at most). While
// a stream lasts, a Poller takes the socket from libuv and empties it on a timer, and the kernel
// may then hand over datagrams of one flow coalesced (UDP_GRO): a message of up to 64 KiB that
// holds several datagrams of one size, which the reader cuts apart again.
//
// Sending, add() copies each datagram into a slot and flush() hands them all to sendmmsg(2)
// at once (the driver flushes after each turn of its machine).
//
// Both need the socket's descriptor, which dgram keeps internal; without it or node:ffi,
// for() says so (undefined) and dgram alone carries the traffic.

import type dgram from 'node:dgram';
import { constants as osConstants } from 'node:os';
import type { Endpoint } from '../session/types.ts';

/** Datagrams per system call. */
const BATCH = 64;
/** Datagrams per drain() at most: about 6 ms of a 1 Gbit/s stream of full datagrams. */
export const DRAIN_LIMIT = 8 * BATCH;
/** Bytes per message slot: the largest UDP message, as coalesced datagrams arrive (UDP_GRO). */
const SLOT = 65536;
/** struct mmsghdr on x86-64/aarch64 Linux: msghdr (56 bytes) then msg_len (4), padded to 64. */
const MMSGHDR = 64;
const IOVEC = 16;
const SOCKADDR_IN = 16;
/** CMSG_SPACE(sizeof(int)): a control message header (16 bytes) and an int, padded to 8. */
const CMSG = 24;
const CMSG_SPACE = BigInt(CMSG);
/** Datagrams of one slot whose views are kept for reuse (a coalesced message holds at most 44 full ones). */
const VIEWS_PER_SLOT = 48;
const MSG_DONTWAIT = 0x40;
const AF_INET = 2;
const IPPROTO_UDP = 17, UDP_GRO = 104;

type RecvMmsg = (fd: number, vec: bigint, vlen: number, flags: number, timeout: bigint) => number;
type SendMmsg = (fd: number, vec: bigint, vlen: number, flags: number) => number;
type SetSockOpt = (fd: number, level: number, name: number, value: bigint, length: number) => number;
/** The C library's calls batch.ts makes (tests may stand in for some). */
export interface Ffi { recvmmsg: RecvMmsg; sendmmsg: SendMmsg; setsockopt: SetSockOpt; errno(): number; pointer(b: ArrayBuffer): bigint }

let loaded: Ffi | null | undefined;

/** The calls, from the C library already in this process, or null where node:ffi is missing. */
export function syscalls(): Ffi | null {
  if (loaded !== undefined) return loaded;
  loaded = null;
  if (process.platform !== 'linux' || (process.arch !== 'x64' && process.arch !== 'arm64')) return loaded;
  try {
    const f = process.getBuiltinModule('node:ffi') as typeof import('node:ffi') | undefined;
    if (!f) return loaded;
    const { functions } = f.dlopen(null, {
      recvmmsg: { arguments: ['int32', 'pointer', 'uint32', 'int32', 'pointer'], return: 'int32' },
      sendmmsg: { arguments: ['int32', 'pointer', 'uint32', 'int32'], return: 'int32' },
      setsockopt: { arguments: ['int32', 'int32', 'int32', 'pointer', 'uint32'], return: 'int32' },
      __errno_location: { arguments: [], return: 'pointer' },
    });
    const where = functions.__errno_location as () => bigint;
    loaded = {
      recvmmsg: functions.recvmmsg as RecvMmsg, sendmmsg: functions.sendmmsg as SendMmsg, setsockopt: functions.setsockopt as SetSockOpt,
      errno: () => f.getInt32(where()), pointer: (b) => f.getRawPointer(b),
    };
  } catch {
    loaded = null;
  }
  return loaded;
}

/** What dgram keeps of a bound socket in its internal state: libuv's handle. */
interface Handle { fd?: unknown; recvStart?: unknown; recvStop?: unknown }
const handleOf = (s: dgram.Socket): Handle | undefined => {
  const key = Object.getOwnPropertySymbols(s).find((k) => k.description === 'state symbol');
  return key ? (s as unknown as Record<symbol, { handle?: Handle } | undefined>)[key]?.handle : undefined;
};

/** The descriptor of a bound dgram socket, or -1. */
function descriptor(s: dgram.Socket): number {
  const fd = handleOf(s)?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : -1;
}

/**
 * Called for each datagram of a batch. `bytes` is a view into a buffer that the next batch
 * overwrites: whatever must outlive the call has to be copied.
 */
export type BatchReceive = (bytes: Uint8Array, from: Endpoint) => void;

/** Whether a datagram of `length` bytes could begin at `bytes[at]` (a protocol's magic, say). */
export type Begins = (bytes: Uint8Array, at: number, length: number) => boolean;

export class BatchReader {
  private readonly fd: number;
  private readonly call: RecvMmsg;
  private readonly vec: bigint;
  private readonly data: Uint8Array;
  private readonly meta: DataView;
  private readonly names: Uint8Array;
  /** The last sender seen, so a stream from one master makes no new strings or objects. */
  private lastAddr = -1;
  private lastPort = -1;
  private lastFrom: Endpoint = { address: '', port: 0 };
  private readonly views: (Uint8Array | undefined)[] = new Array<Uint8Array | undefined>(BATCH * VIEWS_PER_SLOT).fill(undefined);
  private readonly setsockopt: SetSockOpt;
  /** Where the control messages start in `meta`; the int setsockopt reads, and its address. */
  private readonly cmsgAt: number;
  private readonly flag: DataView;
  private readonly flagAt: bigint;
  /** Whether the kernel may coalesce datagrams (UDP_GRO is on). */
  private coalescing = false;
  /** Messages asked for per recvmmsg: fewer while they come coalesced. */
  private vlen = BATCH;
  /** The datagram size the kernel last reported for a coalesced message, and that message's sender. */
  private segment = 0;
  private segmentAddr = -1;
  private segmentPort = -1;
  /**
   * Coalescing stopped and the socket was not yet found empty since: a message coalesced before it
   * stopped may still wait, and the kernel reports datagram sizes only while UDP_GRO is on.
   */
  private settling = false;
  /** Datagrams taken by recvmmsg, the system calls that took them, and the messages that held several. */
  datagrams = 0;
  calls = 0;
  coalesced = 0;
  /** System calls that found the socket empty. */
  empty = 0;

  /**
   * Tells a datagram that came while coalescing stopped from several coalesced before (see coalesce);
   * without it, a message longer than the last size reported is always cut.
   */
  private readonly begins: Begins | undefined;

  /** A reader for `s`, or undefined where batching is not available (dgram alone then). */
  static for(s: dgram.Socket, begins?: Begins): BatchReader | undefined {
    const f = syscalls();
    const fd = descriptor(s);
    return f && fd >= 0 ? new BatchReader(fd, f, begins) : undefined;
  }

  private constructor(fd: number, f: Ffi, begins: Begins | undefined) {
    this.begins = begins;
    this.fd = fd;
    this.call = f.recvmmsg;
    this.setsockopt = f.setsockopt;
    // The slots are touched only as far as messages fill them: 4 MiB of address space, little of it in use
    // while datagrams come one by one.
    const data = new ArrayBuffer(BATCH * SLOT);
    const meta = new ArrayBuffer(BATCH * (MMSGHDR + IOVEC + SOCKADDR_IN + CMSG) + 8);
    this.data = new Uint8Array(data);
    this.meta = new DataView(meta);
    const iovAt = BATCH * MMSGHDR, nameAt = iovAt + BATCH * IOVEC, cmsgAt = nameAt + BATCH * SOCKADDR_IN, flagAt = cmsgAt + BATCH * CMSG;
    this.names = new Uint8Array(meta, nameAt, BATCH * SOCKADDR_IN);
    const d = f.pointer(data), m = f.pointer(meta);
    for (let i = 0; i < BATCH; i++) {
      const h = i * MMSGHDR, iov = iovAt + i * IOVEC;
      this.meta.setBigUint64(h, m + BigInt(nameAt + i * SOCKADDR_IN), true); // msg_name
      this.meta.setUint32(h + 8, SOCKADDR_IN, true); // msg_namelen
      this.meta.setBigUint64(h + 16, m + BigInt(iov), true); // msg_iov
      this.meta.setBigUint64(h + 24, 1n, true); // msg_iovlen
      this.meta.setBigUint64(h + 32, m + BigInt(cmsgAt + i * CMSG), true); // msg_control
      this.meta.setBigUint64(iov, d + BigInt(i * SLOT), true); // iov_base
      this.meta.setBigUint64(iov + 8, BigInt(SLOT), true); // iov_len
    }
    this.flag = new DataView(meta, flagAt, 4);
    this.flagAt = m + BigInt(flagAt);
    this.cmsgAt = cmsgAt;
    // `data` and `meta` live as long as the views over them, which live as long as the reader.
    this.vec = m;
  }

  /**
   * Let the kernel coalesce datagrams of one flow into one message (UDP_GRO, Linux 5.0), or stop it;
   * whether it now does. Only while nothing but this reader takes the socket's datagrams: dgram would
   * take a coalesced message for one datagram. A message coalesced before it stops is still one, and
   * the kernel no longer says so: until a drain finds the socket empty, each message is cut by a size
   * at which `begins` finds a datagram's start at every cut, if there is one (coalesced datagrams are
   * all of one size, save a shorter last one; see leftover), and is otherwise one datagram (a longer
   * datagram of another kind from the same sender, such as a coded repair after DATA). The caller
   * drains the socket after turning it off, before dgram reads again.
   */
  coalesce(on: boolean): boolean {
    if (on === this.coalescing) return on;
    this.flag.setInt32(0, on ? 1 : 0, true);
    if (this.setsockopt(this.fd, IPPROTO_UDP, UDP_GRO, this.flagAt, 4) !== 0) return this.coalescing;
    this.coalescing = on;
    this.settling = !on;
    this.vlen = BATCH;
    return on;
  }

  /**
   * Take the datagrams waiting on the socket, up to DRAIN_LIMIT, handing each to `on`; how many there
   * were. The rest wait for the next call: libuv reports the socket readable again, or the poller's
   * next tick comes, and timers run in between. Without a limit a client that fell behind (its
   * code not yet compiled, at the start of a stream) kept reading for as long as datagrams came
   * and sent no ACK meanwhile. In traces of the bench's "1, none", the master had the first ACK
   * 42, 83 and 95 ms after its first datagram, twice with its window full; with the limit, 41-83
   * ms (eight runs, median 55).
   */
  drain(on: BatchReceive): number {
    const before = this.datagrams;
    while (this.datagrams - before < DRAIN_LIMIT) {
      // msg_namelen and msg_controllen are in/out: the kernel writes back the lengths it used.
      const vlen = this.vlen, control = this.coalescing ? CMSG_SPACE : 0n;
      for (let i = 0; i < vlen; i++) {
        this.meta.setUint32(i * MMSGHDR + 8, SOCKADDR_IN, true);
        this.meta.setBigUint64(i * MMSGHDR + 40, control, true);
      }
      const got = this.call(this.fd, this.vec, vlen, MSG_DONTWAIT, 0n);
      if (got <= 0) { // EAGAIN: empty (any other error is dgram's to report)
        this.empty++;
        this.settled();
        break;
      }
      this.calls++;
      let taken = 0;
      for (let i = 0; i < got; i++) {
        const len = Math.min(this.meta.getUint32(i * MMSGHDR + 56, true), SLOT), from = this.from(i);
        const size = this.coalescing ? this.segmentSize(i, len) : this.settling ? this.leftover(i, len) : len;
        if (size >= len) {
          on(this.view(i, 0, 0, len), from);
          taken++;
          continue;
        }
        this.coalesced++;
        for (let at = 0, k = 0; at < len; at += size, k++, taken++) on(this.view(i, k, at, Math.min(size, len - at)), from);
      }
      this.datagrams += taken;
      // About BATCH datagrams a call: coalesced messages hold many each.
      if (this.coalescing) this.vlen = Math.max(1, Math.min(BATCH, Math.round((BATCH * got) / taken)));
      if (got < vlen) {
        this.settled();
        break;
      }
    }
    return this.datagrams - before;
  }

  /** The socket was found empty: nothing coalesced waits on it any more once coalescing has stopped. */
  private settled(): void {
    if (!this.coalescing) this.settling = false;
  }

  /**
   * While settling: the size to cut message i, of `len` bytes, by (`len`: it is one datagram). First
   * the size last reported for its sender; then, where `begins` is given, the least size at which a
   * datagram begins at every cut: a message coalesced at a size the kernel never reported (another
   * sender's, or another kind of datagram from the same one, coalesced just before coalescing
   * stopped). Before this search such a message was handed over whole, to be dropped for its length:
   * the likely cause, never caught in the act, of 8 such drops at two PCs in the 219 PC runs of the
   * bench's full set of 2026-12-07.
   */
  private leftover(i: number, len: number): number {
    const at = i * SLOT, size = this.segment;
    if (len > size && this.lastAddr === this.segmentAddr && this.lastPort === this.segmentPort && this.cutsAt(at, len, size)) return size;
    if (this.begins) for (let p = 1; p < len; p++) if (this.cutsAt(at, len, p)) return p;
    return len;
  }

  /** Whether `begins` finds a datagram at every cut of the `len` bytes from data[at] by `size` (always, without it). */
  private cutsAt(at: number, len: number, size: number): boolean {
    if (this.begins) for (let k = 0; k < len; k += size) if (!this.begins(this.data, at + k, Math.min(size, len - k))) return false;
    return true;
  }

  /** The size of the datagrams coalesced into message i (UDP_GRO's control message), or `len` if it holds one. */
  private segmentSize(i: number, len: number): number {
    const c = this.cmsgAt + i * CMSG;
    // cmsg_len (8 bytes), cmsg_level, cmsg_type, then the int.
    if (this.meta.getBigUint64(i * MMSGHDR + 40, true) < 20n || this.meta.getInt32(c + 8, true) !== IPPROTO_UDP || this.meta.getInt32(c + 12, true) !== UDP_GRO) return len;
    const size = this.meta.getInt32(c + 16, true);
    if (size <= 0 || size >= len) return len;
    this.segment = size;
    this.segmentAddr = this.lastAddr;
    this.segmentPort = this.lastPort;
    return size;
  }

  /**
   * Datagram k of slot i: its `len` bytes from `at`. A stream's datagrams are mostly of one size, so
   * each place keeps its last view and hands it out again while it starts and ends there (a view per
   * datagram was a typed-array allocation for the collector, 741,000 per GiB). Where coalesced
   * datagrams change size (the NAKs of another PC), the last of a message may be as long as a view
   * kept for that place and start elsewhere.
   */
  private view(i: number, k: number, at: number, len: number): Uint8Array {
    const start = i * SLOT + at;
    if (k >= VIEWS_PER_SLOT) return this.data.subarray(start, start + len);
    const j = i * VIEWS_PER_SLOT + k, v = this.views[j];
    if (v !== undefined && v.length === len && v.byteOffset === start) return v;
    return this.views[j] = this.data.subarray(start, start + len);
  }

  /** The sender of slot i (sockaddr_in: family, port and address in network order). */
  private from(i: number): Endpoint {
    const n = this.names, o = i * SOCKADDR_IN;
    const port = (n[o + 2]! << 8) | n[o + 3]!;
    const addr = ((n[o + 4]! << 24) | (n[o + 5]! << 16) | (n[o + 6]! << 8) | n[o + 7]!) >>> 0;
    if (addr !== this.lastAddr || port !== this.lastPort) {
      this.lastAddr = addr;
      this.lastPort = port;
      this.lastFrom = { address: `${addr >>> 24}.${(addr >>> 16) & 255}.${(addr >>> 8) & 255}.${addr & 255}`, port };
    }
    return this.lastFrom;
  }
}

/** Milliseconds between reads of a polled socket, while ticks find many datagrams; at most POLL_MAX_MS while they find few. */
const POLL_MS = 1;
const POLL_MAX_MS = 4;
/**
 * A tick that reads fewer datagrams than this doubles the wait before the next one (up to
 * POLL_MAX_MS); one that reads more than four times as many halves it. A stream of 100 Mbit/s
 * (about 9 full datagrams a millisecond) is read every 4 ms, a quarter of the wake-ups for the
 * same datagrams; one of 1 Gbit/s every millisecond.
 */
const SPARSE = 32;
/** Milliseconds after a read in which catchUp() does not read again (a run right after a tick's datagrams, or two runs in a row). */
const CAUGHT_UP = 0.1;

/**
 * Polling while a stream lasts, as NAPI does for a network card. The first datagram of a burst
 * wakes the socket through libuv as usual; then libuv stops reading it, and a timer empties it
 * every POLL_MS with `read` (recvmmsg), in batches of about a millisecond of traffic (a slow
 * stream less often, SPARSE), where libuv would wake for every few datagrams and deliver the first
 * of them through dgram. The first tick that finds the socket empty hands it back to libuv.
 * Datagrams wait up to a tick, and the socket's receive buffer must hold what arrives while a
 * timer is late: the caller decides whether it is large enough. Several sockets that carry one
 * stream (add()) are polled together: `read` empties them all. `coalesce` is told when polling
 * starts (true) and when a tick finds the sockets empty (false): only while polling lasts may the
 * kernel coalesce datagrams (BatchReader.coalesce). Once it is told to stop, `read` empties the
 * sockets once more: if that finds datagrams, the stream goes on, coalesced again; if not, libuv
 * reads.
 */
export class Poller {
  private readonly handles: Array<{ start: () => number; stop: () => number }> = [];
  /** Empties the sockets (`all`: every one of them, also those a tick may pass over, for catchUp). */
  private readonly read: (all: boolean) => number;
  private timer: NodeJS.Timeout | undefined;
  /** Milliseconds to the next tick; when the last tick read. */
  private wait = POLL_MS;
  private readAt = -Infinity;
  /** Times polling began, and ticks that read the socket. */
  spells = 0;
  ticks = 0;

  /** A poller for `s`, or undefined where dgram's handle does not offer to stop and start reading. */
  static for(s: dgram.Socket, read: (all: boolean) => number, coalesce?: (on: boolean) => void): Poller | undefined {
    const p = new Poller(read, coalesce);
    return p.add(s) ? p : undefined;
  }

  private readonly coalesce: ((on: boolean) => void) | undefined;

  private constructor(read: (all: boolean) => number, coalesce: ((on: boolean) => void) | undefined) {
    this.read = read;
    this.coalesce = coalesce;
  }

  /** Poll `s` too (`read` must empty it as well); false where its handle does not offer it. */
  add(s: dgram.Socket): boolean {
    const h = handleOf(s);
    const start = h?.recvStart, stop = h?.recvStop;
    if (typeof start !== 'function' || typeof stop !== 'function') return false;
    this.handles.push({ start: () => start.call(h) as number, stop: () => stop.call(h) as number });
    s.once('close', () => this.end());
    return true;
  }

  get polling(): boolean { return this.timer !== undefined; }

  /**
   * While polling, read what waits now rather than at the next tick (up to POLL_MAX_MS away): for a
   * caller about to decide from what has come (which packets to ask for again). Right after a tick
   * or another catch-up (CAUGHT_UP) the sockets are not read again.
   */
  catchUp(): void {
    if (!this.timer || performance.now() - this.readAt < CAUGHT_UP) return;
    this.read(true);
    this.readAt = performance.now();
  }

  /** A datagram came through libuv: poll from now on, while datagrams keep coming. */
  busy(): void {
    if (this.timer) return;
    if (this.handles.some((h) => h.stop() !== 0)) return this.resume();
    this.spells++;
    this.coalesce?.(true);
    this.wait = POLL_MS;
    this.timer = setTimeout(this.tick, this.wait);
  }

  private readonly tick = (): void => {
    this.ticks++;
    let n = this.read(false);
    // A tick may pass over sockets found empty of late: the stream is over only if none has datagrams.
    if (n === 0 && this.timer) n = this.read(true);
    this.readAt = performance.now();
    if (n === 0 && this.coalesce && this.timer) {
      // What the kernel coalesced before it stopped is taken here, not by dgram; datagrams that
      // came meanwhile mean the stream goes on.
      this.coalesce(false);
      n = this.read(true);
      if (n > 0) this.coalesce(true);
    }
    // A read may have closed a socket, which ends polling.
    if (!this.timer) return;
    if (n === 0) {
      this.end();
      return this.resume();
    }
    if (n < SPARSE) this.wait = Math.min(2 * this.wait, POLL_MAX_MS);
    else if (n > 4 * SPARSE) this.wait = Math.max(this.wait / 2, POLL_MS);
    this.timer = setTimeout(this.tick, this.wait);
  };

  /** libuv reads the sockets again. */
  private resume(): void {
    for (const h of this.handles) h.start();
  }

  private end(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }
}

const EAGAIN = 11, EINTR = 4, EIO = 5, EINVAL = 22, ENOBUFS = 105;
const UDP_SEGMENT = 103;
/** Bytes of one message: a UDP datagram's limit (65535 less IPv4 and UDP headers), rounded down. */
const MESSAGE = 65507;

/**
 * Datagrams sent in batches by sendmmsg: to where a connected socket is connected, or each to the
 * address add() names (an unconnected socket).
 *
 * With `segment` (the size of a full DATA datagram), consecutive full datagrams share one
 * message, and the kernel cuts it into datagrams of that size (UDP segmentation offload,
 * UDP_SEGMENT, Linux 4.18): the stack is walked once per message, not once per datagram.
 * What goes on the wire is the same datagrams; a NIC without the offload has them cut in
 * software just before its driver. Where the kernel or the route refuses, the writer falls
 * back to a message per datagram.
 */
export class BatchWriter {
  private readonly fd: number;
  private readonly f: Ffi;
  private readonly vec: bigint;
  private readonly data: Uint8Array;
  private readonly meta: DataView;
  private readonly iovAt = BATCH * MMSGHDR;
  private readonly nameAt = BATCH * (MMSGHDR + IOVEC);
  private readonly metaAddress: bigint;
  /** Each message's destination (undefined: the connected peer). */
  private readonly dests: (Endpoint | undefined)[] = new Array<Endpoint | undefined>(BATCH).fill(undefined);
  /** The size of a full datagram, and how many share a message (1: no segmentation). */
  private readonly segment: number;
  /** Whom the datagrams go to, as an error names it. */
  private readonly whom: string;
  private perMessage = 1;
  /** Messages [head, count) are filled and not yet taken by the kernel; their datagrams and bytes. */
  private head = 0;
  private count = 0;
  private readonly datagrams = new Uint8Array(BATCH);
  private readonly bytes = new Int32Array(BATCH);
  /** Whether the last message can take another datagram. */
  private open = false;
  /** Datagrams taken out of their messages when segmentation was refused, still to go. */
  private backlog: Array<{ bytes: Uint8Array; to: Endpoint | undefined }> = [];
  /** Datagrams the kernel took, and the system calls that gave them. */
  sent = 0;
  calls = 0;

  /**
   * A writer for the socket `s`, or undefined where batching is not available. `segment`: the size
   * of a full datagram, to segment (0: a message per datagram).
   */
  static for(s: dgram.Socket, segment = 0, calls?: Partial<Ffi>, whom = 'the group'): BatchWriter | undefined {
    const f = syscalls();
    const fd = descriptor(s);
    return f && fd >= 0 ? new BatchWriter(fd, { ...f, ...calls }, segment, whom) : undefined;
  }

  private constructor(fd: number, f: Ffi, segment: number, whom: string) {
    this.whom = whom;
    this.fd = fd;
    this.f = f;
    this.segment = segment;
    const data = new ArrayBuffer(BATCH * MESSAGE);
    const meta = new ArrayBuffer(BATCH * (MMSGHDR + IOVEC + SOCKADDR_IN) + 4);
    this.data = new Uint8Array(data);
    this.meta = new DataView(meta);
    const d = f.pointer(data), m = f.pointer(meta);
    this.metaAddress = m;
    for (let i = 0; i < BATCH; i++) {
      const h = i * MMSGHDR, iov = this.iovAt + i * IOVEC;
      // msg_name stays NULL (the connected peer) until add() names a destination.
      this.meta.setBigUint64(h + 16, m + BigInt(iov), true); // msg_iov
      this.meta.setBigUint64(h + 24, 1n, true); // msg_iovlen
      this.meta.setBigUint64(iov, d + BigInt(i * MESSAGE), true); // iov_base
    }
    this.vec = m;
    if (segment > 0 && MESSAGE / segment >= 2 && this.setSegment(segment)) this.perMessage = Math.min(Math.floor(MESSAGE / segment), 64);
  }

  private setSegment(size: number): boolean {
    const opt = BATCH * (MMSGHDR + IOVEC + SOCKADDR_IN);
    this.meta.setInt32(opt, size, true);
    return this.f.setsockopt(this.fd, IPPROTO_UDP, UDP_SEGMENT, this.vec + BigInt(opt), 4) === 0;
  }

  /** Datagrams per message (1: each datagram is a message of its own). */
  get segmenting(): number { return this.perMessage; }

  /** Datagrams added and not yet taken by the kernel. */
  get waiting(): number {
    let n = this.backlog.length;
    for (let k = this.head; k < this.count; k++) n += this.datagrams[k]!;
    return n;
  }

  /** Whether add() has room (flushing first when every message is filled). */
  get ready(): boolean { return this.backlog.length === 0 && (this.count < BATCH || this.open || this.flush()); }

  /**
   * Queue one datagram (its parts, copied), to `to` (an IPv4 address; undefined: the connected peer).
   * Only when `ready`.
   */
  add(parts: readonly Uint8Array[], to?: Endpoint): void {
    let length = 0;
    for (let i = 0; i < parts.length; i++) length += parts[i]!.length;
    if (length > MESSAGE) throw new RangeError(`a datagram of ${length} bytes`);
    // A message holds full datagrams to one destination, and may end with one shorter datagram.
    const join = this.open && length <= this.segment && this.dests[this.count - 1] === to;
    if (!join && this.count === BATCH) throw new RangeError('add() without ready: every message waits for the socket');
    const k = join ? this.count - 1 : this.count++;
    if (!join) { this.datagrams[k] = 0; this.bytes[k] = 0; this.address(k, to); }
    let at = k * MESSAGE + this.bytes[k]!;
    for (let i = 0; i < parts.length; i++) { const p = parts[i]!; this.data.set(p, at); at += p.length; }
    this.bytes[k] = this.bytes[k]! + length;
    this.datagrams[k] = this.datagrams[k]! + 1;
    this.open = this.perMessage > 1 && length === this.segment && this.datagrams[k]! < this.perMessage;
    // iov_len: its upper half stays zero (a message is under 64 KiB), and a BigInt per datagram would be garbage.
    this.meta.setUint32(this.iovAt + k * IOVEC + 8, this.bytes[k]!, true);
  }

  /** Message k goes to `to` (undefined: msg_name NULL, the connected peer). */
  private address(k: number, to: Endpoint | undefined): void {
    if (this.dests[k] === to) return;
    this.dests[k] = to;
    const h = k * MMSGHDR;
    if (!to) {
      this.meta.setBigUint64(h, 0n, true);
      this.meta.setUint32(h + 8, 0, true);
      return;
    }
    const at = this.nameAt + k * SOCKADDR_IN;
    const ip = to.address.split('.').map(Number);
    if (ip.length !== 4 || ip.some((x) => !(x >= 0 && x <= 255))) throw new RangeError(`not an IPv4 address: ${to.address}`);
    this.meta.setUint16(at, AF_INET, true); // sin_family, host order
    this.meta.setUint16(at + 2, to.port, false); // sin_port, network order
    for (let i = 0; i < 4; i++) this.meta.setUint8(at + 4 + i, ip[i]!);
    this.meta.setBigUint64(h, this.metaAddress + BigInt(at), true); // msg_name
    this.meta.setUint32(h + 8, SOCKADDR_IN, true); // msg_namelen
  }

  /** Hand what waits to the kernel; true when nothing is left waiting. */
  flush(): boolean {
    this.open = false;
    for (;;) {
      while (this.head < this.count) {
        const n = this.f.sendmmsg(this.fd, this.vec + BigInt(this.head * MMSGHDR), this.count - this.head, MSG_DONTWAIT);
        if (n < 0) {
          const e = this.f.errno();
          if (e === EINTR) continue;
          // The socket's queue is full: the datagrams wait here, and the driver tries again shortly.
          if (e === EAGAIN || e === ENOBUFS) return false;
          // The route cannot segment (a device without checksum offload, say): a datagram per message from now on.
          if ((e === EIO || e === EINVAL) && this.perMessage > 1) { this.unsegment(); continue; }
          throw new Error(`cannot send to ${this.whom}: ${errnoName(e)}`);
        }
        this.calls++;
        for (let k = this.head; k < this.head + n; k++) this.sent += this.datagrams[k]!;
        this.head += n;
      }
      this.head = this.count = 0;
      if (this.backlog.length === 0) return true;
      while (this.backlog.length > 0 && this.count < BATCH) { const d = this.backlog.shift()!; this.add([d.bytes], d.to); }
    }
  }

  /** Stop segmenting: the datagrams of the messages still waiting go one by one. */
  private unsegment(): void {
    this.setSegment(0);
    this.perMessage = 1;
    const split: Array<{ bytes: Uint8Array; to: Endpoint | undefined }> = [];
    for (let k = this.head; k < this.count; k++) {
      for (let at = 0; at < this.bytes[k]!; at += this.segment) {
        const from = k * MESSAGE + at;
        split.push({ bytes: this.data.slice(from, from + Math.min(this.segment, this.bytes[k]! - at)), to: this.dests[k] });
      }
    }
    this.backlog = [...split, ...this.backlog];
    this.head = this.count = 0;
  }
}

const errnoName = (e: number): string =>
  Object.entries(osConstants.errno).find(([, v]) => v === e)?.[0] ?? `errno ${e}`;
