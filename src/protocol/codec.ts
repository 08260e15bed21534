// Codec of the default wire mode (docs/PROTOCOL.md, "Default mode").
// Pure: bytes in, message out (or a DecodeError); message in, bytes out.

import { DecodeError, Reader, Writer, utf8 } from './bytes.ts';
import {
  type AckMsg, type AnnounceMsg, type AuthMsg, type ClientId, type DataMsg, type DoneAckMsg, type DoneMsg, type DropMsg,
  type JoinMsg, type Message, type RepairRequestMsg, type SolicitMsg, type StatusMsg, type WelcomeMsg,
  CODED_LIMIT, CODED_SPAN, Caps, ClientPhase, DataFlag, DoneResult, ImageKind, MAX_CODED, MsgType, NO_BLOCK, Phase, WireMode,
} from './messages.ts';

export const MAGIC = 0x4d55; // "MU"
export const VERSION = 2;
export const COMMON_HEADER = 12;
export const DIGEST_BYTES = 32;
/** ANNOUNCE header length when the target size follows the fixed fields (Caps.Mapped). */
export const ANNOUNCE_MAPPED_HLEN = 104;
/** Ed25519 signature and public key lengths. */
export const SIGNATURE_BYTES = 64;
export const KEY_BYTES = 32;
/** Bytes of a packet's hash in AUTH (SHA-256, truncated). */
export const PACKET_HASH_BYTES = 16;
/** Bytes a signed ANNOUNCE carries after its name: key, sequence number, signature. */
export const ANNOUNCE_TRAILER = KEY_BYTES + 8 + SIGNATURE_BYTES;
/** Bytes of one range in a REPAIR_REQUEST body. */
export const RANGE_BYTES = 10;

/** Fixed header length of each type (the hlen this version's sender writes, and the least a reader accepts). */
export const HEADER_LENGTH: Record<MsgType, number> = {
  [MsgType.Data]: 20,
  [MsgType.Ack]: 28,
  [MsgType.Announce]: 96,
  [MsgType.Join]: 48,
  [MsgType.Welcome]: 20,
  [MsgType.Status]: 48,
  [MsgType.RepairRequest]: 28,
  [MsgType.Done]: 56,
  [MsgType.DoneAck]: 20,
  [MsgType.Drop]: 20,
  [MsgType.Auth]: 24,
  [MsgType.Solicit]: 20,
};

/** Each type's header length as written, by type (0: no such type); a mapped ANNOUNCE's is ANNOUNCE_MAPPED_HLEN. */
const WRITTEN = new Uint8Array(256);
for (const [type, hlen] of Object.entries(HEADER_LENGTH)) WRITTEN[Number(type)] = hlen;

/** Whether this version writes `hlen` as the header length of a message of `type` (false for an unknown type). */
export const writesHeader = (type: number, hlen: number): boolean =>
  WRITTEN[type] !== 0 && (hlen === WRITTEN[type] || (type === MsgType.Announce && hlen === ANNOUNCE_MAPPED_HLEN));

/** Largest UDP payload for a path MTU (IPv4 20 + UDP 8). */
export const udpPayloadFor = (mtu: number): number => mtu - 28;
/** Data payload per packet that fills one datagram at this MTU. */
export const dataPayloadFor = (mtu: number): number => udpPayloadFor(mtu) - HEADER_LENGTH[MsgType.Data];
/** Ranges that fit in one REPAIR_REQUEST at this MTU. */
export const rangesPerRequest = (mtu: number): number =>
  Math.floor((udpPayloadFor(mtu) - HEADER_LENGTH[MsgType.RepairRequest]) / RANGE_BYTES);

// Every datagram is checked against its enums: the value sets are built once, not per datagram.
const valueSets = new WeakMap<object, Set<number>>();
const isOneOf = (v: number, o: Record<string, number>): boolean => {
  let set = valueSets.get(o);
  if (!set) valueSets.set(o, set = new Set(Object.values(o)));
  return set.has(v);
};

