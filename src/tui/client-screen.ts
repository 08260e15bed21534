// The client's screen: what this PC is, which master and image, where the session is (a bar,
// MB/s, time left, lost and repaired), the last events; and, when the command asks, the
// disk picker, the confirmation that names the disk, and the reboot countdown.

import { createElement as h, type ReactNode, useState, useSyncExternalStore } from 'react';
import { Box, Text, useInput, useStdout } from 'ink';
import { bytes } from '../log/logger.ts';
import { clock } from '../log/meter.ts';
import type { DiskOption } from '../disk/inventory.ts';
import type { ClientPrompt, ClientView, Progress } from './client-view.ts';
import { stageLabel } from './client-view.ts';
import type { Hardware } from './hardware.ts';
import type { Store } from './store.ts';
import { Field, Rule, bar, columns } from './widgets.ts';

/** Widest the screen gets; a narrower terminal (the VT's 80 columns) cuts lines instead of wrapping them. */
const WIDTH = 96;

function HardwarePane({ hw }: { hw: Hardware | undefined }): ReactNode {
  if (!hw) return h(Field, { label: 'This PC' }, h(Text, { dimColor: true }, 'reading the hardware...'));
  return h(Box, { flexDirection: 'column' },
    h(Field, { label: 'This PC', cut: true }, `${hw.model} · ${hw.cpu} · ${bytes(hw.memory)} memory`),
    ...(hw.nics.length === 0 ? [h(Field, { label: 'Network', key: 'none' }, 'no network interface')]
      : hw.nics.map((n, i) => h(Field, { label: i === 0 ? 'Network' : '', key: n.name, cut: true }, columns([n.name, n.mac, n.speed, n.address], [12, 17, 12, 15])))),
    ...(hw.disks.length === 0 ? [h(Field, { label: 'Disks', key: 'none' }, 'no disk found')]
      : hw.disks.map((d, i) => h(Field, { label: i === 0 ? 'Disks' : '', key: d.path, cut: true }, columns([d.path, bytes(d.size), d.type, d.model, `serial ${d.serial}`], [14, 9, 14, 24, 30])))),
  );
}

function ProgressPane({ p, stage }: { p: Progress; stage: string }): ReactNode {
  const fraction = p.total > 0 ? p.have / p.total : 0;
  const done = stage === 'verifying' || stage === 'verified';
  return h(Box, { flexDirection: 'column' },
    h(Text, null, h(Text, { color: 'green' }, bar(fraction, 50)), ` ${String(Math.floor(fraction * 100)).padStart(3)}%`,
      done ? '' : `  ${p.rateMBps.toFixed(1)} MB/s${p.etaSeconds !== undefined ? `  ${clock(p.etaSeconds)} left` : ''}`),
    h(Text, { dimColor: true }, `packets ${p.have} of ${p.total} · lost ${p.lost} · repaired ${p.repaired}`),
  );
}

export function DiskPicker({ prompt }: { prompt: Extract<ClientPrompt, { kind: 'pick' }> }): ReactNode {
  const first = Math.max(0, prompt.disks.findIndex((d) => !d.why));
  const [at, setAt] = useState(first);
  useInput((input, key) => {
    const n = prompt.disks.length;
    if (key.upArrow) setAt((a) => (a + n - 1) % n);
    else if (key.downArrow) setAt((a) => (a + 1) % n);
    else if (key.return && prompt.disks[at] && !prompt.disks[at]!.why) prompt.answer(prompt.disks[at]!.path);
    else if (input === 'q' || key.escape) prompt.answer(undefined);
  });
  const line = (d: DiskOption): string => columns([d.path, bytes(d.size), d.model || 'unknown model', `${d.transport}${d.removable ? ', removable' : ''}`], [14, 9, 26, 16]);
  return h(Box, { flexDirection: 'column' },
    h(Text, { bold: true }, `Which disk gets "${prompt.image}" (${bytes(prompt.imageSize)})? Everything on it is lost.`),
    ...prompt.disks.map((d, i) => h(Text, { key: d.path, wrap: 'truncate', color: d.why ? 'gray' : i === at ? 'cyan' : undefined },
      `${i === at ? '>' : ' '} ${line(d)}${d.why ? `\n    cannot: ${d.why}` : ''}`)),
    h(Text, { dimColor: true }, prompt.disks.some((d) => !d.why) ? '↑/↓ move · Enter choose · q cancel' : 'No disk here can take this image · q cancel'),
  );
}

function Confirm({ prompt }: { prompt: Extract<ClientPrompt, { kind: 'confirm' }> }): ReactNode {
  useInput((input, key) => {
    if (input === 'y' || input === 'Y') prompt.answer(true);
    else if (input === 'n' || input === 'N' || input === 'q' || key.escape || key.return) prompt.answer(false);
  });
  return h(Text, { bold: true, color: 'yellow' }, `${prompt.question} [y/N]`);
}

function Countdown({ prompt }: { prompt: Extract<ClientPrompt, { kind: 'countdown' }> }): ReactNode {
  useInput(() => prompt.cancel());
  return h(Text, { bold: true }, `${prompt.action[0]!.toUpperCase()}${prompt.action.slice(1)} in ${prompt.secondsLeft} s · press any key to cancel`);
}

const stageColor = (s: ClientView['stage']): string | undefined => (s === 'verified' ? 'green' : s === 'failed' ? 'red' : undefined);

export function ClientScreen({ view, width = WIDTH }: { view: ClientView; width?: number }): ReactNode {
  const v = view;
  const prompt = v.prompt;
  return h(Box, { flexDirection: 'column', width },
    h(Text, null, h(Text, { bold: true, inverse: true }, ' MUST '), ' Multicast Synchronous Transfer', h(Text, { dimColor: true }, `   client ${v.name} · ${v.iface}`)),
    h(Rule, { width }),
    h(HardwarePane, { hw: v.hardware }),
    h(Rule, { width }),
    h(Field, { label: 'Master' }, v.master ? `${v.master}` : h(Text, { dimColor: true }, 'not found yet')),
    v.image ? h(Field, { label: 'Image' }, `${v.image.name} · ${bytes(v.image.size)} · ${v.image.mode} mode`) : null,
    v.image ? h(Field, { label: 'Trust' }, v.image.trust) : null,
    h(Field, { label: 'Disk' }, v.target ?? h(Text, { dimColor: true }, 'not chosen yet')),
    h(Field, { label: 'State' }, h(Text, { bold: true, color: stageColor(v.stage) }, stageLabel(v.stage)), v.reason ? `: ${v.reason}` : ''),
    v.progress && v.stage !== 'searching' && v.stage !== 'choosing' ? h(ProgressPane, { p: v.progress, stage: v.stage }) : null,
    prompt ? h(Box, { marginTop: 1 },
      prompt.kind === 'pick' ? h(DiskPicker, { prompt, key: 'pick' }) : prompt.kind === 'confirm' ? h(Confirm, { prompt }) : h(Countdown, { prompt })) : null,
    h(Rule, { width, title: 'events' }),
    ...v.events.slice(-5).map((e, i) => h(Text, { key: `${v.events.length}-${i}`, dimColor: true, wrap: 'truncate' }, e)),
  );
}

/** The screen bound to a store: re-renders when the store changes. */
export function ClientApp({ store }: { store: Store<ClientView> }): ReactNode {
  const view = useSyncExternalStore(store.subscribe, store.get);
  const { stdout } = useStdout();
  return h(ClientScreen, { view, width: Math.min(WIDTH, (stdout as NodeJS.WriteStream).columns || WIDTH) });
}
