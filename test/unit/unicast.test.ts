// Repairs for one PC (Caps.UnicastRepairs, docs/PROTOCOL.md 6): a repair that one client alone
// asked for goes to that client's address; one that several asked for before it went out goes to
// the group. At the machine level (no sockets), then in the simulator with the real machines.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { manifestOfBytes } from '../../src/disk/manifest-build.ts';
import { decode, encode, readData } from '../../src/protocol/codec.ts';
import { Caps, DataFlag, ImageKind, MsgType, Phase } from '../../src/protocol/messages.ts';
import { MBIT, defaultParams } from '../../src/session/params.ts';
import { seeded } from '../../src/session/rng.ts';
import { Receiver } from '../../src/session/receiver.ts';
import { Askers, Sender } from '../../src/session/sender.ts';
import type { Dest, Endpoint } from '../../src/session/types.ts';
import { runLab } from '../../src/sim/lab.ts';
import { assertAllIdentical } from './labs.ts';

const image = Uint8Array.from({ length: 200_000 }, (_, i) => (i * 7) & 0xff);
const built = manifestOfBytes(image, ImageKind.Disk, 64 << 10);
const SESSION = 0x7e57;

function sender(o: { signed?: boolean; mbit?: number; unicastRepairs?: boolean } = {}): Sender {
  // 100 Mbit/s: the pass of 200 packets takes 16 ms, and the requests below come while it runs.
  const params = { ...defaultParams(1500, (o.mbit ?? 100) * MBIT), payloadSize: 1000, blockPackets: 16, unicastRepairs: o.unicastRepairs ?? true };
  return new Sender({
    session: SESSION, params, kind: ImageKind.Disk, name: 'img', caps: 0, manifest: built.bytes, manifestDigest: built.digest,
    imageSize: image.length, targetSize: image.length, sectorSize: 512, controlPort: 7700, dataPort: 7700, feedbackPort: 7701,
    minClients: 2, waitAfterJoin: undefined, linger: 10,
    ...(o.signed ? { signer: { publicKey: new Uint8Array(32), sign: () => new Uint8Array(64) } } : {}),
  }, seeded(1), 0);
}

const A = { id: '00000000000000a1', at: { address: '10.0.0.2', port: 6001 } };
const B = { id: '00000000000000b2', at: { address: '10.0.0.3', port: 6002 } };

function join(tx: Sender, pc: { id: string; at: Endpoint }, now: number): void {
  tx.onDatagram(encode({ type: MsgType.Join, session: SESSION, client: pc.id, caps: 0, prefix: 24, capacity: image.length, have: 0, mac: '00:00:00:00:00:00', name: pc.id }), pc.at, 7701, now);
}

const ask = (tx: Sender, pc: { id: string; at: Endpoint }, start: number, count: number, now: number): void =>
  tx.onDatagram(encode({ type: MsgType.RepairRequest, session: SESSION, client: pc.id, epoch: tx.epoch, ranges: [{ start, count }] }), pc.at, 7701, now);

/** Run the master until `until` ms; the DATA it sent, by packet, with where each went. */
function run(tx: Sender, from: number, until: number): Array<{ packet: number; repair: boolean; dest: Dest }> {
  const out: Array<{ packet: number; repair: boolean; dest: Dest }> = [];
  const head = { session: 0, flags: 0, packet: 0, ackedBlock: 0, at: 0 };
  for (let now = from; now <= until; now += 0.25) {
    tx.onTimer(now);
    for (let t = tx.poll(now); t; t = tx.poll(now)) {
      if (t.packet === undefined) continue;
      readData(Buffer.concat([...t.parts, new Uint8Array(1)]), head); // the image bytes are the driver's to add
      out.push({ packet: t.packet, repair: (head.flags & DataFlag.Repair) !== 0, dest: t.dest });
    }
  }
  return out;
}

