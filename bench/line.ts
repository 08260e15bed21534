// Line rate, side by side: MUST against udpcast (udp-sender/udp-receiver) and UFTP
// (uftp/uftpd) on the same payload, in the same lab, in the same run. Needs root.
//
//   node bench/line.ts [--size MIB] [--runs N] [--quick] [--only must,udpcast,uftp] [--rows 'NAME;...']
//                      [--must-args '--mtu 9000']   (extra arguments for MUST's master)
//                      [--logs DIR]   (keep every process's output there, a file per run and host)
//
// The lab: one sender and N receivers in network namespaces on a Linux bridge, every
// host's link shaped to 1 Gbit/s with tc tbf (both directions) and receiving with GRO on (as
// real NICs' drivers have it), random loss by nftables per frame where the switch port sends
// to a receiver, the payload and every received copy on a tmpfs this bench mounts.
// Goodput = payload bytes / wall time from the sender's start to the last receiver done.
// CPU is user+system seconds of each tool's processes (bash `times` around them), per GiB.
// Datagrams and bytes at the sender come from its interface counters, so every tool is
// counted the same way. Every received file's sha256 is checked; a run that fails,
// times out or delivers a wrong file counts as a failure for its tool. The rows run in rounds
// (each row's first run, then each row's second, ...), and the bench prints what loss on every
// receiver cost each tool against the same round's run without it, and how fast the host hashed
// before and after (compare tables of different days with that in mind).

