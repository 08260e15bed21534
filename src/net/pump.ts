// The thin driver between a protocol machine and the world: datagrams in, one timer,
// datagrams out. Datagrams that arrive in one turn of the event loop are handed over
// one by one and the machine is then run once (timers, output, next wake-up).

import type { Endpoint, Transmit } from '../session/types.ts';

export interface Machine {
  onDatagram(bytes: Uint8Array, from: Endpoint, port: number, now: number): void;
  onTimer(now: number): void;
  poll(now: number): Transmit | undefined;
  nextWake(now: number): number;
  readonly finished: boolean;
}

export interface Output {
  /** Sends (or queues) one datagram; false when it cannot now (socket queue full, image bytes not read yet). */
  send(t: Transmit): boolean;
  /** Hands over what send() queued, after each turn; false when some still waits for the socket. */
  flush?(): boolean;
}

/** Datagrams between two looks at the clock in a run (and hand-overs to the kernel, where batched). */
const STRIDE = 64;
/** ms a run may last; then the loop turns (input waits meanwhile) and the run goes on. */
const RUN_BUDGET = 4;

export class Pump {
  private readonly machine: Machine;
  private readonly out: Output;
  private readonly clock: () => number;
  private pending: Transmit | undefined;
  private timer: NodeJS.Timeout | undefined;
  private armedAt = Infinity;
  private scheduled = false;
  private stopped = false;
  private readonly onIdle: (() => void) | undefined;
  private readonly catchUp: (() => void) | undefined;
  private catching = false;

  /**
   * `catchUp`: hands over (through input()) the datagrams that wait unread, before each run. Input
   * that is polled waits up to a few milliseconds between reads, and the machine must not ask for a
   * packet that has come and waits in a socket.
   */
  constructor(machine: Machine, out: Output, clock: () => number = () => performance.now(), onIdle?: () => void, catchUp?: () => void) {
    this.machine = machine;
    this.out = out;
    this.clock = clock;
    this.onIdle = onIdle;
    this.catchUp = catchUp;
  }

  now(): number { return this.clock(); }

  /**
   * The datagrams handed over before a run share one reading of the clock: they came in the same
   * turn of the loop (a batch is a millisecond of traffic), and a reading each was 741,000 calls
   * per GiB, about 2% of a client's CPU in a profile of the lab. The run after them reads it anew.
   */
  private inputAt: number | undefined;

  input(bytes: Uint8Array, from: Endpoint, port: number): void {
    if (this.stopped) return;
    this.machine.onDatagram(bytes, from, port, this.inputAt ??= this.clock());
    // What catchUp hands over goes to the run that asked for it.
    if (!this.catching) this.kick();
  }

  /** Run the machine soon (after the datagrams already waiting in this turn). */
  kick(): void {
    if (this.scheduled || this.stopped) return;
    this.scheduled = true;
    setImmediate(() => { this.scheduled = false; this.run(); });
  }

  run(): void {
    if (this.stopped) return;
    if (this.catchUp) {
      this.catching = true;
      this.catchUp();
      this.catching = false;
    }
    this.inputAt = undefined;
    const start = this.clock();
    let now = start;
    this.machine.onTimer(now);
    let blocked = false, more = false;
    for (let n = 1; ; n++) {
      const t = this.pending ?? this.machine.poll(now);
      if (!t) break;
      if (!this.out.send(t)) { this.pending = t; blocked = true; break; }
      this.pending = undefined;
      if (n % STRIDE === 0) {
        // Handing datagrams to the kernel takes time (in a lab of veths and bridges, as long as the
        // link takes to send them): the pace counts from the clock, not from when the run began,
        // or every run would lose what its own sending took.
        if (this.out.flush && !this.out.flush()) { blocked = true; break; }
        now = this.clock();
        if (now - start >= RUN_BUDGET) { more = true; break; }
      }
    }
    if (this.out.flush && !this.out.flush()) blocked = true;
    if (this.machine.finished && !this.pending && !blocked) { this.stop(); this.onIdle?.(); return; }
    // Blocked: try again in a millisecond (or sooner if someone kicks us). A run cut short goes on
    // after the datagrams that came meanwhile.
    if (more && !blocked) return this.kick();
    const wake = blocked ? now + 1 : this.machine.nextWake(this.clock());
    this.arm(wake);
  }

  private arm(at: number): void {
    if (!Number.isFinite(at)) return;
    if (this.timer && at >= this.armedAt) return;
    if (this.timer) clearTimeout(this.timer);
    this.armedAt = at;
    this.timer = setTimeout(() => { this.timer = undefined; this.armedAt = Infinity; this.run(); }, Math.max(0, at - this.clock()));
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }
}
