// The master's protocol machine (docs/PROTOCOL.md). No sockets, no timers, no files:
// the driver hands it datagrams and the time, and polls it for datagrams to send.
//
// Phases: WAITING (announce, accept joins) -> TRANSFER (one pass over the current
// segment, Send/Wait with the adaptive time-out) -> REPAIR (answer repair requests,
// epoch by epoch) -> next segment or DONE when no client is still working.

import { CLASSIC_UNIT, Top, decodeClassic, encodeClassicHeader } from '../protocol/classic.ts';
import { DecodeError } from '../protocol/bytes.ts';
import { type Signer, signTrailer } from '../protocol/auth.ts';
import { HEADER_LENGTH, PACKET_HASH_BYTES, SIGNATURE_BYTES, decode, encode, encodeCodedHeader, encodeDataHeader } from '../protocol/codec.ts';
import {
  type AckMsg, type ClientId, type JoinMsg, type Message, type PacketRange, type StatusMsg,
  CODED_LIMIT, CODED_SPAN, Caps, ClientPhase, DataFlag, DoneResult, ImageKind, MAX_CODED, MsgType, NO_BLOCK, Phase, WireMode,
} from '../protocol/messages.ts';
import type { Layout } from '../protocol/manifest.ts';
import { Bitmap } from './bitmap.ts';
import { Geometry } from './geometry.ts';
import { IntervalSet } from './intervals.ts';
import { type LanPolicy, confirmedUpTo, lanOf } from './lans.ts';
import type { TransferParams } from './params.ts';
import { RateController } from './rate.ts';
import type { Rng } from './rng.ts';
import { AdaptiveTimeout } from './timeout.ts';
import { type Dest, type DropCounts, Emitter, type Endpoint, type Transmit, countDrop } from './types.ts';

export interface SenderConfig {
  session: number;
  params: TransferParams;
  kind: ImageKind;
  name: string;
  caps: number;
  manifest: Uint8Array;
  manifestDigest: Uint8Array;
  /** Bytes of the stream after the manifest. */
  imageSize: number;
  /** Bytes a client's target must hold. */
  targetSize: number;
  sectorSize: number;
  /** Group port of ANNOUNCE (and of default-mode data). */
  controlPort: number;
  dataPort: number;
  feedbackPort: number;
  /** Start when this many clients have joined (0: not this rule). */
  minClients: number;
  /** Start this long after the last join, once one client is in (undefined: not this rule). */
  waitAfterJoin: number | undefined;
  /** Keep announcing DONE this long before reporting finished. */
  linger: number;
  /** Never end by itself (a master that boots a lab keeps serving PCs that come later). */
  persistent?: boolean;
  /** Sign the session (Caps.Signed): ANNOUNCE, DROP, and an AUTH before each block's packets. */
  signer?: Signer;
  /** Multicast TTL of the session (default 1), announced so that clients' feedback crosses the same routers. */
  ttl?: number;
  /** How clients' LANs are told apart for the intra-campus rule (default: learned from their addresses). */
  lans?: LanPolicy;
  /**
   * Where the manifest's chunks lie in the stream. A coded repair takes packets of one chunk only (a
   * client holds a chunk it lacks a packet of in memory); without it the session sends none.
   */
  layout?: Layout;
}

export type ClientState = 'active' | 'verified' | 'failed' | 'lost' | 'dropped';

export interface ClientRecord {
  id: ClientId;
  name: string;
  mac: string;
  endpoint: Endpoint;
  /** The client's LAN (a network in CIDR form): a block needs one ACK from each LAN with a client imaging. */
  lan: string;
  capacity: number;
  state: ClientState;
  phase: ClientPhase;
  joinedAt: number;
  lastHeard: number;
  lastJoin: number;
  doneAt: number | undefined;
  have: number;
  needSegment: number;
  chunksVerified: number;
  repaired: number;
  rejected: number;
  writeErrors: number;
  acks: number;
  requests: number;
  reason: string;
}

export type MasterEvent =
  | { type: 'phase'; phase: Phase; segment: number; epoch: number; at: number }
  | { type: 'joined'; client: ClientRecord; rejoined: boolean; at: number }
  | { type: 'client-done'; client: ClientRecord; at: number }
  | { type: 'lost'; client: ClientRecord; at: number }
  | { type: 'dropped'; client: ClientRecord; at: number }
  | { type: 'rejected'; reason: string; from: Endpoint; at: number }
  | { type: 'finished'; ok: boolean; at: number };

export interface SenderStats {
  dataSent: number;
  repairSent: number;
  authSent: number;
  bytesSent: number;
  ackDatagrams: number;
  blocksAcked: number;
  /** ACK datagrams that confirmed at least one awaited block. */
  usefulAcks: number;
  blocksTimedOut: number;
  staleAcks: number;
  requestDatagrams: number;
  rangesRequested: number;
  /** Repairs sent during the pass (counted in repairSent too). */
  passRepairSent: number;
  /** Repairs sent to the one client that asked for them, not to the group (counted in repairSent too). */
  unicastRepairSent: number;
  /** Coded repairs sent (each counted once in repairSent), and the packets they carried. */
  codedSent: number;
  codedPackets: number;
  /** ACK datagrams by the LAN they came from. */
  acksByLan: Record<string, number>;
  /** ANNOUNCEs sent because a SOLICIT asked for one. */
  solicited: number;
  drops: DropCounts;
}

/** Ethernet (14), IPv4 (20) and UDP (8) header bytes around each datagram. */
const WIRE_OVERHEAD = 42;
/**
 * ms of sending time the pace may make up at once after a late wake-up. The driver's timers fire
 * 1-2 ms late as a rule, and 4-10 ms late when the host is busy (measured on the master at
 * 100 Mbit/s): with 2 ms, such a pass lost a quarter of its pace. The catch-up is a burst of at
 * most this much link time, which the NIC sends at line rate. Time in which nothing could be
 * sent (a full window) earns no credit.
 */
const PACE_CREDIT = 8;
/** ms after a change of phase or epoch at which its ANNOUNCE is repeated. */
const ANNOUNCE_ECHO = 20;
/** ms between two ANNOUNCEs that SOLICITs ask for, at least (anyone can send one: it must not make the master a multicast loudspeaker). */
const SOLICIT_GAP = 20;
/**
 * In the pass, a repair that could go coded waits until every client had its turn to ask for its holes
 * around it: clients ask every passRequests ms on average, at most 1.5 times that apart (receiver.ts),
 * for the holes up to the block before the newest they heard of.
 */
const CODED_HOLD = 1.5;
/** In `Askers`: a packet more than one client (or one the master cannot name) asked for. */
const SEVERAL = 255;

