// Signed sessions at the machine level: a Receiver pinned to a key, fed by a Sender that
// signs, with forged, foreign-key and replayed datagrams spliced in (no sockets).

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { manifestOfBytes } from '../../src/disk/manifest-build.ts';
import { KeyError, buildAuth, fingerprint, generateKey, loadSigner, parseTrust, verifierOf } from '../../src/protocol/auth.ts';
import { encode, encodeDataHeader } from '../../src/protocol/codec.ts';
import { Caps, ImageKind, MsgType, NO_BLOCK, Phase } from '../../src/protocol/messages.ts';
import { defaultParams } from '../../src/session/params.ts';
import { Receiver } from '../../src/session/receiver.ts';
import { seeded } from '../../src/session/rng.ts';
import { Sender } from '../../src/session/sender.ts';
import type { Transmit } from '../../src/session/types.ts';

const dir = mkdtempSync(join(tmpdir(), 'must-auth-'));
after(() => rmSync(dir, { recursive: true, force: true }));
function keyFile(name: string): { path: string; pub: string } {
  const k = generateKey();
  const path = join(dir, name);
  writeFileSync(path, k.pem);
  writeFileSync(`${path}.pub`, `${k.publicText}\n`);
  return { path, pub: k.publicText };
}

test('keys: the text and the .pub file give the same key; malformed keys are refused with a clear error', () => {
  const k = keyFile('a');
  const s = loadSigner(k.path);
  assert.deepEqual(parseTrust(k.pub).publicKey, s.publicKey);
  assert.deepEqual(parseTrust(`${k.path}.pub`).publicKey, s.publicKey);
  assert.throws(() => parseTrust('not-a-key'), KeyError);
  assert.throws(() => parseTrust(k.pub.slice(0, -2)), KeyError);
  assert.throws(() => loadSigner(`${k.path}.pub`), KeyError);
  const sig = s.sign(new Uint8Array([1, 2, 3]));
  assert.ok(verifierOf(s.publicKey).verify(new Uint8Array([1, 2, 3]), sig));
  assert.ok(!verifierOf(s.publicKey).verify(new Uint8Array([1, 2, 4]), sig));
  assert.match(fingerprint(s.publicKey), /^[0-9a-f]{4}(:[0-9a-f]{4}){3}$/);
});

