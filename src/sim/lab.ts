// A simulated lab: the real Sender and Receiver machines on a simulated LAN with a
// fake clock. Per-client loss, delay, jitter and inbound rate (a slow link or a
// congested port, with a drop-tail queue), late joins and crashes. No sockets and no
// timers: a run of 50 clients over a few MiB takes a second or so.

import { manifestOfBytes } from '../disk/manifest-build.ts';
import { DEFAULT_CHUNK_SIZE, sha256 } from '../protocol/manifest.ts';
import { type ClientId, ImageKind } from '../protocol/messages.ts';
import { Receiver } from '../session/receiver.ts';
import { Sender } from '../session/sender.ts';
import type { TransferParams } from '../session/params.ts';
import { type Rng, seeded } from '../session/rng.ts';
import type { Endpoint, Transmit } from '../session/types.ts';
import { EventHeap } from './heap.ts';

export interface SimLink {
  /** Probability that a datagram to this host is lost. */
  loss: number;
  /** One-way delay (ms) and uniform jitter on top of it. */
  delay: number;
  jitter: number;
  /** Inbound bytes per second (Infinity: no limit) and the queue in front of it (bytes). */
  rate: number;
  queue: number;
}

export interface SimClient extends Partial<SimLink> {
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
  verifyFailures: number;
}

export interface LabResult {
  masterOk: boolean;
  finishedAt: number;
  timedOut: boolean;
  sender: Sender;
  clients: SimClientResult[];
  /** ACK datagrams the master received per block resolved by an ACK. */
  acksPerBlock: number;
  datagrams: number;
}

const MASTER = '10.0.0.1';
const MASTER_PORT = 40000;
const CONTROL = 9000;

interface Node {
  address: string;
  ports: Set<number>;
  link: SimLink;
  rxFree: number;
  machine: { onDatagram(b: Uint8Array, from: Endpoint, port: number, now: number): void; onTimer(now: number): void; poll(now: number): Transmit | undefined; nextWake(now: number): number; finished: boolean };
  wakeToken: number;
  wakeAt: number;
  alive: boolean;
  lastWake: number;
  spins: number;
}