test('a repair one PC alone asked for goes to that PC; one two PCs asked for goes to the group', () => {
  const tx = sender();
  join(tx, A, 0);
  join(tx, B, 0);
  const pass = run(tx, 0, 3);
  assert.equal(tx.phase, Phase.Transfer);
  assert.ok(pass.length > 20 && pass.every((d) => d.dest.kind === 'group' && !d.repair), 'the pass itself goes to the group');
  // A lost packets 2-4, B lost 4-6: 4 is wanted by both before any of them went out.
  ask(tx, A, 2, 3, 3.5);
  ask(tx, B, 4, 3, 3.5);
  const repairs = run(tx, 3.5, 4).filter((d) => d.repair);
  const where = new Map(repairs.map((d) => [d.packet, d.dest]));
  assert.deepEqual([...where.keys()].sort((x, y) => x - y), [2, 3, 4, 5, 6]);
  for (const p of [2, 3]) assert.deepEqual(where.get(p), { kind: 'unicast', to: A.at }, `packet ${p}`);
  assert.deepEqual(where.get(4), { kind: 'group', port: 7700 });
  for (const p of [5, 6]) assert.deepEqual(where.get(p), { kind: 'unicast', to: B.at }, `packet ${p}`);
  assert.equal(tx.stats.unicastRepairSent, 4);
  // Once sent, a packet is nobody's: B asking for 2 now has it sent to B alone.
  ask(tx, B, 2, 1, 4.25);
  const again = run(tx, 4.25, 4.5).filter((d) => d.repair);
  assert.deepEqual(again.map((d) => [d.packet, d.dest]), [[2, { kind: 'unicast', to: B.at }]]);
});

test('who asked for what: a byte per packet, in pages held only while a packet of theirs is wanted', () => {
  const P = Askers.PAGE;
  const a = new Askers(10 * P);
  assert.equal(a.held, 0, 'pages held before any request');
  a.add(P - 2, P + 2, 1); // across a page boundary
  a.add(P, P + 3, 2); // P and P+1 also wanted by slot 2, P+2 by slot 2 alone
  a.add(5 * P, 5 * P + 1, 255);
  assert.equal(a.held, 3);
  // Who they are, for coded repairs: both for P and P+1; nobody the master can name for 5P.
  a.add(P + 1, P + 2, 2);
  a.add(P + 1, P + 2, 3);
  assert.deepEqual([P - 2, P, P + 1, P + 2, 5 * P, 6 * P].map((p) => a.slotsOf(p)), [[1], [1, 2], [1, 2, 3], [2], undefined, undefined]);
  // What others asked for (a packet several did ask for always counts): 6 packets, 2 of slot 1's alone, 1 of slot 2's.
  assert.deepEqual([[1], [2], [1, 2], [3], []].map((s) => a.beyond(s)), [4, 5, 3, 6, 6]);
  a.add(P, P + 1, 255);
  assert.equal(a.slotsOf(P), undefined, 'one the master cannot name asked too');
  assert.deepEqual([P - 2, P - 1, P, P + 1, P + 2, 5 * P].map((p) => a.take(p)), [1, 1, 255, 255, 2, 255]);
  assert.equal(a.take(P - 2), 0, 'a packet sent is nobody\'s');
  assert.equal(a.take(7 * P), 0, 'a packet of a page never asked for');
  assert.equal(a.held, 0, 'pages still held once every wanted packet went');
  assert.equal(a.beyond([]), 0);
  // One client alone wants packets: none is beyond it, until another asks for one of them.
  a.add(3 * P, 3 * P + 5, 1);
  assert.deepEqual([a.beyond([1]), a.beyond([2])], [0, 5]);
  a.add(3 * P + 2, 3 * P + 3, 2);
  assert.deepEqual([a.beyond([1]), a.beyond([1, 2]), a.beyond([2])], [1, 1, 5]);
  for (let p = 3 * P; p < 3 * P + 5; p++) a.take(p);
  assert.deepEqual([a.beyond([]), a.held], [0, 0]);
});

test('the ANNOUNCE carries Caps.UnicastRepairs, except in a signed session, whose repairs all go to the group', () => {
  const caps = (tx: Sender): number => {
    tx.onTimer(20);
    for (let t = tx.poll(20); t; t = tx.poll(20)) {
      const m = decode(Buffer.concat(t.parts));
      if (m.type === MsgType.Announce) return m.caps;
    }
    throw new Error('no ANNOUNCE');
  };
  assert.ok(caps(sender()) & Caps.UnicastRepairs);
  const signed = sender({ signed: true });
  assert.equal(caps(signed) & Caps.UnicastRepairs, 0);
  join(signed, A, 20);
  join(signed, B, 20);
  run(signed, 20, 23);
  ask(signed, A, 2, 3, 23.5);
  const repairs = run(signed, 23.5, 24).filter((d) => d.repair);
  assert.ok(repairs.length >= 3);
  assert.ok(repairs.every((d) => d.dest.kind === 'group'));
  assert.equal(signed.stats.unicastRepairSent, 0);
});