function header(w: Writer, type: MsgType, flags: number, session: number): Writer {
  return w.u16(MAGIC).u8(VERSION).u8(type).u8(HEADER_LENGTH[type]).u8(flags).u16(0).u32(session);
}

export function clientIdBytes(id: ClientId): Uint8Array {
  if (!/^[0-9a-f]{16}$/.test(id)) throw new Error(`client id must be 16 hex digits, got "${id}"`);
  return Uint8Array.from(Buffer.from(id, 'hex'));
}
export function macBytes(mac: string): Uint8Array {
  const parts = mac.split(':');
  if (parts.length !== 6 || parts.some((p) => !/^[0-9a-fA-F]{2}$/.test(p))) throw new Error(`MAC must be six hex pairs, got "${mac}"`);
  return Uint8Array.from(parts.map((p) => parseInt(p, 16)));
}
const readClient = (r: Reader): ClientId => Buffer.from(r.take(8, 'client id')).toString('hex');

/** Whether a datagram says it is DATA of the default mode (a glance at its header, no checks beyond). */
export const isData = (b: Uint8Array): boolean =>
  b.length > 3 && b[0] === MAGIC >> 8 && b[1] === (MAGIC & 0xff) && b[3] === MsgType.Data;

/** A DATA datagram's header fields, read in place: its payload is bytes [at, end). */
export interface DataHead { session: number; flags: number; packet: number; ackedBlock: number; at: number }

/**
 * Read a DATA datagram's header into `h`, with every check decode() makes, allocating nothing:
 * DATA is nearly every datagram a client takes. Throws DecodeError.
 */
export function readData(b: Uint8Array, h: DataHead): void {
  if (b.length < COMMON_HEADER) throw new DecodeError('short', `${b.length} bytes is less than a header`);
  if (((b[0]! << 8) | b[1]!) !== MAGIC) throw new DecodeError('magic', 'not a MUST datagram');
  if (b[2] !== VERSION) throw new DecodeError('version', `version ${b[2]}, this program speaks ${VERSION}`);
  if (b[3] !== MsgType.Data) throw new DecodeError('type', `type ${b[3]} is not DATA`);
  const hlen = b[4]!;
  if (hlen < HEADER_LENGTH[MsgType.Data]) throw new DecodeError('length', `header length ${hlen} below ${HEADER_LENGTH[MsgType.Data]} for type ${MsgType.Data}`);
  if (hlen > b.length) throw new DecodeError('short', `header length ${hlen} beyond ${b.length} bytes`);
  if (hlen === b.length) throw new DecodeError('length', 'data without payload');
  h.flags = b[5]!;
  h.session = u32At(b, 8);
  if (h.flags & DataFlag.Coded) {
    // A coded repair's first packet is below 2^32; bytes 6-7 and the acked block hold its offsets.
    h.packet = u32At(b, 12);
    h.ackedBlock = NO_BLOCK;
  } else {
    h.packet = ((b[6]! << 8) | b[7]!) * 0x1_0000_0000 + u32At(b, 12);
    h.ackedBlock = u32At(b, 16);
  }
  h.at = hlen;
}
const u32At = (b: Uint8Array, i: number): number => ((b[i]! << 24) | (b[i + 1]! << 16) | (b[i + 2]! << 8) | b[i + 3]!) >>> 0;

/**
 * Header of a DATA datagram; the payload travels as a second buffer (no copy). The master makes
 * one per packet: bytes set one by one into a small array, with no Writer or DataView around it.
 */
export function encodeDataHeader(session: number, flags: number, packet: number, ackedBlock: number): Uint8Array {
  const b = new Uint8Array(HEADER_LENGTH[MsgType.Data]);
  b[0] = MAGIC >> 8; b[1] = MAGIC & 0xff; b[2] = VERSION; b[3] = MsgType.Data; b[4] = b.length; b[5] = flags;
  const high = Math.floor(packet / 0x1_0000_0000);
  b[6] = high >> 8; b[7] = high & 0xff;
  putU32(b, 8, session);
  putU32(b, 12, packet - high * 0x1_0000_0000);
  putU32(b, 16, ackedBlock);
  return b;
}