import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { createHash, randomFillSync } from 'node:crypto';
import { createReadStream, mkdirSync, openSync, closeSync, readFileSync, rmSync, rmdirSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { buildSea } from '../scripts/appliance/sea.ts';
import { HEADER_LENGTH } from '../src/protocol/codec.ts';
import { MsgType } from '../src/protocol/messages.ts';
import { median } from '../src/sim/sweep.ts';
import { type NetLab, createLab, isRoot } from '../test/net/netns.ts';

const { values } = parseArgs({
  options: {
    size: { type: 'string', default: '1024' },
    runs: { type: 'string', default: '3' },
    quick: { type: 'boolean', default: false },
    only: { type: 'string', default: 'must,udpcast,uftp' },
    rows: { type: 'string', default: '' },
    'must-args': { type: 'string', default: '' },
    logs: { type: 'string', default: '' },
  },
});
if (!isRoot()) { console.error('bench/line.ts: needs root (network namespaces, tc, nftables, tmpfs)'); process.exit(2); }

const SIZE = Number(values.size) * 2 ** 20;
const RUNS = values.quick ? 1 : Number(values.runs);
const TOOLS = values.only.split(',') as Tool[];
const ROOT = join(import.meta.dirname, '..');
const FS = '/tmp/mustb-fs';
const PAYLOAD = join(FS, 'payload.img');
const PREFIX = 'mustb';
const TIMEOUT = 600_000;
const AFTER_SENDER = 60_000;
const MUST_ARGS = values['must-args'].split(' ').filter(Boolean);

type Tool = 'must' | 'udpcast' | 'uftp';
const must = TOOLS.includes('must') ? await buildSea(ROOT, join(ROOT, 'out/bench')) : '';

interface Row {
  name: string;
  receivers: number;
  /** Loss percent per receiver index. */
  loss: (i: number) => number;
  /** Link rate in Mbit/s per host (0: unshaped); the sender is host -1. */
  rate: (i: number) => number;
  /** Receivers that start this many ms after the sender. */
  late?: (i: number) => number;
  /** Jumbo frames: every link at MTU 9000, and every tool sends its largest blocks that fit one frame. */
  jumbo?: boolean;
  /** Which receivers' finishing time the row is judged on (default all). */
  judged?: (i: number) => boolean;
  tools?: Tool[];
}

const gbit = (): number => 1000;
const none = (): number => 0;
const ROWS: Row[] = [
  { name: '1, none', receivers: 1, loss: none, rate: gbit },
  { name: '1, 5% on all', receivers: 1, loss: () => 5, rate: gbit },
  ...[3, 6].flatMap((n): Row[] => [
    { name: `${n}, none`, receivers: n, loss: none, rate: gbit },
    { name: `${n}, 1% on one`, receivers: n, loss: (i) => (i === 0 ? 1 : 0), rate: gbit },
    { name: `${n}, 1% on all`, receivers: n, loss: () => 1, rate: gbit },
    { name: `${n}, 5% on one`, receivers: n, loss: (i) => (i === 0 ? 5 : 0), rate: gbit },
    { name: `${n}, 5% on all`, receivers: n, loss: () => 5, rate: gbit },
  ]),
  { name: '1, no rate limit', receivers: 1, loss: none, rate: none },
  // One receiver on a 100 Mbit/s link: judged on the other two.
  { name: '3, one at 100 Mbit/s', receivers: 3, loss: none, rate: (i) => (i === 0 ? 100 : 1000), judged: (i) => i !== 0 },
  { name: '3, one joins 3 s late', receivers: 3, loss: none, rate: gbit, late: (i) => (i === 0 ? 3000 : 0), tools: ['must'] },
  { name: '12, none', receivers: 12, loss: none, rate: gbit, tools: ['must'] },
  // Where the path allows jumbo frames (switches and NICs at MTU 9000).
  { name: '1, none, jumbo', receivers: 1, loss: none, rate: gbit, jumbo: true },
  { name: '3, none, jumbo', receivers: 3, loss: none, rate: gbit, jumbo: true },
  { name: '3, 5% on all, jumbo', receivers: 3, loss: () => 5, rate: gbit, jumbo: true },
];
const JUMBO_MTU = 9000;
/** The anchors' block size for a 9000-byte frame: the MTU less IP, UDP and each tool's header room. */
const JUMBO_BLOCK = 8800;
const QUICK = new Set(['1, none', '3, none', '3, 5% on all', '3, one at 100 Mbit/s']);

interface Result {
  ok: boolean;
  why?: string;
  wall: number;
  /** Wall time until the judged receivers were done. */
  judgedWall: number;
  senderCpu: number;
  receiverCpu: number[];
  txPackets: number;
  txBytes: number;
  rxPackets: number;
}

const sh = (cmd: string, args: string[]): string => execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

// ---- processes ----------------------------------------------------------------

interface Proc {
  child: ChildProcess;
  out: () => string;
  /** Resolves with exit code, CPU seconds (user+sys of the tool) and when it ended. */
  done: Promise<{ code: number; cpu: number; at: number }>;
  /** Stop it (SIGTERM to the wrapper, which stops the tool and still reports its CPU). */
  stop(): void;
}

// bash runs the tool as a child, so `times` reports the tool's CPU however it ends.
const WRAP = 'trap \'kill -TERM $p 2>/dev/null; wait $p; times; exit 143\' TERM; "$@" & p=$!; wait $p; rc=$?; times; exit $rc';

function start(lab: NetLab, host: string, argv: string[], cwd?: string): Proc {
  const child = spawn(lab.wrap(host)[0]!, [...lab.wrap(host).slice(1), 'bash', '-c', WRAP, 'bench', ...argv], { stdio: ['ignore', 'pipe', 'pipe'], cwd });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => { out += d.toString(); if (out.length > 1 << 20) out = out.slice(-(1 << 19)); });
  child.stderr!.on('data', (d: Buffer) => { out += d.toString(); if (out.length > 1 << 20) out = out.slice(-(1 << 19)); });
  const done = new Promise<{ code: number; cpu: number; at: number }>((resolve) => {
    // The tool ended at 'exit'; `times` may still wait in the pipe then, so its CPU is read at 'close'
    // (when the output has all come), or after a grace period should something keep the pipe open.
    let ended: { code: number; at: number } | undefined;
    let grace: NodeJS.Timeout | undefined;
    const finish = (): void => {
      if (!ended) return;
      clearTimeout(grace);
      // `times` prints the shell's own line, then its children's: "0m1.234s 0m0.567s".
      const c = [...out.matchAll(/^(\d+)m([\d.]+)s (\d+)m([\d.]+)s$/gm)].at(-1);
      const cpu = c ? Number(c[1]) * 60 + Number(c[2]) + Number(c[3]) * 60 + Number(c[4]) : NaN;
      resolve({ ...ended, cpu });
    };
    child.on('exit', (code) => {
      ended = { code: code ?? 128, at: performance.now() };
      grace = setTimeout(finish, 2000);
    });
    child.on('close', finish);
  });
  return { child, out: () => out, done, stop: () => child.kill('SIGTERM') };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout | undefined;
  return Promise.race([p, new Promise<T>((_, reject) => { t = setTimeout(() => reject(new Error(`${what}: no end after ${ms / 1000} s`)), ms); })]).finally(() => clearTimeout(t));
}

