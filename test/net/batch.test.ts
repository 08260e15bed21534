// Batched datagrams (src/net/batch.ts) on real sockets: what recvmmsg takes and what sendmmsg
// gives is every datagram, byte for byte, in order, many per system call.

import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { test } from 'node:test';
import { BatchReader, BatchWriter, DRAIN_LIMIT, Poller, syscalls } from '../../src/net/batch.ts';
import { BatchedInput, classicBegins, mustBegins } from '../../src/net/udp.ts';
import { Top, encodeClassicHeader } from '../../src/protocol/classic.ts';
import { COMMON_HEADER, HEADER_LENGTH, MAGIC, VERSION, encode, encodeDataHeader } from '../../src/protocol/codec.ts';
import { Caps, MsgType } from '../../src/protocol/messages.ts';

/** A socket bound on loopback (with a large receive buffer). */
async function bound(): Promise<dgram.Socket> {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
  s.setRecvBufferSize(4 << 20);
  return s;
}

/** The first n datagrams `rx` receives, and a promise of them all. */
function collect(rx: dgram.Socket, n: number): { got: Buffer[]; all: Promise<void> } {
  const got: Buffer[] = [];
  const all = new Promise<void>((done) => rx.on('message', (msg) => { got.push(msg); if (got.length === n) done(); }));
  return { got, all };
}

/** A socket of its own on `tx`'s port (tx closes), connected to `rx`: it sends a long datagram whole, where tx segments it. */
async function samePort(tx: dgram.Socket, rx: dgram.Socket): Promise<dgram.Socket> {
  const port = tx.address().port;
  await new Promise<void>((r) => tx.close(r));
  const s = dgram.createSocket('udp4');
  await new Promise<void>((r) => s.bind(port, '127.0.0.1', r));
  await new Promise<void>((r) => s.connect(rx.address().port, '127.0.0.1', r));
  return s;
}

/** `got` holds datagrams 0 to n-1 as `datagram` makes them, then `long`, each whole. */
function cameWhole(got: Buffer[], n: number, datagram: (i: number) => Buffer, long: Buffer): void {
  assert.equal(got.length, n + 1, `${got.length} datagrams came for ${n + 1}`);
  for (let i = 0; i < n; i++) assert.ok(got[i]!.equals(datagram(i)), `datagram ${i} differs (${got[i]!.length} bytes)`);
  assert.ok(got[n]!.equals(long), `the long datagram came as ${got[n]!.length} bytes`);
}

/** A receiver, and a sender connected to it. */
async function pair(): Promise<{ rx: dgram.Socket; tx: dgram.Socket }> {
  const rx = await bound(), tx = await bound();
  await new Promise<void>((r) => tx.connect(rx.address().port, '127.0.0.1', r));
  return { rx, tx };
}

test('batched receive: a burst arrives whole, in order, with its sender, in few system calls', { timeout: 20_000 }, async () => {
  const rx = await bound();
  const reader = BatchReader.for(rx);
  assert.ok(reader, 'no batched receive on the pinned Node (node:ffi or the socket descriptor is missing)');
  const tx = await bound();
  const N = 1000;
  // Mostly one size, as a stream is (the reader reuses a slot's view while the size holds), with odd sizes among them.
  const sizes = (i: number): number => (i % 5 === 4 ? 2 + ((i * 977) % 1470) : 1448);
  const datagram = (i: number): Buffer => {
    const b = Buffer.alloc(sizes(i));
    for (let k = 0; k < b.length; k++) b[k] = (i * 7 + k) & 0xff;
    b.writeUInt16BE(i, 0);
    return b;
  };
  const got: Buffer[] = [];
  const senders = new Set<string>();
  let done!: () => void;
  const all = new Promise<void>((r) => { done = r; });
  const take = (b: Uint8Array, from: { address: string; port: number }): void => {
    got.push(Buffer.from(b)); // the view is overwritten by the next batch: copy
    senders.add(`${from.address}:${from.port}`);
    if (got.length === N) done();
  };
  rx.on('message', (msg, r) => { take(msg, r); reader.drain(take); });
  // Send everything before the receiver's event loop gets a turn: the socket holds a backlog.
  for (let i = 0; i < N; i++) tx.send(datagram(i), rx.address().port, '127.0.0.1');
  await all;
  const txPort = tx.address().port;
  tx.close();
  rx.close();
  for (let i = 0; i < N; i++) assert.ok(got[i]!.equals(datagram(i)), `datagram ${i} differs`);
  assert.deepEqual([...senders], [`127.0.0.1:${txPort}`]);
  assert.ok(reader.datagrams > N / 2, `recvmmsg took only ${reader.datagrams} of ${N}`);
  assert.ok(reader.calls * 8 < reader.datagrams, `${reader.calls} system calls for ${reader.datagrams} datagrams`);
});