type Ev =
  | { at: number; seq: number; kind: 'deliver'; node: Node; bytes: Uint8Array; from: Endpoint; port: number }
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
  let datagrams = 0;
  const at = (t: number, e: EvBody): void => heap.push({ ...e, at: t, seq: seq++ } as Ev);

  const image = sampleImage(o.imageSize, o.seed);
  const chunkSize = o.chunkSize ?? DEFAULT_CHUNK_SIZE;
  const { bytes: manifest } = manifestOfBytes(image, ImageKind.Disk, chunkSize);
  const p = o.params;
  const dataPort = p.mode === 2 ? CONTROL + 2 : CONTROL;
  const feedbackPort = dataPort + 1;

  const baseLink: SimLink = { loss: 0, delay: 0.1, jitter: 0.05, rate: Infinity, queue: 1 << 20, ...o.link };
  const sender = new Sender({
    session: 0x5e55_1000, params: p, kind: ImageKind.Disk, name: 'sim', caps: 0, manifest, manifestDigest: sha256(manifest),
    imageSize: o.imageSize, targetSize: o.imageSize, sectorSize: 512, controlPort: CONTROL, dataPort, feedbackPort,
    minClients: o.minClients ?? o.clients.filter((c) => !c.startAt).length, waitAfterJoin: undefined, linger: 1500,
  }, fork(), 0);
  const nodes: Node[] = [];
  const master: Node = {
    address: MASTER, ports: new Set([feedbackPort, MASTER_PORT]), link: { ...baseLink, loss: o.masterLoss ?? 0 },
    rxFree: 0, machine: sender, wakeToken: 0, wakeAt: 0, alive: true, lastWake: -1, spins: 0,
  };
  nodes.push(master);

  const send = (src: Node, t: Transmit): void => {
    const size = t.parts.reduce((s, b) => s + b.length, 0) + (t.image?.length ?? 0);
    const bytes = new Uint8Array(size);
    let off = 0;
    for (const part of t.parts) { bytes.set(part, off); off += part.length; }
    if (t.image) bytes.set(image.subarray(t.image.offset, t.image.offset + t.image.length), off);
    const from: Endpoint = { address: src.address, port: src === master ? MASTER_PORT : 50000 };
    const port = t.dest.kind === 'group' ? t.dest.port : t.dest.to.port;
    const targets = t.dest.kind === 'group'
      ? nodes.filter((n) => n !== src && n.alive && n.ports.has(port))
      : nodes.filter((n) => n.alive && n.address === (t.dest as { to: Endpoint }).to.address);
    datagrams++;
    for (const n of targets) {
      if (rng() < n.link.loss) continue;
      let arrive = now + n.link.delay + rng() * n.link.jitter;
      if (Number.isFinite(n.link.rate)) {
        const start = Math.max(arrive, n.rxFree);
        if ((start - arrive) * n.link.rate / 1000 > n.link.queue) continue; // drop-tail
        arrive = start + (size / n.link.rate) * 1000;
        n.rxFree = arrive;
      }
      at(arrive, { kind: 'deliver', node: n, bytes, from, port });
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
  o.clients.forEach((spec, i) => {
    const id = (0x1000 + i).toString(16).padStart(16, '0');
    const disk = new Uint8Array(o.imageSize).fill(0xee);
    const link: SimLink = { ...baseLink, ...Object.fromEntries(Object.entries(spec).filter(([k]) => k in baseLink)) };
    const node: Node = { address: `10.0.1.${i + 2}`, ports: new Set([CONTROL, dataPort, feedbackPort, 50000]), link, rxFree: 0, machine: sender, wakeToken: 0, wakeAt: Infinity, alive: false, lastWake: -1, spins: 0 };
    nodes.push(node);
    const result: SimClientResult = { id, ok: false, identical: false, reason: 'never finished', finishedAt: NaN, acksSent: 0, requestsSent: 0, repaired: 0, verifyFailures: 0 };
    let corrupt = spec.corruptWrites ?? 0;
    let diskQueued = 0, diskAt = 0;
    results.push(result);
    const boot = (): void => {
      const r: Receiver = new Receiver({
        id, name: `pc-${i + 1}`, capacity: o.imageSize, kind: ImageKind.Disk, controlPort: CONTROL, autoConfirm: true,
        tunables: () => o.clientParams ?? p,
      }, {
        offer: (offset, b) => {
          if (spec.diskRate) {
            diskQueued = Math.max(0, diskQueued - ((now - diskAt) * spec.diskRate) / 1000);
            diskAt = now;
            if (diskQueued + b.length > (spec.diskQueue ?? 64 << 20)) return false;
            diskQueued += b.length;
          }
          disk.set(b, offset);
          if (corrupt > 0 && offset > 0) { corrupt--; disk[offset] = disk[offset]! ^ 0x40; }
          return true;
        },
        // The simulator serves stored chunks in place: checking one is hashing where it lies.
        finish: (k, c) => at(now + 0.01, { kind: 'call', fn: () => {
          const e = c.extents[0]!;
          r.onChunkChecked(k, Buffer.compare(sha256(disk.subarray(e.offset, e.offset + e.length)), c.digest) === 0, now);
          step(node);
        } }),
        flush: () => at(now + 0.01, { kind: 'call', fn: () => { r.onFlushed(now); step(node); } }),
      }, fork(), now);
      r.events.on((e) => {
        if (e.type !== 'finished') return;
        Object.assign(result, {
          ok: e.ok, reason: e.reason, finishedAt: e.at, identical: Buffer.compare(disk, image) === 0,
          acksSent: r.acks?.sent ?? 0, requestsSent: r.stats.requestsSent, repaired: r.stats.repaired, verifyFailures: r.stats.verifyFailures,
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
    else if (e.node.alive) { e.node.machine.onDatagram(e.bytes, e.from, e.port, now); step(e.node); }
    if (sender.finished && nodes.every((n) => n === master || !n.alive || n.machine.finished)) break;
  }
  return {
    masterOk: sender.ok, finishedAt: now, timedOut, sender, clients: results, datagrams,
    acksPerBlock: sender.stats.blocksAcked === 0 ? 0 : sender.stats.ackDatagrams / sender.stats.blocksAcked,
  };
}
