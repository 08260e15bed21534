// The client's protocol machine (docs/PROTOCOL.md). No sockets, no timers, no files:
// it writes through an injected storage queue and is told when checks finish.
//
// Phases: SEARCHING (no master yet) -> WAITING (joined) -> RECEIVING (first pass,
// out of order, in place) -> REPAIRING (asks for what is missing, suppressed like
// ACKs) -> VERIFYING (every chunk matched to the manifest) -> VERIFIED
// or FAILED. A client never reports VERIFIED while one chunk is unverified.

import { CLASSIC_UNIT, Top, decodeClassic, encodeClassicHeader } from '../protocol/classic.ts';
import { DecodeError } from '../protocol/bytes.ts';
import { type Verifier, fingerprint, packetHash, trailerValid, verifierOf } from '../protocol/auth.ts';
import { type DataHead, PACKET_HASH_BYTES, codedMembers, decode, encode, isData, readData } from '../protocol/codec.ts';
import { SEAL_OVERHEAD, SessionSeal } from '../protocol/secret.ts';
import { xorInto } from '../protocol/xor.ts';
import { type Chunk, type Extent, type Manifest, Layout, decodeManifest, isIdentity, sha256 } from '../protocol/manifest.ts';
import {
  type AnnounceMsg, type AuthMsg, type ClientId, type Message, type PacketRange,
  Caps, ClientPhase, DataFlag, DoneResult, ImageKind, MsgType, NO_BLOCK, Phase, WireMode,
} from '../protocol/messages.ts';
import { type AckDue, AckScheduler } from './acks.ts';
import { Bitmap } from './bitmap.ts';
import { Geometry } from './geometry.ts';
import { IntervalSet } from './intervals.ts';
import { inNetwork, parseCidr } from './lans.ts';
import { type TransferParams, classicParams, defaultParams, drawWait } from './params.ts';
import { RateController } from './rate.ts';
import type { Rng } from './rng.ts';
import { type DropCounts, Emitter, type Endpoint, type Transmit, countDrop } from './types.ts';

/** Where a client's bytes go. Calls return at once; results come back through the machine. */
export interface ClientStorage {
  /**
   * Queue a write of bytes [from, from+length) of `bytes` at a target offset; false when the queue is full
   * (the packet is then treated as lost). `bytes` may be a view into a receive buffer that is reused
   * after the call: keep a copy. `holeFrom` (at most `offset`): target bytes [holeFrom, offset) belong to
   * packets this client lacks, each to be offered later, so storage may put anything there meanwhile
   * as long as what is offered later lands over it (a write then need not end at the hole). Once the
   * manifest is known, `k` and `at` say the bytes are chunk k's stream from byte `at`.
   */
  offer(offset: number, bytes: Uint8Array, from: number, length: number, holeFrom?: number, k?: number, at?: number): boolean;
  /**
   * Chunk k's stream bytes [at, at+length), if storage holds them in memory as offered (a coded repair
   * is decoded with them); undefined if it does not (the chunk went to the target, or was checked).
   * Asked for a chunk on the target, storage may read it back into memory for the next time.
   * Storage that holds nothing in memory need not have it.
   */
  inMemory?(k: number, at: number, length: number): Uint8Array | undefined;
  /** Chunks storage holds in memory at once, once it knows them (0 or absent: none). */
  readonly holds?: number;
  /** The manifest arrived, with these chunks: from now on every offer names its chunk. */
  known(chunks: readonly Chunk[]): void;
  /**
   * All of chunk k's stream bytes were offered: match them to its digest, unpack and write it if
   * packed, and make sure the target holds it (docs/IMAGE-FORMAT.md, "Placing a chunk").
   * Answer with Receiver.onChunkChecked.
   */
  finish(k: number, chunk: Chunk): void;
  /** Zero these extents where they hold anything, then make everything durable; answer with Receiver.onFlushed. */
  flush(zeros: Extent[]): void;
}

export interface ReceiverConfig {
  id: ClientId;
  name: string;
  /** MAC of the interface in use, for the master's records. */
  mac?: string;
  /**
   * This client's network in CIDR form ("10.2.0.0/24"): its LAN. Only another client's ACK from this
   * network makes this client's own ACK redundant (the intra-campus rule); unknown: any ACK does.
   */
  network?: string;
  /** Bytes the target can hold (Number.MAX_SAFE_INTEGER until a target chosen later is confirmed). */
  capacity: number;
  /** What this client images: a disk, or a set of files. */
  kind: ImageKind;
  controlPort: number;
  /** Follow only a master at this address. */
  server?: string;
  /** Skip the confirmation (the operator passed --yes, or the target is not a device). */
  autoConfirm: boolean;
  /** Tunables by wire mode (tests and the simulator override them). */
  tunables?: (mode: WireMode) => TransferParams;
  /** Give up when the master has been silent this long. */
  masterTimeout?: number;
  /**
   * The master's public key. Given: only sessions it signs are followed, and every data packet must be
   * vouched for by a signed AUTH before it is written. Not given: a signed master's key is trusted on
   * first use (its fingerprint is shown); an unsigned master is followed unauthenticated.
   */
  trust?: Verifier;
  /** The shared secret of sealed sessions (without it a sealed session cannot be read, and this client says so). */
  secret?: Uint8Array;
}

/** How far this client can trust what it writes. */
export type Trust =
  | { kind: 'unauthenticated' }
  | { kind: 'pinned' | 'first-use'; fingerprint: string };

export type ClientEvent =
  | { type: 'found'; announce: AnnounceMsg; master: Endpoint; trust: Trust; at: number }
  | { type: 'confirm'; announce: AnnounceMsg; at: number }
  | { type: 'phase'; phase: ClientPhase; at: number }
  | { type: 'verify-failed'; chunk: number; at: number }
  | { type: 'rejected'; reason: string; from: Endpoint; at: number }
  | { type: 'finished'; ok: boolean; reason: string; at: number };

export interface ReceiverStats {
  received: number;
  /** One past the highest packet the first pass brought (what the master has sent, as far as this client knows). */
  furthest: number;
  duplicates: number;
  repaired: number;
  /** Packets taken from coded repairs (counted in `repaired` too). */
  decoded: number;
  queueFull: number;
  requestsSent: number;
  rangesRequested: number;
  verifyFailures: number;
  writeErrors: number;
  drops: DropCounts;
}

