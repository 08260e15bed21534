// The simulated network between the machines: per-host links (loss, delay, jitter, an
// inbound rate behind a drop-tail queue), the master's uplink, and LANs joined by a
// router (a delay and a shared downstream queue per LAN). It only decides whether and
// when a datagram arrives; lab.ts runs the machines.

import type { Rng } from '../session/rng.ts';

/** Ethernet (14), IPv4 (20) and UDP (8) bytes around each datagram: what tc tbf and the master's pacing count. */
export const WIRE_OVERHEAD = 42;

export interface SimLink {
  /** Long-run share of datagrams to this host that are lost. */
  loss: number;
  /**
   * Mean length of a loss burst, in datagrams (Gilbert–Elliott, a bad state that loses every
   * datagram): 1 is independent loss. The long-run loss stays `loss`.
   */
  burst: number;
  /** One-way delay (ms) and uniform jitter on top of it. */
  delay: number;
  jitter: number;
  /** Inbound bytes per second (Infinity: no limit) and the queue in front of it (bytes). */
  rate: number;
  queue: number;
}

/** A LAN behind a router: what every datagram between it and another LAN goes through. */
export interface SimLan {
  /** One-way delay (ms) between this LAN and the router's core. */
  delay: number;
  /** Downstream bytes per second into this LAN (shared by all its hosts) and the router's queue. */
  rate: number;
  queue: number;
  /** Share of the datagrams into this LAN the router loses (every host of the LAN misses them). */
  loss: number;
}

/** The master's LAN: no router between it and the master. */
export const LOCAL_LAN: SimLan = { delay: 0, rate: Infinity, queue: Infinity, loss: 0 };

/**
 * A FIFO at a rate behind a drop-tail queue, with a token bucket in front as tc tbf has: after
 * an idle spell up to `burst` bytes leave at once. pass() says when a datagram that reaches it
 * at `at` has left, or undefined if the queue was full. Datagrams must reach it in time order.
 */
export class Queue {
  private free = 0;
  private tokens: number;
  private readonly rate: number;
  private readonly limit: number;
  private readonly burst: number;
  constructor(rate: number, limit: number, burst = 0) {
    this.rate = rate;
    this.limit = limit;
    this.burst = burst;
    this.tokens = burst;
  }

  get limited(): boolean { return Number.isFinite(this.rate); }

  pass(at: number, bytes: number): number | undefined {
    if (!this.limited) return at;
    const size = bytes + WIRE_OVERHEAD;
    const start = Math.max(at, this.free);
    if (((start - at) * this.rate) / 1000 > this.limit) return undefined;
    // Tokens earned since the last datagram left (at most the bucket), then the wait for the rest.
    this.tokens = Math.min(this.burst, this.tokens + ((start - this.free) * this.rate) / 1000);
    const spend = Math.min(this.tokens, size);
    this.tokens -= spend;
    this.free = start + ((size - spend) / this.rate) * 1000;
    return this.free;
  }
}

/** Loss at one host: independent, or in bursts (two-state Gilbert–Elliott chain, stepped per datagram). */
export class LossModel {
  private bad = false;
  private readonly link: SimLink;
  constructor(link: SimLink) { this.link = link; }

  lost(rng: Rng): boolean {
    const { loss, burst } = this.link;
    if (loss <= 0) return false;
    if (loss >= 1) return true;
    if (!(burst > 1)) return rng() < loss;
    // Leave the bad state with probability 1/burst; enter it so that the stationary share is `loss`.
    const leave = 1 / burst;
    this.bad = this.bad ? rng() >= leave : rng() < (leave * loss) / (1 - loss);
    return this.bad;
  }
}

/**
 * One host's side of the network: its loss, the delay to its switch port, and the queue of that
 * port. The driver asks reach() when a datagram is sent and admit() when it gets to the port, so
 * that a datagram sent later but arriving sooner (another client's ACK) is not queued behind
 * data still on its way.
 */
export class Port {
  readonly link: SimLink;
  readonly lan: number;
  private readonly loss: LossModel;
  private readonly inbound: Queue;
  constructor(link: SimLink, lan: number, burst = 0) {
    this.link = link;
    this.lan = lan;
    this.loss = new LossModel(link);
    this.inbound = new Queue(link.rate, link.queue, burst);
  }

  get queued(): boolean { return this.inbound.limited; }

  /** When a datagram that left the router or the sender at `at` gets to this host's port, or undefined if lost. */
  reach(at: number, rng: Rng): number | undefined {
    if (this.loss.lost(rng)) return undefined;
    return at + this.link.delay + rng() * this.link.jitter;
  }

  /** When a datagram that got to the port now is delivered, or undefined if the queue is full. */
  admit(now: number, bytes: number): number | undefined { return this.inbound.pass(now, bytes); }
}

/**
 * The LANs and their router: when a datagram from LAN `from` reaches LAN `to`'s switch. The
 * queue into a LAN is taken in the order datagrams are sent: nearly their order of arrival,
 * since the data all comes from the master's LAN (a client's ACK may wait behind data that
 * would have reached the router a little later: a few microseconds for one ACK).
 */
export class Router {
  private readonly lans: SimLan[];
  private readonly queues: Queue[];
  constructor(lans: SimLan[], burst = 0) {
    this.lans = lans;
    this.queues = lans.map((l) => new Queue(l.rate, l.queue, burst));
  }

  /** Arrival time in LAN `to` of a datagram that left LAN `from` at `at` (undefined: lost on the way). */
  cross(from: number, to: number, at: number, bytes: number, rng: Rng): number | undefined {
    if (from === to) return at;
    const l = this.lans[to]!;
    if (l.loss > 0 && rng() < l.loss) return undefined;
    return this.queues[to]!.pass(at + this.lans[from]!.delay + l.delay, bytes);
  }
}
