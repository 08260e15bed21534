// The default-mode codec, tested four ways: table-driven round trips, a deliberately
// simple reference decoder written from docs/PROTOCOL.md, input cut at every
// boundary, and golden bytes captured from a real session (test/fixtures).

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { DecodeError } from '../../src/protocol/bytes.ts';
import { ANNOUNCE_MAPPED_HLEN, HEADER_LENGTH, VERSION, decode, encode, encodeDataHeader, rangesPerRequest, writesHeader } from '../../src/protocol/codec.ts';
import { type DataMsg, type Message, DataFlag, MsgType, NO_BLOCK } from '../../src/protocol/messages.ts';
import { seeded } from '../../src/session/rng.ts';

const digest = Uint8Array.from({ length: 32 }, (_, i) => i * 7);
const samples: Array<Exclude<Message, DataMsg>> = [
  { type: MsgType.Ack, session: 0xdeadbeef, client: '0123456789abcdef', block: 77, received: 640, sampled: 10 },
  { type: MsgType.Ack, session: 1, client: 'ffffffffffffffff', block: 0xfffffffe, received: 0, sampled: 0 },
  {
    type: MsgType.Announce, session: 42, phase: 2, mode: 1, kind: 1, caps: 0, imageSize: 2 ** 40 + 12345, targetSize: 2 ** 40 + 12345, sectorSize: 4096,
    payloadSize: 1448, blockPackets: 64, manifestLength: 33_000, manifestDigest: digest, epoch: 3, segment: 0,
    segmentPackets: 0, dataPort: 7700, feedbackPort: 7701, clients: 12, ttl: 0, name: 'lab image ✓',
  },
  {
    type: MsgType.Announce, session: 7, phase: 3, mode: 2, kind: 2, caps: 0x8003, imageSize: 1, targetSize: 2 ** 41 + 1, sectorSize: 512, payloadSize: 512,
    blockPackets: 1, manifestLength: 1, manifestDigest: digest, epoch: 0xffffffff, segment: 9, segmentPackets: 2 ** 32,
    dataPort: 7702, feedbackPort: 7703, clients: 0, ttl: 8, name: '',
    signed: { key: digest, seq: 2 ** 40 + 3, signature: Uint8Array.from({ length: 64 }, (_, i) => 255 - i) },
  },
  { type: MsgType.Join, session: 5, client: '00000000000000aa', caps: 3, prefix: 24, capacity: 500_107_862_016, have: 123456, mac: '52:54:00:12:34:56', name: 'pc-17' },
  { type: MsgType.Welcome, session: 5, client: '00000000000000aa' },
  {
    type: MsgType.Status, session: 5, client: '00000000000000aa', phase: 4, have: 2 ** 40, needSegment: 2, chunksVerified: 9,
    repaired: 100, rejected: 3, writeErrors: 0,
  },
  { type: MsgType.RepairRequest, session: 9, client: '1111222233334444', epoch: 2, ranges: [{ start: 0, count: 1 }, { start: 2 ** 45, count: 4_000_000 }] },
  { type: MsgType.RepairRequest, session: 9, client: '1111222233334444', epoch: 2, ranges: [] },
  { type: MsgType.Done, session: 3, client: 'abcdefabcdefabcd', result: 1, digest, reason: '' },
  { type: MsgType.Done, session: 3, client: 'abcdefabcdefabcd', result: 2, digest, reason: 'write error at byte 4096 on /dev/sda' },
  { type: MsgType.DoneAck, session: 3, client: 'abcdefabcdefabcd' },
  { type: MsgType.Solicit, session: 0, client: 'abcdefabcdefabcd' },
  { type: MsgType.Drop, session: 3, client: 'abcdefabcdefabcd', reason: 'dropped by the operator' },
  { type: MsgType.Drop, session: 3, client: 'abcdefabcdefabcd', reason: 'signed', signature: Uint8Array.from({ length: 64 }, (_, i) => i) },
  { type: MsgType.Auth, session: 3, first: 2 ** 40 + 64, hashes: Uint8Array.from({ length: 64 * 16 }, (_, i) => i * 3), signature: Uint8Array.from({ length: 64 }, (_, i) => i) },
];

test('every message survives encode then decode', () => {
  for (const m of samples) assert.deepEqual(decode(encode(m)), m, `type ${m.type}`);
});

