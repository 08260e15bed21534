// Whether a command draws a screen or prints lines, and drawing it. A screen needs a terminal
// that can take cursor movement: not a pipe or a file, not TERM=dumb, not a serial console
// (whose size and speed make redraws unreadable there), and not when JSON was asked for.

import { readlinkSync } from 'node:fs';
import type { ReactNode } from 'react';

export function wantScreen(o: { json: boolean; plain: boolean }): boolean {
  if (o.json || o.plain || process.stdout.isTTY !== true || process.env.TERM === 'dumb') return false;
  try {
    if (/^\/dev\/tty(S|AMA|USB|ACM)\d+$/.test(readlinkSync('/proc/self/fd/1'))) return false;
  } catch { /* no /proc: assume a terminal */ }
  return true;
}

export interface Mounted { close(): Promise<void> }

/**
 * Draw the screen `build` makes on the terminal until close(); the last frame stays on screen.
 * Ink and React are loaded only here (about 0.3 s): a command that prints lines never loads them.
 */
export async function mount(build: () => Promise<ReactNode>, io: { stdin: NodeJS.ReadStream; stdout: NodeJS.WriteStream } = process): Promise<Mounted> {
  const [{ render }, node] = await Promise.all([import('ink'), build()]);
  // interactive: Ink would otherwise print only the last frame when CI is set in the environment.
  const ink = render(node, { stdin: io.stdin, stdout: io.stdout, interactive: true, exitOnCtrlC: false, maxFps: 10 });
  return {
    close: async () => {
      await ink.waitUntilRenderFlush();
      ink.unmount();
      await ink.waitUntilExit().catch(() => {});
    },
  };
}