const STATUS_INTERVAL = 1000;
const RETRY_INTERVAL = 500;
/** DONE is sent this many times at most (over about 5 s) before a client ends without DONE_ACK. */
const DONE_TRIES = 12;
/**
 * JOIN and DONE go again after 50, 100, 200, 400 ms, then every RETRY_INTERVAL: a lost datagram
 * (or a lost answer) would otherwise keep this PC, and the master's "all verified", waiting half a second.
 */
const retryAfter = (sent: number): number => Math.min(RETRY_INTERVAL, 50 << Math.min(sent, 4));
/**
 * SOLICITs a client sends at most while it has heard no ANNOUNCE: at its start, then after gaps of 50, 100, 200 and
 * 400 ms. One lost SOLICIT or answer (on a lossy link, or a master a moment from listening) would
 * otherwise keep this PC, and a session that waits for it, waiting for the master's next periodic
 * ANNOUNCE; past these the periodic ANNOUNCEs suffice.
 */
const SOLICIT_TRIES = 5;
/** Times one chunk may fail its check before this client gives up on the session. */
const MAX_REFUSALS = 10;
/** Failed writes after which the target is given up on. */
const MAX_WRITE_ERRORS = 8;
/** Blocks whose AUTH a client keeps (about 1 KiB each). */
const MAX_VOUCHED = 16384;
/** Lost packets in a row that a write may span (storage fills their place until they come). */
const HOLE_PACKETS = 8;
/**
 * A client that lost more than this share of what the pass sent since its last request asks for nothing
 * in the pass: it is on a slow or bad link (the rate controller's bound of a healthy one), and repairs
 * for it would slow the pass for everyone. It asks in the repair phase.
 */
const PASS_REQUEST_MAX_LOSS = RateController.HIGH;
/** Times a hole is asked for in the pass at most; the wait before asking again, in request intervals. */
const PASS_SWEEPS = 3;
const PASS_RETRY = 5;

export class Receiver {
  readonly cfg: ReceiverConfig;
  readonly events = new Emitter<ClientEvent>();
  readonly stats: ReceiverStats = {
    received: 0, furthest: 0, duplicates: 0, repaired: 0, decoded: 0, queueFull: 0, requestsSent: 0, rangesRequested: 0,
    verifyFailures: 0, writeErrors: 0, drops: {},
  };
  phase: ClientPhase = ClientPhase.Searching;
  master: Endpoint | undefined;
  announce: AnnounceMsg | undefined;
  geo: Geometry | undefined;
  manifest: Manifest | undefined;
  layout: Layout | undefined;
  have: Bitmap | undefined;
  acks: AckScheduler | undefined;
  finished = false;
  ok = false;
  reason = '';

  private readonly storage: ClientStorage;
  private readonly rng: Rng;
  private p: TransferParams = defaultParams();
  private readonly out: Transmit[] = [];
  private confirmed = false;
  private capacity: number;
  private welcomed = false;
  private nextJoinAt = 0;
  private joinSent = 0;
  private nextStatusAt = 0;
  private statusDirty = false;
  private lastHeardMaster = 0;
  private manifestBuf = new Uint8Array(0);
  // Chunks (known once the manifest is in).
  private chunkMissing = new Uint32Array(0);
  private verified = new Bitmap(0);
  private verifying = new Bitmap(0);
  /** The DATA header being handled (one record, reused: DATA is nearly every datagram). */
  private readonly head: DataHead = { session: 0, flags: 0, packet: 0, ackedBlock: 0, at: 0 };
  /** The packets of the coded repair at hand, and the packet decoded from it. */
  private readonly codedBuf: number[] = [];
  private codedOut: Uint8Array | undefined;
  private readonly refusals = new Map<number, number>();
  // Signed sessions: the key in force, the last ANNOUNCE sequence number, and the packet hashes AUTH vouched for, by block.
  private verifier: Verifier | undefined;
  private lastSeq = 0;
  private readonly vouched = new Map<number, Uint8Array>();
  trust: Trust = { kind: 'unauthenticated' };
  private seal: SessionSeal | undefined;
  private segMissing: number[] = [];
  /** The image packet placed last (-1: none), and the stream offset where it ends. */
  private lastPlaced = -1;
  private lastPlacedEnd = 0;
  // Repair.
  private readonly heard = new IntervalSet();
  private requestedEpoch = -1;
  private requestAt = Infinity;
  private lastRequestAt = -Infinity;
  private lastRepairAt = -Infinity;
  private nextManifestAt = 0;
  /** The pass: below passAsked[i], holes were asked for i + 1 times; where the first sweep stood, and when. */
  private readonly passAsked = new Array<number>(PASS_SWEEPS).fill(0);
  private readonly passHistory: Array<{ at: number; upTo: number }> = [];
  private nextPassRequestAt = 0;
  // End.
  private flushing = false;
  private doneSent = 0;
  private nextDoneAt = 0;
  private doneAcked = false;
  private solicitSent = 0;
  private nextSolicitAt = 0;

  constructor(cfg: ReceiverConfig, storage: ClientStorage, rng: Rng, now: number) {
    this.cfg = cfg;
    this.capacity = cfg.capacity;
    this.storage = storage;
    this.rng = rng;
    this.lastHeardMaster = now;
    // A master already serving need not be waited for until its next ANNOUNCE: ask it for one now.
    this.solicit(now);
  }

  private solicit(now: number): void {
    this.send({ dest: { kind: 'group', port: this.cfg.controlPort + 1 }, parts: [encode({ type: MsgType.Solicit, session: 0, client: this.cfg.id })] });
    this.nextSolicitAt = ++this.solicitSent < SOLICIT_TRIES ? now + retryAfter(this.solicitSent - 1) : Infinity;
  }

  private tunables(mode: WireMode): TransferParams {
    return this.cfg.tunables?.(mode) ?? (mode === WireMode.Classic ? classicParams() : defaultParams());
  }

  /**
   * The operator confirmed the target named in the 'confirm' event, or chose one then: `capacity`
   * is the chosen target's (a client that picks its disk after the announcement starts without one).
   */
  confirm(now: number, capacity = this.capacity): void {
    if (this.confirmed || !this.announce) return;
    this.confirmed = true;
    this.capacity = capacity;
    if (this.announce.targetSize > capacity) return this.fail(`target too small: it holds ${capacity} bytes, the image needs ${this.announce.targetSize} bytes`, now, true);
    this.joinSent = 0;
    this.nextJoinAt = now;
  }

  // ---- input ------------------------------------------------------------------------------