test('a drain takes at most its limit of a backlog, and the next one goes on where it stopped', { timeout: 20_000 }, async () => {
  const { rx, tx } = await pair();
  const reader = BatchReader.for(rx)!;
  const N = DRAIN_LIMIT + 300;
  try {
    // All sent and drained in one turn of the loop, before libuv reads the socket: loopback
    // delivers at send time, so the whole backlog waits in the socket's buffer.
    for (let i = 0; i < N; i++) tx.send(Uint8Array.from([i >> 8, i & 255]));
    const got: number[] = [];
    const take = (b: Uint8Array): void => { got.push((b[0]! << 8) | b[1]!); };
    assert.equal(reader.drain(take), DRAIN_LIMIT, 'the first drain did not stop at its limit');
    assert.equal(reader.drain(take), N - DRAIN_LIMIT, 'the second drain did not take the rest');
    assert.equal(reader.drain(take), 0);
    assert.deepEqual(got, [...Array(N).keys()], 'datagrams lost, doubled or out of order');
  } finally {
    tx.close();
    rx.close();
  }
});

test('batched send: datagrams built from parts arrive whole and in order, many per system call', { timeout: 20_000 }, async () => {
  const { rx, tx } = await pair();
  const writer = BatchWriter.for(tx);
  assert.ok(writer, 'no batched send on the pinned Node (node:ffi or the socket descriptor is missing)');
  const N = 1000;
  const { got, all } = collect(rx, N);
  // A header and a payload per datagram, as the master sends DATA; the payload view is reused.
  const payload = Buffer.alloc(1448);
  const head = (i: number): Uint8Array => Uint8Array.from([i >> 8, i & 255, 0xaa]);
  for (let i = 0; i < N; i++) {
    payload.fill(i & 255);
    while (!writer.ready) await new Promise((r) => setImmediate(r));
    writer.add([head(i), payload.subarray(0, 100 + (i % 1300))]);
    if (i % 50 === 49) { assert.ok(writer.flush() || writer.waiting > 0); await new Promise((r) => setImmediate(r)); }
  }
  while (!writer.flush()) await new Promise((r) => setImmediate(r));
  await all;
  tx.close();
  rx.close();
  for (let i = 0; i < N; i++) {
    const want = Buffer.concat([head(i), Buffer.alloc(100 + (i % 1300), i & 255)]);
    assert.ok(got[i]!.equals(want), `datagram ${i} differs`);
  }
  assert.equal(writer.sent, N);
  assert.ok(writer.calls * 8 < N, `${writer.calls} system calls for ${N} datagrams`);
});

test('batched send with UDP segmentation: full datagrams share messages, and the receiver gets each as it was added', { timeout: 20_000 }, async () => {
  const { rx, tx } = await pair();
  const FULL = 1472;
  const writer = BatchWriter.for(tx, FULL)!;
  assert.ok(writer.segmenting > 1, 'the kernel refused UDP_SEGMENT');
  // Runs of full datagrams broken by short ones (a segment's last packet, a manifest packet).
  const N = 1500;
  const size = (i: number): number => (i % 97 === 96 ? 200 + (i % 700) : FULL);
  const datagram = (i: number): Buffer => { const b = Buffer.alloc(size(i), i & 255); b.writeUInt16BE(i, 0); return b; };
  const { got, all } = collect(rx, N);
  for (let i = 0; i < N; i++) {
    while (!writer.ready) await new Promise((r) => setImmediate(r));
    const d = datagram(i);
    writer.add([d.subarray(0, 24), d.subarray(24)]);
    if (i % 200 === 199) { writer.flush(); await new Promise((r) => setTimeout(r, 2)); }
  }
  while (!writer.flush()) await new Promise((r) => setImmediate(r));
  await all;
  tx.close();
  rx.close();
  for (let i = 0; i < N; i++) assert.ok(got[i]!.equals(datagram(i)), `datagram ${i} differs (${got[i]!.length} bytes)`);
  assert.equal(writer.sent, N);
  assert.ok(writer.calls * 100 < N, `${writer.calls} system calls for ${N} datagrams`);
});

