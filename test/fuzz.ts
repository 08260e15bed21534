// The decoder fuzzer, shared by the unit test (100,000 cases in CI) and bench/fuzz.ts
// (a million and more): random datagrams and mutations of valid ones of every kind.

import { DecodeError } from '../src/protocol/bytes.ts';
import { decodeClassic, encodeClassicHeader, Top } from '../src/protocol/classic.ts';
import { decode, encode, encodeDataHeader } from '../src/protocol/codec.ts';
import { manifestOfBytes } from '../src/disk/manifest-build.ts';
import { decodeManifest } from '../src/protocol/manifest.ts';
import { Caps, ImageKind, MsgType, NO_BLOCK } from '../src/protocol/messages.ts';
import { seeded } from '../src/session/rng.ts';
import { sampleManifest } from './unit/samples.ts';

export function mutate(r: () => number, b: Uint8Array): Uint8Array {
  const out = Uint8Array.from(b);
  const n = 1 + Math.floor(r() * 4);
  for (let i = 0; i < n; i++) {
    switch (Math.floor(r() * 4)) {
      case 0: out[Math.floor(r() * out.length)] ^= 1 << Math.floor(r() * 8); break;
      case 1: out[Math.floor(r() * out.length)] = Math.floor(r() * 256); break;
      case 2: return out.subarray(0, Math.floor(r() * out.length));
      default: return new Uint8Array([...out, ...Array.from({ length: Math.floor(r() * 16) }, () => Math.floor(r() * 256))]);
    }
  }
  return out;
}

const digest = new Uint8Array(32).fill(7);
/** One valid datagram (or manifest) of every kind the decoders read. */
export const SEEDS: Uint8Array[] = [
  encode({ type: MsgType.RepairRequest, session: 1, client: '0011223344556677', epoch: 1, ranges: [{ start: 5, count: 3 }] }),
  encode({ type: MsgType.Join, session: 1, client: '0011223344556677', caps: 0, prefix: 24, capacity: 1e9, have: 0, mac: '52:54:00:00:00:01', name: 'pc' }),
  encode({
    type: MsgType.Announce, session: 9, phase: 2, mode: 1, kind: 1, caps: Caps.Mapped | Caps.Signed, imageSize: 1e9, targetSize: 2e9, sectorSize: 512,
    payloadSize: 1448, blockPackets: 64, manifestLength: 900, manifestDigest: digest, epoch: 1, segment: 0, segmentPackets: 0,
    dataPort: 7700, feedbackPort: 7701, clients: 3, ttl: 1, name: 'lab', signed: { key: digest, seq: 5, signature: new Uint8Array(64) },
  }),
  encode({ type: MsgType.Auth, session: 9, first: 64, hashes: new Uint8Array(64 * 16), signature: new Uint8Array(64) }),
  encode({ type: MsgType.Drop, session: 9, client: '0011223344556677', reason: 'x', signature: new Uint8Array(64) }),
  new Uint8Array([...encodeDataHeader(1, 1, 10, NO_BLOCK), ...new Uint8Array(100)]),
  manifestOfBytes(new Uint8Array(3 << 20), ImageKind.Disk).bytes,
  sampleManifest().bytes,
  new Uint8Array([...encodeClassicHeader(7, Top.Information, false, 512), ...new Uint8Array(512)]),
];

/** Feed `cases` inputs to every decoder; anything but a DecodeError is a failure. */
export function fuzzDecoders(cases: number, seed: number, onCase?: (i: number) => void): { accepted: number; failures: string[] } {
  const r = seeded(seed);
  let accepted = 0;
  const failures: string[] = [];
  for (let i = 0; i < cases; i++) {
    const input = i % 3 === 0
      ? Uint8Array.from({ length: Math.floor(r() * 1600) }, () => Math.floor(r() * 256))
      : mutate(r, SEEDS[i % SEEDS.length]!);
    for (const d of [decode, decodeClassic, decodeManifest] as Array<(b: Uint8Array) => unknown>) {
      try { d(input); accepted++; } catch (e) {
        if (!(e instanceof DecodeError) && failures.length < 10) failures.push(`case ${i}: ${d.name} threw ${(e as Error).name}: ${(e as Error).message} on ${Buffer.from(input).toString('hex').slice(0, 80)}`);
      }
    }
    onCase?.(i);
  }
  return { accepted, failures };
}