  onDatagram(bytes: Uint8Array, from: Endpoint, port: number, now: number): void {
    if (this.finished) return;
    const a = this.announce;
    const classic = a !== undefined && a.mode === WireMode.Classic && port !== this.cfg.controlPort && (port === a.dataPort || port === a.feedbackPort);
    let m: Message;
    try {
      if (!classic && isData(bytes)) {
        // The hot path: the header is read into one reused record and the payload stays where it is.
        const h = this.head;
        readData(bytes, h);
        if (!a || h.session !== a.session) return this.reject('session', from, now);
        if (this.fromMaster(from, now)) this.onData(h, bytes, now);
        return;
      }
      m = classic ? this.fromClassic(bytes, port === a.feedbackPort) : decode(bytes);
    } catch (e) {
      if (!(e instanceof DecodeError)) throw e;
      return this.reject(e.reason, from, now);
    }
    if (m.type === MsgType.Announce) return this.onAnnounce(m, bytes, from, now);
    if (m.type === MsgType.Solicit) return; // another client asking the master, not us
    if (!a || m.session !== a.session) return this.reject('session', from, now);
    switch (m.type) {
      case MsgType.Ack:
        // Another client's ACK makes ours redundant (MTP's suppression). Anyone can send one, though: in a
        // signed session only the master's echo in its vouched DATA suppresses our ACKs.
        // Across LANs the master needs one ACK from each: an ACK routed in from another LAN silences nobody here.
        if (m.client !== this.cfg.id && !this.verifier && (!this.cfg.network || inNetwork(from.address, this.cfg.network))) this.acks?.ackedUpTo(m.block, now);
        return;
      case MsgType.RepairRequest:
        // What another client asks for comes to us too, unless the master sends a repair only to the one that asked.
        if (m.client !== this.cfg.id && (m.epoch === a.epoch || a.mode === WireMode.Classic) && !(a.caps & Caps.UnicastRepairs))
          for (const r of m.ranges) this.heard.add(r.start, r.start + r.count);
        return;
      case MsgType.Join:
      case MsgType.Status:
      case MsgType.Done:
        return; // other clients' unicast never reaches us; a looped copy is harmless
      default:
        break;
    }
    if (!this.fromMaster(from, now)) return;
    // A signed session's DROP carries the master's signature; anything else is someone else's.
    if (this.verifier && m.type === MsgType.Drop && !trailerValid(bytes, this.verifier)) return this.reject('forged', from, now);
    switch (m.type) {
      case MsgType.Data: return this.onData({ ...m, at: 0 }, m.payload, now); // a classic packet, made DATA
      case MsgType.Auth: return this.onAuth(m, bytes, from, now);
      case MsgType.Welcome:
        if (m.client === this.cfg.id && !this.welcomed) {
          this.welcomed = true;
          if (!this.ended) this.setPhase(this.phaseFromMaster(), now);
        }
        return;
      case MsgType.DoneAck:
        if (m.client === this.cfg.id) this.doneAcked = true;
        return;
      case MsgType.Drop:
        if (m.client === this.cfg.id) this.fail(`dropped by the master: ${m.reason}`, now, false);
        return;
    }
  }

  /** Everything but ANNOUNCE and other clients' feedback comes from the master only. */
  private fromMaster(from: Endpoint, now: number): boolean {
    if (!this.master || from.address !== this.master.address) {
      this.reject('source', from, now);
      return false;
    }
    this.lastHeardMaster = now;
    return true;
  }

  private fromClassic(bytes: Uint8Array, feedback: boolean): Message {
    const a = this.announce!, geo = this.geo!;
    const pkt = decodeClassic(bytes);
    const base = geo.segmentStart(a.segment);
    const packet = base + pkt.sn;
    if (packet >= geo.segmentEnd(a.segment)) throw new DecodeError('field', `SN ${pkt.sn} beyond segment ${a.segment}`);
    const isData = pkt.top === Top.Information || pkt.top === Top.RepairResponse;
    if (isData === feedback) throw new DecodeError('type', 'classic packet on the wrong port');
    const session = a.session;
    switch (pkt.top) {
      case Top.Ack: return { type: MsgType.Ack, session, client: '', block: packet, received: 1, sampled: 0 };
      case Top.RepairRequest: return { type: MsgType.RepairRequest, session, client: '', epoch: a.epoch, ranges: [{ start: packet, count: 1 }] };
      default: {
        // Information only during the pass, Repair-Response only during repair: SNs of two segments never mix.
        const repair = pkt.top === Top.RepairResponse;
        if (repair !== (a.phase === Phase.Repair)) throw new DecodeError('phase', `${repair ? 'repair' : 'information'} packet in phase ${a.phase}`);
        const span = geo.span(packet);
        const unitsPerSector = a.sectorSize / CLASSIC_UNIT;
        const bp = span.region === 'image' && unitsPerSector > 1 && (span.offset / CLASSIC_UNIT) % unitsPerSector !== unitsPerSector - 1;
        if (pkt.bp !== bp) throw new DecodeError('field', 'BP disagrees with the sector size');
        return { type: MsgType.Data, session, flags: (repair ? DataFlag.Repair : 0) | DataFlag.Last, packet, ackedBlock: NO_BLOCK, payload: pkt.payload };
      }
    }
  }

  private reject(reason: string, from: Endpoint, now: number): void {
    countDrop(this.stats.drops, reason);
    this.events.emit({ type: 'rejected', reason, from, at: now });
  }

  /** A signed ANNOUNCE that does not check out against the key in force (or the pinned one) is dropped. */
  private announceTrusted(m: AnnounceMsg, bytes: Uint8Array, from: Endpoint, now: number): boolean {
    const key = this.verifier ?? this.cfg.trust;
    if (!m.signed) {
      if (!key) return true;
      this.reject('unsigned', from, now);
      return false;
    }
    const v = key ?? verifierOf(m.signed.key);
    if (Buffer.compare(m.signed.key, v.publicKey) !== 0) { this.reject('key', from, now); return false; }
    if (!trailerValid(bytes, v)) { this.reject('forged', from, now); return false; }
    if (this.announce && m.session === this.announce.session && m.signed.seq <= this.lastSeq) { this.reject('replay', from, now); return false; }
    return true;
  }

