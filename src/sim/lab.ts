// A simulated lab: the real Sender and Receiver machines on a simulated network
// (net.ts) with a fake clock. Per-client loss (random or in bursts), delay, jitter and
// inbound rate (a slow link or a congested port, with a drop-tail queue), the master's
// uplink, LANs behind a router, late joins, crashes, slow and lying disks. No sockets
// and no timers: a run of 50 clients over a few MiB takes a second or so.

import { manifestOfBytes } from '../disk/manifest-build.ts';
import { DEFAULT_CHUNK_SIZE, Layout, sha256 } from '../protocol/manifest.ts';
import { xorInto } from '../protocol/xor.ts';
import { type ClientId, ImageKind, Phase, WireMode } from '../protocol/messages.ts';
import { Receiver } from '../session/receiver.ts';
import { Sender } from '../session/sender.ts';
import type { TransferParams } from '../session/params.ts';
import { type Rng, seeded } from '../session/rng.ts';
import type { Endpoint, Transmit } from '../session/types.ts';
import { BytesDisk, LightDisk, type SimDisk } from './disk.ts';
import { EventHeap } from './heap.ts';
import { LOCAL_LAN, Port, Queue, Router, type SimLan, type SimLink, WIRE_OVERHEAD } from './net.ts';

export type { SimLan, SimLink } from './net.ts';

export interface SimClient extends Partial<SimLink> {
  /** Index into LabOptions.lans (default 0, the master's LAN). */
  lan?: number;
  /** Start this long after the master (a late joiner). */
  startAt?: number;
  /** The disk silently corrupts this many of the first writes (one byte flipped in each). */
  corruptWrites?: number;
  /**
   * A slow disk: it takes this many bytes per second, behind a queue of diskQueue bytes (the
   * client's WriteQueue bound); a packet that finds the queue full is refused, as on a real client.
   */
  diskRate?: number;
  diskQueue?: number;
  /** Power off at this time, boot again at restartAt (the disk keeps what was written). */
  crashAt?: number;
  restartAt?: number;
}

export interface LabOptions {
  seed: number;
  imageSize: number;
  params: TransferParams;
  /** Tunables for the clients (defaults: the same as the master's). */
  clientParams?: TransferParams;
  clients: SimClient[];
  link?: Partial<SimLink>;
  /** Loss of datagrams to the master. */
  masterLoss?: number;
  /** The master's outbound link (bytes per second) and its queue (bytes); default: no limit. */
  uplink?: { rate: number; queue: number };
  /** Token bucket of every rate-limited queue, bytes (tc tbf's burst; default 0). */
  burst?: number;
  /** LANs behind a router; LAN 0 is the master's (default: one LAN, the master's). */
  lans?: SimLan[];
  /**
   * bytes (default): every client holds a copy of the disk, and `identical` compares it with the
   * image. light: nothing is stored, each write is compared with the image where it lands and a
   * chunk passes its check only if every write into it was right (no memory per client: 500
   * clients fit; corruptWrites needs bytes).
   */
  disk?: 'bytes' | 'light';
  minClients?: number;
  chunkSize?: number;
  /** Stop (and report unfinished) after this much simulated time. */
  timeLimit?: number;
}

export interface SimClientResult {
  id: ClientId;
  ok: boolean;
  identical: boolean;
  reason: string;
  finishedAt: number;
  acksSent: number;
  requestsSent: number;
  repaired: number;
  /** Packets it took from coded repairs (counted in `repaired` too). */
  decoded: number;
  verifyFailures: number;
  /** Datagrams that reached this client (any kind; each multicast copy counts). */
  delivered: number;
}

export interface LabResult {
  masterOk: boolean;
  finishedAt: number;
  timedOut: boolean;
  sender: Sender;
  clients: SimClientResult[];
  /** ACK datagrams the master received per block resolved by an ACK. */
  acksPerBlock: number;
  /** Datagrams sent, by anyone (a multicast datagram counts once). */
  datagrams: number;
  /** Their bytes with Ethernet, IP and UDP headers. */
  wireBytes: number;
  /** When the first pass ended (the master first entered the repair phase, or done); NaN if it never did. */
  passEndedAt: number;
  /** Datagrams that reached the master (every kind of feedback: ACK, repair request, JOIN, STATUS, DONE). */
  feedbackAtMaster: number;
}

