// `must menu`: what a machine booted from the USB stick or CD offers when the kernel line
// names no mode. A numbered text menu on the console; each choice runs the same command a
// person would type (client, capture, restore, master), after asking which disk and where.

import { spawn } from 'node:child_process';
import { mkdir, readdir } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { Interface } from 'node:readline/promises';
import { createInterface } from 'node:readline/promises';
import { selfCommand } from '../cli/self.ts';
import { type Disk, type Volume, listDisks, listVolumes, mountType, unusable } from '../disk/inventory.ts';
import { bytes } from '../log/logger.ts';

const exec = (cmd: string, args: string[]): Promise<number> => new Promise((resolve) => {
  const c = spawn(cmd, args, { stdio: 'inherit' });
  c.on('error', (e) => { console.log(`cannot start ${cmd}: ${e.message}`); resolve(127); });
  c.on('exit', (code) => resolve(code ?? 128));
});
const self = (args: string[]): Promise<number> => { const s = selfCommand(); return exec(s.cmd, [...s.args, ...args]); };

const diskLine = (d: Disk): string => `${d.path}  ${bytes(d.size)}  ${d.model || 'unknown model'}  ${d.transport}${d.removable ? ', removable' : ''}`;
const volumeLine = (v: Volume): string => `${v.path}  ${bytes(v.size)}  ${v.fs}${v.label ? `  "${v.label}"` : ''}`;

/**
 * A question on the console. Between questions the console is not read: the children (client,
 * capture, restore, a shell) read it themselves, and with the console (a TTY) being read the
 * appliance saw a finished child process (blkid) only at the next key press.
 */
async function ask(rl: Interface, question: string): Promise<string> {
  const answer = (await rl.question(question)).trim();
  rl.pause();
  return answer;
}

/** Where the menu mounts the filesystem an image file is read from or written to. */
const MOUNT = '/mnt/must-images';

export async function menu(): Promise<number> {
  const rl = createInterface({ input: process.stdin, output: process.stdout });
  try {
    for (;;) {
      console.log('\nMUST: Multicast Synchronous Transfer\n');
      console.log('  1  Image this PC from the network (find a master, write its image to a disk here)');
      console.log('  2  Capture a disk of this PC to an image file (on a USB drive or another disk)');
      console.log('  3  Restore an image file (from a USB drive or another disk) to a disk here');
      console.log('  4  Serve an image to the network (master mode)');
      console.log('  5  Shell');
      console.log('  6  Reboot');
      const choice = await ask(rl, '\nChoice: ');
      if (choice === '1') {
        const d = await pickDisk(rl, 'Disk to overwrite (number): ');
        // The client names the disk and asks once more before writing.
        if (d) console.log(`client ended with status ${await self(['client', '--target', d.path])}`);
      } else if (choice === '2') {
        await capture(rl);
      } else if (choice === '3') {
        await restore(rl);
      } else if (choice === '4') {
        const disks = await listDisks();
        disks.forEach((d) => console.log(`     ${diskLine(d)}`));
        const path = await ask(rl, 'Image to serve (a disk, partition or image file path): ');
        if (path) console.log(`master ended with status ${await self(['master', '--image', path])}`);
      } else if (choice === '5') {
        await exec('sh', ['-i']);
      } else if (choice === '6') {
        return 0;
      }
    }
  } finally {
    rl.close();
  }
}

/** Show the disks and return the one picked, if it can be written. */
async function pickDisk(rl: Interface, question: string, except?: string): Promise<Disk | undefined> {
  const disks = (await listDisks()).filter((d) => d.path !== except);
  if (disks.length === 0) { console.log('  (no disks found)'); return undefined; }
  disks.forEach((d, i) => console.log(`  ${i + 1}  ${diskLine(d)}${unusable(d) ? `  (not usable: ${unusable(d)})` : ''}`));
  const d = disks[Number(await ask(rl, question)) - 1];
  if (!d || unusable(d)) { console.log('No such usable disk.'); return undefined; }
  return d;
}

