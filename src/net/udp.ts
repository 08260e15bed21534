// The sockets of a MUST node. Group sockets are bound to the group address (so they
// hear only that group) with SO_REUSEADDR (so several clients can share a host); the
// unicast socket is bound to the interface address on an ephemeral port and is the
// one that sends, so multicast leaves by the chosen interface with the chosen TTL.

import dgram from 'node:dgram';
import { CLASSIC_HEADER, plOf, reservedClear } from '../protocol/classic.ts';
import { COMMON_HEADER, MAGIC, VERSION, writesHeader } from '../protocol/codec.ts';
import type { Endpoint } from '../session/types.ts';
import { BatchReader, type Begins, Poller } from './batch.ts';

export interface SocketOptions {
  group: string;
  iface: string;
  ttl: number;
  loop: boolean;
  /** Receive buffer wanted (the kernel caps it at net.core.rmem_max). */
  rcvbuf: number;
  sndbuf: number;
}

/**
 * One datagram in. `transient`: `bytes` is a view into a buffer that the next batch overwrites
 * (batched sockets only); whatever must outlive the call has to be copied.
 */
export type Receive = (bytes: Uint8Array, from: Endpoint, port: number, transient: boolean) => void;

const bound = (s: dgram.Socket, port: number, address: string): Promise<void> =>
  new Promise((resolve, reject) => {
    s.once('error', reject);
    s.bind({ port, address }, () => { s.off('error', reject); resolve(); });
  });

/**
 * A socket may be polled (batch.ts, Poller) when its receive buffer holds this much (as the
 * kernel reports it, twice what was asked): the kernel charged 2,304 bytes per 1,472-byte
 * datagram on loopback, so about 20 ms of DATA at 1 Gbit/s, against timers seen firing up to
 * 10 ms late on a busy host. Where rmem_max is left at Linux's default (208 KiB) it is not.
 */
const POLL_BUFFER = 4 << 20;

/**
 * A socket that this many reads in a row found empty is read by every IDLE-th read only, until one
 * finds datagrams (or one comes through libuv); catchUp, and a tick that finds the others empty,
 * read it always. Most of a client's sockets carry little or nothing (the other mode's, the unicast
 * socket where no repair is for this PC alone): in the bench's "1, none", with three sockets read,
 * two of every three recvmmsg calls came back empty, 25,800 a GiB, 21,500 of them on the two quiet
 * sockets; with this, 12,600-12,900.
 */
const IDLE = 4;

/**
 * Whether a datagram of `length` bytes could begin at `b[at]`, on a socket of MUST's own datagrams
 * (ports p and p+1, the unicast socket): a common header of this version, of a known type, with the
 * header length this version writes for it. Among datagrams coalesced before coalescing stopped,
 * every one does; a longer datagram from the same sender (another PC's REPAIR_REQUEST after its
 * ACKs, say) is cut as if coalesced unless told apart (BatchReader.coalesce): in 36 PC runs of the
 * bench's "6, 5% on all" (a GiB each) without such a test, about 20 were cut so, their pieces dropped
 * as malformed. The reader also searches for the size of datagrams coalesced at a size it was never
 * told, so a datagram's payload must not pass for a header: with the magic and version alone, one in
 * 30 PC runs of that row had a DATA datagram cut where its payload held them (2026-12-07); type and
 * header length add about 12 bits. A classic packet's length field is no test on these sockets: a
 * REPAIR_REQUEST of two ranges cut after its 28-byte header has one wherever its first range starts
 * at a packet number of the right low bits (about 1 in 1,000).
 */
export const mustBegins: Begins = (b, at, length) => {
  if (length < COMMON_HEADER || b[at] !== MAGIC >> 8 || b[at + 1] !== (MAGIC & 0xff) || b[at + 2] !== VERSION) return false;
  const type = b[at + 3]!, hlen = b[at + 4]!;
  return hlen <= length && writesHeader(type, hlen);
};

/** The same on the classic ports (p+2, p+3): a classic packet whose PL is `length`, its reserved bits zero. */
export const classicBegins: Begins = (b, at, length) => {
  if (length < CLASSIC_HEADER) return false;
  const word = (b[at + 4]! << 8) | b[at + 5]!;
  return reservedClear(word) && plOf(word) === length;
};

/**
 * Sockets whose datagrams are taken in batches (batch.ts). After each datagram dgram delivers on
 * one of them, what waits on all of them is taken with recvmmsg; while a stream lasts they are
 * polled together (those whose receive buffer allows). A client takes all its sockets this way: its
 * image comes on the group's data socket and on its own unicast socket (repairs for it alone), and
 * the other PCs' feedback on the feedback socket.
 */