test('writesHeader holds for the header length of every message encoded, and for no other', () => {
  const written = [...samples.map((m) => encode(m)), encodeDataHeader(1, 0, 3, NO_BLOCK)];
  // What the encoder wrote, type by header length: the samples hold every type, and both ANNOUNCE
  // lengths (caps 0x8003 has Caps.Mapped).
  const pairs = new Set(written.map((b) => (b[3]! << 8) | b[4]!));
  assert.deepEqual(new Set(written.map((b) => b[3])), new Set(Object.keys(HEADER_LENGTH).map(Number)));
  assert.ok(pairs.has((MsgType.Announce << 8) | HEADER_LENGTH[MsgType.Announce]) && pairs.has((MsgType.Announce << 8) | ANNOUNCE_MAPPED_HLEN));
  for (let type = 0; type < 256; type++) for (let hlen = 0; hlen < 256; hlen++) {
    assert.equal(writesHeader(type, hlen), pairs.has((type << 8) | hlen), `type ${type}, hlen ${hlen}`);
  }
});

test('DATA: header and payload round trip, payload is a view', () => {
  const payload = Uint8Array.from({ length: 1448 }, (_, i) => i & 0xff);
  const header = encodeDataHeader(0x01020304, DataFlag.Last | DataFlag.Repair, 2 ** 47 + 5, NO_BLOCK);
  assert.equal(header.length, HEADER_LENGTH[MsgType.Data]);
  const bytes = new Uint8Array([...header, ...payload]);
  const m = decode(bytes);
  assert.equal(m.type, MsgType.Data);
  if (m.type !== MsgType.Data) return;
  assert.equal(m.session, 0x01020304);
  assert.equal(m.packet, 2 ** 47 + 5);
  assert.equal(m.ackedBlock, NO_BLOCK);
  assert.equal(m.flags, 3);
  assert.deepEqual(m.payload, payload);
  assert.equal(m.payload.buffer, bytes.buffer, 'payload should not be copied');
  for (const [session, packet, acked] of [[0xfedcba98, 0x1_2345_6789, 77], [0, 0, 0], [1, 2 ** 48 - 1, 0xfffffffe]] as const) {
    const d = decode(new Uint8Array([...encodeDataHeader(session, 0, packet, acked), 1]));
    assert.deepEqual(d.type === MsgType.Data && [d.session, d.packet, d.ackedBlock, d.flags], [session, packet, acked, 0]);
    // Where docs/PROTOCOL.md 3.1 puts them: the packet number's high 16 bits in the common header's bytes 6-7.
    const b = Buffer.from(encodeDataHeader(session, 0, packet, acked));
    assert.deepEqual([b.readUInt32BE(8), b.readUInt16BE(6) * 2 ** 32 + b.readUInt32BE(12), b.readUInt32BE(16), b[4]], [session, packet, acked, 20]);
  }
});

// A reference decoder written straight from the tables in docs/PROTOCOL.md, with fixed
// offsets and Buffer's own readers: no shared code with src/protocol.
function reference(b: Buffer): Record<string, unknown> {
  const id = (o: number): string => b.subarray(o, o + 8).toString('hex');
  const base = { magic: b.readUInt16BE(0), version: b[2], type: b[3], hlen: b[4], session: b.readUInt32BE(8) };
  switch (b[3]) {
    case 2: return { ...base, client: id(12), block: b.readUInt32BE(20), received: b.readUInt16BE(24), sampled: b.readUInt16BE(26) };
    case 3: return {
      ...base, phase: b[12], mode: b[13], kind: b[14], ttl: b[15], caps: b.readUInt16BE(16), imageSize: Number(b.readBigUInt64BE(20)),
      // Caps.Mapped: the target size follows the fixed fields, at 96.
      targetSize: Number(b.readBigUInt64BE(b.readUInt16BE(16) & 1 ? 96 : 20)),
      sectorSize: b.readUInt32BE(28), payloadSize: b.readUInt16BE(32), blockPackets: b.readUInt16BE(34),
      manifestLength: b.readUInt32BE(36), manifestDigest: b.subarray(40, 72).toString('hex'), epoch: b.readUInt32BE(72),
      segment: b.readUInt32BE(76), segmentPackets: b.readUIntBE(80, 6), dataPort: b.readUInt16BE(88), feedbackPort: b.readUInt16BE(90),
      clients: b.readUInt16BE(92), name: b.subarray(b[4]! + 1, b[4]! + 1 + b[b[4]!]!).toString('utf8'),
      // Caps.Signed: key, sequence number and signature follow the name.
      ...(b.readUInt16BE(16) & 2 ? { signed: { key: b.subarray(b.length - 104, b.length - 72).toString('hex'), seq: Number(b.readBigUInt64BE(b.length - 72)), signature: b.subarray(b.length - 64).toString('hex') } } : {}),
    };
    case 4: return {
      ...base, client: id(12), caps: b.readUInt16BE(20), prefix: b[22], capacity: Number(b.readBigUInt64BE(24)), have: b.readUIntBE(32, 6),
      mac: [...b.subarray(40, 46)].map((x) => x.toString(16).padStart(2, '0')).join(':'), name: b.subarray(49, 49 + b[48]!).toString('utf8'),
    };
    case 5: case 9: return { ...base, client: id(12) };
    case 6: return {
      ...base, client: id(12), phase: b[20], have: b.readUIntBE(22, 6), needSegment: b.readUInt32BE(28), chunksVerified: b.readUInt32BE(32),
      repaired: b.readUInt32BE(36), rejected: b.readUInt32BE(40), writeErrors: b.readUInt32BE(44),
    };
    case 7: {
      const n = b.readUInt16BE(24);
      const ranges = Array.from({ length: n }, (_, i) => ({ start: b.readUIntBE(28 + 10 * i, 6), count: b.readUInt32BE(34 + 10 * i) }));
      return { ...base, client: id(12), epoch: b.readUInt32BE(20), ranges };
    }
    case 8: return { ...base, client: id(12), result: b[20], digest: b.subarray(24, 56).toString('hex'), reason: b.subarray(57, 57 + b[56]!).toString('utf8') };
    case 10: {
      const sig = b.length > 21 + b[20]! ? { signature: b.subarray(b.length - 64).toString('hex') } : {};
      return { ...base, client: id(12), reason: b.subarray(21, 21 + b[20]!).toString('utf8'), ...sig };
    }
    case 11: {
      const n = b.readUInt16BE(18);
      return { ...base, first: b.readUIntBE(12, 6), hashes: b.subarray(24, 24 + 16 * n).toString('hex'), signature: b.subarray(24 + 16 * n).toString('hex') };
    }
    default: throw new Error(`reference decoder has no type ${b[3]}`);
  }
}

