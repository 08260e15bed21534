// Coded repairs (DataFlag.Coded, docs/PROTOCOL.md 6): packets that different PCs alone lost, in one
// chunk, go as one datagram to the group, the XOR of their payloads; each of those PCs XORs out the
// packets it holds and takes its own. The wire format, the master's choice of packets, the clients'
// decoding (and what they drop), then the simulator with the real machines.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { manifestOfBytes } from '../../src/disk/manifest-build.ts';
import { type DataHead, codedMembers, decode, encode, encodeCodedHeader, isData, readData } from '../../src/protocol/codec.ts';
import { Layout } from '../../src/protocol/manifest.ts';
import { CODED_SPAN, Caps, DataFlag, ImageKind, MAX_CODED, MsgType, NO_BLOCK } from '../../src/protocol/messages.ts';
import { xorInto } from '../../src/protocol/xor.ts';
import { MBIT, defaultParams } from '../../src/session/params.ts';
import { Receiver } from '../../src/session/receiver.ts';
import { seeded } from '../../src/session/rng.ts';
import { Sender } from '../../src/session/sender.ts';
import type { Endpoint, Transmit } from '../../src/session/types.ts';
import { runLab } from '../../src/sim/lab.ts';
import { assertAllIdentical } from './labs.ts';

const head = (): DataHead => ({ session: 0, flags: 0, packet: 0, ackedBlock: 0, at: 0 });

test('a coded repair names its packets in the header: the first, then up to six offsets from it; malformed lists are refused', () => {
  const b = encodeCodedHeader(9, 1000, [1001, 1040, 1255]);
  const h = head(), out: number[] = [];
  readData(new Uint8Array([...b, 0]), h);
  assert.equal(h.flags, DataFlag.Repair | DataFlag.Coded);
  assert.equal(h.packet, 1000);
  assert.ok(codedMembers(b, h, out));
  assert.deepEqual(out, [1000, 1001, 1040, 1255]);
  // Six offsets: the last two lie where a plain DATA has the packet number's high bytes.
  const full = Array.from({ length: MAX_CODED - 1 }, (_, i) => 2 ** 32 - 100 + 10 * (i + 1));
  const fullHeader = encodeCodedHeader(9, 2 ** 32 - 100, full);
  readData(new Uint8Array([...fullHeader, 0]), h);
  assert.equal(h.packet, 2 ** 32 - 100);
  assert.equal(h.ackedBlock, NO_BLOCK, 'a coded repair echoes no acked block');
  assert.ok(codedMembers(fullHeader, h, out));
  assert.deepEqual(out, [2 ** 32 - 100, ...full]);
  assert.throws(() => encodeCodedHeader(9, 2 ** 32, [2 ** 32 + 1]), /below 4294967296/);
  assert.throws(() => encodeCodedHeader(9, 1000, []), /2 to 7 packets/);
  assert.throws(() => encodeCodedHeader(9, 1000, [1000 + CODED_SPAN + 1]), /more than 255 after/);
  assert.throws(() => encodeCodedHeader(9, 1000, [1005, 1003]), /out of order/);
  // Descending, repeated, a gap in the list (also across the two places of the offsets), or no second
  // packet: not a coded repair. The offsets' bytes, in order (docs/PROTOCOL.md 3.1).
  const at = [16, 17, 18, 19, 6, 7];
  readData(new Uint8Array([...b, 0]), h);
  for (const offsets of [[5, 3], [4, 4], [3, 0, 7], [0, 0], [1, 2, 3, 4, 4], [1, 2, 3, 0, 5]]) {
    const bad = encodeCodedHeader(9, 1000, [1001]);
    for (const i of at) bad[i] = 0;
    offsets.forEach((d, i) => { bad[at[i]!] = d; });
    assert.equal(codedMembers(bad, h, out), false, `offsets ${offsets}`);
  }
});