export class BatchedInput {
  /** Each socket's reader, and how many reads in a row found it empty. */
  private readonly readers: Array<{ drain: () => number; empty: number }> = [];
  private reads = 0;
  /** The readers of the polled sockets: only they may take coalesced datagrams. */
  private readonly polled: BatchReader[] = [];
  private poller: Poller | undefined;

  /**
   * Take `s`'s datagrams, as those of `port`, in batches where the platform allows (its reader, if so).
   * `begins`: where one of the datagrams `s` carries may begin (mustBegins, classicBegins).
   */
  add(s: dgram.Socket, port: number, onMessage: Receive, begins?: Begins): BatchReader | undefined {
    const reader = BatchReader.for(s, begins);
    const fromBatch = (b: Uint8Array, from: Endpoint): void => onMessage(b, from, port, true);
    const read = reader && { drain: (): number => reader.drain(fromBatch), empty: 0 };
    if (reader && read) {
      this.readers.push(read);
      if (s.getRecvBufferSize() >= POLL_BUFFER) {
        let polled: boolean;
        if (this.poller) polled = this.poller.add(s);
        else {
          this.poller = Poller.for(s, (all) => this.drain(all), (on) => { for (const r of this.polled) r.coalesce(on); });
          polled = this.poller !== undefined;
        }
        if (polled) this.polled.push(reader);
      }
    }
    s.on('message', (msg, r) => {
      onMessage(msg, { address: r.address, port: r.port }, port, false);
      if (read) read.empty = 0;
      this.drain(false);
      this.poller?.busy();
    });
    return reader;
  }

  /** Whether the sockets are polled now (a stream is coming). */
  get polling(): boolean { return this.poller?.polling ?? false; }

  /** Take what waits on the polled sockets now (Poller.catchUp). */
  catchUp(): void {
    this.poller?.catchUp();
  }

  /** Empty the sockets: every one (`all`), or all but those found empty of late, which only every IDLE-th read takes. */
  private drain(all: boolean): number {
    const passOver = !all && this.reads++ % IDLE !== 0;
    let n = 0;
    for (const r of this.readers) {
      if (passOver && r.empty >= IDLE) continue;
      const got = r.drain();
      r.empty = got > 0 ? 0 : r.empty + 1;
      n += got;
    }
    return n;
  }
}

/**
 * `batched`: the datagrams are taken in batches, with those of the other sockets of that input;
 * `begins`: where one of them may begin (BatchedInput.add).
 */
export async function groupSocket(o: SocketOptions, port: number, onMessage: Receive, batched?: BatchedInput, begins: Begins = mustBegins): Promise<dgram.Socket> {
  const s = dgram.createSocket({ type: 'udp4', reuseAddr: true });
  await bound(s, port, o.group);
  s.addMembership(o.group, o.iface);
  trySize(() => s.setRecvBufferSize(o.rcvbuf));
  listen(s, port, onMessage, batched, begins);
  return s;
}

/** `s`'s datagrams go to `onMessage` as those of `port`: in batches with `batched`'s other sockets, or one by one. */
function listen(s: dgram.Socket, port: number, onMessage: Receive, batched: BatchedInput | undefined, begins: Begins): void {
  if (batched) batched.add(s, port, onMessage, begins);
  else s.on('message', (msg, r) => onMessage(msg, { address: r.address, port: r.port }, port, false));
}

/** A socket on an ephemeral port of the interface that sends to the group (TTL, loopback, buffer). */
export async function sendingSocket(o: SocketOptions): Promise<dgram.Socket> {
  const s = dgram.createSocket({ type: 'udp4' });
  await bound(s, 0, o.iface);
  s.setMulticastInterface(o.iface);
  s.setMulticastTTL(o.ttl);
  s.setMulticastLoopback(o.loop);
  trySize(() => s.setSendBufferSize(o.sndbuf));
  return s;
}

/** The socket a node sends from and is answered on (its datagrams come as those of port 0). */
export async function unicastSocket(o: SocketOptions, onMessage: Receive, batched?: BatchedInput): Promise<dgram.Socket> {
  const s = await sendingSocket(o);
  trySize(() => s.setRecvBufferSize(o.rcvbuf));
  listen(s, 0, onMessage, batched, mustBegins);
  return s;
}

/**
 * A send-only socket connected to the group's data port: a send names no address, so Node skips
 * the per-datagram address check and lookup (the master's hot path).
 */
export async function groupSender(o: SocketOptions, port: number): Promise<dgram.Socket> {
  const s = await sendingSocket(o);
  await new Promise<void>((resolve, reject) => {
    s.once('error', reject);
    s.connect(port, o.group, () => { s.off('error', reject); resolve(); });
  });
  return s;
}

function trySize(f: () => void): void {
  try { f(); } catch { /* the kernel keeps its default; rmem_max/wmem_max decide */ }
}

export const closeAll = (sockets: dgram.Socket[]): void => { for (const s of sockets) { try { s.close(); } catch { /* already closed */ } } };
