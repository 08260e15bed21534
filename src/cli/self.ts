// How to start this program again as a child process: the single executable runs
// itself; from the source tree it is Node with src/main.ts.

import { fileURLToPath } from 'node:url';

export function isSea(): boolean {
  const sea = process.getBuiltinModule('node:sea') as { isSea(): boolean } | undefined;
  return sea?.isSea() ?? false;
}

export function selfCommand(): { cmd: string; args: string[] } {
  if (isSea()) return { cmd: process.execPath, args: [] };
  return { cmd: process.execPath, args: [...process.execArgv, fileURLToPath(new URL('../main.ts', import.meta.url))] };
}
