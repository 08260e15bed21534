// What the client's screen shows, and how it follows a running Receiver: its events for
// the phases, a poll of its counters for progress (rate, time left, lost, repaired). The
// prompts (which disk, are you sure, reboot now?) are set by the command and answered by
// the screen; nothing here touches a socket or the disk.

import { type Receiver } from '../session/receiver.ts';
import { ClientPhase } from '../protocol/messages.ts';
import { Meter } from '../log/meter.ts';
import type { DiskOption } from '../disk/inventory.ts';
import type { Hardware } from './hardware.ts';
import { Store } from './store.ts';

export type Stage = 'starting' | 'searching' | 'choosing' | 'waiting' | 'receiving' | 'repairing' | 'verifying' | 'verified' | 'failed';

export interface Progress {
  /** Packets held, of `total`. */
  have: number;
  total: number;
  rateMBps: number;
  etaSeconds: number | undefined;
  /** Packets the first pass did not bring (so far), and how many of them repairs brought since. */
  lost: number;
  repaired: number;
}

export type ClientPrompt =
  | { kind: 'pick'; image: string; imageSize: number; disks: DiskOption[]; answer(path: string | undefined): void }
  | { kind: 'confirm'; question: string; answer(yes: boolean): void }
  | { kind: 'countdown'; action: string; secondsLeft: number; cancel(): void };

export interface ClientView {
  name: string;
  iface: string;
  stage: Stage;
  target: string | undefined;
  master: string | undefined;
  image: { name: string; size: number; mode: string; trust: string } | undefined;
  progress: Progress | undefined;
  /** Why it failed, or what it is waiting for. */
  reason: string;
  hardware: Hardware | undefined;
  events: string[];
  prompt: ClientPrompt | undefined;
}

export function clientStore(name: string, iface: string): Store<ClientView> {
  return new Store<ClientView>({
    name, iface, stage: 'starting', target: undefined, master: undefined, image: undefined, progress: undefined,
    reason: '', hardware: undefined, events: [], prompt: undefined,
  });
}

const STAGE: Record<ClientPhase, Stage> = {
  [ClientPhase.Searching]: 'searching', [ClientPhase.Waiting]: 'waiting', [ClientPhase.Receiving]: 'receiving',
  [ClientPhase.Repairing]: 'repairing', [ClientPhase.Verifying]: 'verifying', [ClientPhase.Verified]: 'verified', [ClientPhase.Failed]: 'failed',
};

/** Follow a receiver until the returned function is called. */
export function watchReceiver(store: Store<ClientView>, r: Receiver, now: () => number, every = 500): () => void {
  const meter = new Meter();
  store.update({ stage: STAGE[r.phase] });
  const off = r.events.on((e) => {
    switch (e.type) {
      case 'found':
        store.update({
          master: e.master.address,
          image: {
            name: e.announce.name, size: e.announce.targetSize, mode: e.announce.mode === 2 ? 'classic' : 'default',
            trust: e.trust.kind === 'unauthenticated' ? 'unsigned (anyone on this network could have sent it)' : `signed, key ${e.trust.fingerprint} (${e.trust.kind === 'pinned' ? 'the one given' : 'trusted on first use'})`,
          },
        });
        break;
      case 'confirm': store.update({ stage: 'choosing' }); break;
      case 'phase': store.update({ stage: STAGE[e.phase] }); break;
      case 'finished': store.update({ stage: e.ok ? 'verified' : 'failed', reason: e.reason }); break;
      default: break;
    }
  });
  const tick = (): void => {
    const geo = r.geo, have = r.have;
    if (!geo || !have) return;
    const held = have.count;
    const rate = meter.sample(now(), held);
    const first = r.phase <= ClientPhase.Receiving;
    const missing = geo.packets - held;
    store.update({
      progress: {
        have: held, total: geo.packets, rateMBps: (rate * geo.payloadSize) / 1e6, etaSeconds: meter.eta(missing),
        lost: first ? Math.max(0, r.stats.furthest - held) : missing + r.stats.repaired, repaired: r.stats.repaired,
      },
    });
  };
  const timer = setInterval(tick, every);
  return () => { off(); clearInterval(timer); tick(); };
}

export const stageLabel = (s: Stage): string => ({
  starting: 'Starting', searching: 'Searching for a master', choosing: 'Choosing the disk', waiting: 'Waiting for the start',
  receiving: 'Receiving', repairing: 'Repairing what was lost', verifying: 'Verifying', verified: 'Done: verified', failed: 'Failed',
})[s];
