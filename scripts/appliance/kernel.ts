// The pinned Debian kernel: downloaded as a .deb with apt-get (no install on the build
// host), unpacked into the build cache, modules indexed with depmod.

import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

export interface KernelPin { package: string; version: string; release: string }
export interface Kernel { vmlinuz: string; root: string; release: string; deb: string }

const run = (cmd: string, args: string[], cwd?: string): string =>
  execFileSync(cmd, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

export function fetchKernel(pin: KernelPin, cache: string, log: (s: string) => void): Kernel {
  mkdirSync(cache, { recursive: true });
  const debName = (f: string): boolean => f.startsWith(`${pin.package}_`) && f.endsWith('.deb') && f.includes(pin.version.replace(':', '%3a'));
  let deb = readdirSync(cache).find(debName);
  if (!deb) {
    log(`downloading ${pin.package} ${pin.version} from Debian`);
    const download = (): void => { run('apt-get', ['download', `${pin.package}=${pin.version}`], cache); };
    try {
      download();
    } catch {
      // A fresh machine may have no package lists yet.
      run('apt-get', ['update', '-qq']);
      try {
        download();
      } catch (e) {
        const have = (() => { try { return run('apt-cache', ['madison', 'linux-image-amd64']).trim(); } catch { return '?'; } })();
        throw new Error(`cannot download the pinned kernel ${pin.package}=${pin.version} (${(e as Error).message.split('\n')[0]}). ` +
          `Debian now offers:\n${have}\nPin one of these in image/appliance.json.`);
      }
    }
    deb = readdirSync(cache).find(debName);
    if (!deb) throw new Error(`apt-get download left no ${pin.package} .deb in ${cache}`);
  }
  const root = join(cache, `kernel-${pin.version}`);
  if (!existsSync(join(root, 'lib/modules', pin.release, 'modules.dep'))) {
    log(`unpacking ${deb}`);
    run('dpkg-deb', ['-x', join(cache, deb), root]);
    run('depmod', ['-b', root, pin.release]);
  }
  const vmlinuz = join(root, 'boot', `vmlinuz-${pin.release}`);
  if (!existsSync(vmlinuz)) throw new Error(`${deb} holds no boot/vmlinuz-${pin.release}: is the release in image/appliance.json right?`);
  return { vmlinuz, root, release: pin.release, deb: join(cache, deb) };
}