const MASTER = '10.1.0.1';
const MASTER_PORT = 40000;
const CONTROL = 9000;

interface Node {
  address: string;
  ports: Set<number>;
  port: Port;
  machine: { onDatagram(b: Uint8Array, from: Endpoint, port: number, now: number): void; onTimer(now: number): void; poll(now: number): Transmit | undefined; nextWake(now: number): number; finished: boolean };
  wakeToken: number;
  wakeAt: number;
  alive: boolean;
  lastWake: number;
  spins: number;
  /** Datagrams that reached it. */
  delivered: number;
}

type Ev =
  | { at: number; seq: number; kind: 'deliver' | 'enqueue'; node: Node; bytes: Uint8Array; from: Endpoint; port: number }
  | { at: number; seq: number; kind: 'wake'; node: Node; token: number }
  | { at: number; seq: number; kind: 'call'; fn: () => void };
type DistOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
type EvBody = DistOmit<Ev, 'at' | 'seq'>;

/** A deterministic pseudo-random image with some all-zero stretches, like a real disk. */
export function sampleImage(size: number, seed: number): Uint8Array {
  const img = new Uint8Array(size);
  const words = new Uint32Array(img.buffer, 0, size >>> 2);
  const r = seeded(seed ^ 0x1ee7);
  for (let i = 0; i < words.length; i++) if ((i >>> 14) % 4 !== 3) words[i] = r() * 2 ** 32;
  for (let i = words.length * 4; i < size; i++) img[i] = r() * 256;
  return img;
}