/**
 * Unicast repairs: for each wanted packet, the slot of the one client that asked for it, or SEVERAL
 * (0: not wanted). A byte per packet, in pages that exist only while a packet of theirs is wanted: a
 * master of a 1 TB image without loss holds none of the 690 MB a byte for every packet would take.
 */
export class Askers {
  static readonly PAGE = 1 << 16;
  private readonly pages: (Uint8Array | undefined)[];
  /** Packets of each page that someone asked for. */
  private readonly used: Uint32Array;
  /** The slots that asked for a packet marked SEVERAL, if they are all named (coded repairs combine by them). */
  private readonly several = new Map<number, number[]>();
  /** Packets marked with each slot (SEVERAL too), and all packets marked. */
  private readonly perSlot = new Uint32Array(SEVERAL + 1);
  private total = 0;

  constructor(packets: number) {
    const n = Math.ceil(packets / Askers.PAGE);
    this.pages = new Array<Uint8Array | undefined>(n).fill(undefined);
    this.used = new Uint32Array(n);
  }

  /** Pages held now. */
  get held(): number { return this.pages.reduce((n, p) => n + (p ? 1 : 0), 0); }

  /** Packets [start, end) were asked for by `slot` (SEVERAL: by someone the master cannot name). */
  add(start: number, end: number, slot: number): void {
    for (let p = start; p < end;) {
      const k = Math.floor(p / Askers.PAGE), base = k * Askers.PAGE;
      const page = this.pages[k] ??= new Uint8Array(Askers.PAGE);
      const stop = Math.min(end, base + Askers.PAGE);
      let used = this.used[k]!;
      for (; p < stop; p++) {
        const a = page[p - base]!;
        if (a === 0) { page[p - base] = slot; used++; this.perSlot[slot]!++; this.total++; continue; }
        if (a === slot && slot !== SEVERAL) continue;
        page[p - base] = SEVERAL;
        this.perSlot[a]!--;
        this.perSlot[SEVERAL]!++;
        const named = this.several.get(p);
        if (slot === SEVERAL || (a === SEVERAL && !named)) this.several.delete(p);
        else if (!named) this.several.set(p, [a, slot]);
        else if (!named.includes(slot)) named.push(slot);
      }
      this.used[k] = used;
    }
  }

  /** The slots of those who asked for `packet`; undefined if nobody did, or one the master cannot name. */
  slotsOf(packet: number): readonly number[] | undefined {
    const a = this.slotAt(packet);
    return a === 0 ? undefined : a === SEVERAL ? this.several.get(packet) : [a];
  }

  /** Packets someone asked for that not only the clients in `slots` did (every packet marked SEVERAL counts). */
  beyond(slots: readonly number[]): number {
    let n = this.total;
    for (const s of slots) if (s !== SEVERAL) n -= this.perSlot[s]!;
    return n;
  }

  /** The slot that asked for `packet`: 0 if nobody did, SEVERAL if more than one did (named by slotsOf, if they can be). */
  slotAt(packet: number): number {
    const k = Math.floor(packet / Askers.PAGE);
    return this.pages[k]?.[packet - k * Askers.PAGE] ?? 0;
  }

  /** Who asked for `packet` (0: nobody), which is then nobody's. */
  take(packet: number): number {
    const k = Math.floor(packet / Askers.PAGE), page = this.pages[k];
    if (!page) return 0;
    const i = packet - k * Askers.PAGE, a = page[i]!;
    if (a !== 0) {
      page[i] = 0;
      this.perSlot[a]!--;
      this.total--;
      if (--this.used[k]! === 0) this.pages[k] = undefined;
      if (a === SEVERAL) this.several.delete(packet);
    }
    return a;
  }
}

export class Sender {
  /** A JOIN from an active client this long after its last one is a restart, not a retry. */
  static readonly REJOIN_GAP = 2000;
  static readonly DROP_REPEATS = 2;
  readonly cfg: SenderConfig;
  readonly geo: Geometry;
  readonly events = new Emitter<MasterEvent>();
  readonly clients = new Map<ClientId, ClientRecord>();
  readonly stats: SenderStats = {
    dataSent: 0, repairSent: 0, authSent: 0, bytesSent: 0, ackDatagrams: 0, blocksAcked: 0, usefulAcks: 0, blocksTimedOut: 0,
    staleAcks: 0, requestDatagrams: 0, rangesRequested: 0, passRepairSent: 0, unicastRepairSent: 0, codedSent: 0, codedPackets: 0, acksByLan: {}, solicited: 0, drops: {},
  };
  readonly tout: AdaptiveTimeout;
  readonly rate: RateController;
  phase: Phase = Phase.Waiting;
  segment = 0;
  epoch = 0;
  startedAt: number | undefined;
  finished = false;
  ok = false;

  private readonly p: TransferParams;
  private readonly control: Transmit[] = [];
  private nextAnnounceAt: number;
  /** When the last change's ANNOUNCE goes out once more (Infinity: not due). */
  private echoAt = Infinity;
  /** Dropped clients whose DROP goes out again with the next announcements (how many more times). */
  private readonly dropRepeats = new Map<ClientId, number>();
  private nextSendAt = 0;
  /** Stream bytes present (a relay passes the stream on while it arrives; a master has it all). */
  private available = Infinity;
  private lastJoinAt = -Infinity;
  /** When a SOLICIT last had an ANNOUNCE sent. */
  private lastSolicitedAt = -Infinity;
  /** When the ANNOUNCE a SOLICIT asked for is due (Infinity: none is). */
  private solicitAt = Infinity;
  private startRequested = false;
  private doneAt = 0;
  // TRANSFER
  private cursor = 0;
  private readonly outstanding: Array<{ block: number; sentAt: number }> = [];
  private ackedBlock = NO_BLOCK;
  /** ACK-all policy only: the highest block each client acknowledged. */
  private readonly ackedBy = new Map<ClientId, number>();
  /** The highest block each LAN acknowledged (the intra-campus rule). */
  private readonly lanAcked = new Map<string, number>();
  private readonly lans: LanPolicy;
  // REPAIR
  private readonly wanted: Bitmap;
  /** Who asked for each wanted packet (undefined: the session sends every repair to the group). */
  private readonly askers: Askers | undefined;
  /** The clients by slot (1 up to SEVERAL - 1, in the order they joined); later ones have none, their repairs go to the group. */
  private readonly bySlot: ClientRecord[] = [];
  private readonly slotOf = new Map<ClientId, number>();
  /** partners(): slotMarks[slot] === slotMark while the slot is in the repair being made. */
  private readonly slotMarks = new Float64Array(SEVERAL);
  private slotMark = 0;
  private repairCursor = 0;
  /** No packet below this is wanted (where a pass that holds its repairs looks for the next). */
  private lowWanted = 0;
  /** Every client that joined decodes coded repairs. */
  private allDecode = true;
  private lastRequestAt = -Infinity;
  private repairBusy = false;
  /** What each client asked for in this epoch, and in the one before: how the pace is measured in the repair phase. */
  private readonly asked = new Map<ClientId, { now: IntervalSet; before: IntervalSet }>();
  /** The pace of the epoch before this one, and of this one (no ACK moves it in the repair phase). */
  private epochPaces: [number, number];
  private readonly passed: boolean[] = [];
  /** Manifest packets asked for outside the repair phase: sent before anything else. */
  private readonly urgent: Bitmap;
  // Signed sessions: the epoch (+1) in which each block's AUTH went out; blocks AUTHed for the current urgent burst.
  private readonly authEpoch: Int32Array;
  private readonly urgentAuthed = new Set<number>();
  private announceSeq = 0;

