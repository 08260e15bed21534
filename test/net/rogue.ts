// A rogue host on the lab network, for the trust tests. It listens to the session like
// any client, then floods it: forged DATA (right session, right sizes, wrong bytes),
// forged AUTH, forged ANNOUNCEs (unsigned, and signed with its own key), forged DROPs
// at the clients it sees, forged ACKs and repair requests, and replays of datagrams it
// recorded from another session. It prints what it sent as one JSON line.
//
//   node test/net/rogue.ts --group G --port P --seconds S [--iface ADDR] [--spoof ADDR] [--record FILE | --replay FILE] [--rate PPS] [--only data]
//
// --spoof: half of what it sends leaves from this address (the master's, added to the rogue's
// interface): a check of the source address stops the rest, only signatures stop these.

import { createSocket } from 'node:dgram';
import { readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { loadSigner, signTrailer } from '../../src/protocol/auth.ts';
import { PACKET_HASH_BYTES, SIGNATURE_BYTES, decode, encode, encodeDataHeader } from '../../src/protocol/codec.ts';
import { type AnnounceMsg, Caps, MsgType, NO_BLOCK, Phase } from '../../src/protocol/messages.ts';

const { values } = parseArgs({
  options: {
    group: { type: 'string' }, port: { type: 'string' }, seconds: { type: 'string', default: '10' }, rate: { type: 'string', default: '4000' },
    iface: { type: 'string', default: '127.0.0.1' }, spoof: { type: 'string' }, record: { type: 'string' }, replay: { type: 'string' }, only: { type: 'string' }, key: { type: 'string' },
  },
});
const group = values.group!, port = Number(values.port), rate = Number(values.rate), iface = values.iface;
const sent: Record<string, number> = {};
const count = (k: string): void => { sent[k] = (sent[k] ?? 0) + 1; };
const rnd = (n: number): number => Math.floor(Math.random() * n);
const noise = (n: number): Uint8Array => Uint8Array.from({ length: n }, () => rnd(256));

const tx = createSocket({ type: 'udp4', reuseAddr: true });
tx.bind(0, iface, () => { tx.setMulticastInterface(iface); tx.setMulticastLoopback(true); });
const spoofed = values.spoof ? createSocket({ type: 'udp4' }) : undefined;
spoofed?.bind(0, values.spoof, () => { spoofed.setMulticastInterface(iface); spoofed.setMulticastLoopback(true); });
const send = (b: Uint8Array, p: number, addr = group): void => { (spoofed && rnd(2) ? spoofed : tx).send(b, p, addr); };

let announce: AnnounceMsg | undefined;
const clients = new Map<string, { address: string; port: number }>(); // client id -> where it sends from
const recorded: Array<{ port: number; hex: string }> = [];

function listen(p: number): void {
  const s = createSocket({ type: 'udp4', reuseAddr: true });
  s.on('message', (b, from) => {
    if (values.record && recorded.length < 20000) recorded.push({ port: p, hex: b.toString('hex') });
    try {
      const m = decode(b);
      if (m.type === MsgType.Announce && (!announce || m.session !== announce.session || m.phase !== announce.phase)) {
        if (!announce || m.session !== announce.session) console.error(`rogue: session ${m.session.toString(16)} found`);
        announce = m;
      }
      if ((m.type === MsgType.Ack || m.type === MsgType.RepairRequest) && m.client) clients.set(m.client, { address: from.address, port: from.port });
    } catch { /* classic or junk: not ours to read */ }
  });
  s.bind(p, () => { s.addMembership(group, iface); });
}
for (const p of [port, port + 1]) listen(p);

const own = values.key ? loadSigner(values.key) : undefined;
const forgers: Array<[string, () => void]> = [
  ['data', () => {
    const a = announce!;
    const packets = Math.ceil(a.manifestLength / a.payloadSize) + Math.ceil(a.imageSize / a.payloadSize);
    const p = rnd(packets);
    const manifestPackets = Math.ceil(a.manifestLength / a.payloadSize);
    const len = p < manifestPackets ? Math.min(a.payloadSize, a.manifestLength - p * a.payloadSize) : Math.min(a.payloadSize, a.imageSize - (p - manifestPackets) * a.payloadSize);
    send(new Uint8Array([...encodeDataHeader(a.session, rnd(2) ? 2 : 0, p, NO_BLOCK), ...noise(len)]), a.dataPort);
  }],
  ['auth', () => {
    const a = announce!;
    const block = rnd(Math.max(1, Math.ceil(a.imageSize / a.payloadSize / a.blockPackets)));
    send(encode({ type: MsgType.Auth, session: a.session, first: block * a.blockPackets, hashes: noise(a.blockPackets * PACKET_HASH_BYTES), signature: noise(SIGNATURE_BYTES) }), a.dataPort);
  }],
  ['announce', () => {
    const a = announce!;
    const { signed: _s, ...plain } = a;
    const fake: AnnounceMsg = { ...plain, phase: Phase.Done, caps: a.caps & ~Caps.Signed };
    if (own && rnd(2)) {
      const bytes = encode({ ...fake, caps: fake.caps | Caps.Signed, signed: { key: own.publicKey, seq: 2 ** 40, signature: new Uint8Array(SIGNATURE_BYTES) } });
      send(signTrailer(bytes, own), port);
    } else send(encode(fake), port);
  }],
  ['drop', () => {
    const a = announce!;
    for (const [id, to] of clients) send(encode({ type: MsgType.Drop, session: a.session, client: id, reason: 'rogue says stop', ...(a.signed ? { signature: noise(SIGNATURE_BYTES) } : {}) }), to.port, to.address);
  }],
  ['ack', () => {
    const a = announce!;
    const id = [...clients.keys()][rnd(clients.size)] ?? '00000000000000ee';
    send(encode({ type: MsgType.Ack, session: a.session, client: id, block: rnd(1 << 16), received: a.blockPackets, sampled: 0 }), a.feedbackPort);
  }],
  ['repair-request', () => {
    const a = announce!;
    send(encode({ type: MsgType.RepairRequest, session: a.session, client: [...clients.keys()][rnd(clients.size + 1)] ?? '00000000000000ee', epoch: a.epoch, ranges: [{ start: rnd(1000), count: 1 + rnd(64) }] }), a.feedbackPort);
  }],
];
const replay = values.replay ? (JSON.parse(readFileSync(values.replay, 'utf8')) as Array<{ port: number; hex: string }>) : [];
if (replay.length) forgers.push(['replay', () => { const r = replay[rnd(replay.length)]!; send(Buffer.from(r.hex, 'hex'), r.port); }]);
const active = values.only ? forgers.filter(([k]) => k === values.only) : forgers;

const end = Date.now() + Number(values.seconds) * 1000;
let credit = 0, last = Date.now();
const tick = (): void => {
  if (Date.now() >= end) return finish();
  if (announce && !values.record) {
    const t = Date.now();
    credit = Math.min(credit + ((t - last) * rate) / 1000, 200);
    last = t;
    for (; credit >= 1; credit--) {
      const [k, f] = active[rnd(active.length)]!;
      f();
      count(k);
    }
  }
  setTimeout(tick, 2);
};
tick();

function finish(): void {
  if (values.record) writeFileSync(values.record, JSON.stringify(recorded));
  console.log(JSON.stringify({ sent, recorded: recorded.length, clients: clients.size }));
  process.exit(0);
}