async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 4 << 20 })) h.update(chunk as Buffer);
  return h.digest('hex');
}

function counters(lab: NetLab, host: string): { txPackets: number; txBytes: number; rxPackets: number } {
  const read = (what: string): number => Number(sh(lab.wrap(host)[0]!, [...lab.wrap(host).slice(1), 'cat', `/sys/class/net/eth0/statistics/${what}`]).trim());
  return { txPackets: read('tx_packets'), txBytes: read('tx_bytes'), rxPackets: read('rx_packets') };
}

// ---- one run of one tool ------------------------------------------------------

let port = 21000;
// MUST's records and its kept manifests go on the tmpfs, and with it when the bench ends.
const KEEP = ['--records', join(FS, 'records.json'), '--hash-cache', join(FS, 'manifests')];

/**
 * MUST's master hashes an image the first time it serves it, and keeps the manifest (--hash-cache)
 * for the sessions after. A lab admin hashes an image once and images the lab with it many times:
 * a master is started here, untimed, until it has hashed the payload (it says it is serving), so that
 * no timed run hashes. Before, the first run of the first row did, and goal 3 compared a "none" run
 * that hashed with a loss run that did not. The seconds it took.
 */
async function hashOnce(lab: NetLab): Promise<number> {
  const t0 = performance.now();
  const master = start(lab, 's', [must, 'master', '--image', PAYLOAD, '--min-clients', '1', '--iface', 'eth0', '--port', String(port), ...KEEP]);
  try {
    while (!/ master serving /.test(master.out())) {
      if (master.child.exitCode !== null) throw new Error(`must master ended before it served the payload: ${master.out().slice(-1500)}`);
      if (performance.now() - t0 > TIMEOUT) throw new Error('must master did not hash the payload in time');
      await sleep(50);
    }
    return (performance.now() - t0) / 1000;
  } finally {
    master.stop();
    await master.done;
  }
}