test('xorInto: eight bytes at a time where both sides lie alike to 8, four where alike to 4, bytes elsewhere: the same result', () => {
  const r = seeded(4);
  const a = Uint8Array.from({ length: 1451 }, () => r() * 256), b = Uint8Array.from({ length: 1451 }, () => r() * 256);
  const want = a.map((x, i) => x ^ b[i]!);
  const aligned = a.slice();
  xorInto(aligned, 0, b);
  assert.deepEqual(aligned, want);
  // XOR twice gives the first back: how a client takes its packet out of a coded repair.
  xorInto(aligned, 0, b);
  assert.deepEqual(aligned, a);
  // Every way two sides can lie to 8-byte boundaries, lengths around one word and a payload's,
  // both sides in one buffer (one view of it serves both) and each in its own.
  const dstBuf = new Uint8Array(3200), srcBuf = new Uint8Array(1600);
  for (const n of [0, 1, 7, 8, 15, 16, 17, 31, 1452]) {
    for (let d = 0; d < 8; d++) {
      for (let s = 0; s < 8; s++) {
        for (const shared of [false, true]) {
          const dst = dstBuf.subarray(0, 1600), src = (shared ? dstBuf.subarray(1600) : srcBuf).subarray(s, s + n);
          assert.equal(src.length, n);
          for (let i = 0; i < dstBuf.length; i++) dstBuf[i] = r() * 256;
          for (let i = 0; i < srcBuf.length; i++) srcBuf[i] = r() * 256;
          const before = dst.slice(), from = src.slice();
          xorInto(dst, d, src);
          for (let i = 0; i < dst.length; i++) {
            const x = i >= d && i < d + n ? before[i]! ^ from[i - d]! : before[i]!;
            if (dst[i] !== x) assert.fail(`length ${n}, dst at ${d}, src at ${s}${shared ? ' (one buffer)' : ''}: byte ${i} is ${dst[i]}, not ${x}`);
          }
        }
      }
    }
  }
});

// ---- the master's choice --------------------------------------------------------------------

const image = Uint8Array.from({ length: 400_000 }, (_, i) => (i * 13 + (i >> 9)) & 0xff);
// Chunks of 64 KiB: 65 packets of 1,000 bytes in each, the 66th straddles two.
const built = manifestOfBytes(image, ImageKind.Disk, 64 << 10);
const SESSION = 0xc0de;
const P = 1000;

function master(o: { sealed?: boolean; layout?: boolean } = {}): Sender {
  const params = { ...defaultParams(1500, 100 * MBIT), payloadSize: P, blockPackets: 16 };
  return new Sender({
    session: SESSION, params, kind: ImageKind.Disk, name: 'img', caps: o.sealed ? Caps.Sealed : 0, manifest: built.bytes, manifestDigest: built.digest,
    imageSize: image.length, targetSize: image.length, sectorSize: 512, controlPort: 7700, dataPort: 7700, feedbackPort: 7701,
    minClients: 3, waitAfterJoin: undefined, linger: 10, ...(o.layout === false ? {} : { layout: new Layout(built.manifest) }),
  }, seeded(1), 0);
}

type Pc = { id: string; at: Endpoint };
const pcs: Pc[] = [1, 2, 3].map((i) => ({ id: `00000000000000a${i}`, at: { address: `10.0.0.${i + 1}`, port: 6000 + i } }));
const join = (tx: Sender, pc: Pc, caps: number = Caps.CodedRepairs): void =>
  tx.onDatagram(encode({ type: MsgType.Join, session: SESSION, client: pc.id, caps, prefix: 24, capacity: image.length, have: 0, mac: '00:00:00:00:00:00', name: pc.id }), pc.at, 7701, 0);
const ask = (tx: Sender, pc: Pc, packets: number[], now: number): void =>
  tx.onDatagram(encode({ type: MsgType.RepairRequest, session: SESSION, client: pc.id, epoch: tx.epoch, ranges: packets.map((start) => ({ start, count: 1 })) }), pc.at, 7701, now);