function randomMessage(r: () => number): Exclude<Message, DataMsg> {
  const int = (n: number): number => Math.floor(r() * n);
  const hex = (): string => Array.from({ length: 16 }, () => '0123456789abcdef'[int(16)]).join('');
  const text = (max: number): string => Array.from({ length: int(max) }, () => String.fromCharCode(0x20 + int(0x5e))).join('');
  const session = int(2 ** 32);
  switch (int(9)) {
    case 0: return { type: MsgType.Ack, session, client: hex(), block: int(2 ** 32), received: int(65536), sampled: int(65536) };
    case 1: {
      const caps = int(65536), imageSize = int(2 ** 50);
      return {
      type: MsgType.Announce, session, phase: (1 + int(4)) as 1, mode: (1 + int(2)) as 1, kind: (1 + int(2)) as 1, caps,
      ...(caps & 2 ? { signed: { key: Uint8Array.from({ length: 32 }, () => int(256)), seq: int(2 ** 53), signature: Uint8Array.from({ length: 64 }, () => int(256)) } } : {}),
      imageSize, targetSize: caps & 1 ? int(2 ** 50) : imageSize, sectorSize: 512 << int(8), payloadSize: 64 + int(9000), blockPackets: 1 + int(1000),
      manifestLength: 1 + int(2 ** 31), manifestDigest: Uint8Array.from({ length: 32 }, () => int(256)), epoch: int(2 ** 32),
      segment: int(2 ** 32), segmentPackets: int(2 ** 48), dataPort: 1 + int(65535), feedbackPort: 1 + int(65535), clients: int(65536), ttl: int(256), name: text(64),
      };
    }
    case 2: return {
      type: MsgType.Join, session, client: hex(), caps: int(65536), prefix: int(33), capacity: int(2 ** 53), have: int(2 ** 48),
      mac: Array.from({ length: 6 }, () => int(256).toString(16).padStart(2, '0')).join(':'), name: text(64),
    };
    case 3: return { type: MsgType.Welcome, session, client: hex() };
    case 4: return {
      type: MsgType.Status, session, client: hex(), phase: (1 + int(7)) as 1, have: int(2 ** 48), needSegment: int(2 ** 32),
      chunksVerified: int(2 ** 32), repaired: int(2 ** 32), rejected: int(2 ** 32), writeErrors: int(2 ** 32),
    };
    case 5: return {
      type: MsgType.RepairRequest, session, client: hex(), epoch: int(2 ** 32),
      ranges: Array.from({ length: int(rangesPerRequest(1500)) }, () => ({ start: int(2 ** 48), count: 1 + int(2 ** 32 - 1) })),
    };
    case 6: return { type: MsgType.Done, session, client: hex(), result: (1 + int(2)) as 1, digest: Uint8Array.from({ length: 32 }, () => int(256)), reason: text(200) };
    case 7: return { type: MsgType.Drop, session, client: hex(), reason: text(200), ...(int(2) ? { signature: Uint8Array.from({ length: 64 }, () => int(256)) } : {}) };
    default: return { type: MsgType.Auth, session, first: int(2 ** 48), hashes: Uint8Array.from({ length: 16 * (1 + int(64)) }, () => int(256)), signature: Uint8Array.from({ length: 64 }, () => int(256)) };
  }
}