  private onAnnounce(m: AnnounceMsg, bytes: Uint8Array, from: Endpoint, now: number): void {
    if (this.cfg.server && from.address !== this.cfg.server) return this.reject('source', from, now);
    if (!this.announceTrusted(m, bytes, from, now)) return;
    const a = this.announce;
    if (a && m.session !== a.session) {
      // Another master; or ours restarted (same image, new session): follow it and keep what we hold.
      const sameImage = Buffer.compare(m.manifestDigest, a.manifestDigest) === 0 && m.payloadSize === a.payloadSize &&
        m.blockPackets === a.blockPackets && m.mode === a.mode && m.segmentPackets === a.segmentPackets;
      if (!sameImage || now - this.lastHeardMaster < 3 * this.p.announceInterval) return this.reject('session', from, now);
      this.announce = m;
      this.master = from;
      this.welcomed = false;
      this.joinSent = 0;
      this.nextJoinAt = now;
      this.lastHeardMaster = now;
      this.lastSeq = m.signed?.seq ?? 0;
      this.vouched.clear();
      this.seal = this.cfg.secret && m.caps & Caps.Sealed ? new SessionSeal(this.cfg.secret, m.session, m.manifestDigest) : undefined;
      // Block and epoch numbers start again with the new session.
      this.acks = new AckScheduler(this.p.artp, this.p.window, this.rng, this.p.feedback);
      this.heard.clear();
      this.requestedEpoch = -1;
      return;
    }
    if (!a) {
      if (m.kind !== this.cfg.kind) return this.reject('kind', from, now);
      this.adopt(m, from, now);
      return;
    }
    if (from.address !== this.master!.address) return this.reject('source', from, now);
    this.lastHeardMaster = now;
    if (m.signed) this.lastSeq = m.signed.seq;
    const epochChanged = m.epoch !== a.epoch;
    const segmentChanged = m.segment !== a.segment;
    this.announce = m;
    if (epochChanged || segmentChanged) this.heard.clear();
    if (segmentChanged) this.statusDirty = true;
    if (m.phase === Phase.Done && !this.ended) {
      if (this.welcomed) this.fail('the master ended the session', now, false);
      return;
    }
    if (this.welcomed && !this.ended && this.phase !== ClientPhase.Verifying) this.setPhase(this.phaseFromMaster(), now);
  }

  private adopt(m: AnnounceMsg, from: Endpoint, now: number): void {
    if (m.signed) {
      this.verifier = this.cfg.trust ?? verifierOf(m.signed.key);
      this.lastSeq = m.signed.seq;
      this.trust = { kind: this.cfg.trust ? 'pinned' : 'first-use', fingerprint: fingerprint(m.signed.key) };
    }
    this.announce = m;
    this.master = from;
    this.lastHeardMaster = now;
    this.p = this.tunables(m.mode);
    const geo = new Geometry({
      payloadSize: m.payloadSize, blockPackets: m.blockPackets, manifestLength: m.manifestLength,
      imageSize: m.imageSize, segmentPackets: m.segmentPackets,
    });
    this.geo = geo;
    this.have = new Bitmap(geo.packets);
    this.lastPlaced = -1;
    this.manifestBuf = new Uint8Array(m.manifestLength);
    this.segMissing = Array.from({ length: geo.segments }, (_, s) => geo.segmentEnd(s) - geo.segmentStart(s));
    this.acks = new AckScheduler(this.p.artp, this.p.window, this.rng, this.p.feedback);
    this.events.emit({ type: 'found', announce: m, master: from, trust: this.trust, at: now });
    if (m.caps & Caps.Sealed) {
      if (!this.cfg.secret) {
        this.confirmed = true;
        this.fail('the session is sealed (encrypted) and this client holds no secret (--secret FILE)', now, true);
        return;
      }
      this.seal = new SessionSeal(this.cfg.secret, m.session, m.manifestDigest);
    }
    if (m.targetSize > this.capacity) {
      // Tell the master too, so its record names this PC and why it was not imaged.
      this.confirmed = true;
      this.fail(`target too small: it holds ${this.capacity} bytes, the image needs ${m.targetSize} bytes`, now, true);
      return;
    }
    if (this.cfg.autoConfirm) this.confirm(now);
    else this.events.emit({ type: 'confirm', announce: m, at: now });
  }

  /** Verified or failed: only the DONE exchange is left. */
  get ended(): boolean { return this.phase === ClientPhase.Verified || this.phase === ClientPhase.Failed; }

  private phaseFromMaster(): ClientPhase {
    switch (this.announce?.phase) {
      case Phase.Transfer: return ClientPhase.Receiving;
      case Phase.Repair: return ClientPhase.Repairing;
      default: return ClientPhase.Waiting;
    }
  }

  /** A DATA datagram from the master: header `h`, payload bytes [h.at, end) of `bytes`. */
  private onData(h: DataHead, bytes: Uint8Array, now: number): void {
    const geo = this.geo!, have = this.have!;
    // Nothing touches the target before the operator confirmed it, or after this client ended.
    if (!this.confirmed) return void countDrop(this.stats.drops, 'unconfirmed');
    if (this.ended) return void countDrop(this.stats.drops, 'phase');
    if (h.packet >= geo.packets) return void countDrop(this.stats.drops, 'field');
    if (h.flags & DataFlag.Coded) return this.onCoded(h, bytes, now);
    const span = geo.span(h.packet);
    if (bytes.length - h.at !== span.length + (this.seal ? SEAL_OVERHEAD : 0)) return void countDrop(this.stats.drops, 'length');
    if (this.verifier) {
      // Signed session: a packet counts for nothing (no ACK, no echo, no byte written) unless an AUTH
      // of the master vouched for it.
      const hashes = this.vouched.get(geo.blockOf(h.packet));
      if (!hashes) return void countDrop(this.stats.drops, 'unvouched');
      const i = (h.packet - geo.blockStart(geo.blockOf(h.packet))) * PACKET_HASH_BYTES;
      if (Buffer.compare(packetHash(h.packet, bytes.subarray(h.at)), hashes.subarray(i, i + PACKET_HASH_BYTES)) !== 0) return void countDrop(this.stats.drops, 'forged');
    }
    let payload = bytes, at = h.at;
    if (this.seal) {
      const plain = this.seal.open(h.packet, bytes.subarray(h.at));
      if (!plain) return void countDrop(this.stats.drops, 'unsealed');
      payload = plain;
      at = 0;
    }
    const repair = (h.flags & DataFlag.Repair) !== 0;
    const fresh = !have.has(h.packet);
    // The echo is in the header, which AUTH does not cover: in a signed session take it only from a first
    // copy (a replayed packet with an altered header is a duplicate by then).
    if (h.ackedBlock !== NO_BLOCK && (fresh || !this.verifier)) this.acks!.ackedUpTo(h.ackedBlock, now);
    if (!repair) {
      this.acks!.packet(geo.blockOf(h.packet), (h.flags & DataFlag.Last) !== 0, now);
      if (h.packet >= this.stats.furthest) this.stats.furthest = h.packet + 1;
    } else this.lastRepairAt = now;
    if (!fresh) { this.stats.duplicates++; return; }
    if (span.region === 'manifest') this.manifestBuf.set(payload.subarray(at, at + span.length), span.offset);
    else {
      // A few packets lost just before this one (none held, none placed) need not end the write.
      const last = this.lastPlaced, hole = h.packet - last - 1;
      const holeFrom = last >= 0 && hole > 0 && hole <= HOLE_PACKETS && have.find(true, last + 1, h.packet) < 0 ? this.lastPlacedEnd : span.offset;
      if (!this.place(span.offset, payload, at, span.length, holeFrom)) return;
      this.lastPlaced = h.packet;
      this.lastPlacedEnd = span.offset + span.length;
    }
    this.stats.received++;
    if (repair) this.stats.repaired++;
    this.mark(h.packet, now);
  }

