// The questions a client asks a person: which disk, are you sure, reboot now? On a screen they
// are prompts of the client's store (the screen answers them); on a plain terminal they are
// numbered lines and a [y/N] read from stdin.

import { createInterface } from 'node:readline/promises';
import type { DiskOption } from '../disk/inventory.ts';
import { bytes } from '../log/logger.ts';
import type { ClientView } from '../tui/client-view.ts';
import type { Store } from '../tui/store.ts';

export interface Asker {
  /** The path of the disk chosen, or undefined when the person cancelled. */
  pick(image: string, imageSize: number, disks: DiskOption[]): Promise<string | undefined>;
  confirm(question: string): Promise<boolean>;
  /** Count down to `action`; false when a key cancelled it. */
  countdown(action: string, seconds: number): Promise<boolean>;
}

const tick = (): Promise<void> => new Promise((r) => setTimeout(r, 1000));

export function screenAsker(store: Store<ClientView>): Asker {
  const ask = <T>(make: (done: (v: T) => void) => ClientView['prompt']): Promise<T> => new Promise<T>((resolve) => {
    store.update({ prompt: make((v) => { store.update({ prompt: undefined }); resolve(v); }) });
  });
  return {
    pick: (image, imageSize, disks) => ask<string | undefined>((answer) => ({ kind: 'pick', image, imageSize, disks, answer })),
    confirm: (question) => ask<boolean>((answer) => ({ kind: 'confirm', question, answer })),
    countdown: async (action, seconds) => {
      let cancelled = false;
      for (let left = seconds; left > 0 && !cancelled; left--) {
        store.update({ prompt: { kind: 'countdown', action, secondsLeft: left, cancel: () => { cancelled = true; } } });
        await tick();
      }
      store.update({ prompt: undefined });
      return !cancelled;
    },
  };
}

export function lineAsker(say: (line: string) => void): Asker {
  const question = async (q: string): Promise<string> => {
    const rl = createInterface({ input: process.stdin, output: process.stdout });
    try { return (await rl.question(q)).trim(); } finally { rl.close(); }
  };
  return {
    pick: async (image, imageSize, disks) => {
      say(`Which disk gets "${image}" (${bytes(imageSize)})? Everything on it is lost.`);
      disks.forEach((d, i) => say(`  ${i + 1}  ${d.path}  ${bytes(d.size)}  ${d.model || 'unknown model'}  ${d.transport}${d.removable ? ', removable' : ''}${d.why ? `  (cannot: ${d.why})` : ''}`));
      if (!disks.some((d) => !d.why)) { say('No disk here can take this image.'); return undefined; }
      for (;;) {
        const answer = await question('Disk (number, or q to cancel): ');
        if (answer === 'q' || answer === '') return undefined;
        const d = disks[Number(answer) - 1];
        if (d && !d.why) return d.path;
        say(d ? `${d.path} cannot take it: ${d.why}` : `No disk ${answer}.`);
      }
    },
    confirm: async (q) => /^y(es)?$/i.test(await question(`${q} [y/N] `)),
    countdown: async (action, seconds) => {
      // Without a terminal nobody can press a key: just wait.
      if (process.stdin.isTTY !== true) { say(`${action} in ${seconds} s`); for (let i = 0; i < seconds; i++) await tick(); return true; }
      say(`${action} in ${seconds} s; press Enter to cancel`);
      const rl = createInterface({ input: process.stdin });
      const pressed = new Promise<boolean>((r) => rl.once('line', () => r(false)));
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<boolean>((r) => { timer = setTimeout(() => r(true), seconds * 1000); });
      try { return await Promise.race([pressed, timeout]); } finally { clearTimeout(timer); rl.close(); }
    },
  };
}