/** Where a coded repair's offsets go, in order: the acked block's four bytes, then the packet number's high two. */
const CODED_OFFSETS = [16, 17, 18, 19, 6, 7] as const;

/**
 * Header of a coded repair (DataFlag.Coded): `packet` is the first of the packets its payload is the
 * XOR of, below CODED_LIMIT; `others` the rest, ascending, each at most CODED_SPAN after it. Their
 * offsets from `packet` take the acked-block field and the packet number's high bytes, one byte each,
 * zeros after the last.
 */
export function encodeCodedHeader(session: number, packet: number, others: readonly number[]): Uint8Array {
  if (others.length === 0 || others.length > MAX_CODED - 1) throw new Error(`a coded repair carries 2 to ${MAX_CODED} packets, not ${others.length + 1}`);
  if (packet >= CODED_LIMIT) throw new Error(`coded repair of ${packet}: its first packet must be below ${CODED_LIMIT}`);
  const b = encodeDataHeader(session, DataFlag.Repair | DataFlag.Coded, packet, 0);
  let last = packet;
  others.forEach((q, i) => {
    if (q <= last || q - packet > CODED_SPAN) throw new Error(`coded repair of ${packet}: packet ${q} is out of order or more than ${CODED_SPAN} after it`);
    b[CODED_OFFSETS[i]!] = q - packet;
    last = q;
  });
  return b;
}

/**
 * The packets a coded repair's payload is the XOR of, into `out` (the first is `h.packet`); false when
 * the offsets are not ascending from 1 with zeros after the last, or name fewer than two packets.
 */
export function codedMembers(b: Uint8Array, h: DataHead, out: number[]): boolean {
  out.length = 0;
  out.push(h.packet);
  let prev = 0;
  for (const i of CODED_OFFSETS) {
    const d = b[i]!;
    if (d === 0) { prev = CODED_SPAN + 1; continue; }
    if (d <= prev) return false;
    out.push(h.packet + d);
    prev = d;
  }
  return out.length > 1;
}
const putU32 = (b: Uint8Array, i: number, v: number): void => { b[i] = v >>> 24; b[i + 1] = (v >>> 16) & 0xff; b[i + 2] = (v >>> 8) & 0xff; b[i + 3] = v & 0xff; };

