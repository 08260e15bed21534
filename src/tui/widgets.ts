// Small pieces both screens draw with: a text progress bar, fixed-width columns, a rule.
// Plain characters where the Linux VT's font would show garbage otherwise.

import { createElement as h, type ReactNode } from 'react';
import { Text } from 'ink';

/** The Linux VT's font (CP437-like) has the block and box characters, not these. */
const vt = process.env.TERM === 'linux';
export const GLYPH = { ok: vt ? '+' : '✓', bad: vt ? 'x' : '✗', cut: vt ? '~' : '…' };

/** A bar of `width` cells, `fraction` of them full. */
export function bar(fraction: number, width: number): string {
  const full = Math.round(Math.max(0, Math.min(1, fraction)) * width);
  return `${'█'.repeat(full)}${'░'.repeat(width - full)}`;
}

/** Cells padded (or cut) to their column widths, one space apart. */
export function columns(cells: Array<string | number>, widths: number[]): string {
  return cells.map((c, i) => {
    const s = String(c);
    const w = widths[i] ?? s.length;
    return s.length > w ? `${s.slice(0, Math.max(0, w - 1))}${GLYPH.cut}` : s.padEnd(w);
  }).join(' ').trimEnd();
}

export const Rule = ({ width, title }: { width: number; title?: string }): ReactNode =>
  h(Text, { dimColor: true }, title ? `── ${title} ${'─'.repeat(Math.max(0, width - title.length - 4))}` : '─'.repeat(width));

/** A label column and its value, as in "Master    10.0.0.1"; `cut` lines are cut at the edge, not wrapped. */
export const Field = ({ label, children, cut }: { label: string; children?: ReactNode; cut?: boolean }): ReactNode =>
  h(Text, { wrap: cut ? 'truncate' : 'wrap' }, h(Text, { bold: true }, label.padEnd(10)), children);