  constructor(cfg: SenderConfig, rng: Rng, now: number) {
    this.cfg = cfg;
    this.p = cfg.params;
    // Classic ACKs name nobody: a master waiting for each client's ACK could not tell them apart.
    if (this.p.mode === WireMode.Classic && this.p.feedback !== 'mtp') throw new Error(`feedback policy ${this.p.feedback} needs the default mode`);
    this.geo = new Geometry({
      payloadSize: this.p.payloadSize, blockPackets: this.p.blockPackets, manifestLength: cfg.manifest.length,
      imageSize: cfg.imageSize, segmentPackets: this.p.segmentPackets,
    });
    this.lans = cfg.lans ?? { kind: 'learn' };
    this.tout = new AdaptiveTimeout(this.p.t0, this.p.alpha, this.p.tMax);
    this.rate = new RateController(this.p.rate, Math.max(this.p.t0, 20));
    this.epochPaces = [this.rate.rate, this.rate.rate];
    this.wanted = new Bitmap(this.geo.packets);
    // Signed sessions vouch for a block's packets with an AUTH to the group just before them; a repair
    // on another path could overtake it, so they keep every repair on the group.
    this.askers = this.unicastRepairs ? new Askers(this.geo.packets) : undefined;
    this.urgent = new Bitmap(this.geo.manifestPackets);
    this.authEpoch = new Int32Array(cfg.signer ? this.geo.blocks : 0);
    // Spread the first announcement a little so that two masters started together do not beat in step.
    this.nextAnnounceAt = now + rng() * 10;
  }

  /**
   * Whether packets that different clients alone asked for, in one chunk, go as one coded repair
   * (DataFlag.Coded). Sealed payloads are sealed one by one, and a client keeps them opened: an XOR of
   * sealed payloads would not give it its packet.
   */
  get codedRepairs(): boolean {
    return this.askers !== undefined && this.p.codedRepairs && this.allDecode && this.cfg.layout !== undefined && (this.cfg.caps & Caps.Sealed) === 0;
  }

  /** Whether a repair one client alone asked for goes to that client only (Caps.UnicastRepairs). */
  get unicastRepairs(): boolean { return this.p.mode === WireMode.Default && this.p.unicastRepairs && !this.cfg.signer; }

  get activeClients(): ClientRecord[] { return [...this.clients.values()].filter((c) => c.state === 'active'); }
  /** Every client that joined ended verified (and at least one joined). */
  get allVerified(): boolean { return this.clients.size > 0 && [...this.clients.values()].every((c) => c.state === 'verified'); }
  get repairPending(): number { return this.wanted.count; }
  /** The next `n` repairs (at most) this round sends, in order (what a reader can fetch ahead). */
  upcomingRepairs(n: number): number[] {
    const out: number[] = [];
    if (this.phase !== Phase.Repair) return out;
    for (let p = this.wanted.find(true, this.repairCursor); p >= 0 && out.length < n; p = this.wanted.find(true, p + 1)) out.push(p);
    return out;
  }

  /** The operator pressed the start key. */
  startNow(): void { this.startRequested = true; }

  /** Only the first `bytes` of the stream are here yet: the pass waits at the first packet beyond them. */
  setAvailable(bytes: number): void { this.available = bytes; }

  /** Stream bytes the pass has sent (0 before it starts; the whole stream once it is over). */
  get passOffset(): number {
    if (this.phase === Phase.Waiting || this.cursor < this.geo.manifestPackets) return 0;
    return this.cursor >= this.geo.packets ? this.cfg.imageSize : this.geo.span(this.cursor).offset;
  }

  dropClient(id: ClientId, reason: string, now: number): void {
    const c = this.clients.get(id);
    if (!c || c.state !== 'active') return;
    c.state = 'dropped';
    c.reason = reason;
    c.doneAt = now;
    this.control.push({ dest: { kind: 'unicast', to: c.endpoint }, parts: [this.dropBytes(id, reason)] });
    // A DROP can be lost like any datagram (a slow client's queue is full by definition): it goes
    // again with the next announcements, so the client ends with the reason, not with a silence.
    this.dropRepeats.set(id, Sender.DROP_REPEATS);
    this.gone(c);
    this.events.emit({ type: 'dropped', client: c, at: now });
  }

  // ---- input ------------------------------------------------------------------------------

  onDatagram(bytes: Uint8Array, from: Endpoint, port: number, now: number): void {
    let m: Message;
    try {
      m = this.p.mode === WireMode.Classic && port === this.cfg.feedbackPort && port !== this.cfg.controlPort
        ? this.decodeClassicFeedback(bytes)
        : decode(bytes);
    } catch (e) {
      if (!(e instanceof DecodeError)) throw e;
      return this.reject(e.reason, from, now);
    }
    // A client that knows no session yet asks for an ANNOUNCE: at once, or, SOLICIT_GAP after the last
    // one a SOLICIT asked for, one that answers every client that asked meanwhile. (A client asks as soon
    // as it listens: one that asks just after an answer left did not hear it.)
    if (m.type === MsgType.Solicit) {
      if (!this.finished) this.solicitAt = Math.min(this.solicitAt, Math.max(now, this.lastSolicitedAt + SOLICIT_GAP));
      return;
    }
    if (m.session !== this.cfg.session) return this.reject('session', from, now);
    switch (m.type) {
      case MsgType.Ack: return this.onAck(m, from, now);
      case MsgType.RepairRequest: return this.onRequest(m.client, m.ranges, from, now);
      case MsgType.Join: return this.onJoin(m, from, now);
      case MsgType.Status: return this.onStatus(m, from, now);
      case MsgType.Done: {
        const c = this.heard(m.client, from, now);
        if (!c) return;
        this.control.push({ dest: { kind: 'unicast', to: from }, parts: [encode({ type: MsgType.DoneAck, session: this.cfg.session, client: m.client })] });
        if (c.state !== 'active') return;
        const digestOk = Buffer.compare(m.digest, this.cfg.manifestDigest) === 0;
        c.state = m.result === DoneResult.Verified && digestOk ? 'verified' : 'failed';
        c.phase = c.state === 'verified' ? ClientPhase.Verified : ClientPhase.Failed;
        c.reason = c.state === 'verified' ? '' : digestOk ? m.reason : `verified a different manifest (${m.reason})`;
        c.doneAt = now;
        this.gone(c);
        this.events.emit({ type: 'client-done', client: c, at: now });
        return;
      }
      default:
        // DATA, ANNOUNCE, WELCOME, DONE_ACK, DROP are never sent to a master.
        return this.reject('type', from, now);
    }
  }