export function runLab(o: LabOptions): LabResult {
  const rng = seeded(o.seed);
  const fork = (): Rng => seeded(Math.floor(rng() * 2 ** 32));
  const heap = new EventHeap<Ev>();
  let seq = 0;
  let now = 0;
  let datagrams = 0, wireBytes = 0;
  // Every event gets the same shape: the heap compares millions of them, and one hidden class keeps that fast.
  const at = (t: number, e: EvBody): void =>
    heap.push(Object.assign({ at: t, seq: seq++, kind: e.kind, node: master, bytes: undefined, from: undefined, port: 0, token: 0, fn: undefined }, e) as Ev);

  const image = sampleImage(o.imageSize, o.seed);
  const chunkSize = o.chunkSize ?? DEFAULT_CHUNK_SIZE;
  const { bytes: manifest, manifest: decoded } = manifestOfBytes(image, ImageKind.Disk, chunkSize);
  const p = o.params;
  const dataPort = p.mode === WireMode.Classic ? CONTROL + 2 : CONTROL;
  const feedbackPort = dataPort + 1;

  const baseLink: SimLink = { loss: 0, burst: 1, delay: 0.1, jitter: 0.05, rate: Infinity, queue: 1 << 20, ...o.link };
  const router = new Router(o.lans ?? [LOCAL_LAN], o.burst);
  const uplink = new Queue(o.uplink?.rate ?? Infinity, o.uplink?.queue ?? Infinity, o.burst);
  const sender = new Sender({
    session: 0x5e55_1000, params: p, kind: ImageKind.Disk, name: 'sim', caps: 0, manifest, manifestDigest: sha256(manifest),
    imageSize: o.imageSize, targetSize: o.imageSize, sectorSize: 512, controlPort: CONTROL, dataPort, feedbackPort,
    minClients: o.minClients ?? o.clients.filter((c) => !c.startAt).length, waitAfterJoin: undefined, linger: 1500,
    layout: new Layout(decoded),
  }, fork(), 0);
  let passEndedAt = NaN;
  sender.events.on((e) => {
    // Without a loss every client may verify, and the master be done, before the last ACK is in.
    if (e.type === 'phase' && (e.phase === Phase.Repair || e.phase === Phase.Done) && Number.isNaN(passEndedAt)) passEndedAt = e.at;
  });
  const nodes: Node[] = [];
  const master: Node = {
    address: MASTER, ports: new Set([feedbackPort, MASTER_PORT]), port: new Port({ ...baseLink, loss: o.masterLoss ?? 0, burst: 1 }, 0),
    machine: sender, wakeToken: 0, wakeAt: 0, alive: true, lastWake: -1, spins: 0, delivered: 0,
  };
  nodes.push(master);

  const send = (src: Node, t: Transmit): void => {
    const size = t.parts.reduce((s, b) => s + b.length, 0) + (t.image?.length ?? 0);
    const bytes = new Uint8Array(size);
    let off = 0;
    for (const part of t.parts) { bytes.set(part, off); off += part.length; }
    if (t.image) bytes.set(image.subarray(t.image.offset, t.image.offset + t.image.length), off);
    for (const r of t.xor ?? []) xorInto(bytes, off, image.subarray(r.offset, r.offset + r.length));
    const from: Endpoint = { address: src.address, port: src === master ? MASTER_PORT : 50000 };
    const port = t.dest.kind === 'group' ? t.dest.port : t.dest.to.port;
    const targets = t.dest.kind === 'group'
      ? nodes.filter((n) => n !== src && n.alive && n.ports.has(port))
      : nodes.filter((n) => n.alive && n.address === (t.dest as { to: Endpoint }).to.address);
    datagrams++;
    wireBytes += size + WIRE_OVERHEAD;
    // Clients' feedback is a few bytes: only the master's uplink carries enough to queue.
    const left = src === master ? uplink.pass(now, size) : now;
    if (left === undefined) return;
    // A multicast datagram crosses the router once per LAN: one queue slot, one loss for the whole LAN.
    const lanAt = new Map<number, number | undefined>();
    for (const n of targets) {
      const lan = n.port.lan;
      if (!lanAt.has(lan)) lanAt.set(lan, router.cross(src.port.lan, lan, left, size, rng));
      const reached = lanAt.get(lan);
      const arrive = reached === undefined ? undefined : n.port.reach(reached, rng);
      if (arrive === undefined) continue;
      at(arrive, { kind: n.port.queued ? 'enqueue' : 'deliver', node: n, bytes, from, port });
    }
  };

  const step = (n: Node): void => {
    if (!n.alive) return;
    n.machine.onTimer(now);
    for (let t = n.machine.poll(now); t; t = n.machine.poll(now)) send(n, t);
    const w = n.machine.nextWake(now);
    // A machine that keeps asking to be woken now without doing anything would hang the run.
    if (w === now && n.lastWake === now) {
      if (++n.spins > 10_000) throw new Error(`${n.address} spins at t=${now} ms: nextWake() returns now but nothing happens`);
    } else n.spins = 0;
    n.lastWake = w;
    // One pending wake per node: only an earlier wake-up replaces it.
    if (w < n.wakeAt) { n.wakeAt = w; at(w, { kind: 'wake', node: n, token: ++n.wakeToken }); }
  };

  const results: SimClientResult[] = [];
  const perLan = new Map<number, number>();
  o.clients.forEach((spec, i) => {
    const id = (0x1000 + i).toString(16).padStart(16, '0');
    if ((spec.corruptWrites ?? 0) > 0 && o.disk === 'light') throw new Error('corruptWrites needs disk: bytes');
    const disk: SimDisk = o.disk === 'light' ? new LightDisk(image, chunkSize) : new BytesDisk(image, spec.corruptWrites ?? 0);
    const link: SimLink = { ...baseLink, ...Object.fromEntries(Object.entries(spec).filter(([k]) => k in baseLink)) };
    const lan = spec.lan ?? 0;
    if (lan >= (o.lans?.length ?? 1)) throw new Error(`client ${i} is in LAN ${lan}, but there are ${o.lans?.length ?? 1}`);
    // Each LAN its own /16, the first 254 hosts in one /24 (the master is 10.1.0.1, on LAN 0).
    const host = (perLan.get(lan) ?? 0) + 2;
    perLan.set(lan, host - 1);
    const address = `10.${lan + 1}.${host >> 8}.${host & 255}`;
    const node: Node = { address, ports: new Set([CONTROL, dataPort, feedbackPort, 50000]), port: new Port(link, lan, o.burst), machine: sender, wakeToken: 0, wakeAt: Infinity, alive: false, lastWake: -1, spins: 0, delivered: 0 };
    nodes.push(node);
    const result: SimClientResult = { id, ok: false, identical: false, reason: 'never finished', finishedAt: NaN, acksSent: 0, requestsSent: 0, repaired: 0, decoded: 0, verifyFailures: 0, delivered: 0 };
    let diskQueued = 0, diskAt = 0;
    results.push(result);
    const boot = (): void => {
      const r: Receiver = new Receiver({
        id, name: `pc-${i + 1}`, capacity: o.imageSize, kind: ImageKind.Disk, controlPort: CONTROL, autoConfirm: true, network: `10.${lan + 1}.0.0/16`,
        tunables: () => o.clientParams ?? p,
      }, {
        offer: (offset, b, from, length, holeFrom = offset) => {
          if (spec.diskRate) {
            diskQueued = Math.max(0, diskQueued - ((now - diskAt) * spec.diskRate) / 1000);
            diskAt = now;
            if (diskQueued + length > (spec.diskQueue ?? 64 << 20)) return false;
            diskQueued += length;
          }
          if (holeFrom < offset) disk.hole(holeFrom, offset - holeFrom);
          disk.write(offset, b.subarray(from, from + length));
          return true;
        },
        // The simulated disk is memory already: a chunk is checked where it was written, and what it
        // holds of a chunk is there (the simulator serves raw images: chunk k starts at k chunks).
        known: () => {},
        inMemory: (k, at, length) => disk.read(k * chunkSize + at, length),
        finish: (k, c) => at(now + 0.01, { kind: 'call', fn: () => { r.onChunkChecked(k, disk.check(k, c), now); step(node); } }),
        flush: () => at(now + 0.01, { kind: 'call', fn: () => { r.onFlushed(now); step(node); } }),
      }, fork(), now);
      r.events.on((e) => {
        if (e.type !== 'finished') return;
        Object.assign(result, {
          ok: e.ok, reason: e.reason, finishedAt: e.at, identical: disk.identical(),
          acksSent: r.acks?.sent ?? 0, requestsSent: r.stats.requestsSent, repaired: r.stats.repaired, decoded: r.stats.decoded, verifyFailures: r.stats.verifyFailures,
        });
      });
      node.machine = r;
      node.alive = true;
      step(node);
    };
    at(spec.startAt ?? 0, { kind: 'call', fn: boot });
    if (spec.crashAt !== undefined) at(spec.crashAt, { kind: 'call', fn: () => { node.alive = false; node.wakeToken++; node.wakeAt = Infinity; } });
    if (spec.restartAt !== undefined) at(spec.restartAt, { kind: 'call', fn: boot });
  });

  at(0, { kind: 'wake', node: master, token: master.wakeToken });
  const limit = o.timeLimit ?? 600_000;
  let timedOut = false;
  for (let e = heap.pop(); e; e = heap.pop()) {
    now = e.at;
    if (now > limit) { timedOut = true; break; }
    if (e.kind === 'call') e.fn();
    else if (e.kind === 'wake') { if (e.token === e.node.wakeToken) { e.node.wakeAt = Infinity; step(e.node); } }
    else if (e.kind === 'enqueue') {
      const t = e.node.port.admit(now, e.bytes.length);
      if (t !== undefined) at(t, { kind: 'deliver', node: e.node, bytes: e.bytes, from: e.from, port: e.port });
    } else if (e.node.alive) {
      e.node.delivered++;
      e.node.machine.onDatagram(e.bytes, e.from, e.port, now);
      step(e.node);
    }
    if (sender.finished && nodes.every((n) => n === master || !n.alive || n.machine.finished)) break;
  }
  // The clients' nodes follow the master's, in the clients' order.
  results.forEach((r, i) => { r.delivered = nodes[i + 1]!.delivered; });
  return {
    masterOk: sender.ok, finishedAt: now, timedOut, sender, clients: results, datagrams, wireBytes, feedbackAtMaster: master.delivered, passEndedAt,
    acksPerBlock: sender.stats.blocksAcked === 0 ? 0 : sender.stats.ackDatagrams / sender.stats.blocksAcked,
  };
}