export function encode(m: Exclude<Message, DataMsg>): Uint8Array {
  switch (m.type) {
    case MsgType.Ack: {
      const w = new Writer(HEADER_LENGTH[m.type]);
      return header(w, m.type, 0, m.session).put(clientIdBytes(m.client)).u32(m.block).u16(m.received).u16(m.sampled).done();
    }
    case MsgType.Announce: {
      const name = utf8(m.name, 64);
      const mapped = (m.caps & Caps.Mapped) !== 0;
      if (!mapped && m.targetSize !== m.imageSize) throw new Error('a target size apart from the image size needs Caps.Mapped');
      const hlen = mapped ? ANNOUNCE_MAPPED_HLEN : HEADER_LENGTH[m.type];
      const w = new Writer(hlen + 1 + name.length);
      w.u16(MAGIC).u8(VERSION).u8(m.type).u8(hlen).u8(0).u16(0).u32(m.session)
        .u8(m.phase).u8(m.mode).u8(m.kind).u8(m.ttl).u16(m.caps).u16(0)
        .u64(m.imageSize).u32(m.sectorSize).u16(m.payloadSize).u16(m.blockPackets)
        .u32(m.manifestLength).put(m.manifestDigest)
        .u32(m.epoch).u32(m.segment).u48(m.segmentPackets).u16(0)
        .u16(m.dataPort).u16(m.feedbackPort).u16(Math.min(m.clients, 0xffff)).u16(0);
      if (mapped) w.u64(m.targetSize);
      w.text(name);
      const signed = (m.caps & Caps.Signed) !== 0;
      if (signed !== (m.signed !== undefined)) throw new Error('Caps.Signed and the signed trailer go together');
      const head = w.done();
      if (!m.signed) return head;
      const out = new Uint8Array(head.length + ANNOUNCE_TRAILER);
      out.set(head);
      const t = new Writer(ANNOUNCE_TRAILER).put(m.signed.key).u64(m.signed.seq).put(m.signed.signature).done();
      out.set(t, out.length - ANNOUNCE_TRAILER);
      return out;
    }
    case MsgType.Join: {
      const name = utf8(m.name, 64);
      const w = new Writer(HEADER_LENGTH[m.type] + 1 + name.length);
      header(w, m.type, 0, m.session).put(clientIdBytes(m.client)).u16(m.caps).u8(m.prefix).u8(0)
        .u64(m.capacity).u48(m.have).u16(0).put(macBytes(m.mac)).u16(0);
      return w.text(name).done();
    }
    case MsgType.Welcome:
    case MsgType.DoneAck:
    case MsgType.Solicit: {
      const w = new Writer(HEADER_LENGTH[m.type]);
      return header(w, m.type, 0, m.session).put(clientIdBytes(m.client)).done();
    }
    case MsgType.Status: {
      const w = new Writer(HEADER_LENGTH[m.type]);
      return header(w, m.type, 0, m.session).put(clientIdBytes(m.client))
        .u8(m.phase).u8(0).u48(m.have).u32(m.needSegment).u32(m.chunksVerified)
        .u32(m.repaired).u32(m.rejected).u32(m.writeErrors).done();
    }
    case MsgType.RepairRequest: {
      const w = new Writer(HEADER_LENGTH[m.type] + RANGE_BYTES * m.ranges.length);
      header(w, m.type, 0, m.session).put(clientIdBytes(m.client)).u32(m.epoch).u16(m.ranges.length).u16(0);
      for (const r of m.ranges) w.u48(r.start).u32(r.count);
      return w.done();
    }
    case MsgType.Done: {
      const reason = utf8(m.reason, 200);
      const w = new Writer(HEADER_LENGTH[m.type] + 1 + reason.length);
      header(w, m.type, 0, m.session).put(clientIdBytes(m.client)).u8(m.result).u8(0).u16(0).put(m.digest);
      return w.text(reason).done();
    }
    case MsgType.Drop: {
      const reason = utf8(m.reason, 200);
      const w = new Writer(HEADER_LENGTH[m.type] + 1 + reason.length + (m.signature ? SIGNATURE_BYTES : 0));
      header(w, m.type, 0, m.session).put(clientIdBytes(m.client)).text(reason);
      if (m.signature) w.put(m.signature);
      return w.done();
    }
    case MsgType.Auth: {
      if (m.hashes.length % PACKET_HASH_BYTES !== 0) throw new Error('AUTH hashes must be whole');
      const w = new Writer(HEADER_LENGTH[m.type] + m.hashes.length + SIGNATURE_BYTES);
      return header(w, m.type, 0, m.session).u48(m.first).u16(m.hashes.length / PACKET_HASH_BYTES).u32(0)
        .put(m.hashes).put(m.signature).done();
    }
  }
}