test('the codec agrees with the reference decoder on 5,000 random messages', () => {
  const r = seeded(11);
  for (let i = 0; i < 5000; i++) {
    const m = randomMessage(r);
    const bytes = Buffer.from(encode(m));
    const ref = reference(bytes);
    assert.equal(ref.magic, 0x4d55);
    assert.equal(ref.version, VERSION);
    assert.equal(ref.hlen, m.type === MsgType.Announce && m.caps & 1 ? ANNOUNCE_MAPPED_HLEN : HEADER_LENGTH[m.type]);
    const { magic: _m, version: _v, hlen: _h, ...fields } = ref;
    const mine: Record<string, unknown> = { ...decode(bytes) };
    for (const k of ['manifestDigest', 'digest', 'hashes', 'signature']) if (mine[k] instanceof Uint8Array) mine[k] = Buffer.from(mine[k] as Uint8Array).toString('hex');
    const signed = mine.signed as { key: Uint8Array; seq: number; signature: Uint8Array } | undefined;
    if (signed) mine.signed = { key: Buffer.from(signed.key).toString('hex'), seq: signed.seq, signature: Buffer.from(signed.signature).toString('hex') };
    assert.deepEqual(mine, fields, `message ${i} (type ${m.type})`);
  }
});

test('input cut at every length throws DecodeError, never anything else', () => {
  for (const m of samples) {
    const bytes = encode(m);
    for (let n = 0; n < bytes.length; n++) {
      const cut = bytes.subarray(0, n);
      try {
        const d = decode(cut);
        // A shorter prefix can only decode if it re-encodes to itself (a body that happens to be complete).
        assert.deepEqual(encode(d as Exclude<Message, DataMsg>), cut, `type ${m.type} cut at ${n} decoded to something else`);
      } catch (e) {
        assert.ok(e instanceof DecodeError, `type ${m.type} cut at ${n}: ${(e as Error).name}: ${(e as Error).message}`);
      }
    }
  }
});

test('wrong magic, version, type and header length are refused by reason', () => {
  const good = encode(samples[0]!);
  const bad = (i: number, v: number): Uint8Array => { const b = Uint8Array.from(good); b[i] = v; return b; };
  const reason = (b: Uint8Array): string => { try { decode(b); return 'accepted'; } catch (e) { return (e as DecodeError).reason; } };
  assert.equal(reason(bad(0, 0x00)), 'magic');
  assert.equal(reason(bad(2, VERSION + 1)), 'version');
  assert.equal(reason(bad(2, VERSION - 1)), 'version');
  assert.equal(reason(bad(3, 99)), 'type');
  assert.equal(reason(bad(4, 12)), 'length');
  assert.equal(reason(bad(4, 200)), 'short');
  assert.equal(reason(new Uint8Array(0)), 'short');
  // A later version's longer header is read: known fields at their places, body after hlen.
  const longer = new Uint8Array([...good.subarray(0, 4), 32, ...good.subarray(5), 0xaa, 0xbb, 0xcc, 0xdd]);
  assert.deepEqual(decode(longer), samples[0]);
});

test('golden bytes captured from a real session decode as recorded', () => {
  const fixtures = JSON.parse(readFileSync(new URL('../fixtures/captured.json', import.meta.url), 'utf8')) as Array<{ hex: string; type: number; fields: Record<string, number | string> }>;
  assert.ok(fixtures.length >= 6, 'fixtures missing');
  for (const f of fixtures) {
    const m = decode(Buffer.from(f.hex, 'hex')) as unknown as Record<string, unknown>;
    assert.equal(m.type, f.type);
    for (const [k, v] of Object.entries(f.fields)) assert.equal(m[k], v, `${k} of a captured type ${f.type}`);
    if (f.type !== MsgType.Data) assert.equal(Buffer.from(encode(m as unknown as Exclude<Message, DataMsg>)).toString('hex'), f.hex, 'captured bytes re-encode identically');
  }
});