test('6 PCs at 5% loss (simulator): a PC receives little more than the image, against a fifth more when repairs go to the group', () => {
  const clients = Array.from({ length: 6 }, () => ({ loss: 0.05 }));
  // Packet by packet: coded repairs (coded.test.ts) go to the group, each for several PCs.
  const lab = (unicastRepairs: boolean) => runLab({ seed: 3, imageSize: 16 << 20, params: { ...defaultParams(), unicastRepairs, codedRepairs: false }, clients });
  const one = lab(true), group = lab(false);
  assertAllIdentical(one);
  assertAllIdentical(group);
  const packets = one.sender.geo.packets;
  const perPacket = (r: typeof one): number => Math.max(...r.clients.map((c) => c.delivered)) / packets;
  // Each PC gets its own 5% again, and not the others' (about 1 - 0.95^6 = 26% of the image for all).
  assert.ok(perPacket(one) < 1.04, `a PC received ${perPacket(one).toFixed(3)} datagrams per packet`);
  assert.ok(perPacket(group) > 1.15, `with repairs to the group, a PC received ${perPacket(group).toFixed(3)} datagrams per packet`);
  const s = one.sender.stats;
  assert.ok(s.unicastRepairSent > 0.9 * s.repairSent, `${s.unicastRepairSent} of ${s.repairSent} repairs went to one PC`);
  assert.equal(group.sender.stats.unicastRepairSent, 0);
});

test('a PC of a session with unicast repairs asks for its holes though it heard another PC ask for them; otherwise it leaves them to the other\'s repair', () => {
  /**
   * What the PC asks for in the pass's first 120 ms, having lost packets 20 and 42, and heard another PC
   * ask for 42. (A hole is asked for again 100 ms on if still open, suppressed or not: 42 goes at about
   * 35 ms. One loss per request interval: a PC that lost more than 12% of one asks for none of it.)
   */
  const asked = (unicastRepairs: boolean): Set<number> => {
    // 10 Mbit/s: the pass takes 160 ms, and the PC asks (every 10-30 ms) while it runs.
    const tx = sender({ mbit: 10, unicastRepairs });
    const rx = new Receiver({ id: A.id, name: 'pc-a', capacity: image.length, kind: ImageKind.Disk, controlPort: 7700, autoConfirm: true },
      { offer: () => true, known: () => {}, finish: () => {}, flush: () => {} }, seeded(2), 0);
    join(tx, B, 0); // the other PC: it joined, and is silent from then on
    const master = { address: '10.0.0.1', port: 5000 };
    const out = new Set<number>();
    for (let now = 0; now < 120; now += 0.5) {
      tx.onTimer(now);
      for (let t = tx.poll(now); t; t = tx.poll(now)) {
        if (t.packet === 20 || t.packet === 42) {
          // The other PC lost 42 too; the master has not heard it ask yet, this PC has.
          if (t.packet === 42) rx.onDatagram(encode({ type: MsgType.RepairRequest, session: SESSION, client: B.id, epoch: tx.epoch, ranges: [{ start: 42, count: 1 }] }), B.at, 7701, now);
          continue;
        }
        const img = t.image ? [image.subarray(t.image.offset, t.image.offset + t.image.length)] : [];
        rx.onDatagram(Buffer.concat([...t.parts, ...img]), master, 7700, now);
      }
      rx.onTimer(now);
      for (let t = rx.poll(); t; t = rx.poll()) {
        const b = Buffer.concat(t.parts);
        const m = decode(b);
        if (m.type === MsgType.RepairRequest) for (const r of m.ranges) for (let p = r.start; p < r.start + r.count; p++) out.add(p);
        tx.onDatagram(b, A.at, t.dest.kind === 'group' ? t.dest.port : 7700, now);
      }
    }
    return out;
  };
  const unicast = asked(true), group = asked(false);
  assert.deepEqual([...unicast].sort((a, b) => a - b), [20, 42], 'with unicast repairs');
  assert.deepEqual([...group], [20], 'with repairs to the group');
});
