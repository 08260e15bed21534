// Bad input is counted and dropped: no exception escapes a decoder or a machine, and
// nothing malformed, truncated, foreign or of another version reaches the disk.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { encode, encodeDataHeader } from '../../src/protocol/codec.ts';
import { manifestOfBytes } from '../../src/disk/manifest-build.ts';
import { sha256 } from '../../src/protocol/manifest.ts';
import { ImageKind, MsgType, NO_BLOCK, WireMode } from '../../src/protocol/messages.ts';
import { defaultParams } from '../../src/session/params.ts';
import { Receiver } from '../../src/session/receiver.ts';
import { Sender } from '../../src/session/sender.ts';
import { seeded } from '../../src/session/rng.ts';
import { fuzzDecoders, mutate } from '../fuzz.ts';

const CASES = Number(process.env.MUST_FUZZ_CASES ?? 100_000);

test(`decoders: ${CASES} random and mutated datagrams, only DecodeError escapes`, () => {
  const { accepted, failures } = fuzzDecoders(CASES, 99);
  assert.deepEqual(failures, []);
  assert.ok(accepted > 0, 'mutations never produced a valid datagram: the fuzzer is not reaching the decoders\' happy paths');
});

/** A client that has found its master and confirmed: everything it writes is recorded. */
function liveClient(): { rx: Receiver; writes: number[]; announce: Uint8Array; session: number } {
  const { bytes: manifest } = manifestOfBytes(new Uint8Array(1 << 20), ImageKind.Disk);
  const session = 0x1234_5678;
  const announce = encode({
    type: MsgType.Announce, session, phase: 2, mode: WireMode.Default, kind: ImageKind.Disk, caps: 0, imageSize: 1 << 20, targetSize: 1 << 20, sectorSize: 512,
    payloadSize: 1448, blockPackets: 64, manifestLength: manifest.length, manifestDigest: sha256(manifest), epoch: 0, segment: 0,
    segmentPackets: 0, dataPort: 7700, feedbackPort: 7701, clients: 1, ttl: 1, name: 'img',
  });
  const writes: number[] = [];
  const rx = new Receiver({ id: '00000000000000c1', name: 'c1', capacity: 1 << 30, kind: ImageKind.Disk, controlPort: 7700, autoConfirm: true },
    { offer: (o) => { writes.push(o); return true; }, known: () => {}, finish: () => {}, flush: () => {} }, seeded(1), 0);
  rx.onDatagram(announce, { address: '10.0.0.1', port: 5000 }, 7700, 0);
  return { rx, writes, announce, session };
}

test('a client drops malformed, truncated, foreign and wrong-version datagrams and writes none of them', () => {
  const { rx, writes, session } = liveClient();
  const master = { address: '10.0.0.1', port: 5000 };
  const data = (s: number, packet: number, payload: number): Uint8Array => new Uint8Array([...encodeDataHeader(s, 0, packet, NO_BLOCK), ...new Uint8Array(payload).fill(0xab)]);
  const good = data(session, 5, 1448);
  const bad: Array<[string, Uint8Array, { address: string; port: number }]> = [
    ['foreign session', data(session + 1, 5, 1448), master],
    ['wrong version', (() => { const b = Uint8Array.from(good); b[2] = 9; return b; })(), master],
    ['wrong magic', (() => { const b = Uint8Array.from(good); b[0] = 0x55; return b; })(), master],
    ['truncated header', good.subarray(0, 20), master],
    ['truncated payload', good.subarray(0, good.length - 1), master],
    ['too long', new Uint8Array([...good, 1]), master],
    ['packet past the end', data(session, 1e9, 1448), master],
    ['not from the master', good, { address: '10.0.0.66', port: 5000 }],
    ['empty', new Uint8Array(0), master],
  ];
  const r = seeded(5);
  for (let i = 0; i < 20_000; i++) bad.push(['random', Uint8Array.from({ length: Math.floor(r() * 1500) }, () => Math.floor(r() * 256)), master]);
  for (const [what, bytes, from] of bad) {
    assert.doesNotThrow(() => rx.onDatagram(bytes, from, 7700, 1), what);
    assert.equal(writes.length, 0, `${what} was written`);
  }
  const dropped = Object.values(rx.stats.drops).reduce((a, b) => a + b, 0);
  assert.equal(dropped, bad.length, `drops by reason: ${JSON.stringify(rx.stats.drops)}`);
  for (const reason of ['session', 'version', 'magic', 'short', 'length', 'field', 'source']) assert.ok(rx.stats.drops[reason]! > 0, `no drop counted as ${reason}`);
  // And the same client still takes good data afterwards.
  rx.onDatagram(good, master, 7700, 2);
  assert.equal(writes.length, 1);
});

test('a master survives random and mutated feedback and counts it', () => {
  const { bytes: manifest } = manifestOfBytes(new Uint8Array(1 << 20), ImageKind.Disk);
  const tx = new Sender({
    session: 77, params: defaultParams(), kind: ImageKind.Disk, name: 'x', caps: 0, manifest, manifestDigest: sha256(manifest),
    imageSize: 1 << 20, targetSize: 1 << 20, sectorSize: 512, controlPort: 7700, dataPort: 7700, feedbackPort: 7701, minClients: 1, waitAfterJoin: undefined, linger: 10,
  }, seeded(2), 0);
  const r = seeded(8);
  const ack = encode({ type: MsgType.Ack, session: 77, client: '0011223344556677', block: 0, received: 64, sampled: 0 });
  for (let i = 0; i < 20_000; i++) {
    const bytes = i % 2 ? mutate(r, ack) : Uint8Array.from({ length: Math.floor(r() * 1500) }, () => Math.floor(r() * 256));
    assert.doesNotThrow(() => tx.onDatagram(bytes, { address: '10.0.0.9', port: 1 }, i % 3 === 0 ? 0 : 7701, i));
    tx.onTimer(i);
  }
  assert.ok(Object.values(tx.stats.drops).reduce((a, b) => a + b, 0) > 10_000);
  assert.equal(tx.clients.size, 0, 'mutated feedback created a client');
});