/** The repairs the master sends from `from` to `until` ms: each as the packets it carries and where it went. */
function repairs(tx: Sender, from: number, until: number): Array<{ packets: number[]; to: string }> {
  const out: Array<{ packets: number[]; to: string }> = [];
  const h = head(), members: number[] = [];
  for (let now = from; now <= until; now += 0.25) {
    tx.onTimer(now);
    for (let t = tx.poll(now); t; t = tx.poll(now)) {
      if (t.packet === undefined) continue;
      const b = Buffer.concat([...t.parts, new Uint8Array(1)]);
      readData(b, h);
      if (!(h.flags & DataFlag.Repair)) continue;
      const coded = (h.flags & DataFlag.Coded) !== 0;
      if (coded) {
        assert.ok(codedMembers(b, h, members));
        assert.deepEqual(t.xor?.map((r) => r.offset), members.slice(1).map((q) => tx.geo.span(q).offset), 'the driver XORs the packets the header names');
      }
      out.push({ packets: coded ? [...members] : [t.packet], to: t.dest.kind === 'group' ? 'group' : t.dest.to.address });
    }
  }
  return out;
}

/** A master whose pass is over, with three PCs in; the PCs' requests, then what it sends. */
function scene(o: Parameters<typeof master>[0], caps: number[], asks: number[][]): Array<{ packets: number[]; to: string }> {
  const tx = master(o);
  pcs.forEach((pc, i) => join(tx, pc, caps[i]));
  repairs(tx, 0, 60); // the pass: 400 packets at 100 Mbit/s
  asks.forEach((packets, i) => { if (packets.length > 0) ask(tx, pcs[i]!, packets, 60); });
  return repairs(tx, 60, 61);
}

/** Packet i of those wholly in chunk k (the manifest's packets come first). */
const C = (k: number, i: number): number => Math.ceil(built.bytes.length / P) + Math.ceil((k * 65536) / P) + i;

test('packets of one chunk that different PCs lost go as one coded repair to the group, no PC lacking two of them; the rest go as before', () => {
  const sent = scene({}, [Caps.CodedRepairs, Caps.CodedRepairs, Caps.CodedRepairs], [
    [C(0, 3), C(0, 9), C(1, 2)], // PC 1
    [C(0, 5), C(0, 9), C(1, 40)], // PC 2: C(0,9) lost by two PCs
    [C(0, 7), C(0, 60), C(2, 5)], // PC 3
  ]);
  const coded = sent.filter((s) => s.packets.length > 1);
  const byPacket = new Map(sent.flatMap((s) => s.packets.map((p) => [p, s] as const)));
  // Every packet asked for goes exactly once.
  assert.deepEqual([...byPacket.keys()].sort((a, b) => a - b), [C(0, 3), C(0, 5), C(0, 7), C(0, 9), C(0, 60), C(1, 2), C(1, 40), C(2, 5)].sort((a, b) => a - b));
  assert.equal(sent.reduce((n, s) => n + s.packets.length, 0), 8);
  assert.equal(coded.length, 3);
  assert.ok(coded.every((s) => s.to === 'group'), 'coded repairs go to the group');
  // Chunk 0: one of each PC's in the first; the one PCs 1 and 2 both lost goes with PC 3's other one.
  assert.deepEqual(byPacket.get(C(0, 3))!.packets, [C(0, 3), C(0, 5), C(0, 7)]);
  assert.deepEqual(byPacket.get(C(0, 9))!.packets, [C(0, 9), C(0, 60)]);
  // Chunk 1: PC 1's and PC 2's, 38 packets apart, in one.
  assert.deepEqual(byPacket.get(C(1, 2))!.packets, [C(1, 2), C(1, 40)]);
  assert.deepEqual(byPacket.get(C(2, 5)), { packets: [C(2, 5)], to: '10.0.0.4' }, 'alone in its chunk: to its PC');
});

