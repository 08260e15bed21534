// Classic MTP header: the paper's SN | TOP | BP | PL, bit for bit.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DecodeError } from '../../src/protocol/bytes.ts';
import { CLASSIC_HEADER, Top, decodeClassic, encodeClassicHeader } from '../../src/protocol/classic.ts';

test('fields sit where the paper puts them', () => {
  const h = encodeClassicHeader(0x01020304, Top.RepairResponse, true, 512);
  // SN 32 bits, then TOP=3 (11), BP=1, PL=518 (1000000110) and three zero bits: 11 1 1000000110 000
  assert.deepEqual([...h], [0x01, 0x02, 0x03, 0x04, 0b1111_0000, 0b0011_0000]);
  const p = decodeClassic(new Uint8Array([...h, ...new Uint8Array(512).fill(9)]));
  assert.deepEqual({ sn: p.sn, top: p.top, bp: p.bp, len: p.payload.length }, { sn: 0x01020304, top: Top.RepairResponse, bp: true, len: 512 });
});

test('round trip of every packet type', () => {
  for (const top of [Top.Information, Top.Ack, Top.RepairRequest, Top.RepairResponse]) {
    const data = top === Top.Information || top === Top.RepairResponse;
    const payload = data ? Uint8Array.from({ length: 300 }, (_, i) => i) : new Uint8Array(0);
    const bytes = new Uint8Array([...encodeClassicHeader(0xffffffff, top, false, payload.length), ...payload]);
    const p = decodeClassic(bytes);
    assert.equal(p.top, top);
    assert.equal(p.sn, 0xffffffff);
    assert.deepEqual(p.payload, payload);
  }
});

test('PL must equal the datagram length; reserved bits, payload on feedback and oversize are refused', () => {
  const ok = new Uint8Array([...encodeClassicHeader(5, Top.Information, false, 10), ...new Uint8Array(10)]);
  const reason = (b: Uint8Array): string => { try { decodeClassic(b); return 'accepted'; } catch (e) { assert.ok(e instanceof DecodeError); return e.reason; } };
  assert.equal(reason(ok), 'accepted');
  assert.equal(reason(ok.subarray(0, ok.length - 1)), 'length');
  assert.equal(reason(ok.subarray(0, 3)), 'short');
  const reserved = Uint8Array.from(ok); reserved[5]! |= 1;
  assert.equal(reason(reserved), 'field');
  const ackWithData = new Uint8Array([...encodeClassicHeader(5, Top.Ack, false, 4), 1, 2, 3, 4]);
  assert.equal(reason(ackWithData), 'field');
  assert.throws(() => encodeClassicHeader(1, Top.Information, false, 1023 - CLASSIC_HEADER + 1));
  const big = new Uint8Array([...encodeClassicHeader(1, Top.Information, false, 600), ...new Uint8Array(600)]);
  assert.equal(reason(big), 'length');
});
