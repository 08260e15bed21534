// `must init`: the appliance's boot, run by /init (PID 1). Runs the steps of init.ts on
// the real system, reads the kernel command line, starts MUST in the mode it names with
// its output on every console, and when MUST is done reboots, powers off or opens a shell.

import { spawn } from 'node:child_process';
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { closeSync, openSync, writeSync } from 'node:fs';
import { type BootSettings, CmdlineError, parseCmdline } from '../cli/kernel.ts';
import { selfCommand } from '../cli/self.ts';
import { CANCELLED } from '../commands/common.ts';
import { type Prepared, type Sys, initSteps, modeCommand, parseImageSpec, runSteps } from './init.ts';
import { prepareApplianceDir, prepareImage } from './sources.ts';

/** The consoles the kernel writes to (console=tty0 console=ttyS0 gives both). */
async function consoleNames(): Promise<string[]> {
  return (await readFile('/sys/class/tty/console/active', 'utf8').catch(() => 'console')).trim().split(/\s+/);
}

function openConsoles(names: string[]): number[] {
  const fds: number[] = [];
  for (const n of names) { try { fds.push(openSync(`/dev/${n}`, 'w')); } catch { /* not there */ } }
  if (fds.length === 0) fds.push(1);
  return fds;
}

/**
 * A client or master with a screen: on the PC's own display (the first VT) MUST draws its screen
 * and takes the keyboard; a serial console gets the same events as lines (--log).
 */
function runOnVt(cmd: string, args: string[], serial: string | undefined, say: (line: string) => void): Promise<number> {
  return new Promise((resolve) => {
    const vt = openSync('/dev/tty1', 'r+');
    const c = spawn(cmd, [...args, ...(serial ? ['--log', `/dev/${serial}`] : [])], { stdio: [vt, vt, vt], env: { ...process.env, TERM: 'linux' } });
    c.on('error', (e) => { say(`cannot start ${cmd}: ${e.message}`); resolve(127); });
    c.on('exit', (code) => { closeSync(vt); resolve(code ?? 128); });
  });
}

function runCapture(cmd: string, args: string[]): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    const c = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    c.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    c.stderr.on('data', (d: Buffer) => { out += d.toString(); });
    c.on('error', (e) => resolve({ code: 127, out: e.message }));
    c.on('exit', (code) => resolve({ code: code ?? 128, out }));
  });
}

function runOnConsole(cmd: string, args: string[], write: (text: string) => void, say: (line: string) => void): Promise<number> {
  return new Promise((resolve) => {
    // stdin stays the console (questions are answered there); output goes to every console
    // as it comes, so a prompt without a newline shows too.
    const c = spawn(cmd, args, { stdio: ['inherit', 'pipe', 'pipe'] });
    for (const s of [c.stdout, c.stderr]) s.on('data', (d: Buffer) => write(d.toString()));
    c.on('error', (e) => { say(`cannot start ${cmd}: ${e.message}`); resolve(127); });
    c.on('exit', (code) => resolve(code ?? 128));
  });
}

const shell = (): Promise<number> => new Promise((resolve) => {
  const c = spawn('setsid', ['cttyhack', 'sh'], { stdio: 'inherit' });
  c.on('exit', () => resolve(0));
  c.on('error', () => resolve(127));
});

export async function initMain(): Promise<number> {
  const names = await consoleNames();
  const fds = openConsoles(names);
  const hasVt = names.some((n) => /^tty\d+$/.test(n));
  const serial = names.find((n) => /^tty(S|AMA|USB)\d+$/.test(n));
  // Serial consoles want CR LF; a VT does not mind.
  const write = (text: string): void => { for (const fd of fds) { try { writeSync(fd, text.replace(/\r?\n/g, '\r\n')); } catch { /* console gone */ } } };
  const say = (line: string): void => write(`${line}\n`);
  const sys: Sys = {
    run: runCapture,
    readFile: (p) => readFile(p, 'utf8'),
    writeFile: (p, t) => writeFile(p, t),
    mkdir: async (p) => { await mkdir(p, { recursive: true }); },
    list: (d) => readdir(d),
    sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
    log: (l) => say(`MUST: ${l}`),
  };
  const openShell = async (why: string): Promise<void> => {
    say(`${why}\r\nA shell follows; 'exit' tries again.`);
    await shell();
  };
  say('MUST: starting (kernel ' + (await readFile('/proc/sys/kernel/osrelease', 'utf8').catch(() => '?')).trim() + ')');
  await runSteps(initSteps(await readFile('/proc/cmdline', 'utf8').catch(() => '')), sys, openShell);

  let settings: BootSettings;
  for (;;) {
    try {
      settings = parseCmdline(await readFile('/proc/cmdline', 'utf8'));
      break;
    } catch (e) {
      if (!(e instanceof CmdlineError)) throw e;
      await openShell(`MUST: the kernel command line is wrong: ${e.message}`);
    }
  }
  for (;;) {
    const prepared: Prepared = {};
    if (settings.mode === 'master' && settings.image) {
      const spec = parseImageSpec(settings.image);
      if ('error' in spec) { await openShell(`MUST: ${spec.error}`); continue; }
      try {
        prepared.image = await prepareImage(spec, sys);
        if (settings.pxe) prepared.appliance = await prepareApplianceDir(sys);
      } catch (e) {
        await openShell(`MUST: master mode: ${(e as Error).message}`);
        continue;
      }
    }
    const launch = modeCommand(settings, prepared);
    if ('error' in launch) { await openShell(`MUST: cannot start ${settings.mode} mode: ${launch.error}`); continue; }
    if (launch.shell) { await shell(); continue; }
    const self = selfCommand();
    const screen = hasVt && (settings.mode === 'client' || settings.mode === 'master');
    say(`MUST: must ${launch.argv.join(' ')}${screen ? ` (screen on tty1${serial ? `, events on ${serial}` : ''})` : ''}`);
    const argv = [...self.args, ...launch.argv];
    const code = screen ? await runOnVt(self.cmd, argv, serial, say) : await runOnConsole(self.cmd, argv, write, say);
    if (code === CANCELLED && settings.mode === 'client') { await openShell(`MUST: verified; the operator cancelled the ${settings.after}.`); continue; }
    if (code !== 0) { await openShell(`MUST: ${settings.mode} ended with status ${code}; nothing was rebooted.`); continue; }
    if (settings.after === 'shell') { say(`MUST: ${settings.mode} finished; a shell follows`); await shell(); continue; }
    // The client counted down already (a key would have cancelled); the master gives 5 s.
    say(`MUST: ${settings.mode} finished; ${settings.after}${settings.mode === 'client' ? '' : ' in 5 s'}`);
    if (settings.mode !== 'client') await new Promise((r) => setTimeout(r, 5000));
    await runCapture('sync', []);
    await runCapture(settings.after, ['-f']);
    return 0;
  }
}