test('no coded repair across chunks, in a sealed session, without the layout, or while a PC that joined does not decode them', () => {
  const all = [Caps.CodedRepairs, Caps.CodedRepairs, Caps.CodedRepairs];
  // The last whole packet of chunk 0 and the first of chunk 1, lost by two PCs.
  const across = scene({}, all, [[C(1, 0) - 2], [C(1, 0)], []]);
  assert.ok(across.every((s) => s.packets.length === 1), JSON.stringify(across));
  const asks = [[C(2, 1)], [C(2, 2)], [C(2, 3)]];
  for (const [what, sent] of [
    ['sealed', scene({ sealed: true }, all, asks)],
    ['no layout', scene({ layout: false }, all, asks)],
    ['a PC without the capability', scene({}, [Caps.CodedRepairs, 0, Caps.CodedRepairs], asks)],
  ] as const) {
    assert.equal(sent.length, 3, what);
    assert.ok(sent.every((s) => s.packets.length === 1 && s.to !== 'group'), `${what}: ${JSON.stringify(sent)}`);
  }
  assert.equal(scene({}, all, asks).length, 1, 'the same requests, coded');
});

// ---- the clients ----------------------------------------------------------------------------

/**
 * A master and three clients in lockstep (no sockets), each client's disk in memory (and what it holds
 * of a chunk read from there, as a client holds a chunk in memory until it is checked). `lose` decides
 * what a client loses of the master's DATA; `tamper` may replace a coded repair before it is delivered;
 * `holds` is the chunks the clients' storage says it holds in memory; `heard` sees what clients send.
 */
function lockstep(lose: (pc: number, packet: number, coded: boolean) => boolean, o: {
  tamper?: (b: Uint8Array, tx: Sender) => Uint8Array[];
  holds?: number;
  heard?: (pc: number, bytes: Uint8Array, now: number) => void;
} = {}): { tx: Sender; rxs: Receiver[]; disks: Uint8Array[] } {
  const { tamper, holds, heard } = o;
  const tx = master();
  const disks = pcs.map(() => new Uint8Array(image.length));
  const later: Array<() => void> = [];
  let now = 0;
  const rxs: Receiver[] = pcs.map((pc, i) => {
    const disk = disks[i]!;
    const rx: Receiver = new Receiver({ id: pc.id, name: `pc${i + 1}`, capacity: image.length, kind: ImageKind.Disk, controlPort: 7700, autoConfirm: true }, {
      offer: (o, b, from, n) => { disk.set(b.subarray(from, from + n), o); return true; },
      inMemory: (k, at, n) => disk.subarray(k * 65536 + at, k * 65536 + at + n),
      holds,
      known: () => {},
      finish: (k, c) => {
        const e = c.extents[0]!;
        later.push(() => rx.onChunkChecked(k, Buffer.compare(disk.subarray(e.offset, e.offset + e.length), image.subarray(e.offset, e.offset + e.length)) === 0, now));
      },
      flush: () => later.push(() => rx.onFlushed(now)),
    }, seeded(10 + i), 0);
    return rx;
  });
  const bytesOf = (t: Transmit): Uint8Array => {
    const payload = t.image ? image.slice(t.image.offset, t.image.offset + t.image.length) : new Uint8Array(0);
    for (const r of t.xor ?? []) xorInto(payload, 0, image.subarray(r.offset, r.offset + r.length));
    return Buffer.concat([...t.parts, payload]);
  };
  const h = head();
  for (let step = 0; step < 40_000 && !(tx.finished && rxs.every((r) => r.finished)); step++) {
    now += 0.25;
    for (const f of later.splice(0)) f();
    tx.onTimer(now);
    for (let t = tx.poll(now); t; t = tx.poll(now)) {
      const b = bytesOf(t);
      const data = t.packet !== undefined;
      if (data) readData(b, h);
      const coded = data && (h.flags & DataFlag.Coded) !== 0;
      const copies = coded && tamper ? tamper(b, tx) : [b];
      rxs.forEach((rx, i) => {
        if (t.dest.kind === 'unicast' && t.dest.to.address !== pcs[i]!.at.address) return;
        if (data && t.packet! >= tx.geo.manifestPackets && lose(i, t.packet!, coded)) return;
        for (const c of copies) rx.onDatagram(c, { address: '10.0.0.1', port: 5000 }, 7700, now);
      });
    }
    rxs.forEach((rx, i) => {
      rx.onTimer(now);
      for (let t = rx.poll(); t; t = rx.poll()) {
        const b = Buffer.concat(t.parts);
        heard?.(i, b, now);
        tx.onDatagram(b, pcs[i]!.at, 7701, now);
      }
    });
  }
  return { tx, rxs, disks };
}