test('batched send: where the kernel refuses to segment, the waiting datagrams go one by one, none lost', { timeout: 20_000 }, async () => {
  const { rx, tx } = await pair();
  // The first send fails as udp_send_skb does on a route that cannot segment (EIO); later ones are real.
  const real = syscalls()!;
  let refused = 0, errno = 0;
  const writer = BatchWriter.for(tx, 1472, {
    sendmmsg: (fd, vec, n, flags) => (refused++ === 0 ? (errno = 5, -1) : (errno = 0, real.sendmmsg(fd, vec, n, flags))),
    errno: () => errno,
  })!;
  assert.ok(writer.segmenting > 1);
  const N = 200;
  const datagram = (i: number): Buffer => Buffer.alloc(i === N - 1 ? 300 : 1472, i & 255);
  const { got, all } = collect(rx, N);
  for (let i = 0; i < N; i++) {
    while (!writer.ready) await new Promise((r) => setImmediate(r));
    writer.add([datagram(i)]);
  }
  while (!writer.flush()) await new Promise((r) => setImmediate(r));
  await all;
  tx.close();
  rx.close();
  assert.equal(writer.segmenting, 1);
  for (let i = 0; i < N; i++) assert.ok(got[i]!.equals(datagram(i)), `datagram ${i} differs (${got[i]!.length} bytes)`);
  assert.equal(writer.sent, N);
});

test('batched send: a socket failure is an error that names it, not a silent loss', async () => {
  const tx = await bound();
  const writer = BatchWriter.for(tx)!; // bound but not connected: the kernel has nowhere to send
  writer.add([Buffer.from('x')]);
  assert.throws(() => writer.flush(), /cannot send to the group: EDESTADDRREQ/);
  tx.close();
});

test('polled receive: a stream in bursts comes through recvmmsg, and libuv gets the socket back when it is quiet', { timeout: 20_000 }, async () => {
  const { rx, tx } = await pair();
  const reader = BatchReader.for(rx)!;
  const N = 3000, BURST = 150;
  const got: number[] = [];
  let done!: () => void;
  const all = new Promise<void>((r) => { done = r; });
  const take = (b: Uint8Array): void => { got.push((b[0]! << 8) | b[1]!); if (got.length === N) done(); };
  const poller = Poller.for(rx, () => reader.drain(take));
  let woken = 0;
  try {
    assert.ok(poller, 'dgram\'s handle offers no recvStop/recvStart on the pinned Node');
    rx.on('message', (msg) => { woken++; take(msg); reader.drain(take); poller.busy(); });
    for (let i = 0; i < N; i++) {
      tx.send(Uint8Array.from([i >> 8, i & 255, 7]));
      if (i % BURST === BURST - 1) await new Promise((r) => setTimeout(r, 1));
    }
    await all;
    assert.deepEqual(got, [...Array(N).keys()], 'datagrams lost, doubled or out of order');
    assert.ok(woken < N / 10, `libuv delivered ${woken} of ${N} datagrams: the socket was not polled`);
    assert.ok(poller.spells > 0 && poller.ticks > 0);
    // Quiet: the first empty tick hands the socket back, and libuv delivers the next datagram itself.
    while (poller.polling) await new Promise((r) => setTimeout(r, 2));
    const before = woken;
    tx.send(Uint8Array.from([0xff, 0xff, 7]));
    for (let t = 0; t < 500 && got.length === N; t++) await new Promise((r) => setTimeout(r, 2));
    assert.equal(got[N], 0xffff, 'the datagram after a quiet spell never came');
    assert.equal(woken, before + 1, 'the datagram after a quiet spell did not come through libuv');
  } finally {
    tx.close();
    await new Promise<void>((r) => rx.close(r));
  }
  assert.equal(poller.polling, false, 'still polling a closed socket');
});