  /**
   * A coded repair: if this client lacks exactly one of its packets and holds the others in memory,
   * their XOR with the payload is that packet, taken as a repair. Lacking none, it is a duplicate;
   * lacking more, or not holding the others, it is dropped (`undecodable`) and the packets are asked
   * for again. Sessions that sign or seal send none.
   */
  private onCoded(h: DataHead, bytes: Uint8Array, now: number): void {
    const geo = this.geo!, have = this.have!, layout = this.layout, P = geo.payloadSize;
    const members = this.codedBuf;
    if (this.verifier || this.seal || !codedMembers(bytes, h, members)) return void countDrop(this.stats.drops, 'field');
    if (bytes.length - h.at !== P) return void countDrop(this.stats.drops, 'length');
    let missing = -1;
    for (const q of members) {
      if (!geo.isFullImagePacket(q)) return void countDrop(this.stats.drops, 'field');
      if (have.has(q)) continue;
      if (missing >= 0) return void countDrop(this.stats.drops, 'undecodable');
      missing = q;
    }
    this.lastRepairAt = now;
    if (missing < 0) { this.stats.duplicates++; return; }
    if (!layout) return void countDrop(this.stats.drops, 'undecodable');
    const out = this.codedOut ??= new Uint8Array(P);
    out.set(bytes.subarray(h.at));
    for (const q of members) {
      if (q === missing) continue;
      // The packet's stream bytes, chunk by chunk (a chunk holds its stream bytes in memory in one piece).
      const offset = (q - geo.manifestPackets) * P;
      for (let at = 0; at < P;) {
        const k = layout.chunkAt(offset + at), n = Math.min(layout.end(k) - offset - at, P - at);
        const held = this.storage.inMemory?.(k, offset + at - layout.start(k), n);
        if (!held) return void countDrop(this.stats.drops, 'undecodable');
        xorInto(out, at, held);
        at += n;
      }
    }
    this.stats.decoded++;
    this.onData({ session: h.session, flags: DataFlag.Repair, packet: missing, ackedBlock: NO_BLOCK, at: 0 }, out, now);
  }

  /** A mapped stream can be placed only through its manifest. */
  private get mapped(): boolean { return (this.announce!.caps & Caps.Mapped) !== 0; }

  /**
   * Hand stream bytes [offset, offset+length), held in `bytes` from `from`, to storage where they belong;
   * false if they could not all be taken. Stream bytes [holeFrom, offset) are of packets still to come.
   */
  private place(offset: number, bytes: Uint8Array, from: number, length: number, holeFrom: number): boolean {
    const l = this.layout;
    if (!l) {
      if (this.mapped) {
        countDrop(this.stats.drops, 'early');
        return false;
      }
      // Not mapped: stream offset and target offset are the same.
      return this.offer(offset, bytes, from, length, holeFrom);
    }
    // Most packets lie in one extent of one chunk (the hole before them too, or it is not passed on);
    // the rest go piece by piece (a packet can straddle two chunks).
    const withHole = holeFrom < offset ? l.contiguous(holeFrom, offset + length - holeFrom) : -1;
    const k = l.chunkAt(offset);
    if (withHole >= 0) return this.settled(k) || this.offer(withHole + offset - holeFrom, bytes, from, length, withHole, k, offset - l.start(k));
    const to = l.contiguous(offset, length);
    if (to >= 0) return this.settled(k) || this.offer(to, bytes, from, length, to, k, offset - l.start(k));
    for (const p of l.pieces(offset, length)) {
      if (!this.settled(p.chunk) && !this.offer(p.offset, bytes, from + p.from, p.length, p.offset, p.chunk, offset + p.from - l.start(p.chunk))) return false;
    }
    return true;
  }

  /** Whether chunk k is checked or being checked: nothing is written over it then. */
  private settled(k: number): boolean { return this.verified.has(k) || this.verifying.has(k); }

  private offer(offset: number, bytes: Uint8Array, from: number, length: number, holeFrom = offset, k = -1, at = 0): boolean {
    if (this.storage.offer(offset, bytes, from, length, holeFrom, k, at)) return true;
    this.stats.queueFull++;
    return false;
  }

  private onAuth(m: AuthMsg, bytes: Uint8Array, from: Endpoint, now: number): void {
    const geo = this.geo!;
    if (!this.verifier) return this.reject('unsigned', from, now);
    const block = geo.blockOf(m.first);
    if (m.first !== geo.blockStart(block) || m.first + m.hashes.length / PACKET_HASH_BYTES !== geo.blockEnd(block)) return this.reject('field', from, now);
    if (!trailerValid(bytes, this.verifier)) return this.reject('forged', from, now);
    this.vouched.set(block, m.hashes);
    // Keep the most recent blocks: the window in flight and a repair round's worth.
    if (this.vouched.size > MAX_VOUCHED) this.vouched.delete(this.vouched.keys().next().value!);
  }

  /** Record that we hold `packet`, and start whatever that completes. */
  private mark(packet: number, now: number): void {
    const geo = this.geo!;
    this.have!.set(packet);
    const s = geo.segmentOf(packet);
    if (--this.segMissing[s]! === 0) this.statusDirty = true;
    if (packet < geo.manifestPackets) {
      if (this.have!.countRange(0, geo.manifestPackets) === geo.manifestPackets) this.manifestArrived(now);
    } else if (this.layout) {
      const { first, end } = this.chunksOf(packet);
      for (let k = first; k < end; k++) if (--this.chunkMissing[k]! === 0) this.verifyChunk(k);
    }
    this.checkComplete(now);
  }

