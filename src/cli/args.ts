// Command-line parsing: pure (argv in, typed options or a UsageError out), driven by
// the table of commands below, which also prints the help.

export type OptType = 'string' | 'number' | 'boolean';

export interface OptSpec {
  type: OptType;
  help: string;
  arg?: string;
  choices?: readonly string[];
  /** One-letter form ("o" for -o). */
  short?: string;
}

export interface CommandSpec {
  summary: string;
  /** Positional arguments: name and whether more than one is taken. */
  positional?: { name: string; many: boolean; help: string };
  options: Record<string, OptSpec>;
}

export class UsageError extends Error {
  constructor(message: string) { super(message); this.name = 'UsageError'; }
}

const net: Record<string, OptSpec> = {
  iface: { type: 'string', arg: 'NAME|ADDRESS', help: 'network interface to use (default: the first one up that is not loopback)' },
  group: { type: 'string', arg: 'ADDRESS', help: 'multicast group (default 239.255.77.77)' },
  port: { type: 'number', arg: 'N', help: 'control port; the session uses this port and the next three (default 7700)' },
  json: { type: 'boolean', help: 'one JSON object per line instead of text' },
  verbose: { type: 'boolean', help: 'also log debug events (dropped datagrams and why)' },
  name: { type: 'string', arg: 'TEXT', help: 'name shown to the other side (default: the host name)' },
  plain: { type: 'boolean', help: 'one line per event even on a terminal (no screen)' },
  log: { type: 'string', arg: 'FILE', help: 'also append the event lines to FILE (a file, or a console such as /dev/ttyS0)' },
};

const serve: Record<string, OptSpec> = {
  'min-clients': { type: 'number', arg: 'N', help: 'start as soon as N clients have joined' },
  wait: { type: 'number', arg: 'SECONDS', help: 'start this long after the last client joined (default 10 when no other rule is given)' },
  protocol: { type: 'string', arg: 'MODE', choices: ['default', 'classic'], help: 'default, or classic: the MUST paper\'s MTP as written' },
  rate: { type: 'number', arg: 'MBIT', help: 'highest sending rate in Mbit/s (default: the link speed, or 1000)' },
  mtu: { type: 'number', arg: 'BYTES', help: 'path MTU the packets are sized for (default 1500, or the interface\'s MTU if smaller; 9000 for jumbo frames)' },
  ttl: { type: 'number', arg: 'N', help: 'multicast TTL (default 1: this LAN only); above 1 the session crosses multicast routers, and clients send their feedback with it too' },
  lans: { type: 'string', arg: 'N|NET,...', help: 'LANs behind multicast routers (a block needs one ACK from each): their number, or their networks (10.1.0.0/24,10.2.0.0/24); default: learned from the clients\' addresses' },
  'client-timeout': { type: 'number', arg: 'SECONDS', help: 'a client silent this long is counted lost (default 30)' },
  'max-behind': { type: 'number', arg: 'SECONDS', help: 'drop a PC still imaging this long after the first PC finished, saying why (default: none; a slow PC completes by repair)' },
  key: { type: 'string', arg: 'FILE', help: 'sign the session with this Ed25519 key (must keygen): clients that trust it write nothing else' },
  records: { type: 'string', arg: 'FILE', help: 'per-PC records (MAC, image, when, result), kept across restarts (default /var/lib/must/records.json as root)' },
  secret: { type: 'string', arg: 'FILE', help: 'seal (encrypt, AES-256-GCM) every payload with this shared secret (must keygen --secret); clients need the same file' },
  'hash-cache': { type: 'string', arg: 'DIR|off', help: 'keep the manifests of raw image files here, so an unchanged file is hashed once, not every session (default /var/cache/must/manifests as root; off: hash every time)' },
};

const pxe: Record<string, OptSpec> = {
  pxe: { type: 'boolean', help: 'also boot the lab: DHCP/TFTP (dnsmasq), HTTP, per-PC boot policy and records' },
  'dhcp-range': { type: 'string', arg: 'START,END[,MASK]', help: 'hand out addresses (an isolated network); default: ProxyDHCP beside the lab\'s DHCP server' },
  appliance: { type: 'string', arg: 'DIR', help: 'appliance to boot PCs with: out/appliance, or a mounted MUST CD/USB stick (default: next to this program)' },
  'http-port': { type: 'number', arg: 'N', help: 'HTTP port for iPXE scripts, kernel and initramfs (default 8080)' },
  unknown: { type: 'string', arg: 'WHAT', choices: ['image', 'local'], help: 'what a PC the master has no record of does: image (default) or local (boot its disk)' },
  disk: { type: 'string', arg: 'RULE', help: 'disk the PCs write: auto (default: the largest fixed disk), a /dev path, serial:..., model:...' },
  attended: { type: 'boolean', help: 'PCs ask on their own screen before writing (default: unattended, by the disk rule)' },
  'kernel-args': { type: 'string', arg: 'TEXT', help: 'kernel arguments for the PCs besides MUST\'s own (default: consoles on screen and serial, quiet)' },
};

