// `must capture`, `must restore`, `must verify`, `must inspect`.

import { createInterface } from 'node:readline/promises';
import { type Options, UsageError } from '../cli/args.ts';
import { DiskError } from '../disk/device.ts';
import { capture as captureImage } from '../image/capture.ts';
import { inspect as inspectImage, restore as restoreImage, verify as verifyImage } from '../image/tools.ts';
import { type Logger, bytes } from '../log/logger.ts';
import { methodName } from '../protocol/manifest.ts';
import { makeLogger } from './common.ts';

/**
 * Bytes, rate and time left: one line redrawn in place on a terminal, an event every
 * two seconds otherwise (a serial console or a log file gets no cursor tricks).
 */
export class ProgressLine {
  private readonly started = performance.now();
  private last = 0;
  private drawn = false;
  private readonly what: string;
  private readonly log: Logger;
  private readonly tty: boolean;

  constructor(what: string, log: Logger, json: boolean) {
    this.what = what;
    this.log = log;
    this.tty = process.stdout.isTTY === true && !json;
  }

  update(done: number, total: number, extra: Record<string, string> = {}): void {
    const t = performance.now();
    if (t - this.last < (this.tty ? 200 : 2000)) return;
    this.last = t;
    const secs = (t - this.started) / 1000;
    const rate = secs > 0 ? done / secs : 0;
    const eta = rate > 0 ? Math.round((total - done) / rate) : undefined;
    const percent = total > 0 ? Math.floor((done / total) * 100) : 100;
    if (this.tty) {
      const more = Object.entries(extra).map(([k, v]) => `  ${k} ${v}`).join('');
      process.stdout.write(`\r${this.what}  ${bytes(done)} of ${bytes(total)}  ${percent}%  ${(rate / 1e6).toFixed(1)} MB/s  ETA ${eta ?? '-'} s${more}\x1b[K`);
      this.drawn = true;
    } else {
      this.log.info('progress', { percent, done, total, rateMBps: (rate / 1e6).toFixed(1), eta: eta === undefined ? undefined : `${eta}s`, ...extra });
    }
  }

  end(): void {
    if (this.drawn) process.stdout.write('\n');
    this.drawn = false;
  }
}

/** Ctrl-C stops the job; the signal tells the job to stop cleanly. */
function interruptible(): AbortSignal {
  const ac = new AbortController();
  const stop = (): void => ac.abort(new DiskError('interrupted'));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  return ac.signal;
}

export async function capture(o: Options): Promise<number> {
  const source = o.positionals[0];
  if (!source) throw new UsageError('capture: name the SOURCE (a disk, a partition or a raw image file)');
  const output = o.need('output', 'the image file');
  const level = o.num('level') ?? 3;
  if (!Number.isInteger(level) || level < 1 || level > 19) throw new UsageError(`capture: --level ${level}: zstd levels are 1 to 19`);
  const log = makeLogger(o, 'capture');
  const bar = new ProgressLine('capture', log, o.flag('json'));
  const signal = interruptible();
  try {
    const r = await captureImage({
      source, output, level, chunkSize: o.num('chunk-size') === undefined ? undefined : o.num('chunk-size')! * (1 << 20),
      force: o.flag('force'), log, signal,
      onProgress: (p) => bar.update(p.scanned, p.total, { image: bytes(p.written) }),
    });
    bar.end();
    for (const reg of r.regions) log.info('region', { number: reg.number || undefined, fs: reg.fs || undefined, method: methodName(reg.method), start: reg.start, size: reg.length });
    log.info('captured', {
      image: output, chunks: r.chunks, data: r.dataBytes, zeros: r.zeroBytes, stream: r.streamBytes, file: r.imageBytes,
      ratio: r.streamBytes ? (r.dataBytes / r.streamBytes).toFixed(2) : undefined, seconds: r.seconds.toFixed(1),
    });
    return 0;
  } catch (e) {
    bar.end();
    if (signal.aborted) {
      log.error('interrupted', { source, output, kept: 'nothing (the partial file was removed)' });
      return 130;
    }
    throw e;
  }
}

export async function restore(o: Options): Promise<number> {
  const [image, target, ...more] = o.positionals;
  if (!image || !target || more.length > 0) throw new UsageError('restore: want IMAGE TARGET');
  const log = makeLogger(o, 'restore');
  if (!o.flag('yes')) {
    if (!process.stdin.isTTY) throw new UsageError(`restore: pass --yes to overwrite ${target} without a terminal to ask on`);
    const rl = createInterface({ input: process.stdin, output: process.stdout });
    const answer = await rl.question(`Write ${image} over ${target}? Everything on ${target} is lost. [y/N] `);
    rl.close();
    if (!/^y(es)?$/i.test(answer.trim())) { log.warn('declined', { target }); return 1; }
  }
  const bar = new ProgressLine('restore', log, o.flag('json'));
  const signal = interruptible();
  try {
    const r = await restoreImage({ image, target, signal, onProgress: (p) => bar.update(p.done, p.total) });
    bar.end();
    log.info('restored', { image, target, chunks: r.chunks, data: r.rawBytes, zeroed: r.zeroed, seconds: r.seconds.toFixed(1), verified: true });
    return 0;
  } catch (e) {
    bar.end();
    if (signal.aborted) {
      log.error('interrupted', { target, state: 'incomplete: restore again before using it' });
      return 130;
    }
    throw e;
  }
}

export async function verify(o: Options): Promise<number> {
  const [image, device, ...more] = o.positionals;
  if (!image || more.length > 0) throw new UsageError('verify: want IMAGE [DEVICE]');
  const log = makeLogger(o, 'verify');
  const bar = new ProgressLine('verify', log, o.flag('json'));
  const r = await verifyImage({ image, device, signal: interruptible(), onProgress: (p) => bar.update(p.done, p.total) });
  bar.end();
  for (const b of r.bad) log.error('bad', { what: b });
  if (r.bad.length > 0) {
    log.error('failed', { image, device, chunks: r.chunks, problems: r.bad.length });
    return 1;
  }
  log.info('ok', { image, device: device ?? undefined, chunks: r.chunks, holds: device ? 'every chunk and every zero extent' : undefined });
  return 0;
}

export async function inspect(o: Options): Promise<number> {
  const image = o.positionals[0];
  if (!image) throw new UsageError('inspect: name the IMAGE');
  console.log(await inspectImage(image));
  return 0;
}