  private unmark(packet: number): void {
    if (!this.have!.clear(packet)) return;
    const geo = this.geo!;
    this.segMissing[geo.segmentOf(packet)]!++;
    if (packet >= geo.manifestPackets && this.layout) {
      const { first, end } = this.chunksOf(packet);
      for (let k = first; k < end; k++) this.chunkMissing[k]!++;
    }
    this.statusDirty = true;
  }

  private chunksOf(packet: number): { first: number; end: number } {
    const span = this.geo!.span(packet);
    return this.layout!.chunksOf(span.offset, span.length);
  }

  private chunkPackets(k: number): { first: number; end: number } {
    const l = this.layout!;
    return this.geo!.imagePacketsOf(l.start(k), l.end(k) - l.start(k));
  }

  private manifestArrived(now: number): void {
    const a = this.announce!, geo = this.geo!;
    const digestOk = Buffer.compare(sha256(this.manifestBuf), a.manifestDigest) === 0;
    let m: Manifest | undefined;
    try { m = digestOk ? decodeManifest(this.manifestBuf) : undefined; } catch { m = undefined; }
    if (!m) {
      // A manifest that does not match the announced digest is never trusted: fetch it again.
      this.stats.verifyFailures++;
      for (let p = 0; p < geo.manifestPackets; p++) this.unmark(p);
      this.events.emit({ type: 'verify-failed', chunk: -1, at: now });
      return;
    }
    const layout = new Layout(m);
    // The master signed off on this manifest (its digest), but it must also agree with what was announced,
    // and bytes placed before it arrived (unmapped stream) must have gone where it says.
    let at = 0;
    const inPlace = m.chunks.every((c) => { const ok = isIdentity(c, at); at += c.streamLength; return ok; }) && m.zeros.length === 0;
    if (layout.streamSize !== a.imageSize || m.targetSize !== a.targetSize || m.kind !== a.kind || m.sectorSize !== a.sectorSize || (!this.mapped && !inPlace))
      return this.fail('the manifest disagrees with the announcement', now, true);
    this.manifest = m;
    this.layout = layout;
    this.storage.known(m.chunks);
    const n = m.chunks.length;
    this.chunkMissing = new Uint32Array(n);
    this.verified = new Bitmap(n);
    this.verifying = new Bitmap(n);
    for (let k = 0; k < n; k++) {
      const { first, end } = this.chunkPackets(k);
      this.chunkMissing[k] = end - first - this.have!.countRange(first, end);
      if (this.chunkMissing[k] === 0) this.verifyChunk(k);
    }
  }

  private verifyChunk(k: number): void {
    if (this.verified.has(k) || !this.verifying.set(k)) return;
    this.storage.finish(k, this.manifest!.chunks[k]!);
  }

  /** Storage checked chunk k (and unpacked it into place when ok). */
  onChunkChecked(k: number, ok: boolean, now: number): void {
    if (!this.manifest || !this.verifying.clear(k)) return;
    if (ok) {
      this.verified.set(k);
      if (this.verified.full) this.statusDirty = true;
      this.checkComplete(now);
      return;
    }
    // The chunk arrived damaged, or the disk does not hold it: get the whole chunk again, a few times.
    this.stats.verifyFailures++;
    this.events.emit({ type: 'verify-failed', chunk: k, at: now });
    const tries = (this.refusals.get(k) ?? 0) + 1;
    this.refusals.set(k, tries);
    if (tries >= MAX_REFUSALS) return this.fail(`chunk ${k} was damaged ${tries} times: the master's image or this disk is bad there`, now, true);
    const { first, end } = this.chunkPackets(k);
    for (let p = first; p < end; p++) this.unmark(p);
  }

  /**
   * A queued write to target range [offset, offset+length) failed (a whole chunk's, after its check in
   * memory, too: that chunk is no longer being checked): the packets of its chunks are missing again,
   * and are fetched and written again; a disk that keeps failing fails this client (the master is
   * told where and why, and the session goes on for the others).
   */
  onWriteError(offset: number, length: number, reason: string, now: number): void {
    if (this.ended) return;
    this.stats.writeErrors++;
    if (this.stats.writeErrors >= MAX_WRITE_ERRORS) return this.fail(`write error at byte ${offset} of the target (${this.stats.writeErrors} so far): ${reason}`, now, true);
    if (!this.layout) {
      const { first, end } = this.geo!.imagePacketsOf(offset, length);
      for (let p = first; p < end; p++) this.unmark(p);
      return;
    }
    this.manifest!.chunks.forEach((c, k) => {
      if (this.verified.has(k) || !c.extents.some((e) => e.offset < offset + length && offset < e.offset + e.length)) return;
      // A chunk whose whole write failed is no longer being checked: its packets come again.
      this.verifying.clear(k);
      const { first, end } = this.chunkPackets(k);
      for (let p = first; p < end; p++) this.unmark(p);
    });
  }

  /** The disk cannot make the image durable: this PC fails, and the master is told why. */
  onStorageFailure(reason: string, now: number): void {
    this.flushing = false;
    this.fail(reason, now, true);
  }

  onFlushed(now: number): void {
    if (!this.flushing) return;
    this.flushing = false;
    this.setPhase(ClientPhase.Verified, now);
    this.ok = true;
    this.nextDoneAt = now;
    // DONE needs a WELCOME first: one that was lost is asked for again now, not at the next retry.
    if (!this.welcomed) { this.joinSent = 0; this.nextJoinAt = now; }
  }

  private checkComplete(now: number): void {
    if (!this.have!.full || !this.manifest || !this.verified.full || this.flushing || this.phase === ClientPhase.Verified) return;
    this.flushing = true;
    this.setPhase(ClientPhase.Verifying, now);
    this.storage.flush(this.manifest.zeros);
  }

  private fail(reason: string, now: number, tellMaster: boolean): void {
    this.reason = reason;
    this.ok = false;
    this.setPhase(ClientPhase.Failed, now);
    if (tellMaster) { this.nextDoneAt = now; this.nextJoinAt = now; }
    else this.finish(now);
  }

  private finish(now: number): void {
    if (this.finished) return;
    this.finished = true;
    this.events.emit({ type: 'finished', ok: this.ok, reason: this.reason, at: now });
  }

  private setPhase(p: ClientPhase, now: number): void {
    if (p === this.phase) return;
    this.phase = p;
    this.statusDirty = true;
    this.events.emit({ type: 'phase', phase: p, at: now });
  }

  // ---- time -------------------------------------------------------------------------------

