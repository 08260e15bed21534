// A lab described in a few plain numbers (what `must simulate` takes and the sweep
// varies), turned into a simulator run, and the figures the study compares.

import { type FeedbackPolicy, MBIT, type TransferParams, classicParams, defaultParams } from '../session/params.ts';
import { type LabOptions, type LabResult, type SimClient, type SimLan, runLab } from './lab.ts';
import { LOCAL_LAN } from './net.ts';

export interface Scenario {
  clients: number;
  /** Image size in MiB. */
  size: number;
  /** Every link (the master's and each client's), Mbit/s; 0: no limit. */
  rate: number;
  /** One-way delay of each host's link, ms. */
  delay: number;
  /** Loss at each client, per cent, and the mean length of a loss burst in datagrams (1: independent). */
  loss: number;
  burst: number;
  /** Loss of datagrams to the master (its ACKs, requests, ...), per cent. */
  masterLoss: number;
  /** Clients are spread over this many LANs behind one router; LAN 0 is the master's. */
  lans: number;
  /** One-way delay through the router to a LAN, ms, and its downstream rate (Mbit/s, 0: the link rate). */
  lanDelay: number;
  lanRate: number;
  /** One more client whose link runs at this rate, Mbit/s (0: none). */
  slow: number;
  protocol: 'default' | 'classic';
  feedback: FeedbackPolicy;
  /** The master paces at this rate, Mbit/s (0: the link rate, or 1000). */
  pace: number;
  mtu: number;
  /** Tunables that override the mode's defaults (undefined: the default). */
  t0?: number;
  alpha?: number;
  tMax?: number;
  artp?: number;
  artpShape?: 'uniform' | 'exp';
  block?: number;
  window?: number;
  payload?: number;
  repairWait?: number;
  /** ms between a client's requests during the pass, 0 for none (default mode). */
  passRequests?: number;
  /** false: every repair goes to the group, also one that only one client asked for (default mode). */
  unicastRepairs?: boolean;
  /** false: no coded repairs, every repair carries one packet (default mode). */
  codedRepairs?: boolean;
  seed: number;
}

export const BASE: Scenario = {
  clients: 10, size: 16, rate: 1000, delay: 0.05, loss: 1, burst: 1, masterLoss: 0, lans: 1, lanDelay: 1, lanRate: 0,
  slow: 0, protocol: 'default', feedback: 'mtp', pace: 0, mtu: 1500, seed: 1,
};

export interface Metrics {
  /** Every client verified, and every disk holds the image. */
  ok: boolean;
  /** From the start of the transfer until the last client (the slow one included) had verified, ms. */
  done: number;
  /** The same without the slow client. */
  doneOthers: number;
  /** Until the first pass ended (the master entered repair), ms. */
  pass: number;
  /** Image bytes over completion time, MB/s. */
  goodputMBps: number;
  /** Image bytes over the first pass: the flow control's throughput, without the repair tail. */
  passMBps: number;
  /** ACK datagrams at the master, per block of the pass. */
  acksPerBlock: number;
  acks: number;
  requests: number;
  /** Every datagram that reached the master. */
  feedback: number;
  timeouts: number;
  /** Repair datagrams (on request during the pass, or in the repair phase; a coded one counts once), per packet of the object. */
  repairShare: number;
  /** Of them, the share sent to one client only. */
  unicastShare: number;
  /** Share of those repair datagrams that were coded (each carrying several packets). */
  codedShare: number;
  /** Datagrams a client received (any kind), per packet of the object: the mean over the clients. */
  receivedPerPacket: number;
  /** Bytes on the wire (headers included, every datagram once) per image byte. */
  wirePerByte: number;
  /** Simulated time and wall time of the run, ms. */
  simulated: number;
  wall: number;
}