test('polled receive: a slow stream is read every few milliseconds, not every one, and catchUp reads what waits at once', { timeout: 20_000 }, async () => {
  const { rx, tx } = await pair();
  const reader = BatchReader.for(rx)!;
  let got = 0, woken = 0;
  const poller = Poller.for(rx, () => reader.drain(() => { got++; }))!;
  try {
    rx.on('message', () => { woken++; got++; reader.drain(() => { got++; }); poller.busy(); });
    // Four datagrams a millisecond for half a second: about 5 Mbit/s of full datagrams, or 50 Mbit/s of these.
    const t0 = performance.now();
    let sent = 0, caught = 0;
    for (let turn = 1; performance.now() - t0 < 500; turn++) {
      for (let i = 0; i < 4; i++, sent++) tx.send(Buffer.alloc(1400, sent & 255));
      if (turn % 20 === 0 && poller.polling) {
        // Nothing reads while this turn lasts: what was sent waits in the socket, and catchUp takes it.
        const until = performance.now() + 0.5;
        while (performance.now() < until) { /* the datagrams reach the socket */ }
        const before = got;
        poller.catchUp();
        assert.equal(got, sent, `${got} of ${sent} datagrams read after catchUp`);
        if (got > before) caught++;
      }
      await new Promise((r) => setTimeout(r, 1));
    }
    assert.ok(caught >= 3, `catchUp found datagrams waiting ${caught} times`);
    const ms = performance.now() - t0;
    for (let t = 0; t < 100 && got < sent; t++) await new Promise((r) => setTimeout(r, 5));
    assert.equal(got, sent);
    // Every millisecond, the socket would be read (by a tick, or through libuv once a tick found it empty) about as often as the sender woke.
    assert.ok(poller.ticks + woken < ms / 2, `${poller.ticks} ticks and ${woken} wake-ups through libuv in ${ms.toFixed(0)} ms`);
  } finally {
    tx.close();
    await new Promise<void>((r) => rx.close(r));
  }
});

test('polled receive with coalescing: datagrams sent segmented come as one message each, cut apart again, and one by one once polling ends', { timeout: 20_000 }, async () => {
  const { rx, tx } = await pair();
  const reader = BatchReader.for(rx)!;
  const FULL = 1472;
  const writer = BatchWriter.for(tx, FULL)!;
  assert.ok(writer.segmenting > 1, 'the kernel refused UDP_SEGMENT');
  // Runs of full datagrams broken by short ones, as a master's DATA goes.
  const N = 3000;
  const size = (i: number): number => (i % 97 === 96 ? 200 + (i % 700) : FULL);
  const datagram = (i: number): Buffer => { const b = Buffer.alloc(size(i), (i * 13) & 255); b.writeUInt16BE(i, 0); return b; };
  const got: Buffer[] = [];
  let wanted = N, done!: () => void;
  let all = new Promise<void>((r) => { done = r; });
  const take = (b: Uint8Array): void => { got.push(Buffer.from(b)); if (got.length === wanted) done(); };
  const poller = Poller.for(rx, () => reader.drain(take), (on) => reader.coalesce(on));
  let woken = 0;
  try {
    assert.ok(poller);
    rx.on('message', (msg) => { woken++; take(msg); reader.drain(take); poller.busy(); });
    const send = async (from: number, to: number): Promise<void> => {
      for (let i = from; i < to; i++) {
        while (!writer.ready) await new Promise((r) => setImmediate(r));
        writer.add([datagram(i)]);
        if (i % 200 === 199) { writer.flush(); await new Promise((r) => setTimeout(r, 1)); }
      }
      while (!writer.flush()) await new Promise((r) => setImmediate(r));
    };
    await send(0, N);
    await Promise.race([all, new Promise((r) => setTimeout(r, 10_000))]);
    assert.equal(got.length, N, `${got.length} datagrams came for ${N}`);
    for (let i = 0; i < N; i++) assert.ok(got[i]!.equals(datagram(i)), `datagram ${i} differs (${got[i]!.length} bytes)`);
    assert.ok(reader.coalesced > 0, 'the kernel coalesced nothing: UDP_GRO did not take');
    // Quiet: polling ends and coalescing with it; a message of three datagrams then comes through libuv as three.
    while (poller.polling) await new Promise((r) => setTimeout(r, 2));
    const before = { woken, coalesced: reader.coalesced };
    wanted = N + 3;
    all = new Promise<void>((r) => { done = r; });
    await send(N, N + 3);
    await Promise.race([all, new Promise((r) => setTimeout(r, 2000))]);
    assert.equal(got.length, N + 3, 'the datagrams after a quiet spell never came');
    for (let i = N; i < N + 3; i++) assert.ok(got[i]!.equals(datagram(i)), `datagram ${i} after the quiet spell differs (${got[i]!.length} bytes)`);
    assert.ok(woken > before.woken, 'the datagrams after a quiet spell did not come through libuv');
    assert.equal(reader.coalesced, before.coalesced);
  } finally {
    tx.close();
    await new Promise<void>((r) => rx.close(r));
  }
});

