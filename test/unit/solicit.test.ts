// SOLICIT at the machine level (no sockets): a client that starts after the master's ANNOUNCE
// asks for one, and the master answers at once instead of at its next periodic ANNOUNCE, but
// not more often than its gap allows.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { manifestOfBytes } from '../../src/disk/manifest-build.ts';
import { decode, encode } from '../../src/protocol/codec.ts';
import { ImageKind, MsgType } from '../../src/protocol/messages.ts';
import { defaultParams } from '../../src/session/params.ts';
import { Receiver } from '../../src/session/receiver.ts';
import { seeded } from '../../src/session/rng.ts';
import { Sender } from '../../src/session/sender.ts';

const image = Uint8Array.from({ length: 100_000 }, (_, i) => (i * 13) & 0xff);
const built = manifestOfBytes(image, ImageKind.Disk, 64 << 10);
const params = { ...defaultParams(), payloadSize: 1000, blockPackets: 16, announceInterval: 500 };

const sender = (): Sender => new Sender({
  session: 0x5011, params, kind: ImageKind.Disk, name: 'img', caps: 0, manifest: built.bytes, manifestDigest: built.digest,
  imageSize: image.length, targetSize: image.length, sectorSize: 512, controlPort: 7700, dataPort: 7700, feedbackPort: 7701,
  minClients: 2, waitAfterJoin: undefined, linger: 10,
}, seeded(1), 0);

const receiver = (id: string): Receiver => new Receiver({
  id, name: `pc-${id.slice(-1)}`, capacity: image.length, kind: ImageKind.Disk, controlPort: 7700, autoConfirm: true,
}, { offer: () => true, known: () => {}, finish: () => {}, flush: () => {} }, seeded(2), 0);

/** The types of what the master sends at `now`. */
function sent(tx: Sender, now: number): number[] {
  tx.onTimer(now);
  const out: number[] = [];
  for (let t = tx.poll(now); t; t = tx.poll(now)) out.push(Buffer.concat(t.parts)[3]!);
  return out;
}

test('a starting client asks for an ANNOUNCE on the feedback port, and another client\'s request is none of its business', () => {
  const rx = receiver('00000000000000c1');
  const t = rx.poll();
  assert.ok(t, 'no SOLICIT');
  assert.deepEqual(t.dest, { kind: 'group', port: 7701 });
  assert.deepEqual(decode(Buffer.concat(t.parts)), { type: MsgType.Solicit, session: 0, client: '00000000000000c1' });
  assert.equal(rx.poll(), undefined, 'one SOLICIT, not a stream of them');
  rx.onDatagram(encode({ type: MsgType.Solicit, session: 0, client: '00000000000000c2' }), { address: '10.0.0.3', port: 6000 }, 7701, 5);
  assert.deepEqual(rx.stats.drops, {}, 'another client\'s SOLICIT counted as a bad datagram');
});

test('a client that hears no ANNOUNCE asks again after 50, 100, 200 and 400 ms more, then leaves it to the periodic ANNOUNCEs; one that hears one stops', () => {
  const rx = receiver('00000000000000c1');
  const solicitsUpTo = (r: Receiver, from: number, to: number): number[] => {
    const at: number[] = [];
    for (let now = from; now <= to; now++) {
      r.onTimer(now);
      for (let t = r.poll(); t; t = r.poll()) if (decode(Buffer.concat(t.parts)).type === MsgType.Solicit) at.push(now);
    }
    return at;
  };
  assert.deepEqual(solicitsUpTo(rx, 0, 3000), [0, 50, 150, 350, 750]);
  // One that hears the master's ANNOUNCE before its second SOLICIT sends no more.
  const tx = sender();
  tx.onDatagram(encode({ type: MsgType.Solicit, session: 0, client: '00000000000000c2' }), { address: '10.0.0.3', port: 6000 }, 7701, 0);
  tx.onTimer(0);
  let announce: Uint8Array | undefined;
  for (let t = tx.poll(0); t; t = tx.poll(0)) if (Buffer.concat(t.parts)[3] === MsgType.Announce) announce = Buffer.concat(t.parts);
  assert.ok(announce, 'the master sent no ANNOUNCE');
  const heard = receiver('00000000000000c2');
  heard.onDatagram(announce, { address: '10.0.0.1', port: 7000 }, 7700, 10);
  assert.deepEqual(solicitsUpTo(heard, 0, 3000), [0]);
});

test('the master answers a SOLICIT with an ANNOUNCE at once, at most one per 20 ms, and counts them', () => {
  const tx = sender();
  const announcesUpTo = (from: number, to: number): number[] => {
    const at: number[] = [];
    for (let now = from; now <= to; now++) if (sent(tx, now).includes(MsgType.Announce)) at.push(now);
    return at;
  };
  // The periodic ANNOUNCEs: the first within 10 ms of the start (and its echo), then every 500 ms.
  const first = announcesUpTo(0, 200);
  assert.ok(first.length >= 1 && first[0]! <= 10, `first ANNOUNCEs at ${first.join(', ')} ms`);
  const solicit = encode({ type: MsgType.Solicit, session: 0, client: '00000000000000c1' });
  const pc = { address: '10.0.0.2', port: 6000 };
  tx.onDatagram(solicit, pc, 7701, 201);
  assert.deepEqual(sent(tx, 201), [MsgType.Announce], 'no ANNOUNCE for the SOLICIT');
  // A second client asking 9 ms later did not hear that answer (it asks as soon as it listens): it gets
  // one 20 ms after the first, which also answers a third asking meanwhile; a fourth, 21 ms on, its own.
  tx.onDatagram(encode({ type: MsgType.Solicit, session: 0, client: '00000000000000c2' }), pc, 7701, 210);
  assert.deepEqual(sent(tx, 210), []);
  tx.onDatagram(encode({ type: MsgType.Solicit, session: 0, client: '00000000000000c3' }), pc, 7701, 215);
  assert.deepEqual(announcesUpTo(211, 221), [221]);
  tx.onDatagram(encode({ type: MsgType.Solicit, session: 0, client: '00000000000000c4' }), pc, 7701, 242);
  assert.deepEqual(sent(tx, 242), [MsgType.Announce]);
  // A flood gets one ANNOUNCE per 20 ms, no more.
  let answered = 0;
  for (let now = 243; now < 443; now++) {
    for (let i = 0; i < 10; i++) tx.onDatagram(solicit, pc, 7701, now);
    answered += sent(tx, now).filter((t) => t === MsgType.Announce).length;
  }
  assert.ok(answered <= 10, `${answered} ANNOUNCEs in 200 ms of SOLICITs`);
  assert.equal(tx.stats.solicited, 3 + answered);
  assert.deepEqual(tx.stats.drops, {}, 'a SOLICIT counted as a bad datagram');
});
