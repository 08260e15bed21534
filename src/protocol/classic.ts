// Classic MTP, the paper's header exactly (docs/PROTOCOL.md, "Classic mode"):
//
//   SN (32) | TOP (2) | BP (1) | PL (10) | 3 bits zero | payload
//
// TOP: 0 information, 1 ACK, 2 Repair-Request, 3 Repair-Response. PL is the length
// of the whole MTP packet in bytes, so at most 1023. One 512-byte unit per packet.

import { DecodeError, Reader } from './bytes.ts';

export const CLASSIC_HEADER = 6;
/** Bytes of disk per classic packet: the paper's 512-byte sector (a larger sector travels broken in pieces). */
export const CLASSIC_UNIT = 512;
export const CLASSIC_MAX_PL = 1023;
/** SN is 32 bits: a session longer than this many units wraps (see segments in PROTOCOL.md). */
export const CLASSIC_SN_SPACE = 0x1_0000_0000;

export const Top = { Information: 0, Ack: 1, RepairRequest: 2, RepairResponse: 3 } as const;
export type Top = (typeof Top)[keyof typeof Top];

export interface ClassicPacket {
  sn: number;
  top: Top;
  /** Broken packet: this unit is a piece of a larger sector and more pieces follow. */
  bp: boolean;
  payload: Uint8Array;
}

export function encodeClassicHeader(sn: number, top: Top, bp: boolean, payloadLength: number): Uint8Array {
  const pl = CLASSIC_HEADER + payloadLength;
  if (pl > CLASSIC_MAX_PL) throw new Error(`classic packet of ${pl} bytes exceeds PL's 10 bits`);
  if (!Number.isInteger(sn) || sn < 0 || sn >= CLASSIC_SN_SPACE) throw new Error(`SN ${sn} outside 32 bits`);
  const b = new Uint8Array(CLASSIC_HEADER);
  const v = new DataView(b.buffer);
  v.setUint32(0, sn);
  v.setUint16(4, (top << 14) | ((bp ? 1 : 0) << 13) | (pl << 3));
  return b;
}

/** PL, the packet's length, from the header word after SN (TOP, BP, PL, three zero bits). */
export const plOf = (word: number): number => (word >>> 3) & 0x3ff;
/** Whether the header word's three reserved bits are zero, as they must be. */
export const reservedClear = (word: number): boolean => (word & 0x7) === 0;

export function decodeClassic(bytes: Uint8Array): ClassicPacket {
  const r = new Reader(bytes);
  const sn = r.u32('SN');
  const word = r.u16('TOP/BP/PL');
  const top = (word >>> 14) as Top;
  const bp = ((word >>> 13) & 1) === 1;
  const pl = plOf(word);
  if (!reservedClear(word)) throw new DecodeError('field', 'reserved bits set');
  if (pl !== bytes.length) throw new DecodeError('length', `PL says ${pl} bytes, datagram has ${bytes.length}`);
  const payload = bytes.subarray(CLASSIC_HEADER);
  const carriesData = top === Top.Information || top === Top.RepairResponse;
  if (carriesData && (payload.length === 0 || payload.length > CLASSIC_UNIT))
    throw new DecodeError('length', `data packet with ${payload.length} payload bytes`);
  if (!carriesData && (payload.length !== 0 || bp))
    throw new DecodeError('field', 'feedback packet with payload or BP');
  return { sn, top, bp, payload };
}