test('datagrams the kernel coalesced before coalescing stopped are still cut apart, and once the socket was empty a long datagram stays whole', { timeout: 20_000 }, async () => {
  let { rx, tx } = await pair();
  const reader = BatchReader.for(rx)!;
  const FULL = 1472;
  const writer = BatchWriter.for(tx, FULL)!;
  const datagram = (i: number, size = FULL): Buffer => { const b = Buffer.alloc(size, (i * 29) & 255); b.writeUInt16BE(i, 0); return b; };
  const got: Buffer[] = [];
  const take = (b: Uint8Array): void => { got.push(Buffer.from(b)); };
  let woken = 0;
  rx.on('message', () => { woken++; });
  // Sent and drained in one turn of the event loop, so that libuv reads none of them.
  const sendAndDrain = (from: number, to: number, before: () => void = () => {}): void => {
    for (let i = from; i < to; i++) { assert.ok(writer.ready); writer.add([datagram(i)]); }
    assert.ok(writer.flush());
    before();
    while (reader.drain(take) > 0);
  };
  try {
    assert.ok(reader.coalesce(true), 'the kernel refused UDP_GRO');
    sendAndDrain(0, 300);
    assert.ok(reader.coalesced > 0, 'the kernel coalesced nothing: UDP_GRO did not take');
    // Coalesced while UDP_GRO is on, read after it is off: the kernel no longer gives the size.
    const before = reader.coalesced;
    sendAndDrain(300, 900, () => reader.coalesce(false));
    assert.ok(reader.coalesced > before, 'nothing waited coalesced when coalescing stopped');
    // The socket was found empty since: a datagram from the same sender longer than the last size is one datagram.
    tx = await samePort(tx, rx);
    tx.send(datagram(900, 3 * FULL + 5)); // connected: sent before send() returns
    reader.drain(take);
    assert.equal(woken, 0, 'libuv took a datagram: the test lost its grip on the socket');
    cameWhole(got, 900, datagram, datagram(900, 3 * FULL + 5));
  } finally {
    tx.close();
    await new Promise<void>((r) => rx.close(r));
  }
});

