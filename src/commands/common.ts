// What every command shares: the logger, the network options and their defaults.

import { type Options, UsageError } from '../cli/args.ts';
import { closeSync, openSync, writeSync } from 'node:fs';
import { type Logger, type Sink, createLogger, lineSink } from '../log/logger.ts';
import { type Iface, linkMtu, resolveIface } from '../net/iface.ts';
import { type LanPolicy, parseCidr } from '../session/lans.ts';

export const DEFAULT_GROUP = '239.255.77.77';
export const DEFAULT_PORT = 7700;
/** Exit status of a client whose countdown (--after) the person cancelled: verified, but stay. */
export const CANCELLED = 3;

/**
 * The command's log: one line per event on stdout, or into `screen` (a screen's event pane) when
 * one is drawn; and with --log FILE also appended there (the appliance copies its events to
 * the serial console this way while the PC's own screen shows the client).
 */
export function makeLogger(o: Options, tag: string, screen?: Sink): Logger {
  const sinks = [screen ?? lineSink(process.stdout)];
  const file = o.str('log');
  if (file) {
    const fd = openSync(file, 'a');
    process.once('exit', () => closeSync(fd));
    sinks.push({ write: (line) => { try { writeSync(fd, `${line}\n`); } catch { /* a console that went away */ } } });
  }
  const sink: Sink = sinks.length === 1 ? sinks[0]! : { write: (line) => { for (const s of sinks) s.write(line); } };
  return createLogger({ sink, json: o.flag('json'), level: o.flag('verbose') ? 'debug' : 'info', tag });
}

export interface NetChoice { iface: Iface; group: string; port: number }

export function netOptions(o: Options): NetChoice {
  const group = o.str('group') ?? DEFAULT_GROUP;
  const first = Number(group.split('.')[0]);
  if (!/^\d+\.\d+\.\d+\.\d+$/.test(group) || first < 224 || first > 239) throw new UsageError(`--group ${group} is not an IPv4 multicast address (224.0.0.0 to 239.255.255.255)`);
  const port = o.num('port') ?? DEFAULT_PORT;
  if (!Number.isInteger(port) || port < 1 || port > 65532) throw new UsageError(`--port ${port}: the session needs this port and the next three`);
  return { iface: resolveIface(o.str('iface')), group, port };
}

/**
 * The MTU datagrams are sized for: --mtu, or else 1500 (the interface's own MTU where that is
 * smaller). Above the interface's MTU the kernel would fragment every datagram: one lost fragment
 * then loses the datagram, and fragments of the lost ones fill the receivers' reassembly memory
 * until it times out (30 s), dropping everything.
 */
export function mtuOption(o: Options, iface: Iface): number {
  const own = linkMtu(iface.name);
  const mtu = o.num('mtu');
  if (mtu === undefined) return Math.min(1500, own ?? 1500);
  if (own !== undefined && mtu > own) {
    throw new UsageError(`--mtu ${mtu} is above ${iface.name}'s MTU of ${own}: the kernel would fragment every datagram; raise the interface's MTU (ip link set ${iface.name} mtu ${mtu}) on every host, or leave --mtu out`);
  }
  return mtu;
}

/** Resolves on the first SIGINT/SIGTERM. */
export function onSignal(f: (signal: string) => void): void {
  const h = (s: string): void => { f(s); };
  process.once('SIGINT', h);
  process.once('SIGTERM', h);
}

/** --lans: a count of LANs, or a list of their networks; absent: learned from the clients. */
export function lanPolicy(o: Options): LanPolicy {
  const v = o.str('lans');
  if (v === undefined) return { kind: 'learn' };
  if (/^\d+$/.test(v)) {
    const count = Number(v);
    if (count < 1) throw new UsageError('--lans 0: a session has at least one LAN');
    return { kind: 'count', count };
  }
  const subnets = v.split(',').map((x) => x.trim());
  for (const net of subnets) if (!parseCidr(net)) throw new UsageError(`--lans: "${net}" is neither a count nor a network such as 10.2.0.0/24`);
  return { kind: 'subnets', subnets };
}

/** When a session starts: with N clients (--min-clients), or --wait seconds after the last join (10 without a rule). */
export function startRules(o: Options): { minClients: number; wait: number | undefined } {
  const minClients = o.num('min-clients') ?? 0;
  return { minClients, wait: o.num('wait') ?? (minClients > 0 ? undefined : 10) };
}
