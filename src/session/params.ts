// Tunables of a session. All times are milliseconds, rates bytes per second.
// The values for the default mode are the ones docs/TUNING.md argues for; the
// classic values follow the paper (one 512-byte sector per packet, stop and wait).

import { CLASSIC_SN_SPACE, CLASSIC_UNIT } from '../protocol/classic.ts';
import { dataPayloadFor, rangesPerRequest } from '../protocol/codec.ts';
import { WireMode } from '../protocol/messages.ts';

export interface ArtpPolicy {
  /** uniform: the paper's random wait in [0, max]. exp: truncated exponential, most clients wait long. */
  kind: 'uniform' | 'exp';
  max: number;
  /** Shape of the truncated exponential (ignored for uniform). */
  lambda: number;
}

/**
 * Who gives feedback during the pass (docs/PROTOCOL.md 5.3). mtp: the paper's, one suppressed ACK
 * per block. ack-all: every client ACKs every block and the master waits for all (udpcast's style).
 * nack: no ACK at all, the master sends at its rate and the losses are asked for after the pass
 * (NORM's style). The last two exist for the study in docs/TUNING.md; they are not on the wire.
 */
export type FeedbackPolicy = 'mtp' | 'ack-all' | 'nack';

export interface TransferParams {
  mode: WireMode;
  /** Image bytes per data packet. */
  payloadSize: number;
  /** Packets acknowledged by one ACK. */
  blockPackets: number;
  /** Blocks the master may have sent and not yet resolved (by ACK or time-out). */
  window: number;
  /** Packets per segment, 0 for none (classic: SN space; see PROTOCOL.md, segments). */
  segmentPackets: number;
  t0: number;
  alpha: number;
  tMax: number;
  artp: ArtpPolicy;
  /** Random wait before a repair request, suppressed by other clients' requests. */
  repairWait: number;
  /** Ranges per REPAIR_REQUEST datagram and datagrams per epoch. */
  requestRanges: number;
  requestDatagrams: number;
  /**
   * ms between a client's requests during the pass, for the holes behind what it received (at most one
   * datagram each); 0: none, losses wait for the repair phase (classic: the paper has no NACK in the transfer).
   */
  passRequests: number;
  /** Pacing. max 0 means unpaced (the classic stop-and-wait paces itself). */
  rate: { initial: number; min: number; max: number };
  announceInterval: number;
  /** A client silent this long is counted lost. */
  clientTimeout: number;
  /**
   * The slow-client policy: a client still imaging this long after the first one verified is
   * dropped, with the reason (0: none is dropped, a slow client completes by repair at its pace).
   */
  maxBehind: number;
  /** Ask the master to echo the highest ACKed block in DATA (cancels late ACK timers). */
  echoAcks: boolean;
  feedback: FeedbackPolicy;
  /**
   * Send a repair that one client alone asked for (before it went out) to that client only
   * (Caps.UnicastRepairs; default mode, unsigned sessions).
   */
  unicastRepairs: boolean;
  /**
   * Send packets of one chunk that different clients asked for (no client two of them) as one coded
   * repair to the group: the XOR of their payloads, from which each of those clients takes its own
   * (DataFlag.Coded; default mode, unsigned and unsealed sessions whose clients all decode them).
   */
  codedRepairs: boolean;
}

export const MBIT = 1_000_000 / 8;

export function defaultParams(mtu = 1500, maxRate = 1000 * MBIT): TransferParams {
  return {
    mode: WireMode.Default,
    payloadSize: dataPayloadFor(mtu),
    blockPackets: 64,
    window: 64,
    segmentPackets: 0,
    t0: 10,
    alpha: 2,
    tMax: 2000,
    artp: { kind: 'exp', max: 20, lambda: 6 },
    repairWait: 10,
    requestRanges: rangesPerRequest(mtu),
    requestDatagrams: 64,
    passRequests: 20,
    rate: { initial: maxRate, min: 1 * MBIT, max: maxRate },
    announceInterval: 500,
    clientTimeout: 30_000,
    maxBehind: 0,
    echoAcks: true,
    feedback: 'mtp',
    unicastRepairs: true,
    codedRepairs: true,
  };
}

export function classicParams(): TransferParams {
  return {
    mode: WireMode.Classic,
    payloadSize: CLASSIC_UNIT,
    blockPackets: 1,
    window: 1,
    segmentPackets: CLASSIC_SN_SPACE,
    t0: 4,
    alpha: 2,
    tMax: 1000,
    artp: { kind: 'uniform', max: 2, lambda: 0 },
    repairWait: 20,
    requestRanges: 1,
    requestDatagrams: 512,
    passRequests: 0,
    rate: { initial: 0, min: 0, max: 0 },
    announceInterval: 500,
    clientTimeout: 30_000,
    maxBehind: 0,
    echoAcks: false,
    feedback: 'mtp',
    unicastRepairs: false,
    codedRepairs: false,
  };
}

/** Draw one ACK (or request) wait from the policy. */
export function drawWait(p: ArtpPolicy, u: number): number {
  if (p.kind === 'uniform' || p.lambda <= 0) return u * p.max;
  // Inverse CDF of the exponential density on [0, max] rising towards max
  // (Nonnenmacher and Biersack's timer): few clients fire early, the rest hear them.
  const l = p.lambda;
  return (p.max / l) * Math.log(u * (Math.exp(l) - 1) + 1);
}