async function pickVolume(rl: Interface, question: string, except?: string): Promise<Volume | undefined> {
  const volumes = (await listVolumes((await listDisks()).filter((d) => !d.bootMedium))).filter((v) => v.disk !== except);
  if (volumes.length === 0) { console.log(`  (no FAT, exFAT or ext4 filesystem found${except ? ` outside ${except}` : ''})`); return undefined; }
  volumes.forEach((v, i) => console.log(`  ${i + 1}  ${volumeLine(v)}`));
  const v = volumes[Number(await ask(rl, question)) - 1];
  if (!v) console.log('No such filesystem.');
  return v;
}

/** Mount a volume at MOUNT for the length of f, then unmount it (and say so if that fails). */
async function mounted(v: Volume, readOnly: boolean, f: () => Promise<void>): Promise<void> {
  await mkdir(MOUNT, { recursive: true });
  // Filesystem drivers are not loaded by modalias: load the one (and FAT's code pages) first.
  await exec('modprobe', ['-q', '-a', mountType(v.fs)!, ...(v.fs === 'vfat' ? ['nls_cp437', 'nls_utf8'] : [])]);
  // FAT: the kernel's default character set (ascii on Debian) has no driver here; UTF-8 does.
  const options = [...(readOnly ? ['ro'] : []), ...(v.fs === 'vfat' ? ['iocharset=utf8'] : [])];
  const code = await exec('mount', ['-t', mountType(v.fs)!, ...(options.length ? ['-o', options.join(',')] : []), v.path, MOUNT]);
  if (code !== 0) { console.log(`Cannot mount ${v.path} (${v.fs}): mount ended with status ${code}.`); return; }
  try {
    await f();
  } finally {
    await exec('sync', []);
    if (await exec('umount', [MOUNT]) !== 0) console.log(`${v.path} is still mounted on ${MOUNT}: do not unplug it yet.`);
  }
}

async function capture(rl: Interface): Promise<void> {
  const disks = (await listDisks()).filter((d) => !d.bootMedium);
  if (disks.length === 0) { console.log('  (no disks found)'); return; }
  disks.forEach((d, i) => console.log(`  ${i + 1}  ${diskLine(d)}`));
  const source = disks[Number(await ask(rl, 'Disk to capture (number): ')) - 1];
  if (!source) { console.log('No such disk.'); return; }
  const v = await pickVolume(rl, 'Filesystem to write the image file to (number): ', source.path);
  if (!v) return;
  const stamp = new Date().toISOString().slice(0, 16).replace(/[-:]/g, '').replace('T', '-');
  // A name any filesystem takes (FAT refuses : * ? " < > |).
  const name = `${hostname().replace(/[^A-Za-z0-9._-]+/g, '_') || 'pc'}-${source.name}-${stamp}.must`;
  await mounted(v, false, async () => {
    const code = await self(['capture', source.path, '-o', join(MOUNT, name)]);
    console.log(code === 0 ? `Captured ${source.path} to ${name} on ${v.path}.` : `capture ended with status ${code}`);
  });
}

async function restore(rl: Interface): Promise<void> {
  const v = await pickVolume(rl, 'Filesystem holding the image file (number): ');
  if (!v) return;
  await mounted(v, true, async () => {
    const files = (await readdir(MOUNT)).filter((f) => f.endsWith('.must')).sort();
    if (files.length === 0) { console.log(`  (no .must image files on ${v.path})`); return; }
    files.forEach((f, i) => console.log(`  ${i + 1}  ${f}`));
    const file = files[Number(await ask(rl, 'Image file (number): ')) - 1];
    if (!file) { console.log('No such file.'); return; }
    const target = await pickDisk(rl, 'Disk to overwrite (number): ', v.disk);
    if (!target) return;
    // restore names the disk and asks before writing.
    const code = await self(['restore', join(MOUNT, file), target.path]);
    console.log(code === 0 ? `Restored ${file} to ${target.path}.` : `restore ended with status ${code}`);
  });
}