async function runOnce(tool: Tool, row: Row, lab: NetLab): Promise<Result> {
  const receivers = Array.from({ length: row.receivers }, (_, i) => `r${i + 1}`);
  const targets = receivers.map((r) => join(FS, r));
  for (const t of targets) { rmSync(t, { recursive: true, force: true }); mkdirSync(t); }
  const files = targets.map((t) => join(t, 'payload.img'));
  port += 10;
  // MUST writes to a disk that is already there (here a file of the payload's size); the anchors
  // make their files. Making MUST's is not part of its run.
  if (tool === 'must') {
    for (const f of files) closeSync(openSync(f, 'w'));
    for (const f of files) sh('truncate', ['-s', String(SIZE), f]);
  }
  const before = counters(lab, 's');
  const t0 = performance.now();
  const late = row.late ?? none;
  let sender: Proc;
  const rx: Proc[] = [];
  const startReceivers = (argv: (i: number) => string[]): void => {
    receivers.forEach((r, i) => {
      const go = (): void => { rx[i] = start(lab, r, argv(i)); };
      if (late(i) > 0) setTimeout(go, late(i)); else go();
    });
  };
  const N = String(row.receivers - receivers.filter((_, i) => late(i) > 0).length);
  if (tool === 'must') {
    const jumbo = row.jumbo ? ['--mtu', String(JUMBO_MTU)] : [];
    // MUST paces to the speed the interface reports. A real 1 Gbit/s NIC says 1000; a veth says
    // 10000 whatever tbf does to it, so the master is told the lab's link speed, as it would read it.
    const link = row.rate(-1) > 0 ? ['--rate', String(row.rate(-1))] : [];
    sender = start(lab, 's', [must, 'master', '--image', PAYLOAD, '--min-clients', N, '--iface', 'eth0', '--port', String(port), ...KEEP, ...link, ...jumbo, ...MUST_ARGS]);
    startReceivers((i) => [must, 'client', '--target', files[i]!, '--yes', '--iface', 'eth0', '--port', String(port), '--name', receivers[i]!]);
  } else if (tool === 'udpcast') {
    const jumbo = row.jumbo ? ['--blocksize', String(JUMBO_BLOCK)] : [];
    sender = start(lab, 's', ['udp-sender', '--file', PAYLOAD, '--interface', 'eth0', '--portbase', String(port), '--min-receivers', N, '--nokbd', '--no-progress', ...jumbo]);
    startReceivers((i) => ['udp-receiver', '--file', files[i]!, '--interface', 'eth0', '--portbase', String(port), '--nokbd']);
  } else {
    // uftpd runs until stopped; uftp ends when every receiver has the file (closed group by IP).
    startReceivers((i) => ['uftpd', '-d', '-I', 'eth0', '-D', targets[i]!, '-p', String(port), '-B', String(8 << 20)]);
    await sleep(300);
    const ids = receivers.map((r) => lab.address(r)).join(',');
    const jumbo = row.jumbo ? ['-b', String(JUMBO_BLOCK)] : [];
    // uftp sends at the rate it is given (Kbps): a little under a shaped link's, or, on a link with no
    // limit, as fast as its interface takes (-1), as MUST and udpcast do there.
    const rate = row.rate(-1) > 0 ? String(row.rate(-1) * 950) : '-1';
    sender = start(lab, 's', ['uftp', '-I', 'eth0', '-p', String(port), '-R', rate, '-B', String(8 << 20), '-H', ids, ...jumbo, PAYLOAD]);
  }
  const judged = row.judged ?? ((): boolean => true);
  let why: string | undefined;
  let judgedAt = 0;
  try {
    const s = await withTimeout(sender.done, TIMEOUT, `${tool} sender`);
    if (s.code !== 0) why = `sender exit ${s.code}: ${sender.out().slice(-1500)}`;
    if (tool === 'uftp') { await sleep(200); for (const r of rx) r.stop(); }
    // Once the sender has ended, a receiver has a minute to end too (udp-receiver can wait forever
    // for a sender that dropped it).
    const ends = await withTimeout(Promise.all(receivers.map(async (_, i) => { while (!rx[i]) await sleep(50); return rx[i].done; })), AFTER_SENDER, `${tool} receivers, a minute after the sender ended`);
    ends.forEach((e, i) => {
      if (tool !== 'uftp' && e.code !== 0) why ??= `${receivers[i]} exit ${e.code}: ${rx[i]!.out().slice(-300)}`;
      if (judged(i)) judgedAt = Math.max(judgedAt, tool === 'uftp' ? s.at : e.at);
    });
    // Until the last receiver is done (a sender that lingers for late clients is not charged); uftpd
    // never exits, so for UFTP the sender's end, when every receiver has confirmed the file.
    const wall = ((tool === 'uftp' ? s.at : Math.max(...ends.map((e) => e.at))) - t0) / 1000;
    const after = counters(lab, 's');
    if (!why) {
      const want = await sha256File(PAYLOAD);
      for (const [i, f] of files.entries()) if (await sha256File(f).catch(() => 'missing') !== want) { why = `${receivers[i]}: file differs`; break; }
    }
    return {
      ok: !why, why, wall, judgedWall: (judgedAt - t0) / 1000, senderCpu: s.cpu, receiverCpu: ends.map((e) => e.cpu),
      txPackets: after.txPackets - before.txPackets, txBytes: after.txBytes - before.txBytes, rxPackets: after.rxPackets - before.rxPackets,
    };
  } catch (e) {
    sender!.stop();
    for (const r of rx) r?.stop();
    return { ok: false, why: (e as Error).message, wall: NaN, judgedWall: NaN, senderCpu: NaN, receiverCpu: [], txPackets: NaN, txBytes: NaN, rxPackets: NaN };
  } finally {
    for (const t of targets) rmSync(t, { recursive: true, force: true });
    if (values.logs) {
      mkdirSync(values.logs, { recursive: true });
      const base = join(values.logs, `${tool}-${row.name.replace(/[^a-z0-9]+/gi, '_')}-${port}`);
      writeFileSync(`${base}-s.log`, sender!.out());
      rx.forEach((r, i) => writeFileSync(`${base}-${receivers[i]}.log`, r.out()));
    }
  }
}

// ---- the table ----------------------------------------------------------------

/** The median of the runs that gave a number (of two, their mean). */
const medianOf = (xs: number[]): number => median(xs.filter(Number.isFinite));
const GIB = 2 ** 30;

interface Summary { tool: Tool; runs: Result[]; failures: number; wall: number; judgedWall: number; goodput: number; sCpu: number; rCpu: number; tx: number; fb: number; extra: number; resent: number }