test('while coalescing stops, a longer datagram from the same sender stays whole where `begins` tells it from coalesced ones, which are still cut apart', { timeout: 20_000 }, async () => {
  let { rx, tx } = await pair();
  // Every datagram of this stream begins with 0xAB; the long one holds 0x11 where a cut would fall.
  const reader = BatchReader.for(rx, (b, at) => b[at] === 0xab)!;
  const FULL = 1472;
  const writer = BatchWriter.for(tx, FULL)!;
  const datagram = (i: number, size = FULL): Buffer => { const b = Buffer.alloc(size, 0x11); b[0] = 0xab; b.writeUInt16BE(i, 1); return b; };
  const got: Buffer[] = [];
  const take = (b: Uint8Array): void => { got.push(Buffer.from(b)); };
  let woken = 0;
  rx.on('message', () => { woken++; });
  const send = (from: number, to: number): void => {
    for (let i = from; i < to; i++) { assert.ok(writer.ready); writer.add([datagram(i)]); }
    assert.ok(writer.flush());
  };
  try {
    assert.ok(reader.coalesce(true), 'the kernel refused UDP_GRO');
    send(0, 300);
    while (reader.drain(take) > 0);
    assert.ok(reader.coalesced > 0, 'the kernel coalesced nothing: UDP_GRO did not take');
    // Coalesced while UDP_GRO is on; then, from the same address and port, one longer datagram; all read after UDP_GRO is off.
    send(300, 600);
    const before = reader.coalesced;
    tx = await samePort(tx, rx);
    tx.send(datagram(600, 2 * FULL + 100)); // connected: sent before send() returns
    reader.coalesce(false);
    while (reader.drain(take) > 0);
    assert.equal(woken, 0, 'libuv took a datagram: the test lost its grip on the socket');
    assert.ok(reader.coalesced > before, 'nothing waited coalesced when coalescing stopped');
    cameWhole(got, 600, datagram, datagram(600, 2 * FULL + 100));
  } finally {
    tx.close();
    await new Promise<void>((r) => rx.close(r));
  }
});

test('while coalescing stops, datagrams coalesced at a size never reported, from the last sender or another, are cut where `begins` finds each one', { timeout: 20_000 }, async () => {
  const { rx, tx } = await pair();
  const other = await bound();
  await new Promise<void>((r) => other.connect(rx.address().port, '127.0.0.1', r));
  // Every datagram of these streams begins with 0xAB and holds none elsewhere.
  const reader = BatchReader.for(rx, (b, at) => b[at] === 0xab)!;
  const datagram = (i: number, size: number): Buffer => { const b = Buffer.alloc(size, 0x11); b[0] = 0xab; b.writeUInt16BE(i, 1); return b; };
  const got: Buffer[] = [];
  const take = (b: Uint8Array): void => { got.push(Buffer.from(b)); };
  let woken = 0;
  rx.on('message', () => { woken++; });
  const send = (s: dgram.Socket, full: number, sizes: number[], first: number): Buffer[] => {
    const writer = BatchWriter.for(s, full)!;
    assert.ok(writer.segmenting > 1, 'the kernel refused UDP_SEGMENT');
    const sent = sizes.map((size, k) => datagram(first + k, size));
    for (const d of sent) { assert.ok(writer.ready); writer.add([d]); }
    assert.ok(writer.flush());
    return sent;
  };
  try {
    assert.ok(reader.coalesce(true), 'the kernel refused UDP_GRO');
    // The size the kernel reports: 1000, from tx.
    const want = send(tx, 1000, [1000, 1000, 1000, 400], 0);
    while (reader.drain(take) > 0);
    assert.ok(reader.coalesced > 0, 'the kernel coalesced nothing: UDP_GRO did not take');
    // Then, coalesced and left waiting as coalescing stops: tx's datagrams of 1200 (coded repairs after
    // DATA, say), and another sender's of 48 (another PC's REPAIR_REQUESTs).
    want.push(...send(tx, 1200, [1200, 1200, 1200, 700], 4), ...send(other, 48, [48, 48, 48, 48, 48], 8));
    const before = reader.coalesced;
    reader.coalesce(false);
    while (reader.drain(take) > 0);
    assert.equal(woken, 0, 'libuv took a datagram: the test lost its grip on the socket');
    assert.deepEqual(got.map((b) => b.length), want.map((b) => b.length));
    assert.equal(reader.coalesced, before + 2, 'the two messages did not wait coalesced');
    got.forEach((b, i) => assert.ok(b.equals(want[i]!), `datagram ${i} differs`));
  } finally {
    for (const s of [tx, other, rx]) s.close();
  }
});