const receive: Record<string, OptSpec> = {
  server: { type: 'string', arg: 'ADDRESS', help: 'follow only the master at this address' },
  yes: { type: 'boolean', help: 'do not ask before overwriting the target' },
  'simulate-loss': { type: 'number', arg: 'PERCENT', help: 'drop this share of incoming datagrams at random (testing and demos)' },
  secret: { type: 'string', arg: 'FILE', help: 'the shared secret of a sealed (encrypted) session' },
  trust: { type: 'string', arg: 'KEY|FILE', help: 'follow only a master that signs with this public key (text from must keygen, or its .pub file); without it a signed master is trusted on first use and an unsigned one is followed unauthenticated' },
};

export const COMMANDS: Record<string, CommandSpec> = {
  master: {
    summary: 'serve a disk image (raw file or block device) to every client on the network',
    positional: { name: 'IMAGE', many: false, help: 'the image (same as --image)' },
    options: { image: { type: 'string', arg: 'PATH', help: 'raw image file or block device to serve' }, ...serve, ...net, ...pxe },
  },
  client: {
    summary: 'receive the image a master serves and write it to a disk or file',
    options: {
      target: { type: 'string', arg: 'PATH', help: 'block device or file to write' },
      disk: { type: 'string', arg: 'RULE', help: 'choose the disk by a rule once the image size is known: auto (the largest fixed disk that fits), a /dev path, serial:..., model:...; without --target or --disk a terminal shows the disks to pick from' },
      after: { type: 'string', arg: 'ACTION', choices: ['reboot', 'poweroff'], help: 'once verified, count down to ACTION (a key cancels: exit status 3); the appliance then does it' },
      countdown: { type: 'number', arg: 'SECONDS', help: 'length of the --after countdown (default 10)' },
      ...receive, ...net,
    },
  },
  relay: {
    summary: 'pass a session on across LANs that routers do not carry multicast to (HRM): from its upstream over TCP, to relays below over TCP and to its own LAN by multicast',
    options: {
      upstream: { type: 'string', arg: 'HOST[:PORT]', help: 'the master or the relay above this one (its port: the session\'s control port, default 7700)' },
      buffer: { type: 'number', arg: 'MIB', help: 'ring buffer between upstream and the links below (default 64): the slowest link below holds it, and when it is full upstream waits' },
      transit: { type: 'boolean', help: 'serve relays below only, no session on this LAN' },
      'min-clients': serve['min-clients']!, wait: serve.wait!, rate: serve.rate!, mtu: serve.mtu!, 'client-timeout': serve['client-timeout']!,
      'max-behind': serve['max-behind']!, key: serve.key!, secret: { type: 'string', arg: 'FILE', help: 'the shared secret of a sealed session (needed to serve it on this LAN)' },
      ...net,
    },
  },
  'send-files': {
    summary: 'serve files and directories (not a disk) to every receiver',
    positional: { name: 'PATH', many: true, help: 'files and directories to send' },
    options: { ...serve, ...net },
  },
  'receive-files': {
    summary: 'receive the files a sender serves into a directory',
    options: { dir: { type: 'string', arg: 'DIR', help: 'directory to write into (created if missing)' }, ...receive, ...net },
  },
  demo: {
    summary: 'image a demo lab on this machine: one master, several clients, a generated disk',
    options: {
      clients: { type: 'number', arg: 'N', help: 'number of clients (default 3)' },
      size: { type: 'number', arg: 'MIB', help: 'size of the sample disk (default 64)' },
      loss: { type: 'number', arg: 'PERCENT', help: 'random loss at each client, repaired at the end (default 2)' },
      protocol: serve.protocol!,
      dir: { type: 'string', arg: 'DIR', help: 'where to put the sample disk and the clients\' disks (default: a temporary directory, removed after)' },
      port: net.port!,
      json: net.json!,
    },
  },
  simulate: {
    summary: 'run one lab in the simulator (the real master and client machines on a simulated network); the sweep is bench/simulate.ts',
    options: {
      clients: { type: 'number', arg: 'N', help: 'clients (default 10)' },
      size: { type: 'number', arg: 'MIB', help: 'image size (default 16)' },
      rate: { type: 'number', arg: 'MBIT', help: 'every link\'s rate in Mbit/s, 0 for no limit (default 1000)' },
      delay: { type: 'number', arg: 'MS', help: 'one-way delay of each link (default 0.05)' },
      loss: { type: 'number', arg: 'PERCENT', help: 'loss at each client (default 1)' },
      burst: { type: 'number', arg: 'N', help: 'mean length of a loss burst in datagrams, Gilbert-Elliott (default 1: independent)' },
      'master-loss': { type: 'number', arg: 'PERCENT', help: 'loss of the datagrams to the master (default 0)' },
      lans: { type: 'number', arg: 'N', help: 'LANs the clients are spread over, all but the master\'s behind a router (default 1)' },
      'lan-delay': { type: 'number', arg: 'MS', help: 'one-way delay through the router (default 1)' },
      'lan-rate': { type: 'number', arg: 'MBIT', help: 'the router\'s rate into each LAN (default: the link rate)' },
      slow: { type: 'number', arg: 'MBIT', help: 'add one client on a link this slow' },
      protocol: serve.protocol!,
      feedback: { type: 'string', arg: 'POLICY', choices: ['mtp', 'ack-all', 'nack'], help: 'mtp (default), ack-all (every client ACKs every block, as udpcast) or nack (no ACK, as NORM)' },
      pace: { type: 'number', arg: 'MBIT', help: 'the master\'s pacing rate (default: the link rate)' },
      mtu: { type: 'number', arg: 'BYTES', help: 'MTU the packets are sized for (default 1500)' },
      t0: { type: 'number', arg: 'MS', help: 'T0, the floor and start of the time-out (default: the mode\'s)' },
      alpha: { type: 'number', arg: 'X', help: 'time-out growth factor, above 1' },
      tmax: { type: 'number', arg: 'MS', help: 'time-out ceiling' },
      artp: { type: 'number', arg: 'MS', help: 'ARTP, the longest random wait before an ACK' },
      'artp-shape': { type: 'string', arg: 'SHAPE', choices: ['uniform', 'exp'], help: 'ARTP distribution: uniform (the paper) or exp (most wait long)' },
      block: { type: 'number', arg: 'N', help: 'packets per block (one ACK each)' },
      window: { type: 'number', arg: 'N', help: 'blocks in flight' },
      payload: { type: 'number', arg: 'BYTES', help: 'image bytes per packet' },
      'repair-wait': { type: 'number', arg: 'MS', help: 'longest random wait before a repair request' },
      'pass-requests': { type: 'number', arg: 'MS', help: 'default mode: ms between a client\'s requests during the pass, 0 for none (repairs only after the pass, as the paper)' },
      'group-repairs': { type: 'boolean', help: 'default mode: every repair to the group, also one that only one client asked for' },
      'plain-repairs': { type: 'boolean', help: 'default mode: no coded repairs, each repair carries one packet' },
      seed: { type: 'number', arg: 'N', help: 'seed of every random choice (default 1): the same seed, the same run' },
      json: net.json!,
    },
  },
  records: {
    summary: 'print a master\'s per-PC records (MAC, IP, host name, image, start, end, result, digest)',
    positional: { name: 'FILE', many: false, help: 'records file (default /var/lib/must/records.json as root)' },
    options: { csv: { type: 'boolean', help: 'CSV instead of JSON' } },
  },
  keygen: {
    summary: 'make an Ed25519 key pair for signed sessions: FILE (private, for the master) and FILE.pub (for clients)',
    options: {
      output: { type: 'string', arg: 'FILE', short: 'o', help: 'private key file to write (FILE.pub beside it)' },
      secret: { type: 'boolean', help: 'make a shared secret for sealed (encrypted) sessions instead' },
    },
  },
  capture: {
    summary: 'capture a disk, a partition or a raw image file into a MUST image (used blocks only, zstd chunks)',
    positional: { name: 'SOURCE', many: false, help: 'block device, partition or raw image file' },
    options: {
      output: { type: 'string', arg: 'IMAGE', short: 'o', help: 'image file to write (IMAGE.partial until it is complete)' },
      level: { type: 'number', arg: 'N', help: 'zstd level, 1 to 19 (default 3)' },
      'chunk-size': { type: 'number', arg: 'MIB', help: 'raw bytes per chunk (default 4)' },
      force: { type: 'boolean', help: 'replace IMAGE if it exists' },
      json: net.json!, verbose: net.verbose!,
    },
  },
  restore: {
    summary: 'write a MUST image to a disk, partition or file on this machine (no network)',
    positional: { name: 'IMAGE TARGET', many: true, help: 'the image, then the device or file to write' },
    options: { yes: receive.yes!, json: net.json! },
  },
  verify: {
    summary: 'check that a MUST image is intact, and optionally that a device holds it',
    positional: { name: 'IMAGE [DEVICE]', many: true, help: 'the image, and a device or file to compare' },
    options: { json: net.json! },
  },
  inspect: {
    summary: 'show what a MUST image holds, per partition: method, data, zeros, stored bytes, ratio',
    positional: { name: 'IMAGE', many: false, help: 'the image' },
    options: {},
  },
  menu: { summary: 'the appliance\'s menu: image this PC, serve an image, shell', options: {} },
  init: { summary: 'the appliance\'s boot steps (run by /init in the initramfs)', options: {} },
  help: { summary: 'show this help, or a command\'s', positional: { name: 'COMMAND', many: false, help: 'command' }, options: {} },
  version: { summary: 'print the version', options: {} },
};