export function paramsOf(s: Scenario): TransferParams {
  const base = s.protocol === 'classic' ? classicParams() : defaultParams(s.mtu, (s.pace || s.rate || 1000) * MBIT);
  const p: TransferParams = { ...base, feedback: s.feedback };
  if (s.t0 !== undefined) p.t0 = s.t0;
  if (s.alpha !== undefined) p.alpha = s.alpha;
  if (s.tMax !== undefined) p.tMax = s.tMax;
  if (s.artp !== undefined || s.artpShape !== undefined) {
    const kind = s.artpShape ?? p.artp.kind;
    p.artp = { kind, max: s.artp ?? p.artp.max, lambda: kind === 'exp' ? (p.artp.lambda || 6) : 0 };
  }
  if (s.block !== undefined) p.blockPackets = s.block;
  if (s.window !== undefined) p.window = s.window;
  if (s.payload !== undefined) p.payloadSize = s.payload;
  if (s.repairWait !== undefined) p.repairWait = s.repairWait;
  if (s.passRequests !== undefined) p.passRequests = s.passRequests;
  if (s.unicastRepairs !== undefined) p.unicastRepairs = s.unicastRepairs;
  if (s.codedRepairs !== undefined) p.codedRepairs = s.codedRepairs;
  if (p.tMax < p.t0) p.tMax = p.t0;
  return p;
}

const mbit = (x: number): number => (x > 0 ? x * MBIT : Infinity);

export function labOf(s: Scenario): LabOptions {
  // A link holds what tc tbf's 20 ms latency and 64 KiB burst hold (test/net/netns.ts shapes links so).
  const queue = (r: number): number => (Number.isFinite(r) ? r * 0.02 + (64 << 10) : 1 << 20);
  const rate = mbit(s.rate);
  const lanRate = s.lanRate > 0 ? mbit(s.lanRate) : rate;
  const lans: SimLan[] = Array.from({ length: s.lans }, (_, k) => (k === 0 ? LOCAL_LAN : { delay: s.lanDelay, rate: lanRate, queue: queue(lanRate), loss: 0 }));
  const clients: SimClient[] = Array.from({ length: s.clients }, (_, i) => ({ lan: i % s.lans }));
  if (s.slow > 0) clients.push({ rate: mbit(s.slow), queue: queue(mbit(s.slow)), lan: 0 });
  return {
    seed: s.seed, imageSize: Math.round(s.size * 2 ** 20), params: paramsOf(s), clients, disk: 'light',
    link: { loss: s.loss / 100, burst: s.burst, delay: s.delay, jitter: s.delay / 2, rate, queue: queue(rate) },
    masterLoss: s.masterLoss / 100, uplink: { rate, queue: queue(rate) }, lans, burst: 64 << 10,
    // Long enough for stop and wait over a slow path, short enough that a stuck run ends.
    timeLimit: 3_600_000,
  };
}

export function measure(s: Scenario, r: LabResult, wall: number): Metrics {
  const start = r.sender.startedAt ?? 0;
  const regular = r.clients.slice(0, s.clients);
  const end = (cs: typeof r.clients): number => Math.max(...cs.map((c) => c.finishedAt)) - start;
  const st = r.sender.stats, geo = r.sender.geo;
  const done = end(r.clients);
  return {
    ok: !r.timedOut && r.masterOk && r.clients.every((c) => c.ok && c.identical),
    done, doneOthers: end(regular), pass: r.passEndedAt - start,
    goodputMBps: (s.size * 2 ** 20) / 1e6 / (done / 1000),
    passMBps: (s.size * 2 ** 20) / 1e6 / ((r.passEndedAt - start) / 1000),
    acksPerBlock: st.ackDatagrams / geo.blocks, acks: st.ackDatagrams, requests: st.requestDatagrams, feedback: r.feedbackAtMaster,
    timeouts: st.blocksTimedOut, repairShare: st.repairSent / geo.packets,
    unicastShare: st.repairSent === 0 ? 0 : st.unicastRepairSent / st.repairSent,
    codedShare: st.repairSent === 0 ? 0 : st.codedSent / st.repairSent,
    receivedPerPacket: r.clients.reduce((sum, c) => sum + c.delivered, 0) / r.clients.length / geo.packets, wirePerByte: r.wireBytes / (s.size * 2 ** 20),
    simulated: r.finishedAt, wall,
  };
}

export function simulate(s: Scenario): Metrics {
  const t = performance.now();
  const r = runLab(labOf(s));
  return measure(s, r, performance.now() - t);
}