  private decodeClassicFeedback(bytes: Uint8Array): Message {
    const pkt = decodeClassic(bytes);
    const base = this.geo.segmentStart(this.segment);
    if (base + pkt.sn >= this.geo.segmentEnd(this.segment)) throw new DecodeError('field', `SN ${pkt.sn} beyond the segment`);
    if (pkt.top === Top.Ack) return { type: MsgType.Ack, session: this.cfg.session, client: '', block: base + pkt.sn, received: 1, sampled: 0 };
    if (pkt.top === Top.RepairRequest)
      return { type: MsgType.RepairRequest, session: this.cfg.session, client: '', epoch: this.epoch, ranges: [{ start: base + pkt.sn, count: 1 }] };
    throw new DecodeError('type', 'classic data on the feedback port');
  }

  private reject(reason: string, from: Endpoint, now: number): void {
    countDrop(this.stats.drops, reason);
    this.events.emit({ type: 'rejected', reason, from, at: now });
  }

  /** Feedback names a client that joined, and comes from its address; otherwise it is counted and ignored. */
  private fromClient(c: ClientRecord | undefined, from: Endpoint, now: number): c is ClientRecord {
    if (!c) this.reject('unknown', from, now);
    else if (from.address !== c.endpoint.address) this.reject('address', from, now);
    else return true;
    return false;
  }

  /**
   * The client a STATUS or DONE names, if it is one of ours and the datagram comes from its address
   * (a client that moved JOINs again); anything else is rejected and counted.
   */
  private heard(id: ClientId, from: Endpoint, now: number): ClientRecord | undefined {
    const c = this.clients.get(id);
    if (!this.fromClient(c, from, now)) return undefined;
    c.lastHeard = now;
    if (c.state === 'lost') {
      c.state = 'active';
      this.events.emit({ type: 'joined', client: c, rejoined: true, at: now });
    }
    if (from.port !== 0) c.endpoint = from;
    return c;
  }

  private onJoin(m: JoinMsg, from: Endpoint, now: number): void {
    let c = this.clients.get(m.client);
    if (!c) {
      c = {
        id: m.client, name: m.name, mac: m.mac, endpoint: from, lan: lanOf(this.lans, from.address, m.prefix), capacity: m.capacity, state: 'active', phase: ClientPhase.Waiting,
        joinedAt: now, lastHeard: now, lastJoin: now, doneAt: undefined, have: m.have, needSegment: this.segment, chunksVerified: 0,
        repaired: 0, rejected: 0, writeErrors: 0, acks: 0, requests: 0, reason: '',
      };
      this.clients.set(m.client, c);
      if (this.bySlot.length + 1 < SEVERAL) {
        this.bySlot.push(c);
        this.slotOf.set(c.id, this.bySlot.length);
      }
      this.lastJoinAt = now;
      this.events.emit({ type: 'joined', client: c, rejoined: false, at: now });
    } else if (c.state !== 'dropped' && (c.state !== 'active' || now - c.lastJoin > Sender.REJOIN_GAP)) {
      // The same machine again (crash, power cycle, restart): it is working again, whatever it said before.
      Object.assign(c, { state: 'active', phase: ClientPhase.Waiting, doneAt: undefined, reason: '', name: m.name, mac: m.mac, capacity: m.capacity, have: m.have, needSegment: this.segment });
      this.events.emit({ type: 'joined', client: c, rejoined: true, at: now });
    }
    c.lastHeard = now;
    c.lastJoin = now;
    c.endpoint = from;
    this.allDecode &&= (m.caps & Caps.CodedRepairs) !== 0;
    c.lan = lanOf(this.lans, from.address, m.prefix);
    if (c.state === 'active' && m.capacity < this.cfg.targetSize) {
      // It cannot take the image; it says so itself with DONE, but it must not count towards --min-clients.
      c.state = 'failed';
      c.phase = ClientPhase.Failed;
      c.reason = `target too small: it holds ${m.capacity} bytes, the image needs ${this.cfg.targetSize} bytes`;
      c.doneAt = now;
      this.events.emit({ type: 'client-done', client: c, at: now });
    }
    const reply = c.state === 'dropped'
      ? this.dropBytes(c.id, c.reason)
      : encode({ type: MsgType.Welcome, session: this.cfg.session, client: m.client });
    this.control.push({ dest: { kind: 'unicast', to: from }, parts: [reply] });
  }

  private dropBytes(client: ClientId, reason: string): Uint8Array {
    const signer = this.cfg.signer;
    const bytes = encode({ type: MsgType.Drop, session: this.cfg.session, client, reason, ...(signer ? { signature: new Uint8Array(SIGNATURE_BYTES) } : {}) });
    return signer ? signTrailer(bytes, signer) : bytes;
  }

  private onStatus(m: StatusMsg, from: Endpoint, now: number): void {
    const c = this.heard(m.client, from, now);
    if (!c || c.state !== 'active') return;
    Object.assign(c, {
      phase: m.phase, have: m.have, needSegment: m.needSegment, chunksVerified: m.chunksVerified,
      repaired: m.repaired, rejected: m.rejected, writeErrors: m.writeErrors,
    });
  }