test('coalesced datagrams of another size in a message slot read before come whole, the last one too', { timeout: 20_000 }, async () => {
  const { rx, tx } = await pair();
  const reader = BatchReader.for(rx)!;
  const got: Buffer[] = [];
  const take = (b: Uint8Array): void => { got.push(Buffer.from(b)); };
  rx.on('message', (msg) => { got.push(msg); });
  const datagram = (i: number, size: number): Buffer => Buffer.alloc(size, i + 1);
  try {
    assert.ok(reader.coalesce(true), 'the kernel refused UDP_GRO');
    // Each message a full datagram and a short one of the same length; the full ones differ in size.
    for (const [i, full] of [[0, 1000], [2, 1200], [4, 1000]] as const) {
      const writer = BatchWriter.for(tx, full)!;
      assert.ok(writer.segmenting > 1, 'the kernel refused UDP_SEGMENT');
      writer.add([datagram(i, full)]);
      writer.add([datagram(i + 1, 300)]);
      assert.ok(writer.flush());
      while (reader.drain(take) > 0);
    }
    assert.ok(reader.coalesced > 0, 'the kernel coalesced nothing: UDP_GRO did not take');
    assert.deepEqual(got.map((b) => b.length), [1000, 300, 1200, 300, 1000, 300]);
    got.forEach((b, i) => assert.ok(b.every((x) => x === i + 1), `datagram ${i} holds bytes of another`));
  } finally {
    tx.close();
    await new Promise<void>((r) => rx.close(r));
  }
});

test('a datagram begins as its socket\'s kind does: a MUST header of this version on MUST\'s sockets, a classic packet whose PL is its length on the classic ones', () => {
  const must = Buffer.concat([Buffer.alloc(7, 0x11), encodeDataHeader(9, 0, 3, 0), Buffer.alloc(1452, 0x11)]);
  assert.ok(mustBegins(must, 7, must.length - 7));
  assert.ok(!mustBegins(must, 8, must.length - 8));
  assert.ok(!mustBegins(must, 0, must.length));
  assert.ok(!mustBegins(must, 7, COMMON_HEADER - 1), 'shorter than a common header');
  const other = Buffer.from(must);
  other[7 + 2] = VERSION + 1;
  assert.ok(!mustBegins(other, 7, other.length - 7), 'another wire version');
  // A payload that holds the magic and the version, as one DATA datagram of the bench's did where a cut was sought.
  const inPayload = Buffer.from(must);
  inPayload.set([MAGIC >> 8, MAGIC & 0xff, VERSION, 0x77, 0x06], 800);
  assert.ok(!mustBegins(inPayload, 800, inPayload.length - 800), 'no such type');
  inPayload[803] = MsgType.Ack;
  assert.ok(!mustBegins(inPayload, 800, inPayload.length - 800), 'a header length this version does not write');
  inPayload[804] = HEADER_LENGTH[MsgType.Ack];
  assert.ok(mustBegins(inPayload, 800, inPayload.length - 800));
  assert.ok(!mustBegins(inPayload, 800, HEADER_LENGTH[MsgType.Ack] - 1), 'a header longer than the datagram');
  // Both header lengths of an ANNOUNCE: with and without the target size (Caps.Mapped).
  for (const caps of [0, Caps.Mapped]) {
    const announce = encode({
      type: MsgType.Announce, session: 9, phase: 1, mode: 1, kind: 1, caps, imageSize: 1 << 20, targetSize: caps ? 2 << 20 : 1 << 20, sectorSize: 512,
      payloadSize: 1452, blockPackets: 64, manifestLength: 100, manifestDigest: new Uint8Array(32), epoch: 1, segment: 0,
      segmentPackets: 0, dataPort: 7700, feedbackPort: 7701, clients: 1, ttl: 1, name: 'lab',
    });
    assert.ok(mustBegins(announce, 0, announce.length), `an ANNOUNCE of caps ${caps}`);
  }
  const classic = Buffer.concat([Buffer.alloc(3, 0x11), encodeClassicHeader(77, Top.Information, false, 512), Buffer.alloc(512, 0x11)]);
  assert.ok(classicBegins(classic, 3, 518));
  assert.ok(!classicBegins(classic, 3, 517));
  assert.ok(!classicBegins(classic, 3, 4), 'shorter than a classic header');
  assert.ok(!mustBegins(classic, 3, 518));
  const reserved = Buffer.from(classic);
  reserved[3 + 5]! |= 1;
  assert.ok(!classicBegins(reserved, 3, 518), 'reserved bits set');
  // Another PC's REPAIR_REQUEST of two ranges, cut after its header as if coalesced with its ACKs: the
  // first range starts at a packet whose low bits read as a classic PL of 20, the rest of its length.
  const request = encode({ type: MsgType.RepairRequest, session: 9, client: '0123456789abcdef', epoch: 1, ranges: [{ start: 0x1_00a0, count: 4 }, { start: 0x2_0000, count: 1 }] });
  const cut = HEADER_LENGTH[MsgType.RepairRequest];
  assert.equal(request.length, cut + 20);
  assert.ok(classicBegins(request, cut, 20), 'the range does not read as a classic packet: the case is not made');
  assert.ok(!mustBegins(request, cut, 20), 'a REPAIR_REQUEST\'s ranges taken for a datagram on MUST\'s feedback socket');
});