/** Ethernet (14), IPv4 (20) and UDP (8) bytes around every datagram, as the interface counts them. */
const FRAMING = 42;
/**
 * Bytes of each tool's own header in a datagram of file data. udpcast 20120424 and uftp 4.10.2 were
 * measured on a veth pair (2026-12-07, the UDP lengths of every datagram a receiver got, a 40 MB
 * file, no loss): udpcast's 1,472-byte datagrams carried 1,456 bytes of the file each, uftp's
 * 1,324-byte ones 1,300, and each last, short one as many bytes fewer.
 */
const DATA_HEADER: Record<Tool, number> = { must: HEADER_LENGTH[MsgType.Data], udpcast: 16, uftp: 24 };

function summarise(tool: Tool, runs: Result[]): Summary {
  const ok = runs.filter((r) => r.ok);
  const wall = medianOf(ok.map((r) => r.wall));
  const perGiB = GIB / SIZE;
  return {
    tool, runs, failures: runs.length - ok.length, wall,
    judgedWall: medianOf(ok.map((r) => r.judgedWall)),
    goodput: SIZE / wall / 1e6,
    sCpu: medianOf(ok.map((r) => r.senderCpu)) * perGiB,
    rCpu: medianOf(ok.map((r) => Math.max(...r.receiverCpu))) * perGiB,
    tx: medianOf(ok.map((r) => r.txPackets)),
    fb: medianOf(ok.map((r) => r.rxPackets)),
    // Bytes sent beyond one copy of the payload (headers, control, repairs), per cent of the payload.
    extra: medianOf(ok.map((r) => (r.txBytes - SIZE) / SIZE * 100)),
    // Bytes resent: what remains when every datagram's framing and data header and one copy of the
    // payload are taken away (repairs and retransmissions, and the little that control datagrams carry).
    resent: medianOf(ok.map((r) => (r.txBytes - r.txPackets * (FRAMING + DATA_HEADER[tool]) - SIZE) / SIZE * 100)),
  };
}

// Memory the guest frees, some VMs hand back to their host (virtio-balloon free page reporting), and
// the host backs such a page again only when the guest next touches it. On the machine of
// bench/RESULTS.md's tables of 2026-12-05 from 22:08 UTC, dd wrote fresh tmpfs pages at 2.2-8.0 s per
// GiB once the first GiB was used, and pages the guest had kept at 0.15-0.35 s per GiB. Every tool's
// receivers write to this tmpfs: with six receivers, the copy into fresh pages took 58% of the host's
// CPU (perf), and the rows measured the VM, not the tools. So, where the kernel offers it, the bench
// stops the reporting while it runs (an order above the largest a free block can have) and touches
// the tmpfs's memory before the first run; at the end the old order is back.
const REPORTING = '/sys/module/page_reporting/parameters/page_reporting_order';
const NO_REPORTING = '11';

/** Stop free page reporting; returns what undoes it (nothing to undo where the kernel has none). */
function holdFreedMemory(): () => void {
  let before: string;
  try { before = readFileSync(REPORTING, 'utf8').trim(); } catch { return () => {}; }
  if (before === NO_REPORTING) return () => {};
  try { writeFileSync(REPORTING, NO_REPORTING); } catch { return () => {}; } // the kernel refused: the memory line says what it costs
  return () => { try { writeFileSync(REPORTING, before); } catch { /* the module went */ } };
}

/** Write `bytes` to `path`, 4 MiB at a time, each as `next` leaves the buffer. */
function writeBytes(path: string, bytes: number, next: (buf: Buffer) => Buffer = (buf) => buf): void {
  const fd = openSync(path, 'w');
  const buf = Buffer.alloc(4 << 20);
  for (let done = 0; done < bytes; done += buf.length) writeSync(fd, next(buf), 0, Math.min(buf.length, bytes - done));
  closeSync(fd);
}

/** Write `bytes` of zeros into a file on the tmpfs and delete it; MB/s. */
function touch(bytes: number): number {
  const file = join(FS, 'touch');
  const t0 = performance.now();
  writeBytes(file, bytes);
  const ms = performance.now() - t0;
  rmSync(file);
  return bytes / 1e3 / ms;
}

const f1 = (x: number): string => (Number.isFinite(x) ? x.toFixed(1) : '-');
const f2 = (x: number): string => (Number.isFinite(x) ? x.toFixed(2) : '-');

