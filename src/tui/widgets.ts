// Small pieces both screens draw with: a text progress bar, fixed-width columns, a rule.
// Plain characters only where a serial console or the Linux VT would show garbage otherwise.

import { createElement as h, type ReactNode } from 'react';
import { Text } from 'ink';

/** [#########.........]  48% (block characters on a terminal that can show them). */
export function bar(fraction: number, width: number, unicode = true): string {
  const f = Math.max(0, Math.min(1, fraction));
  const full = Math.round(f * width);
  return unicode ? `${'█'.repeat(full)}${'░'.repeat(width - full)}` : `[${'#'.repeat(full)}${'.'.repeat(width - full)}]`;
}

/** Cells padded (or cut) to their column widths, one space apart. */
export function columns(cells: Array<string | number>, widths: number[]): string {
  return cells.map((c, i) => {
    const s = String(c);
    const w = widths[i] ?? s.length;
    return s.length > w ? `${s.slice(0, Math.max(0, w - 1))}…` : s.padEnd(w);
  }).join(' ').trimEnd();
}

export const Rule = ({ width, title }: { width: number; title?: string }): ReactNode =>
  h(Text, { dimColor: true }, title ? `── ${title} ${'─'.repeat(Math.max(0, width - title.length - 4))}` : '─'.repeat(width));

/** A label column and its value, as in "Master    10.0.0.1". */
export const Field = ({ label, children }: { label: string; children?: ReactNode }): ReactNode =>
  h(Text, null, h(Text, { bold: true }, label.padEnd(10)), children);