  private onAck(m: AckMsg, from: Endpoint, now: number): void {
    this.stats.ackDatagrams++;
    const c = m.client ? this.clients.get(m.client) : undefined;
    // Default-mode ACKs name their client: one that never joined is not one of ours, nor is an ACK
    // naming it from another address (classic ACKs name nobody).
    if (this.p.mode === WireMode.Default && !this.fromClient(c, from, now)) return;
    if (c) { c.acks++; c.lastHeard = now; }
    // Classic ACKs name nobody: their LAN is that of a client at their address.
    const lan = c?.lan ?? this.lanAt(from.address);
    this.stats.acksByLan[lan] = (this.stats.acksByLan[lan] ?? 0) + 1;
    const first = this.outstanding[0];
    // Only an ACK for a block still awaited counts; the paper discards any other sequence number.
    if (this.phase !== Phase.Transfer || !first || m.block < first.block || m.block > this.outstanding[this.outstanding.length - 1]!.block) {
      this.stats.staleAcks++;
      return;
    }
    // One ACK confirms every awaited block up to its own: the flow has reached that far. Across LANs
    // (the paper's intra-campus rule) only once every LAN with a client imaging has said so.
    const upTo = this.p.feedback === 'ack-all' ? this.ackedByAll(m.client, m.block) : this.ackedByLans(lan, m.block);
    // The time-out is of the oldest block awaited: the round trip it learns from is that block's wait,
    // not that of the newest block the ACK names (a client ACKs once for many blocks).
    const sentAt = first.sentAt;
    let resolved = 0;
    while (this.outstanding.length > 0 && this.outstanding[0]!.block <= upTo) { this.outstanding.shift(); resolved++; }
    if (resolved > 0) {
      this.stats.blocksAcked += resolved;
      this.stats.usefulAcks++;
      this.tout.acknowledged(this.p.mode === WireMode.Default ? now - sentAt : undefined);
      if (this.ackedBlock === NO_BLOCK || upTo > this.ackedBlock) this.ackedBlock = upTo;
    }
    // The loss sample: the `sampled` blocks before the one named (0: that block itself).
    const sampleFrom = m.block - m.sampled, blocks = Math.max(1, m.sampled);
    if (sampleFrom < 0) return void countDrop(this.stats.drops, 'field');
    const sent = this.geo.blockEnd(sampleFrom + blocks - 1) - this.geo.blockStart(sampleFrom);
    this.rate.sample(m.client || from.address, Math.max(0, 1 - m.received / sent), now, blocks);
  }

  /**
   * ACK-all (udpcast's style): the highest block every active client has acknowledged, now that
   * `client` acknowledged up to `block`.
   */
  private ackedByAll(client: ClientId, block: number): number {
    this.ackedBy.set(client, Math.max(block, this.ackedBy.get(client) ?? -1));
    let all = Infinity;
    for (const c of this.clients.values()) if (c.state === 'active') all = Math.min(all, this.ackedBy.get(c.id) ?? -1);
    return all;
  }

  /** The LAN of the client at this address (as a /24 if none joined from it). */
  private lanAt(address: string): string {
    for (const c of this.clients.values()) if (c.endpoint.address === address) return c.lan;
    return lanOf(this.lans, address, 0);
  }

  /** MTP across LANs: the highest block one ACK from each participating LAN has confirmed, now that `lan` acknowledged `block`. */
  private ackedByLans(lan: string, block: number): number {
    this.lanAcked.set(lan, Math.max(block, this.lanAcked.get(lan) ?? -1));
    const required = new Set<string>();
    for (const c of this.clients.values()) if (c.state === 'active') required.add(c.lan);
    return confirmedUpTo(this.lans, this.lanAcked, required);
  }

  private onRequest(client: ClientId, ranges: PacketRange[], from: Endpoint, now: number): void {
    this.stats.requestDatagrams++;
    const c = client ? this.clients.get(client) : undefined;
    if (this.p.mode === WireMode.Default && !this.fromClient(c, from, now)) return;
    if (c) { c.requests++; c.lastHeard = now; }
    // A dropped client is served no more (its repairs would also crowd out its DROP).
    if (c?.state === 'dropped') return void countDrop(this.stats.drops, 'dropped');
    for (const r of ranges) {
      if (r.start + r.count > this.geo.packets) return void countDrop(this.stats.drops, 'field');
    }
    if (this.phase !== Phase.Repair) {
      // The manifest (default mode): a client of a mapped stream can place nothing without it, so it
      // goes before anything else in any phase but done.
      const manifestOnly = this.p.mode === WireMode.Default && ranges.every((r) => r.start + r.count <= this.geo.manifestPackets);
      if (manifestOnly && this.phase !== Phase.Done) {
        for (const r of ranges) this.urgent.setRange(r.start, r.start + r.count);
        return;
      }
      // Classic has no NACK during the transfer (MTP 2.3): losses wait for the repair phase.
      if (this.phase !== Phase.Transfer || this.p.passRequests === 0) return void countDrop(this.stats.drops, 'phase');
      // Default mode: the holes a client has behind it go again in the pass, before new data, so that its
      // chunks complete (and are checked) while the pass runs. What the pass has not sent yet is no hole.
      for (const r of ranges) {
        const end = Math.min(r.start + r.count, this.cursor);
        if (end > r.start) { this.stats.rangesRequested++; this.want(r.start, end, c); }
      }
      return;
    }
    let asked = c && this.asked.get(c.id);
    if (c && !asked) this.asked.set(c.id, asked = { now: new IntervalSet(), before: new IntervalSet() });
    for (const r of ranges) {
      this.stats.rangesRequested++;
      this.want(r.start, r.start + r.count, c);
      asked?.now.add(r.start, r.start + r.count);
    }
    this.lastRequestAt = now;
    if (this.wanted.count > 0) this.repairBusy = true;
  }

  /** Packets [start, end) are to be repaired, for `c` (undefined: a classic request, which names nobody). */
  private want(start: number, end: number, c: ClientRecord | undefined): void {
    this.wanted.setRange(start, end);
    if (start < this.lowWanted) this.lowWanted = start;
    this.askers?.add(start, end, (c && this.slotOf.get(c.id)) ?? SEVERAL);
  }

  // ---- time -------------------------------------------------------------------------------

  onTimer(now: number): void {
    if (this.finished) return;
    switch (this.phase) {
      case Phase.Waiting: {
        const n = this.activeClients.length;
        const byCount = this.cfg.minClients > 0 && n >= this.cfg.minClients;
        const byWait = this.cfg.waitAfterJoin !== undefined && n > 0 && now >= this.lastJoinAt + this.cfg.waitAfterJoin;
        if (byCount || byWait || (this.startRequested && n > 0)) {
          this.startedAt = now;
          this.enter(Phase.Transfer, now);
        }
        break;
      }
      case Phase.Transfer:
        this.expireBlocks(now);
        if (this.cursor >= this.geo.segmentEnd(this.segment) && this.outstanding.length === 0) {
          this.passed[this.segment] = true;
          this.epoch++;
          this.enter(Phase.Repair, now);
        }
        break;
      case Phase.Repair:
        if (this.repairBusy && this.wanted.count === 0 && now >= this.lastRequestAt + this.collectDelay()) {
          // Everything asked for in this epoch went out: open the next one.
          this.repairBusy = false;
          this.measureRepairs(now);
          this.epoch++;
          this.announceNow(now);
        }
        this.advanceSegment(now);
        break;
      case Phase.Done:
        if (now >= this.doneAt + this.cfg.linger) {
          this.finished = true;
          this.events.emit({ type: 'finished', ok: this.ok, at: now });
        }
        return;
    }
    this.checkClients(now);
  }