/** Decode one datagram. Throws DecodeError (never anything else) on bytes that are not a valid message. */
export function decode(bytes: Uint8Array): Message {
  const r = new Reader(bytes);
  if (bytes.length < COMMON_HEADER) throw new DecodeError('short', `${bytes.length} bytes is less than a header`);
  if (r.u16('magic') !== MAGIC) throw new DecodeError('magic', 'not a MUST datagram');
  const version = r.u8('version');
  if (version !== VERSION) throw new DecodeError('version', `version ${version}, this program speaks ${VERSION}`);
  const type = r.u8('type');
  if (!isOneOf(type, MsgType)) throw new DecodeError('type', `unknown type ${type}`);
  const t = type as MsgType;
  const hlen = r.u8('header length');
  if (hlen < HEADER_LENGTH[t]) throw new DecodeError('length', `header length ${hlen} below ${HEADER_LENGTH[t]} for type ${t}`);
  if (hlen > bytes.length) throw new DecodeError('short', `header length ${hlen} beyond ${bytes.length} bytes`);
  const flags = r.u8('flags');
  r.u16('reserved');
  const session = r.u32('session');
  // A later version may extend a header: fields we know sit at fixed places, the body starts at hlen
  // (read only by the messages that have one: DATA, the hot path, needs no second reader).
  let bodyReader: Reader | undefined;
  const body = (): Reader => (bodyReader ??= new Reader(bytes, hlen));

  switch (t) {
    case MsgType.Data: {
      const h: DataHead = { session, flags, packet: 0, ackedBlock: 0, at: hlen };
      readData(bytes, h);
      return { type: t, session, flags, packet: h.packet, ackedBlock: h.ackedBlock, payload: bytes.subarray(h.at) } satisfies DataMsg;
    }
    case MsgType.Ack: {
      const client = readClient(r);
      const block = r.u32('block');
      const received = r.u16('received');
      const sampled = r.u16('sampled');
      return { type: t, session, client, block, received, sampled } satisfies AckMsg;
    }
    case MsgType.Announce: {
      const phase = r.u8('phase');
      const mode = r.u8('mode');
      const kind = r.u8('kind');
      const ttl = r.u8('ttl');
      const caps = r.u16('caps');
      r.u16('reserved');
      const imageSize = r.u64('image size');
      const sectorSize = r.u32('sector size');
      const payloadSize = r.u16('payload size');
      const blockPackets = r.u16('block packets');
      const manifestLength = r.u32('manifest length');
      const manifestDigest = Uint8Array.from(r.take(DIGEST_BYTES, 'manifest digest'));
      const epoch = r.u32('epoch');
      const segment = r.u32('segment');
      const segmentPackets = r.u48('segment packets');
      r.u16('reserved');
      const dataPort = r.u16('data port');
      const feedbackPort = r.u16('feedback port');
      const clients = r.u16('clients');
      r.u16('reserved');
      const mapped = (caps & Caps.Mapped) !== 0;
      if (mapped && hlen < ANNOUNCE_MAPPED_HLEN) throw new DecodeError('length', `a mapped ANNOUNCE needs a ${ANNOUNCE_MAPPED_HLEN}-byte header, has ${hlen}`);
      const targetSize = mapped ? r.u64('target size') : imageSize;
      const name = body().text('name');
      let signed: AnnounceMsg['signed'];
      if (caps & Caps.Signed) {
        signed = { key: Uint8Array.from(body().take(KEY_BYTES, 'key')), seq: body().u64('sequence'), signature: Uint8Array.from(body().take(SIGNATURE_BYTES, 'signature')) };
      }
      if (body().remaining !== 0) throw new DecodeError('length', `${body().remaining} bytes after the ANNOUNCE`);
      if (!isOneOf(phase, Phase)) throw new DecodeError('field', `phase ${phase}`);
      if (!isOneOf(mode, WireMode)) throw new DecodeError('field', `mode ${mode}`);
      if (!isOneOf(kind, ImageKind)) throw new DecodeError('field', `kind ${kind}`);
      if (sectorSize < 512 || sectorSize > 65536 || (sectorSize & (sectorSize - 1)) !== 0)
        throw new DecodeError('field', `sector size ${sectorSize}`);
      if (payloadSize < 64) throw new DecodeError('field', `payload size ${payloadSize}`);
      if (blockPackets < 1) throw new DecodeError('field', 'block of 0 packets');
      if (manifestLength < 1) throw new DecodeError('field', 'empty manifest');
      if (dataPort === 0 || feedbackPort === 0) throw new DecodeError('field', 'port 0');
      return {
        type: t, session, phase: phase as Phase, mode: mode as WireMode, kind: kind as ImageKind, caps, imageSize, targetSize,
        sectorSize, payloadSize, blockPackets, manifestLength, manifestDigest, epoch, segment, segmentPackets,
        dataPort, feedbackPort, clients, ttl, name, ...(signed ? { signed } : {}),
      } satisfies AnnounceMsg;
    }
    case MsgType.Join: {
      const client = readClient(r);
      const caps = r.u16('caps');
      const prefix = r.u8('prefix');
      r.u8('reserved');
      if (prefix > 32) throw new DecodeError('field', `prefix length ${prefix}`);
      const capacity = r.u64('capacity');
      const have = r.u48('have');
      r.u16('reserved');
      const mac = [...r.take(6, 'mac')].map((b) => b.toString(16).padStart(2, '0')).join(':');
      const name = body().text('name');
      return { type: t, session, client, caps, prefix, capacity, have, mac, name } satisfies JoinMsg;
    }
    case MsgType.Welcome:
      return { type: t, session, client: readClient(r) } satisfies WelcomeMsg;
    case MsgType.DoneAck:
      return { type: t, session, client: readClient(r) } satisfies DoneAckMsg;
    case MsgType.Solicit:
      return { type: t, session, client: readClient(r) } satisfies SolicitMsg;
    case MsgType.Status: {
      const client = readClient(r);
      const phase = r.u8('phase');
      r.u8('reserved');
      if (!isOneOf(phase, ClientPhase)) throw new DecodeError('field', `client phase ${phase}`);
      return {
        type: t, session, client, phase: phase as ClientPhase, have: r.u48('have'), needSegment: r.u32('need segment'),
        chunksVerified: r.u32('chunks verified'), repaired: r.u32('repaired'), rejected: r.u32('rejected'),
        writeErrors: r.u32('write errors'),
      } satisfies StatusMsg;
    }
    case MsgType.RepairRequest: {
      const client = readClient(r);
      const epoch = r.u32('epoch');
      const n = r.u16('range count');
      if (body().remaining !== n * RANGE_BYTES)
        throw new DecodeError('length', `${n} ranges need ${n * RANGE_BYTES} bytes, body has ${body().remaining}`);
      const ranges = [];
      for (let i = 0; i < n; i++) {
        const start = body().u48('range start');
        const count = body().u32('range count');
        if (count === 0) throw new DecodeError('field', 'empty range');
        ranges.push({ start, count });
      }
      return { type: t, session, client, epoch, ranges } satisfies RepairRequestMsg;
    }
    case MsgType.Done: {
      const client = readClient(r);
      const result = r.u8('result');
      if (!isOneOf(result, DoneResult)) throw new DecodeError('field', `result ${result}`);
      r.u8('reserved');
      r.u16('reserved');
      const digest = Uint8Array.from(r.take(DIGEST_BYTES, 'digest'));
      const reason = body().text('reason');
      return { type: t, session, client, result: result as DoneResult, digest, reason } satisfies DoneMsg;
    }
    case MsgType.Drop: {
      const client = readClient(r);
      const reason = body().text('reason');
      if (body().remaining !== 0 && body().remaining !== SIGNATURE_BYTES) throw new DecodeError('length', `${body().remaining} bytes after the DROP reason`);
      const signature = body().remaining ? Uint8Array.from(body().take(SIGNATURE_BYTES, 'signature')) : undefined;
      return { type: t, session, client, reason, ...(signature ? { signature } : {}) } satisfies DropMsg;
    }
    case MsgType.Auth: {
      const first = r.u48('first packet');
      const count = r.u16('count');
      if (count === 0) throw new DecodeError('field', 'AUTH for no packets');
      if (body().remaining !== count * PACKET_HASH_BYTES + SIGNATURE_BYTES)
        throw new DecodeError('length', `AUTH for ${count} packets needs ${count * PACKET_HASH_BYTES + SIGNATURE_BYTES} bytes, has ${body().remaining}`);
      const hashes = Uint8Array.from(body().take(count * PACKET_HASH_BYTES, 'hashes'));
      return { type: t, session, first, hashes, signature: Uint8Array.from(body().take(SIGNATURE_BYTES, 'signature')) } satisfies AuthMsg;
    }
  }
}