export interface Parsed {
  command: string;
  positionals: string[];
  values: Map<string, string | number | boolean>;
}

export function parse(argv: readonly string[]): Parsed {
  const [command, ...rest] = argv;
  if (command === undefined || command === '--help' || command === '-h') return { command: 'help', positionals: [], values: new Map() };
  if (command === '--version') return { command: 'version', positionals: [], values: new Map() };
  const spec = COMMANDS[command];
  if (!spec) throw new UsageError(`unknown command "${command}" (commands: ${Object.keys(COMMANDS).join(', ')})`);
  const values = new Map<string, string | number | boolean>();
  const positionals: string[] = [];
  for (let i = 0; i < rest.length; i++) {
    const a = rest[i]!;
    if (a === '--help' || a === '-h') return { command: 'help', positionals: [command], values: new Map() };
    const short = /^-([a-z])$/.exec(a)?.[1];
    if (!a.startsWith('--') && !short) { positionals.push(a); continue; }
    const eq = short ? -1 : a.indexOf('=');
    const key = short ? Object.entries(spec.options).find(([, o]) => o.short === short)?.[0] ?? `-${short}` : a.slice(2, eq < 0 ? undefined : eq);
    const opt = spec.options[key];
    if (!opt) throw new UsageError(`${command}: unknown option --${key}`);
    if (opt.type === 'boolean') {
      if (eq >= 0) throw new UsageError(`${command}: --${key} takes no value`);
      values.set(key, true);
      continue;
    }
    const raw = eq >= 0 ? a.slice(eq + 1) : rest[++i];
    if (raw === undefined) throw new UsageError(`${command}: --${key} needs a value (${opt.arg ?? opt.type})`);
    if (opt.type === 'number') {
      const n = Number(raw);
      if (raw.trim() === '' || !Number.isFinite(n) || n < 0) throw new UsageError(`${command}: --${key} wants a non-negative number, got "${raw}"`);
      values.set(key, n);
    } else {
      if (opt.choices && !opt.choices.includes(raw)) throw new UsageError(`${command}: --${key} is one of ${opt.choices.join(', ')}, got "${raw}"`);
      values.set(key, raw);
    }
  }
  if (positionals.length > 0 && !spec.positional) throw new UsageError(`${command}: unexpected argument "${positionals[0]}"`);
  if (spec.positional && !spec.positional.many && positionals.length > 1) throw new UsageError(`${command}: one ${spec.positional.name} only`);
  return { command, positionals, values };
}