  onTimer(now: number): void {
    if (this.finished) return;
    if (!this.announce) {
      if (now >= this.nextSolicitAt) this.solicit(now);
      return;
    }
    const a = this.announce;
    if (now - this.lastHeardMaster > (this.cfg.masterTimeout ?? 120_000)) {
      return this.fail(`the master at ${this.master?.address} has been silent for ${Math.round((now - this.lastHeardMaster) / 1000)} s`, now, false);
    }
    if (!this.confirmed) return;
    if (!this.welcomed && now >= this.nextJoinAt) {
      this.send(this.unicast(encode({
        type: MsgType.Join, session: a.session, client: this.cfg.id, caps: a.mode === WireMode.Default ? Caps.CodedRepairs : 0, prefix: this.cfg.network ? parseCidr(this.cfg.network)?.prefix ?? 0 : 0,
        capacity: Math.min(this.capacity, Number.MAX_SAFE_INTEGER), have: this.have!.count, mac: this.cfg.mac ?? '00:00:00:00:00:00', name: this.cfg.name,
      })));
      this.nextJoinAt = now + retryAfter(this.joinSent++);
    }
    if (this.ended) {
      if (this.welcomed) this.sendDone(now);
      return;
    }
    // Data is taken (and acknowledged, and repaired) from the first announcement on: WELCOME only
    // tells us the master has us on its list, which the STATUS reports need.
    const ack = this.acks!.due(now);
    if (ack) this.sendAck(ack);
    this.manifestTimer(now);
    this.passTimer(now);
    this.repairTimer(now);
    if (this.welcomed && (this.statusDirty || now >= this.nextStatusAt)) this.sendStatus(now);
  }

  private sendDone(now: number): void {
    if (this.doneAcked || this.doneSent >= DONE_TRIES) return this.finish(now);
    if (now < this.nextDoneAt) return;
    this.send(this.unicast(encode({
      type: MsgType.Done, session: this.announce!.session, client: this.cfg.id,
      result: this.ok ? DoneResult.Verified : DoneResult.Failed, digest: this.announce!.manifestDigest, reason: this.reason,
    })));
    this.nextDoneAt = now + retryAfter(this.doneSent);
    this.doneSent++;
  }

  private sendAck({ block, received, sampled }: AckDue): void {
    const a = this.announce!;
    const bytes = a.mode === WireMode.Classic
      ? encodeClassicHeader(block - this.geo!.segmentStart(a.segment), Top.Ack, false, 0)
      : encode({ type: MsgType.Ack, session: a.session, client: this.cfg.id, block, received, sampled });
    this.send({ dest: { kind: 'group', port: a.feedbackPort }, parts: [bytes] });
  }

  /**
   * A mapped stream is useless without its manifest: ask for the missing packets of it at once, in any
   * phase. An unmapped one can be placed without it, but no chunk is held in memory (nor checked there)
   * before it comes: ask at once for those that should have come by now (below the block before the
   * newest heard of), whatever the loss around them. A PC that joined late, or lost much at its start,
   * asked for nothing in the pass (PASS_REQUEST_MAX_LOSS): its chunks went to the disk in pieces, to be
   * read back for their checks, and it could take no coded repair.
   */
  private manifestTimer(now: number): void {
    const a = this.announce!, geo = this.geo!;
    if (this.layout || a.mode !== WireMode.Default || now < this.nextManifestAt) return;
    const due = this.mapped ? geo.manifestPackets : Math.min(geo.manifestPackets, this.dueEdge());
    const runs = this.have!.clearRuns(0, due, this.p.requestRanges);
    if (runs.length === 0) return;
    this.nextManifestAt = now + RETRY_INTERVAL;
    this.sendRequest(runs);
  }

  /**
   * Packets below this should have come by now: those up to the block before the newest heard of
   * (packets that arrive out of order have that long); 0 before any has come.
   */
  private dueEdge(): number {
    const geo = this.geo!, furthest = this.stats.furthest;
    return furthest > 0 ? geo.blockStart(Math.max(0, geo.blockOf(furthest - 1) - 1)) : 0;
  }

  /**
   * Default mode, during the pass: every `passRequests` ms (on average), one request for the holes that
   * came up since the last one, up to the block before the newest one heard of (packets that arrive out
   * of order have that long), minus what another client asked for. A repair can be lost too: the holes
   * asked for PASS_RETRY intervals ago and still open are asked for again, PASS_SWEEPS - 1 times at most,
   * so that most chunks complete, and are checked, while the pass runs.
   */
  private passTimer(now: number): void {
    const a = this.announce!, geo = this.geo!;
    if (a.phase !== Phase.Transfer || this.p.passRequests === 0 || now < this.nextPassRequestAt || this.stats.furthest === 0) return;
    this.nextPassRequestAt = now + this.p.passRequests;
    const retry = PASS_RETRY * this.p.passRequests;
    const history = this.passHistory;
    while (history.length > 1 && history[1]!.at <= now - (PASS_SWEEPS - 1) * retry) history.shift();
    const edge = this.dueEdge();
    const ranges: PacketRange[] = [];
    for (let i = 0; i < PASS_SWEEPS; i++) {
      // Sweep i > 0 asks again up to where the first sweep stood i retry delays ago.
      const end = i === 0 ? edge : history.findLast((h) => h.at <= now - i * retry)?.upTo ?? 0;
      const from = this.passAsked[i]!;
      if (end <= from) continue;
      const runs = this.have!.clearRuns(from, end, this.p.requestRanges);
      const last = runs[runs.length - 1];
      this.passAsked[i] = runs.length === this.p.requestRanges ? last!.start + last!.count : end;
      let lost = 0;
      for (const r of runs) lost += r.count;
      // A client that loses this much is on a slow or bad link: it waits for the repair phase.
      if (lost === 0 || lost > PASS_REQUEST_MAX_LOSS * (this.passAsked[i]! - from)) continue;
      // What another client asked for is on its way; a hole asked for again is not (its repair was lost).
      for (const r of runs) for (const piece of i === 0 ? this.heard.subtract(r) : [r]) {
        if (!this.verifier) { ranges.push(piece); continue; }
        // Signed: packets of a block whose AUTH did not come would be dropped again (the pass sends each AUTH once).
        const pieceEnd = piece.start + piece.count;
        for (let b = geo.blockOf(piece.start); b <= geo.blockOf(pieceEnd - 1); b++) {
          const start = Math.max(piece.start, geo.blockStart(b));
          if (this.vouched.has(b)) ranges.push({ start, count: Math.min(pieceEnd, geo.blockEnd(b)) - start });
        }
      }
      // Others' requests below the first sweep are of no more use in the pass: keep the set small.
      if (i === 0) this.heard.dropBelow(from);
    }
    history.push({ at: now, upTo: this.passAsked[0]! });
    if (ranges.length === 0) return;
    for (let i = 0; i < ranges.length; i += this.p.requestRanges) this.sendRequest(ranges.slice(i, i + this.p.requestRanges));
    // Clients that lose the same packets (on the master's side of the network) drift apart, and hear each other.
    this.nextPassRequestAt = now + this.p.passRequests * (0.5 + this.rng());
  }