test('a pinned client writes only vouched bytes: forged data, data before its AUTH, unsigned, foreign-key and replayed announcements are dropped', () => {
  const signer = loadSigner(keyFile('master').path);
  const rogue = loadSigner(keyFile('rogue').path);
  const image = Uint8Array.from({ length: 300_000 }, (_, i) => (i * 7) & 0xff);
  const built = manifestOfBytes(image, ImageKind.Disk, 64 << 10);
  const p = { ...defaultParams(), payloadSize: 1000, blockPackets: 16 };
  const session = 0x51e5;
  const tx = new Sender({
    session, params: p, kind: ImageKind.Disk, name: 'img', caps: 0, manifest: built.bytes, manifestDigest: built.digest,
    imageSize: image.length, targetSize: image.length, sectorSize: 512, controlPort: 7700, dataPort: 7700, feedbackPort: 7701,
    minClients: 1, waitAfterJoin: undefined, linger: 10, signer,
  }, seeded(1), 0);
  const disk = new Uint8Array(image.length);
  const later: Array<() => void> = [];
  const rx: Receiver = new Receiver({
    id: '00000000000000c1', name: 'c1', capacity: image.length, kind: ImageKind.Disk, controlPort: 7700, autoConfirm: true,
    trust: verifierOf(signer.publicKey),
  }, {
    offer: (o, b, from, n) => { disk.set(b.subarray(from, from + n), o); return true; },
    known: () => {},
    finish: (k, c) => { const e = c.extents[0]!; later.push(() => rx.onChunkChecked(k, Buffer.compare(Buffer.from(disk.subarray(e.offset, e.offset + e.length)), Buffer.from(image.subarray(e.offset, e.offset + e.length))) === 0, now)); },
    flush: () => later.push(() => rx.onFlushed(now)),
  }, seeded(2), 0);
  const master = { address: '10.0.0.1', port: 5000 }, client = { address: '10.0.0.2', port: 6000 };
  const bytesOf = (t: Transmit): Uint8Array | undefined => {
    if (t.auth) return buildAuth(tx.geo, session, t.auth.first, t.auth.count, signer, (s) => (s.region === 'manifest' ? built.bytes.subarray(s.offset, s.offset + s.length) : image.subarray(s.offset, s.offset + s.length)));
    const img = t.image ? [image.subarray(t.image.offset, t.image.offset + t.image.length)] : [];
    return Buffer.concat([...t.parts, ...img]);
  };
  let now = 0, firstAnnounce: Uint8Array | undefined, forgedData = 0, dataSeen = 0;
  const deliver = (b: Uint8Array): void => rx.onDatagram(b, master, 7700, now);
  for (let step = 0; step < 20000 && !rx.finished; step++) {
    now += 1;
    for (const f of later.splice(0)) f();
    tx.onTimer(now);
    for (let t = tx.poll(now); t; t = tx.poll(now)) {
      const b = bytesOf(t)!;
      const m = b[3];
      if (m === MsgType.Announce && !firstAnnounce) {
        firstAnnounce = b;
        deliver(b);
        // Before any AUTH: data for the last block.
        deliver(new Uint8Array([...encodeDataHeader(session, 0, tx.geo.packets - 1, NO_BLOCK), ...new Uint8Array(tx.geo.span(tx.geo.packets - 1).length)]));
        deliver(b); // replay: a sequence number already seen
        const a = { type: MsgType.Announce, session, phase: Phase.Done, mode: 1, kind: ImageKind.Disk, caps: 0, imageSize: image.length, targetSize: image.length, sectorSize: 512, payloadSize: 1000, blockPackets: 16, manifestLength: built.bytes.length, manifestDigest: built.digest, epoch: 9, segment: 0, segmentPackets: 0, dataPort: 7700, feedbackPort: 7701, clients: 1, ttl: 1, name: 'img' } as const;
        deliver(encode(a)); // unsigned "done"
        const foreign = encode({ ...a, caps: Caps.Signed, signed: { key: rogue.publicKey, seq: 2 ** 40, signature: new Uint8Array(64) } });
        foreign.set(rogue.sign(foreign.subarray(0, foreign.length - 64)), foreign.length - 64);
        deliver(foreign); // signed, by another key
        continue;
      }
      if (m === MsgType.Data && dataSeen++ % 7 === 0) {
        // A forged copy of this packet number, sent first: right session, right size, wrong bytes.
        const header = b.subarray(0, 24);
        deliver(new Uint8Array([...header, ...new Uint8Array(b.length - 24).fill(0xee)]));
        forgedData++;
      }
      deliver(b);
    }
    rx.onTimer(now);
    for (let t = rx.poll(); t; t = rx.poll()) tx.onDatagram(Buffer.concat(t.parts), client, t.dest.kind === 'group' ? t.dest.port : 7700, now);
  }
  assert.ok(rx.ok, `client ended ${rx.reason}; drops ${JSON.stringify(rx.stats.drops)}`);
  assert.equal(Buffer.compare(Buffer.from(disk), Buffer.from(image)), 0);
  assert.equal(rx.stats.verifyFailures, 0, 'a forged byte reached a chunk');
  assert.equal(rx.trust.kind, 'pinned');
  const d = rx.stats.drops;
  assert.ok(forgedData > 10, `forged ${forgedData}`);
  assert.equal(d.forged, forgedData, JSON.stringify(d));
  for (const reason of ['unvouched', 'replay', 'unsigned', 'key']) assert.ok((d[reason] ?? 0) >= 1, `no ${reason} drop: ${JSON.stringify(d)}`);
  assert.ok(tx.stats.authSent >= tx.geo.blocks);
});