/** Typed access to parsed values. */
export class Options {
  private readonly p: Parsed;
  constructor(p: Parsed) { this.p = p; }
  get positionals(): string[] { return this.p.positionals; }
  str(k: string): string | undefined { const v = this.p.values.get(k); return typeof v === 'string' ? v : undefined; }
  num(k: string): number | undefined { const v = this.p.values.get(k); return typeof v === 'number' ? v : undefined; }
  flag(k: string): boolean { return this.p.values.get(k) === true; }
  need(k: string, what: string): string {
    const v = this.str(k);
    if (v === undefined) throw new UsageError(`${this.p.command}: ${what} is required (--${k})`);
    return v;
  }
}

export function help(command?: string): string {
  const spec = command ? COMMANDS[command] : undefined;
  if (!spec) {
    const w = Math.max(...Object.keys(COMMANDS).map((c) => c.length));
    return ['must: multicast disk imaging for labs', '', 'usage: must COMMAND [options]   (must help COMMAND for its options)', '',
      ...Object.entries(COMMANDS).map(([c, s]) => `  ${c.padEnd(w)}  ${s.summary}`)].join('\n');
  }
  const pos = spec.positional ? ` ${spec.positional.name}${spec.positional.many ? '...' : ''}` : '';
  const rows = Object.entries(spec.options).map(([k, o]) => [`${o.short ? `-${o.short}, ` : ''}--${k}${o.arg ? ` ${o.arg}` : ''}`, o.help] as const);
  const w = Math.max(0, ...rows.map((r) => r[0].length));
  return [`usage: must ${command} [options]${pos}`, '', spec.summary, '', ...rows.map(([a, h]) => `  ${a.padEnd(w)}  ${h}`)].join('\n');
}
