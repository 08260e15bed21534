// `must relay`: a node of the relay tree (src/relay/relay.ts), with a master's LAN options.

import { hostname } from 'node:os';
import { type Options, UsageError } from '../cli/args.ts';
import { loadSigner } from '../protocol/auth.ts';
import { loadSecret } from '../protocol/secret.ts';
import { PageCache } from '../disk/source.ts';
import { runRelay } from '../relay/relay.ts';
import { DEFAULT_PORT, makeLogger, netOptions, onSignal, startRules, mtuOption } from './common.ts';

/** "host", "host:port" (the port defaults to the session's control port). */
export function parseUpstream(text: string, port: number): { host: string; port: number } {
  const m = /^([^:\s]+)(?::(\d+))?$/.exec(text.trim());
  if (!m) throw new UsageError(`--upstream ${text}: want HOST or HOST:PORT`);
  const p = m[2] === undefined ? port : Number(m[2]);
  if (p < 1 || p > 65535) throw new UsageError(`--upstream ${text}: port ${p} out of range`);
  return { host: m[1]!, port: p };
}

export async function relay(o: Options): Promise<number> {
  const upstream = o.str('upstream');
  if (!upstream) throw new UsageError('relay: name the master or the relay above (--upstream HOST[:PORT])');
  const n = netOptions(o);
  const mtu = mtuOption(o, n.iface);
  const buffer = (o.num('buffer') ?? 64) * (1 << 20);
  // The LAN's pass holds the page it reads while the next one fills: two pages at the very least.
  if (buffer < 4 * PageCache.PAGE) throw new UsageError(`--buffer: at least ${(4 * PageCache.PAGE) >> 20} MiB (the LAN's pass reads the ring ${PageCache.PAGE >> 20} MiB at a time)`);
  const name = o.str('name') ?? hostname();
  const log = makeLogger(o, `relay/${name}`);
  const key = o.str('key'), secret = o.str('secret');
  let stop: ((reason: string) => void) | undefined;
  onSignal((sig) => stop?.(sig));
  const result = await runRelay({
    upstream: parseUpstream(upstream, o.num('port') ?? DEFAULT_PORT), name, ...n, buffer, transit: o.flag('transit'), log,
    linkTimeout: (o.num('client-timeout') ?? 30) * 1000,
    lan: {
      protocol: 'default', rate: o.num('rate'), mtu, ttl: 1, ...startRules(o),
      clientTimeout: o.num('client-timeout') ?? 30, maxBehind: o.num('max-behind') ?? 0,
      signer: key ? loadSigner(key) : undefined, secret: secret ? loadSecret(secret) : undefined,
    },
    onReady: (c) => { stop = (why) => c.abort(why); },
  }).catch((e: Error) => {
    // Refused by upstream, or a session it cannot serve: one line saying why.
    log.error('relay', { error: e.message });
    return undefined;
  });
  return result?.ok ? 0 : 1;
}