  private collectDelay(): number { return this.p.repairWait + 2 * this.p.t0; }

  /**
   * The pace in the repair phase, where no ACKs come: every repair asked for in an epoch went out
   * in it, so the share of them a client asks for again in the next epoch is what it lost. A
   * request names the lowest missing packets first and may stop short (it has a size limit): only
   * the older request's part below the end of the newer one counts. Called as an epoch ends, when
   * its requests are all in: they tell what the epoch before lost, sent at that epoch's pace. (The
   * requests come right after an epoch opens, but its repairs go out as they come: a measure taken
   * then would credit the new pace with repairs sent at the old one.)
   */
  private measureRepairs(now: number): void {
    const [then, current] = this.epochPaces;
    let any = false;
    for (const [id, a] of this.asked) {
      const end = a.now.end;
      const sent = end > 0 && this.clients.get(id)?.state === 'active' ? a.before.covered({ start: 0, count: end }) : 0;
      if (sent > 0) {
        let again = 0;
        for (const r of a.now.ranges) again += a.before.covered(r);
        this.rate.measured(id, again / sent, now);
        any = true;
      }
      a.before = a.now;
      a.now = new IntervalSet();
    }
    if (any) this.rate.settle(now, then);
    this.epochPaces = [current, this.rate.rate];
  }

  /** A client that stopped imaging no longer counts towards the pace. */
  private gone(c: ClientRecord): void {
    this.rate.forget(c.id);
    this.asked.delete(c.id);
  }

  private expireBlocks(now: number): void {
    while (this.outstanding.length > 0 && now >= this.outstanding[0]!.sentAt + this.tout.value) {
      this.outstanding.shift();
      this.stats.blocksTimedOut++;
      // Not a loss sample for the rate: the ACKs that follow report what the clients received, and
      // a time-out is as often a late ACK (a busy client) as lost data.
      this.tout.expired();
    }
  }

  private advanceSegment(now: number): void {
    if (this.repairBusy || this.geo.segments === 1) return;
    const active = this.activeClients;
    // Move on only when no working client still misses packets of this segment (from its STATUS).
    if (active.length === 0 || active.some((c) => c.needSegment === this.segment)) return;
    const S = this.geo.segments;
    const needed = active.map((c) => c.needSegment).filter((k) => k < S);
    if (needed.length === 0) return;
    // Serve the nearest segment ahead (wrapping): a late joiner gets earlier segments by repair.
    const next = needed.reduce((best, k) => ((k - this.segment + S) % S < (best - this.segment + S) % S ? k : best));
    this.segment = next;
    if (this.passed[next]) {
      this.epoch++;
      this.enter(Phase.Repair, now);
    } else {
      this.cursor = this.geo.segmentStart(next);
      this.enter(Phase.Transfer, now);
    }
  }

  private checkClients(now: number): void {
    for (const c of this.clients.values()) {
      if (c.state === 'active' && now - c.lastHeard > this.p.clientTimeout) {
        c.state = 'lost';
        c.reason = `silent for ${Math.round((now - c.lastHeard) / 1000)} s`;
        this.gone(c);
        this.events.emit({ type: 'lost', client: c, at: now });
      }
    }
    if (this.p.maxBehind > 0) this.dropStragglers(now);
    if (this.phase === Phase.Waiting || this.clients.size === 0 || this.cfg.persistent) return;
    // Not done while a DROP still has repeats to go: "done" first would leave that PC without its reason.
    if (this.activeClients.length === 0 && this.dropRepeats.size === 0) {
      this.ok = [...this.clients.values()].every((c) => c.state === 'verified');
      this.doneAt = now;
      this.enter(Phase.Done, now);
    }
  }

  /**
   * The slow-client policy (maxBehind): a client still imaging that long after the first PC that
   * joined with it (before the transfer began, or at the same time) or before it ended verified is
   * dropped, saying how far behind it was.
   */
  private dropStragglers(now: number): void {
    const verified = [...this.clients.values()].filter((v) => v.state === 'verified' && v.doneAt !== undefined);
    if (verified.length === 0) return;
    // PCs that joined before the transfer began started it together, whichever joined first.
    const start = (x: ClientRecord): number => Math.max(x.joinedAt, this.startedAt ?? x.joinedAt);
    for (const c of this.activeClients) {
      const ref = Math.min(...verified.filter((v) => start(v) <= start(c)).map((v) => v.doneAt!));
      if (!(now - ref > this.p.maxBehind)) continue;
      const missing = Math.max(0, Math.min(100, Math.ceil((1 - c.have / this.geo.packets) * 100)));
      this.dropClient(c.id, `too slow: ${missing}% of the image still missing ${Math.round((now - ref) / 1000)} s after the first PC finished (limit ${this.p.maxBehind / 1000} s)`, now);
    }
  }

  private enter(phase: Phase, now: number): void {
    this.phase = phase;
    // The pass's ACKs may have moved the pace: the first repair epoch goes at the pace it ended with.
    if (phase === Phase.Repair) this.epochPaces = [this.rate.rate, this.rate.rate];
    this.announceNow(now);
    this.events.emit({ type: 'phase', phase, segment: this.segment, epoch: this.epoch, at: now });
  }

  private announceNow(now: number): void {
    this.control.push(this.announcement());
    this.nextAnnounceAt = now + this.p.announceInterval;
    // A client that misses the change (one lost datagram) would wait a whole interval for the next
    // one, and the session for that client: say it once more shortly after.
    this.echoAt = now + ANNOUNCE_ECHO;
  }

  private announcement(): Transmit {
    const c = this.cfg;
    const signed = c.signer ? { key: c.signer.publicKey, seq: ++this.announceSeq, signature: new Uint8Array(SIGNATURE_BYTES) } : undefined;
    const bytes = encode({
      type: MsgType.Announce, session: c.session, phase: this.phase, mode: this.p.mode, kind: c.kind,
      caps: (c.signer ? c.caps | Caps.Signed : c.caps & ~Caps.Signed) | (this.unicastRepairs ? Caps.UnicastRepairs : 0), ...(signed ? { signed } : {}),
      imageSize: c.imageSize, targetSize: c.targetSize, sectorSize: c.sectorSize, payloadSize: this.p.payloadSize, blockPackets: this.p.blockPackets,
      manifestLength: c.manifest.length, manifestDigest: c.manifestDigest, epoch: this.epoch, segment: this.segment,
      segmentPackets: this.geo.segmentPackets === this.geo.packets ? 0 : this.geo.segmentPackets,
      dataPort: c.dataPort, feedbackPort: c.feedbackPort, clients: this.clients.size, ttl: c.ttl ?? 1, name: c.name,
    });
    return { dest: { kind: 'group', port: c.controlPort }, parts: [c.signer ? signTrailer(bytes, c.signer) : bytes] };
  }

