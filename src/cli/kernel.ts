// The kernel command line as MUST reads it: pure parse(text) of /proc/cmdline into
// the appliance's settings; the file is read elsewhere (src/boot/init.ts).

export type BootMode = 'client' | 'master' | 'relay' | 'shell' | 'menu';
export type AfterAction = 'reboot' | 'poweroff' | 'shell';

export interface BootSettings {
  mode: BootMode;
  server: string | undefined;
  group: string | undefined;
  port: number | undefined;
  /** Disk rule: "auto", a /dev path, "serial:XYZ" or "model:TEXT" (src/disk/inventory.ts). */
  disk: string | undefined;
  /** Public key (or fingerprint) that signs the sessions to trust. */
  key: string | undefined;
  /** Unattended: no question is asked; the disk rule must be explicit. */
  auto: boolean;
  after: AfterAction;
  /** Master mode: where the image is (a /dev path, DEVICE:/path, LABEL=NAME:/path, or an http:// URL). */
  image: string | undefined;
  /** Master mode: also boot the lab ("proxy", or "range:START,END"). */
  pxe: string | undefined;
  iface: string | undefined;
  /** Everything else the kernel line carried, for the record. */
  other: Map<string, string>;
}

export class CmdlineError extends Error {
  constructor(message: string) { super(message); this.name = 'CmdlineError'; }
}

/** Split like the kernel does: spaces separate, double quotes group. */
export function tokenize(text: string): string[] {
  const out: string[] = [];
  let cur = '', quoted = false, any = false;
  for (const ch of text) {
    if (ch === '"') { quoted = !quoted; any = true; continue; }
    if (!quoted && /\s/.test(ch)) { if (any) out.push(cur); cur = ''; any = false; continue; }
    cur += ch;
    any = true;
  }
  if (any) out.push(cur);
  return out;
}

const MODES: readonly BootMode[] = ['client', 'master', 'relay', 'shell', 'menu'];
const AFTERS: readonly AfterAction[] = ['reboot', 'poweroff', 'shell'];

export function parseCmdline(text: string): BootSettings {
  const kv = new Map<string, string>();
  for (const t of tokenize(text)) {
    const eq = t.indexOf('=');
    kv.set(eq < 0 ? t : t.slice(0, eq), eq < 0 ? '' : t.slice(eq + 1));
  }
  const take = (k: string): string | undefined => { const v = kv.get(k); kv.delete(k); return v; };
  const mode = take('must.mode') ?? 'menu';
  if (!MODES.includes(mode as BootMode)) throw new CmdlineError(`must.mode=${mode}: expected one of ${MODES.join(', ')}`);
  const after = take('must.after') ?? 'reboot';
  if (!AFTERS.includes(after as AfterAction)) throw new CmdlineError(`must.after=${after}: expected one of ${AFTERS.join(', ')}`);
  const portText = take('must.port');
  const port = portText === undefined ? undefined : Number(portText);
  if (port !== undefined && (!Number.isInteger(port) || port < 1 || port > 65532)) throw new CmdlineError(`must.port=${portText} is not a port`);
  const autoText = take('must.auto');
  const auto = autoText !== undefined && autoText !== '0' && autoText !== 'no' && autoText !== 'false';
  const settings: BootSettings = {
    mode: mode as BootMode, after: after as AfterAction, port, auto,
    server: take('must.server') || undefined, group: take('must.group') || undefined, disk: take('must.disk') || undefined,
    key: take('must.key') || undefined, image: take('must.image') || undefined, iface: take('must.iface') || undefined,
    pxe: take('must.pxe') || undefined,
    other: kv,
  };
  for (const k of kv.keys()) if (k.startsWith('must.')) throw new CmdlineError(`unknown setting ${k} on the kernel command line`);
  if (settings.pxe && settings.pxe !== 'proxy' && !/^range:[\d.]+,[\d.]+$/.test(settings.pxe))
    throw new CmdlineError(`must.pxe=${settings.pxe}: expected proxy or range:START,END`);
  if (settings.mode === 'client' && settings.auto && !settings.disk)
    throw new CmdlineError('must.auto without must.disk: an unattended client needs an explicit disk rule (must.disk=auto, a path, serial:..., model:...)');
  return settings;
}
