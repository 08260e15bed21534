// How to start this program again as a child process: the single executable runs
// itself; from the source tree it is Node with src/main.ts.

import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';

export function selfCommand(): { cmd: string; args: string[] } {
  if (isSea()) return { cmd: process.execPath, args: [] };
  return { cmd: process.execPath, args: [...process.execArgv, fileURLToPath(new URL('../main.ts', import.meta.url))] };
}

function isSea(): boolean {
  try {
    const sea = createRequire(import.meta.url)('node:sea') as { isSea(): boolean };
    return sea.isSea();
  } catch {
    return false;
  }
}