const HEAD = '| receivers, loss | tool | wall s | goodput MB/s | vs udpcast | vs uftp | sender CPU s/GiB | receiver CPU s/GiB | datagrams sent | feedback at sender | bytes beyond payload | bytes resent | failures |';

const toolsOf = (row: Row): Tool[] => TOOLS.filter((t) => !row.tools || row.tools.includes(t));

/** A row's lines of the table, a tool each. */
function rowLines(row: Row, results: Map<Tool, Result[]>): string[] {
  const sums = toolsOf(row).map((t) => summarise(t, results.get(t)!));
  const by = (t: Tool): Summary | undefined => sums.find((s) => s.tool === t);
  return sums.map((s) => {
    const judged = row.judged ? s.judgedWall : s.wall;
    const ratio = (a?: Summary): string => {
      if (!a || s.tool !== 'must') return '';
      const aj = row.judged ? a.judgedWall : a.wall;
      return Number.isFinite(aj) && Number.isFinite(judged) ? `${f2(aj / judged)}x` : a.failures === a.runs.length ? 'anchor failed' : '-';
    };
    const wallText = row.judged ? `${f1(judged)} (all ${f1(s.wall)})` : f2(s.wall);
    return `| ${row.name} | ${s.tool} | ${wallText} | ${f1(s.goodput)} | ${ratio(by('udpcast'))} | ${ratio(by('uftp'))} | ${f2(s.sCpu)} | ${f2(s.rCpu)} | ${s.tx} | ${s.fb} | ${f1(s.extra)}% | ${f1(s.resent)}% | ${s.failures}/${s.runs.length} |`;
  });
}

/**
 * What loss on every receiver costs each tool, against the same row without loss:
 * the time of each run over that of the same round's run without loss (both verified), and their
 * median. A line per tool and pair of rows that ran.
 */
function lossCosts(rows: Row[], results: Map<Row, Map<Tool, Result[]>>): string[] {
  const lines: string[] = [];
  for (const lossy of rows) {
    // "3, 5% on all, jumbo" against "3, none, jumbo".
    const baseName = lossy.name.replace(/, [0-9.]+% on all\b/, ', none');
    const base = rows.find((r) => r.name === baseName);
    if (!base || lossy === base) continue;
    for (const tool of toolsOf(lossy).filter((t) => toolsOf(base).includes(t))) {
      const a = results.get(lossy)!.get(tool)!, b = results.get(base)!.get(tool)!;
      const costs = a.map((r, i) => (r.ok && b[i]?.ok ? (r.wall / b[i].wall - 1) * 100 : NaN));
      const pct = (x: number): string => (Number.isFinite(x) ? `${x >= 0 ? '+' : ''}${x.toFixed(1)}%` : 'failed');
      lines.push(`  ${lossy.name} against ${base.name}, ${tool}: ${costs.map(pct).join(', ')}; median ${pct(medianOf(costs))}`);
    }
  }
  return lines;
}

/** Seconds Node takes to hash 1 GiB with SHA-256 (a quarter GiB four times, after one untimed): how fast this host is now. */
function hashSeconds(): number {
  const bytes = randomFillSync(Buffer.allocUnsafe(GIB / 4));
  createHash('sha256').update(bytes).digest();
  const t0 = performance.now();
  for (let i = 0; i < 4; i++) createHash('sha256').update(bytes).digest();
  return (performance.now() - t0) / 1000;
}