/** Each PC loses every 20th packet, each PC a different one, the first time it comes (coded repairs never). */
function staggered(): (pc: number, packet: number, coded: boolean) => boolean {
  const lost = new Set<number>();
  return (pc, packet, coded) => {
    if (coded || packet % 20 !== pc * 4 || lost.has(packet)) return false;
    lost.add(packet);
    return true;
  };
}

test('three PCs that lost different packets take them from coded repairs and end byte-identical', () => {
  const { tx, rxs, disks } = lockstep(staggered());
  for (const [i, rx] of rxs.entries()) {
    assert.ok(rx.ok, `pc${i + 1}: ${rx.reason} ${JSON.stringify(rx.stats.drops)}`);
    assert.equal(Buffer.compare(disks[i]!, image), 0, `pc${i + 1}'s disk differs`);
    assert.ok(rx.stats.decoded > 0, `pc${i + 1} decoded nothing`);
    assert.equal(rx.stats.verifyFailures, 0);
  }
  assert.ok(tx.stats.codedSent > 0 && tx.stats.codedPackets >= 2.5 * tx.stats.codedSent, `${tx.stats.codedSent} coded repairs carried ${tx.stats.codedPackets} packets`);
});

test('a coded repair a PC cannot use is dropped and counted: it lacks two of its packets, or the list is malformed', () => {
  let forged = false;
  const { rxs, disks } = lockstep(staggered(), { tamper: (b, tx) => {
    const bad = b.slice();
    bad[17] = bad[16]!; // a repeated offset (or a second one where there was none)
    if (forged) return [bad, b];
    forged = true;
    // Before the first coded repair: one for the last two packets PC 1 lost (repairs go lowest first, so
    // it lacks both still); PCs 2 and 3 hold both.
    let last = tx.geo.packets - 1;
    while (last % 20 !== 0) last--;
    return [new Uint8Array([...encodeCodedHeader(SESSION, last - 20, [last]), ...new Uint8Array(P)]), bad, b];
  } });
  for (const [i, rx] of rxs.entries()) {
    assert.ok(rx.ok, `pc${i + 1}: ${rx.reason}`);
    assert.equal(Buffer.compare(disks[i]!, image), 0);
  }
  assert.ok((rxs[0]!.stats.drops.undecodable ?? 0) > 0, JSON.stringify(rxs[0]!.stats.drops));
  for (const rx of rxs) assert.ok((rx.stats.drops.field ?? 0) > 0, `malformed coded repairs dropped: ${JSON.stringify(rx.stats.drops)}`);
});