test('batched input: a socket that stays empty is read by one read in four, and catchUp reads it at once', { timeout: 20_000 }, async () => {
  const busy = await pair(), idle = await pair();
  const input = new BatchedInput();
  const got = { busy: 0, idle: 0 };
  const busyReader = input.add(busy.rx, 1, () => { got.busy++; })!;
  const idleReader = input.add(idle.rx, 2, () => { got.idle++; })!;
  assert.ok(busyReader && idleReader, 'no batched receive on the pinned Node');
  try {
    // Four datagrams a millisecond on one socket for 300 ms; nothing on the other.
    let sent = 0;
    for (const t0 = performance.now(); performance.now() - t0 < 300;) {
      for (let i = 0; i < 4; i++, sent++) busy.tx.send(Buffer.alloc(1400, sent & 255));
      await new Promise((r) => setTimeout(r, 1));
    }
    for (let t = 0; t < 100 && got.busy < sent; t++) await new Promise((r) => setTimeout(r, 5));
    assert.equal(got.busy, sent);
    const reads = { busy: busyReader.calls + busyReader.empty, idle: idleReader.calls + idleReader.empty };
    assert.ok(reads.idle * 2 < reads.busy, `the empty socket was read ${reads.idle} times, the busy one ${reads.busy}`);
    // While the stream is polled, a datagram on the quiet socket is taken by the next catchUp, each
    // time (after 30 ms of stream, in which the socket is found empty again often enough to be passed over).
    let caught = 0;
    for (let i = 0; i < 20 && caught < 5; i++) {
      for (const t0 = performance.now(); performance.now() - t0 < 30;) {
        for (let k = 0; k < 4; k++, sent++) busy.tx.send(Buffer.alloc(1400, sent & 255));
        await new Promise((r) => setTimeout(r, 1));
      }
      if (!input.polling) continue;
      const before = got.idle;
      idle.tx.send(Buffer.alloc(100, 7));
      const until = performance.now() + 0.5;
      while (performance.now() < until) { /* the datagram reaches the socket */ }
      input.catchUp();
      assert.equal(got.idle, before + 1, 'catchUp left a datagram in the quiet socket');
      caught++;
    }
    assert.equal(caught, 5, `the stream was polled for ${caught} of the tries`);
  } finally {
    for (const s of [busy.rx, busy.tx, idle.rx, idle.tx]) s.close();
  }
});

test('polled receive: a tick that finds nothing reads every socket, those it may pass over too, before it stops coalescing and before libuv reads again', { timeout: 10_000 }, async () => {
  const { rx, tx } = await pair();
  // The sockets hold nothing: every read comes back empty, and the calls are what is checked.
  const calls: string[] = [];
  const poller = Poller.for(rx, (all) => { calls.push(all ? 'read all' : 'read'); return 0; }, (on) => calls.push(on ? 'coalesce' : 'stop coalescing'))!;
  try {
    poller.busy();
    for (let i = 0; i < 100 && poller.polling; i++) await new Promise((r) => setTimeout(r, 2));
    assert.equal(poller.polling, false);
    // A read that may pass over idle sockets, then one of them all; then, with coalescing stopped, all again.
    assert.deepEqual(calls, ['coalesce', 'read', 'read all', 'stop coalescing', 'read all']);
  } finally {
    tx.close();
    await new Promise<void>((r) => rx.close(r));
  }
});