  /** Range of packets this client may ask for now: classic SNs name only the current segment. */
  private requestable(): { start: number; end: number } {
    const a = this.announce!, geo = this.geo!;
    return a.mode === WireMode.Classic
      ? { start: geo.segmentStart(a.segment), end: geo.segmentEnd(a.segment) }
      : { start: 0, end: geo.packets };
  }

  private repairTimer(now: number): void {
    const a = this.announce!, geo = this.geo!;
    const { start, end } = this.requestable();
    // Runs on every turn of the pump: counters, not a scan of the bitmap.
    const missing = a.mode === WireMode.Classic ? this.segMissing[a.segment]! > 0 : this.have!.count < geo.packets;
    if (a.phase !== Phase.Repair || !missing) { this.requestAt = Infinity; return; }
    if (this.requestAt === Infinity) {
      // A new epoch, or a request of ours that went unanswered: ask again after a random wait.
      const stalled = now - this.lastRequestAt > 2 * this.p.announceInterval && now - this.lastRepairAt > 2 * this.p.announceInterval;
      if (a.epoch !== this.requestedEpoch || stalled) this.requestAt = now + drawWait({ kind: 'uniform', max: this.p.repairWait, lambda: 0 }, this.rng());
      return;
    }
    if (now < this.requestAt) return;
    this.requestAt = Infinity;
    this.requestedEpoch = a.epoch;
    this.lastRequestAt = now;
    const limit = this.p.requestRanges * this.p.requestDatagrams;
    const ranges: PacketRange[] = [];
    const stop = Math.min(end, this.heldReach(start));
    let from = start;
    while (ranges.length < limit && from < stop) {
      const runs = this.have!.clearRuns(from, stop, 64);
      if (runs.length === 0) break;
      // Whatever another client already asked for in this epoch is coming anyway.
      for (const r of runs) for (const piece of this.heard.subtract(r)) if (ranges.length < limit) ranges.push(piece);
      const lastRun = runs[runs.length - 1]!;
      from = lastRun.start + lastRun.count;
    }
    for (let i = 0; i < ranges.length; i += this.p.requestRanges) this.sendRequest(ranges.slice(i, i + this.p.requestRanges));
  }

  /**
   * Where a repair request from packet `from` on stops, so that it reaches over no more chunks that
   * are neither whole nor empty here than storage holds in memory: storage lets such a chunk go to
   * the target when it needs room, and reads it back for the repairs that come for it later (a PC
   * far behind, such as one on a slow link, asked for hundreds at once and read each back twice).
   * The rest is asked for in the epochs that follow, while the chunks before it are still held.
   */
  private heldReach(from: number): number {
    const l = this.layout, holds = this.storage.holds ?? 0, geo = this.geo!, have = this.have!;
    if (!l || holds === 0) return Infinity;
    const M = geo.manifestPackets;
    let partial = 0;
    for (let k = from < M ? 0 : l.chunkAt(geo.span(from).offset); k < l.chunks; k++) {
      if (this.settled(k)) continue;
      const { first, end } = this.chunkPackets(k);
      if (have.find(false, first, end) < 0 || have.find(true, first, end) < 0) continue;
      // A packet that straddles chunks k-1 and k is of use to k-1: stop after the packets of [0, start(k)).
      if (++partial > holds) return geo.imagePacketsOf(0, l.start(k)).end;
    }
    return Infinity;
  }

  private sendRequest(ranges: PacketRange[]): void {
    const a = this.announce!;
    this.stats.requestsSent++;
    this.stats.rangesRequested += ranges.length;
    if (a.mode === WireMode.Classic) {
      // The paper's Repair-Request names one SN: one datagram per missing unit.
      const base = this.geo!.segmentStart(a.segment);
      for (const r of ranges) for (let p = r.start; p < r.start + r.count; p++)
        this.send({ dest: { kind: 'group', port: a.feedbackPort }, parts: [encodeClassicHeader(p - base, Top.RepairRequest, false, 0)] });
      return;
    }
    this.send({ dest: { kind: 'group', port: a.feedbackPort }, parts: [encode({ type: MsgType.RepairRequest, session: a.session, client: this.cfg.id, epoch: a.epoch, ranges })] });
  }

  private sendStatus(now: number): void {
    this.statusDirty = false;
    this.nextStatusAt = now + STATUS_INTERVAL;
    this.send(this.unicast(encode({
      type: MsgType.Status, session: this.announce!.session, client: this.cfg.id, phase: this.phase, have: this.have!.count,
      needSegment: this.needSegment(), chunksVerified: this.verified.count, repaired: this.stats.repaired,
      rejected: Object.values(this.stats.drops).reduce((s, n) => s + n, 0), writeErrors: this.stats.writeErrors,
    })));
  }

  /** The next segment, from the announced one and wrapping, in which we miss packets. */
  needSegment(): number {
    const S = this.segMissing.length, cur = this.announce?.segment ?? 0;
    for (let i = 0; i < S; i++) {
      const s = (cur + i) % S;
      if (this.segMissing[s]! > 0) return s;
    }
    return S;
  }

  private unicast(bytes: Uint8Array): Transmit {
    return { dest: { kind: 'unicast', to: this.master! }, parts: [bytes] };
  }

  private send(t: Transmit): void { this.out.push(t); }

  // ---- output -----------------------------------------------------------------------------

  poll(): Transmit | undefined { return this.out.shift(); }

  nextWake(now: number): number {
    if (this.out.length > 0) return now;
    if (this.finished) return Infinity;
    // Only timers that onTimer() services may pull the wake-up forward, or the driver spins.
    let t = now + 100;
    if (!this.announce) t = Math.min(t, this.nextSolicitAt);
    if (this.confirmed && !this.welcomed) t = Math.min(t, this.nextJoinAt);
    if (this.confirmed && this.ended) {
      if (this.welcomed) t = Math.min(t, this.nextDoneAt);
    } else if (this.confirmed && this.acks) {
      t = Math.min(t, this.acks.nextDue(), this.requestAt);
      if (this.announce && this.mapped && !this.layout) t = Math.min(t, this.nextManifestAt);
      if (this.statusDirty && this.welcomed) t = now;
    }
    return Math.max(t, now);
  }
}
