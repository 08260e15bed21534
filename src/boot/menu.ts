// `must menu`: what a machine booted from the USB stick or CD offers when the kernel line
// names no mode. A numbered text menu on the console; each choice runs the same command a
// person would type.

import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline/promises';
import { selfCommand } from '../cli/self.ts';
import { type Disk, listDisks, unusable } from '../disk/inventory.ts';
import { bytes } from '../log/logger.ts';

const run = (args: string[]): Promise<number> => new Promise((resolve) => {
  const self = selfCommand();
  const c = spawn(self.cmd, [...self.args, ...args], { stdio: 'inherit' });
  c.on('exit', (code) => resolve(code ?? 128));
});

const diskLine = (d: Disk): string => `${d.path}  ${bytes(d.size)}  ${d.model || 'unknown model'}  ${d.transport}${d.removable ? ', removable' : ''}`;

export async function menu(): Promise<number> {
  const rl = createInterface({ input: process.stdin, output: process.stdout });
  try {
    for (;;) {
      console.log('\nMUST: Multicast Synchronous Transfer\n');
      console.log('  1  Image this PC from the network (find a master, write its image to a disk here)');
      console.log('  2  Serve an image to the network (master mode)');
      console.log('  3  Shell');
      console.log('  4  Reboot');
      const choice = (await rl.question('\nChoice: ')).trim();
      if (choice === '1' || choice === '2') {
        const disks = await listDisks();
        if (disks.length === 0) console.log('  (no disks found)');
        disks.forEach((d, i) => console.log(`  ${i + 1}  ${diskLine(d)}${unusable(d) ? `  (not usable: ${unusable(d)})` : ''}`));
        if (choice === '1') {
          const n = Number((await rl.question('Disk to overwrite (number): ')).trim());
          const d = disks[n - 1];
          if (!d || unusable(d)) { console.log('No such usable disk.'); continue; }
          rl.pause();
          // The client names the disk and asks once more before writing.
          const code = await run(['client', '--target', d.path]);
          rl.resume();
          console.log(`client ended with status ${code}`);
        } else {
          const path = (await rl.question('Image to serve (a disk, partition or image file path): ')).trim();
          if (!path) continue;
          rl.pause();
          const code = await run(['master', '--image', path]);
          rl.resume();
          console.log(`master ended with status ${code}`);
        }
      } else if (choice === '3') {
        rl.pause();
        await new Promise<void>((r) => spawn('sh', [], { stdio: 'inherit' }).on('exit', () => r()));
        rl.resume();
      } else if (choice === '4') {
        return 0;
      }
    }
  } finally {
    rl.close();
  }
}