test('a coded repair with a wrong payload is caught by the chunk check: the chunk is fetched again, the disk ends right', () => {
  let spoiled = 0;
  const { rxs, disks } = lockstep(staggered(), {
    tamper: (b) => {
      if (spoiled++ >= 2) return [b];
      const bad = b.slice();
      bad[bad.length - 1]! ^= 0x5a;
      return [bad];
    },
  });
  assert.ok(spoiled >= 2);
  let failures = 0;
  for (const [i, rx] of rxs.entries()) {
    assert.ok(rx.ok, `pc${i + 1}: ${rx.reason}`);
    assert.equal(Buffer.compare(disks[i]!, image), 0, `pc${i + 1}'s disk differs`);
    failures += rx.stats.verifyFailures;
  }
  assert.ok(failures >= 2, `chunk checks that failed: ${failures}`);
});

test('a PC far behind asks, in one repair epoch, for packets of no more partly received chunks than its storage holds in memory', () => {
  // PC 1 loses every other packet the first time it comes: each of the 7 chunks is partly there after
  // the pass. Its storage holds 2.
  const M = Math.ceil(built.bytes.length / P), chunkOf = (q: number): number => Math.floor(((q - M) * P) / 65536);
  const lost = new Set<number>();
  const byEpoch = new Map<number, Set<number>>();
  const { rxs, disks } = lockstep((pc, packet) => pc === 0 && packet % 2 === 0 && !lost.has(packet) && lost.add(packet) !== undefined, {
    holds: 2,
    heard: (pc, b) => {
      if (pc !== 0 || isData(b)) return;
      const m = decode(b);
      if (m.type !== MsgType.RepairRequest) return;
      const chunks = byEpoch.get(m.epoch) ?? new Set<number>();
      byEpoch.set(m.epoch, chunks);
      for (const r of m.ranges) for (let q = Math.max(r.start, M); q < r.start + r.count; q++) chunks.add(chunkOf(q));
    },
  });
  for (const [i, rx] of rxs.entries()) {
    assert.ok(rx.ok, `pc${i + 1}: ${rx.reason}`);
    assert.equal(Buffer.compare(disks[i]!, image), 0, `pc${i + 1}'s disk differs`);
  }
  const reach = [...byEpoch.values()].map((c) => c.size);
  assert.ok(reach.length >= 3, `requests in ${reach.length} epochs`);
  // A packet can straddle two chunks: the packets of two chunks hold bytes of three at most.
  assert.ok(reach.every((n) => n <= 3), `chunks asked for in each epoch: ${reach}`);
});

// ---- the simulator --------------------------------------------------------------------------

test('3 and 6 PCs at 5% loss (simulator): coded repairs send far fewer datagrams and end the pass sooner; every PC byte-identical', () => {
  for (const n of [3, 6]) {
    const clients = Array.from({ length: n }, () => ({ loss: 0.05 }));
    const lab = (codedRepairs: boolean) => runLab({
      seed: 7, imageSize: 24 << 20, params: { ...defaultParams(), codedRepairs }, clients,
      link: { rate: 1000 * MBIT, queue: 2.6e6 }, uplink: { rate: 1000 * MBIT, queue: 2.6e6 }, disk: 'light',
    });
    const coded = lab(true), plain = lab(false);
    assertAllIdentical(coded);
    assertAllIdentical(plain);
    const c = coded.sender.stats, p = plain.sender.stats;
    // The union of n PCs' 5% goes out packet by packet; coded, about as many as the PC that lost most.
    assert.ok(c.repairSent < 0.6 * p.repairSent, `${n} PCs: ${c.repairSent} repair datagrams coded, ${p.repairSent} packet by packet`);
    assert.ok(c.codedPackets > 2 * c.codedSent, `${n} PCs: ${c.codedSent} coded repairs carried ${c.codedPackets} packets`);
    assert.ok(coded.clients.every((pc) => pc.decoded > 0), `${n} PCs: decoded ${coded.clients.map((pc) => pc.decoded)}`);
    assert.ok(coded.passEndedAt < plain.passEndedAt, `${n} PCs: the pass ended at ${coded.passEndedAt.toFixed(0)} ms coded, ${plain.passEndedAt.toFixed(0)} ms packet by packet`);
  }
});