async function main(): Promise<void> {
  const wanted = values.rows ? new Set(values.rows.split(';')) : values.quick ? QUICK : undefined;
  const rows = ROWS.filter((r) => !wanted || wanted.has(r.name));
  const maxReceivers = Math.max(...rows.map((r) => r.receivers));
  sh('mkdir', ['-p', FS]);
  sh('mount', ['-t', 'tmpfs', '-o', `size=${Math.ceil((SIZE * (maxReceivers + 1)) / 2 ** 20) + 256}m`, 'mustb-fs', FS]);
  const hosts = ['s', ...Array.from({ length: maxReceivers }, (_, i) => `r${i + 1}`)];
  let lab: NetLab | undefined;
  const release = holdFreedMemory();
  // The tmpfs goes, and then its (empty) mount point: the bench leaves nothing behind in /tmp.
  const unmount = (): void => { try { sh('umount', [FS]); rmdirSync(FS); } catch { /* not mounted */ } };
  const cleanUp = (): void => { lab?.destroy(); unmount(); release(); };
  const interrupted = (): void => { cleanUp(); process.exit(130); };
  process.on('SIGINT', interrupted);
  process.on('SIGTERM', interrupted);
  try {
    const fresh = touch(SIZE * (maxReceivers + 1));
    const kept = touch(SIZE * (maxReceivers + 1));
    writeBytes(PAYLOAD, SIZE, randomFillSync);
    // The master keeps no manifest of a file changed less than 2 s before it hashed it (the file
    // may still be changing).
    await sleep(2100);
    console.log(`bench/line: ${SIZE / 2 ** 20} MiB payload on tmpfs, ${RUNS} run(s) per tool and row, medians; ${new Date().toISOString()}`);
    console.log(`machine: ${sh('nproc', []).trim()} cores, ${sh('uname', ['-r']).trim()}, node ${process.version}; udpcast ${version('udp-sender')}, uftp ${version('uftp')}`);
    console.log(`memory: the tmpfs's ${(SIZE * (maxReceivers + 1)) / 2 ** 30} GiB written at ${fresh.toFixed(0)} MB/s, then again at ${kept.toFixed(0)} MB/s`);
    const hashedBefore = hashSeconds();
    console.log(`host: Node hashed 1 GiB with SHA-256 in ${f2(hashedBefore)} s`);
    if (TOOLS.includes('must')) {
      lab = createLab(PREFIX, ['s'], '10.79.0');
      console.log(`must: the master hashed the payload before the runs, untimed, in ${f2(await hashOnce(lab))} s; no run hashes it`);
      lab.destroy();
      lab = undefined;
    }
    // Round by round: every row's first run, then every row's second, and so on. On a host whose
    // speed drifts (by half within minutes on some evenings), rows compared with each other (goal 3's
    // loss against none, goal 4's slow PC against none) then share each stretch of it.
    const results = new Map(rows.map((row) => [row, new Map<Tool, Result[]>(toolsOf(row).map((t) => [t, []]))]));
    for (let run = 0; run < RUNS; run++) {
      for (const row of rows) {
        lab = createLab(PREFIX, hosts.slice(0, row.receivers + 1), '10.79.0');
        lab.hosts.forEach((h, k) => {
          const rate = row.rate(k - 1);
          if (rate > 0) lab!.setRate(h, rate);
          if (k > 0) lab!.setLoss(h, row.loss(k - 1));
          if (row.jumbo) lab!.setMtu(h, JUMBO_MTU);
        });
        for (const tool of toolsOf(row)) {
          const r = await runOnce(tool, row, lab);
          results.get(row)!.get(tool)!.push(r);
          process.stderr.write(`  ${row.name} ${tool} run ${run + 1}: ${r.ok ? `${f2(r.wall)} s` : `FAILED ${r.why}`}\n`);
        }
        lab.destroy();
        lab = undefined;
        if (run === RUNS - 1) console.log(rowLines(row, results.get(row)!).join('\n'));
      }
    }
    const table = [HEAD, `|${'---|'.repeat(HEAD.split('|').length - 2)}`, ...rows.flatMap((row) => rowLines(row, results.get(row)!))];
    console.log(`\n${table.join('\n')}`);
    console.log('\nratios: the anchor\'s time over MUST\'s (above 1: MUST is faster); rows with a slow receiver compare the time until the other receivers are done.');
    console.log(`bytes beyond payload: all the sender's interface sent, less one copy of the payload; bytes resent: that, less every datagram's ${FRAMING} bytes of framing and its tool's data header (${TOOLS.map((t) => `${t} ${DATA_HEADER[t]}`).join(', ')}).`);
    const costs = lossCosts(rows, results);
    if (costs.length > 0) console.log(`\nloss against none, run by run (each pair from one round; goal 3: at most +15%):\n${costs.join('\n')}`);
    console.log(`host: Node hashed 1 GiB with SHA-256 in ${f2(hashedBefore)} s before the first run, ${f2(hashSeconds())} s after the last`);
  } finally {
    cleanUp();
  }
}

function version(cmd: string): string {
  try { return sh('dpkg-query', ['-W', '-f', '${Version}', cmd === 'uftp' ? 'uftp' : 'udpcast']); } catch { return 'missing'; }
}

await main();
