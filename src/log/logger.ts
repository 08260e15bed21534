// One line per event. Text (`time tag event key=value ...`) for people, JSON for
// scripts (`--json`). The default logger is silent, so library code and tests log
// nothing unless a sink is injected.

export type Level = 'debug' | 'info' | 'warn' | 'error';
const RANK: Record<Level, number> = { debug: 0, info: 1, warn: 2, error: 3 };

export type Fields = Record<string, string | number | boolean | undefined>;

export interface Sink { write(line: string): void }

export interface Logger {
  debug(event: string, fields?: Fields): void;
  info(event: string, fields?: Fields): void;
  warn(event: string, fields?: Fields): void;
  error(event: string, fields?: Fields): void;
  child(tag: string): Logger;
}

export interface LoggerOptions {
  sink: Sink;
  json: boolean;
  level: Level;
  tag: string;
  clock?: () => Date;
}

const quote = (v: string): string => (/^[^\s"=]+$/.test(v) ? v : JSON.stringify(v));

export function formatText(time: Date, tag: string, level: Level, event: string, fields: Fields): string {
  const parts = [time.toISOString(), tag, level === 'info' ? '' : level.toUpperCase(), event].filter((s) => s !== '');
  for (const [k, v] of Object.entries(fields)) if (v !== undefined) parts.push(`${k}=${quote(String(v))}`);
  return parts.join(' ');
}

export function createLogger(o: LoggerOptions): Logger {
  const clock = o.clock ?? (() => new Date());
  const emit = (level: Level, event: string, fields: Fields = {}): void => {
    if (RANK[level] < RANK[o.level]) return;
    const time = clock();
    o.sink.write(o.json
      ? JSON.stringify({ time: time.toISOString(), tag: o.tag, level, event, ...fields })
      : formatText(time, o.tag, level, event, fields));
  };
  return {
    debug: (e, f) => emit('debug', e, f),
    info: (e, f) => emit('info', e, f),
    warn: (e, f) => emit('warn', e, f),
    error: (e, f) => emit('error', e, f),
    child: (tag) => createLogger({ ...o, tag: `${o.tag}/${tag}` }),
  };
}

export const silentLogger: Logger = {
  debug: () => {}, info: () => {}, warn: () => {}, error: () => {},
  child: () => silentLogger,
};

export const lineSink = (stream: NodeJS.WritableStream): Sink => ({ write: (line) => { stream.write(`${line}\n`); } });

/** Human-readable byte counts (binary units, as disk tools print them). */
export function bytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return `${i === 0 ? n : n.toFixed(n >= 100 ? 0 : 1)} ${units[i]}`;
}
