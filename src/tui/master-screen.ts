// The master's screen: the session (image, group, mode, state, rate, elapsed, time left), the
// PCs that ended (printed once, above), a live table of the others, the last events, and
// the keys: start now, choose a PC and drop it, quit (asking first while PCs are imaging).

import { createElement as h, type ReactNode, useSyncExternalStore } from 'react';
import { Box, Static, Text, useInput, useStdout } from 'ink';
import { bytes } from '../log/logger.ts';
import { clock } from '../log/meter.ts';
import type { ClientRow, LanRow, MasterView, RelayRow } from './master-view.ts';
import type { Store } from './store.ts';
import { GLYPH, Rule, bar, columns } from './widgets.ts';

const WIDTH = 100;
const COLS = [14, 17, 15, 16, 10, 4, 7, 9];

/** Ink's Static, for rows of PCs (its generic type does not survive createElement). */
const Finished = Static as (p: { items: ClientRow[]; children: (r: ClientRow, i: number) => ReactNode }) => ReactNode;

export interface MasterKeys {
  start(): void;
  select(delta: number): void;
  drop(): void;
  quit(): void;
}

const finishedLine = (r: ClientRow): string => {
  const mark = r.verified ? GLYPH.ok : GLYPH.bad;
  const how = r.verified ? `verified in ${r.seconds?.toFixed(1) ?? '?'} s` : `${r.state}${r.reason ? `: ${r.reason}` : ''}`;
  return `${mark} ${columns([r.name, r.mac, r.ip, r.lan], COLS.slice(0, 4))} ${how}`;
};

function Header({ v }: { v: MasterView }): ReactNode {
  return h(Box, { flexDirection: 'column' },
    h(Text, null, h(Text, { bold: true, inverse: true }, ' MUST master '), ` ${v.image} · ${bytes(v.size)} · group ${v.group}:${v.port} · ${v.mode} mode`),
    h(Text, null,
      'state ', h(Text, { bold: true }, v.state),
      `  sent ${v.sentPercent}% ${bar(v.sentPercent / 100, 20)}  ${v.rateMBps.toFixed(1)} MB/s  elapsed ${clock(v.elapsed)}`,
      v.etaSeconds !== undefined ? `  ${clock(v.etaSeconds)} left` : ''),
  );
}

function Table({ v }: { v: MasterView }): ReactNode {
  const head = columns(['PC', 'MAC', 'IP', 'LAN', 'state', '%', 'MB/s', 'missing'], COLS);
  return h(Box, { flexDirection: 'column' },
    h(Text, { bold: true, wrap: 'truncate' }, `  ${head}`),
    ...(v.clients.length === 0 ? [h(Text, { key: 'none', dimColor: true }, v.finished.length > 0 ? '  (none left)' : '  (no PC has joined yet)')] : v.clients.map((r, i) => h(Text, { key: r.id, wrap: 'truncate', color: i === v.selected ? 'cyan' : undefined },
      `${i === v.selected ? '>' : ' '} ${columns([r.name, r.mac, r.ip, r.lan, r.state, r.percent, r.rateMBps.toFixed(1), r.missing], COLS)}`))),
  );
}

/** The relay tree, one line each (indented by depth), and each LAN's progress when there is more than one. */
function Campus({ v, width }: { v: MasterView; width: number }): ReactNode {
  if (v.relays.length === 0 && v.lans.length < 2) return null;
  const mib = (n: number): string => (n / 2 ** 20).toFixed(0);
  const relay = (r: RelayRow): string =>
    `${'  '.repeat(r.depth)}${r.name}  LAN ${r.lan} from ${r.upstream}  ${r.final ? (r.ok ? 'done' : 'ENDED WITH FAILURES') : r.state}  in ${r.percent}%`
    + `  ring ${mib(r.held)}/${mib(r.bufferSize)} MiB  PCs ${r.verified}/${r.pcs} verified${r.fetched > 0 ? `  fetched ${bytes(r.fetched)}` : ''}`;
  const lan = (l: LanRow): string => `  ${l.lan} via ${l.via}: ${l.verified}/${l.pcs} verified, the last at ${l.percent}%${l.acks !== undefined ? `, ${l.acks} ACKs` : ''}`;
  return h(Box, { flexDirection: 'column' },
    h(Rule, { width, title: `relays: ${v.relays.length} · LANs: ${v.lans.length}` }),
    ...v.relays.map((r) => h(Text, { key: `r-${r.name}`, wrap: 'truncate', color: r.final && !r.ok ? 'red' : undefined }, relay(r))),
    ...(v.lans.length > 1 ? v.lans.map((l) => h(Text, { key: `l-${l.via}-${l.lan}`, wrap: 'truncate', dimColor: true }, lan(l))) : []),
  );
}

export function MasterScreen({ view, keys, width = WIDTH }: { view: MasterView; keys: MasterKeys; width?: number }): ReactNode {
  const v = view;
  useInput((input, key) => {
    if (v.prompt) {
      if (input === 'y' || input === 'Y') v.prompt.answer(true);
      else if (input === 'n' || input === 'N' || key.escape || key.return) v.prompt.answer(false);
      return;
    }
    if (v.summary) return;
    if (input === 's') keys.start();
    else if (key.upArrow) keys.select(-1);
    else if (key.downArrow) keys.select(1);
    else if (input === 'd') keys.drop();
    else if (input === 'q' || (key.ctrl && input === 'c')) keys.quit();
  });
  return h(Box, { flexDirection: 'column' },
    h(Finished, { items: v.finished, children: (r) => h(Text, { key: r.id, color: r.verified ? 'green' : 'red' }, finishedLine(r)) }),
    h(Box, { flexDirection: 'column', width },
      h(Rule, { width }),
      h(Header, { v }),
      h(Rule, { width, title: `PCs imaging: ${v.clients.length} · ended: ${v.finished.length} (${v.finished.filter((r) => r.verified).length} verified)` }),
      h(Table, { v }),
      h(Campus, { v, width }),
      h(Rule, { width, title: 'events' }),
      ...v.events.slice(-6).map((e, i) => h(Text, { key: `${v.events.length}-${i}`, dimColor: true, wrap: 'truncate' }, e)),
      h(Rule, { width }),
      v.summary ? h(Text, { bold: true }, v.summary)
        : v.prompt ? h(Text, { bold: true, color: 'yellow' }, `${v.prompt.question} [y/N]`)
          : h(Text, { dimColor: true }, `keys: ${v.state === 'waiting' ? 's start now · ' : ''}↑/↓ choose a PC · d drop it · q quit`),
    ),
  );
}

export function MasterApp({ store, keys }: { store: Store<MasterView>; keys: MasterKeys }): ReactNode {
  const view = useSyncExternalStore(store.subscribe, store.get);
  const { stdout } = useStdout();
  return h(MasterScreen, { view, keys, width: Math.min(WIDTH, (stdout as NodeJS.WriteStream).columns || WIDTH) });
}
