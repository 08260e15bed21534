// A terminal for screen tests: Ink renders into it (every frame kept, as Ink's debug mode writes
// them whole) and reads keys from it, as from a person at a real one.

import { EventEmitter } from 'node:events';
import type { ReactNode } from 'react';
import { render } from 'ink';

class FakeStdout extends EventEmitter {
  readonly isTTY = true;
  readonly columns = 110;
  readonly rows = 40;
  readonly frames: string[] = [];
  write = (s: string): boolean => { this.frames.push(s); return true; };
}

class FakeStdin extends EventEmitter {
  readonly isTTY = true;
  private pending: string | null = null;
  setEncoding(): this { return this; }
  setRawMode(): this { return this; }
  resume(): this { return this; }
  pause(): this { return this; }
  ref(): this { return this; }
  unref(): this { return this; }
  read = (): string | null => { const d = this.pending; this.pending = null; return d; };
  /** A key press, as the terminal sends it. */
  press(data: string): void { this.pending = data; this.emit('readable'); this.emit('data', data); }
}

export const KEY = { up: '\u001B[A', down: '\u001B[B', enter: '\r', escape: '\u001B' } as const;

export interface Terminal {
  /** The last frame, without colours. */
  screen(): string;
  press(data: string): Promise<void>;
  /** Resolves once the screen shows `re` (or fails, showing the screen). */
  shows(re: RegExp, ms?: number): Promise<void>;
  close(): void;
}

const plain = (s: string): string => s.replace(/\u001B\[[0-9;?]*[A-Za-z]/g, '');

export function terminal(node: ReactNode): Terminal {
  const stdout = new FakeStdout(), stdin = new FakeStdin();
  const ink = render(node, {
    stdout: stdout as unknown as NodeJS.WriteStream, stdin: stdin as unknown as NodeJS.ReadStream,
    debug: true, interactive: true, exitOnCtrlC: false, patchConsole: false,
  });
  const screen = (): string => plain(stdout.frames[stdout.frames.length - 1] ?? '');
  return {
    screen,
    press: async (data) => { stdin.press(data); await new Promise((r) => setTimeout(r, 20)); },
    shows: async (re, ms = 2000) => {
      const end = Date.now() + ms;
      while (!re.test(screen())) {
        if (Date.now() > end) throw new Error(`the screen does not show ${re}:\n${screen()}`);
        await new Promise((r) => setTimeout(r, 10));
      }
    },
    close: () => { ink.unmount(); ink.cleanup(); },
  };
}