  /** AUTH for `block` is due before its next packet: once per block and epoch, and before every urgent burst. */
  private authFirst(packet: number, urgent: boolean, now: number): Transmit | undefined {
    if (!this.cfg.signer) return undefined;
    const b = this.geo.blockOf(packet);
    if (urgent) {
      if (this.urgentAuthed.has(b)) return undefined;
      this.urgentAuthed.add(b);
    } else {
      if (this.authEpoch[b] === this.epoch + 1) return undefined;
      this.authEpoch[b] = this.epoch + 1;
    }
    const first = this.geo.blockStart(b);
    const t: Transmit = { dest: { kind: 'group', port: this.cfg.dataPort }, parts: [], auth: { first, count: this.geo.blockEnd(b) - first } };
    this.stats.authSent++;
    this.pace(now, t);
    return t;
  }

  // ---- output -----------------------------------------------------------------------------

  /** The next datagram due at `now`, or undefined. Call until undefined, then sleep until nextWake(). */
  poll(now: number): Transmit | undefined {
    if (this.control.length > 0) return this.control.shift();
    if (this.finished) return undefined;
    if (now >= this.echoAt) {
      this.echoAt = Infinity;
      return this.announcement();
    }
    if (now >= this.solicitAt) {
      this.solicitAt = Infinity;
      this.lastSolicitedAt = now;
      this.stats.solicited++;
      return this.announcement();
    }
    if (now >= this.nextAnnounceAt) {
      this.nextAnnounceAt = now + this.p.announceInterval;
      for (const [id, left] of this.dropRepeats) {
        const c = this.clients.get(id)!;
        this.control.push({ dest: { kind: 'unicast', to: c.endpoint }, parts: [this.dropBytes(id, c.reason)] });
        if (left > 1) this.dropRepeats.set(id, left - 1); else this.dropRepeats.delete(id);
      }
      // The DROPs first: a dropped client that hears "done" first would end without the reason.
      this.control.push(this.announcement());
      return this.control.shift();
    }
    if (this.urgent.count > 0) {
      if (!this.paceAllows(now)) return undefined;
      const packet = this.urgent.find(true, 0);
      const auth = this.authFirst(packet, true, now);
      if (auth) return auth;
      this.urgent.clear(packet);
      if (this.urgent.count === 0) this.urgentAuthed.clear();
      this.stats.repairSent++;
      const t = this.dataTransmit(packet, true);
      this.pace(now, t);
      return t;
    }
    const packet = this.nextDataPacket();
    // Nothing may go (the window waits for ACKs, the pass is over): no credit builds up meanwhile.
    if (packet < 0) { this.nextSendAt = Math.max(this.nextSendAt, now); return undefined; }
    if (!this.paceAllows(now)) return undefined;
    const auth = this.authFirst(packet, false, now);
    if (auth) return auth;
    const repair = packet !== this.cursor || this.phase === Phase.Repair;
    let to: Endpoint | undefined;
    if (repair) {
      this.wanted.clear(packet);
      this.repairCursor = packet + 1;
      this.stats.repairSent++;
      if (this.phase === Phase.Transfer) this.stats.passRepairSent++;
      if (this.askers) {
        const askers = this.codedRepairs ? this.askers.slotsOf(packet) : undefined;
        const slot = this.askers.take(packet);
        const others = askers && this.partners(packet, askers);
        if (others) {
          const t = this.codedTransmit(packet, others);
          this.pace(now, t);
          return t;
        }
        to = slot !== SEVERAL ? this.bySlot[slot - 1]?.endpoint : undefined;
        if (to) this.stats.unicastRepairSent++;
      }
    } else {
      this.cursor++;
      this.stats.dataSent++;
      const last = this.geo.isLastOfBlock(packet) || this.cursor === this.geo.segmentEnd(this.segment);
      // NACK-only: no block waits for an ACK, the pace alone sets the flow.
      if (last && this.p.feedback !== 'nack') this.outstanding.push({ block: this.geo.blockOf(packet), sentAt: now });
    }
    const t = this.dataTransmit(packet, repair, to);
    this.pace(now, t);
    return t;
  }

  /** Packet the data path would send next, ignoring pacing; -1 if none is allowed now. */
  private nextDataPacket(): number {
    // Repairs first, in both phases; in the pass they are holes behind the cursor (and need no window).
    if (this.wanted.count > 0 && (this.phase === Phase.Transfer || this.phase === Phase.Repair)) {
      if (!this.holding) {
        const p = this.wanted.find(true, this.repairCursor);
        return p >= 0 ? p : this.wanted.find(true, 0);
      }
      // Repairs that may go coded wait until the other clients had their turn to ask (CODED_HOLD);
      // new data goes meanwhile, and when none can, whatever is wanted.
      const edge = this.ripeEdge();
      const p = this.wanted.find(true, this.lowWanted, Math.max(this.lowWanted, edge));
      if (p >= 0) return (this.lowWanted = p);
      this.lowWanted = Math.max(this.lowWanted, edge);
      const fresh = this.passPacket();
      return fresh >= 0 ? fresh : this.wanted.find(true, this.lowWanted);
    }
    return this.passPacket();
  }

  /**
   * The pass holds its repairs back (CODED_HOLD): coded repairs can be made, by a pace, for two clients
   * or more. Unpaced, the hold would be no time at all.
   */
  private get holding(): boolean {
    return this.phase === Phase.Transfer && this.rate.paced && this.p.passRequests > 0 && this.bySlot.length > 1 && this.codedRepairs;
  }

  /** Packets below this have been passed long enough ago that every client had its turn to ask for them. */
  private ripeEdge(): number {
    const wire = this.p.payloadSize + HEADER_LENGTH[MsgType.Data] + WIRE_OVERHEAD;
    return this.cursor - Math.ceil((this.rate.rate * CODED_HOLD * this.p.passRequests) / 1000 / wire) - 2 * this.p.blockPackets;
  }

  /** The pass's next new packet, ignoring pacing; -1 if none is allowed now. */
  private passPacket(): number {
    if (this.phase === Phase.Transfer) {
      if (this.cursor >= this.geo.segmentEnd(this.segment)) return -1;
      const oldest = this.outstanding[0]?.block ?? this.geo.blockOf(this.cursor);
      if (this.geo.blockOf(this.cursor) - oldest >= this.p.window) return -1;
      if (this.available < this.cfg.imageSize && this.cursor >= this.geo.manifestPackets) {
        const span = this.geo.span(this.cursor);
        if (span.offset + span.length > this.available) return -1;
      }
      return this.cursor;
    }
    return -1;
  }

  private paceAllows(now: number): boolean { return !this.rate.paced || now >= this.nextSendAt; }

  private pace(now: number, t: Transmit): void {
    const bytes = t.parts.reduce((s, b) => s + b.length, 0) + (t.image?.length ?? 0) + (t.auth ? t.auth.count * PACKET_HASH_BYTES + 88 : 0);
    this.stats.bytesSent += bytes;
    if (!this.rate.paced) return;
    // A late wake-up makes up at most PACE_CREDIT ms, so it sends a burst, not a flood.
    // The link carries the Ethernet, IP and UDP headers too: pace what goes on the wire, not only the payload.
    this.nextSendAt = Math.max(this.nextSendAt, now - PACE_CREDIT) + ((bytes + WIRE_OVERHEAD) / this.rate.rate) * 1000;
  }

  /**
   * Wanted packets to go coded with `packet`, which the clients in slots `askers` asked for: packets of
   * its chunk, within CODED_SPAN after it, asked for by other clients (no client by two of them), so that
   * each of those clients lacks one of them only. Undefined if there is none, or if `packet` is not
   * below CODED_LIMIT.
   */
  private partners(packet: number, askers: readonly number[]): number[] | undefined {
    if (!this.geo.isFullImagePacket(packet) || packet >= CODED_LIMIT) return undefined;
    const P = this.p.payloadSize, span = this.geo.span(packet);
    const layout = this.cfg.layout!, chunkEnd = layout.end(layout.chunkAt(span.offset));
    if (span.offset + P > chunkEnd) return undefined;
    // Packets that lie wholly in the chunk: the last ends at or before its end.
    const end = Math.min(packet + CODED_SPAN + 1, this.geo.manifestPackets + Math.floor(chunkEnd / P));
    // Nothing another client asked for is wanted: no packet can join (a slow PC that alone takes repairs
    // for minutes had each of them look through the 255 packets after it).
    if (this.askers!.beyond(askers) === 0) return undefined;
    // The slots already in the repair, marked with this call's number (no array per packet looked at:
    // a repair looks at tens of them). Once every client's slot is in, no other packet can join.
    const marks = this.slotMarks, mark = ++this.slotMark;
    for (const s of askers) marks[s] = mark;
    let covered = askers.length;
    const others: number[] = [];
    for (let q = this.wanted.find(true, packet + 1, end); q >= 0 && others.length < MAX_CODED - 1 && covered < this.bySlot.length; q = this.wanted.find(true, q + 1, end)) {
      const a = this.askers!.slotAt(q);
      if (a === 0) continue;
      if (a !== SEVERAL) {
        if (marks[a] === mark) continue;
        marks[a] = mark;
        covered++;
        others.push(q);
        continue;
      }
      const theirs = this.askers!.slotsOf(q);
      if (!theirs || theirs.some((s) => marks[s] === mark)) continue;
      for (const s of theirs) marks[s] = mark;
      covered += theirs.length;
      others.push(q);
    }
    return others.length > 0 ? others : undefined;
  }

  /** One coded repair to the group: the XOR of `packet` and `others`, which are then wanted no more. */
  private codedTransmit(packet: number, others: number[]): Transmit {
    for (const q of others) {
      this.wanted.clear(q);
      this.askers!.take(q);
    }
    this.stats.codedSent++;
    this.stats.codedPackets += others.length + 1;
    const span = this.geo.span(packet);
    return {
      dest: { kind: 'group', port: this.cfg.dataPort }, packet, parts: [encodeCodedHeader(this.cfg.session, packet, others)],
      image: { offset: span.offset, length: span.length },
      xor: others.map((q) => ({ offset: this.geo.span(q).offset, length: span.length })),
    };
  }

  /** DATA for `packet`, to the group, or to `to` only (a repair one client alone asked for). */
  private dataTransmit(packet: number, repair: boolean, to?: Endpoint): Transmit {
    const span = this.geo.span(packet);
    let header: Uint8Array;
    if (this.p.mode === WireMode.Classic) {
      const sn = packet - this.geo.segmentStart(this.segment);
      // A sector larger than 512 bytes travels broken: BP marks every piece but the last.
      const unitsPerSector = this.cfg.sectorSize / CLASSIC_UNIT;
      const bp = span.region === 'image' && unitsPerSector > 1 && (span.offset / CLASSIC_UNIT) % unitsPerSector !== unitsPerSector - 1;
      header = encodeClassicHeader(sn, repair ? Top.RepairResponse : Top.Information, bp, span.length);
    } else {
      const flags = (repair ? DataFlag.Repair : 0) | (this.geo.isLastOfBlock(packet) ? DataFlag.Last : 0);
      header = encodeDataHeader(this.cfg.session, flags, packet, this.p.echoAcks ? this.ackedBlock : NO_BLOCK);
    }
    const dest: Dest = to ? { kind: 'unicast', to } : { kind: 'group', port: this.cfg.dataPort };
    if (span.region === 'manifest') return { dest, packet, parts: [header, this.cfg.manifest.subarray(span.offset, span.offset + span.length)] };
    return { dest, packet, parts: [header], image: { offset: span.offset, length: span.length } };
  }

  /** Earliest time at which poll() or onTimer() has something to do. */
  nextWake(now: number): number {
    if (this.control.length > 0) return now;
    if (this.finished) return Infinity;
    let t = Math.min(this.nextAnnounceAt, this.echoAt, this.solicitAt, now + 250);
    if (this.phase === Phase.Waiting && this.cfg.waitAfterJoin !== undefined && this.lastJoinAt > -Infinity)
      t = Math.min(t, this.lastJoinAt + this.cfg.waitAfterJoin);
    if (this.phase === Phase.Transfer && this.outstanding.length > 0) t = Math.min(t, this.outstanding[0]!.sentAt + this.tout.value);
    // The pass is over and nothing awaits an ACK (NACK-only: no ACK would wake us): repair is due now.
    if (this.phase === Phase.Transfer && this.outstanding.length === 0 && this.cursor >= this.geo.segmentEnd(this.segment)) t = now;
    if (this.phase === Phase.Repair && this.repairBusy && this.wanted.count === 0) t = Math.min(t, this.lastRequestAt + this.collectDelay());
    if (this.phase === Phase.Done) t = Math.min(t, this.doneAt + this.cfg.linger);
    if (this.urgent.count > 0 || this.nextDataPacket() >= 0) t = Math.min(t, this.rate.paced ? this.nextSendAt : now);
    return Math.max(t, now);
  }
}
