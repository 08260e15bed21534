// What a screen observes: a value and who wants to hear that it changed, in the shape
// React's useSyncExternalStore takes. The command that runs a session updates it from the
// machines' events; the screen only reads it (and answers the prompts it carries).

export class Store<S> {
  private state: S;
  private readonly listeners = new Set<() => void>();

  constructor(initial: S) { this.state = initial; }

  readonly get = (): S => this.state;

  readonly subscribe = (fn: () => void): (() => void) => {
    this.listeners.add(fn);
    return () => { this.listeners.delete(fn); };
  };

  update(patch: Partial<S> | ((s: S) => Partial<S>)): void {
    this.state = { ...this.state, ...(typeof patch === 'function' ? patch(this.state) : patch) };
    for (const l of this.listeners) l();
  }
}

/** The last `max` event lines, newest last (the screens' log panes). */
export function pushLine(lines: readonly string[], line: string, max = 8): string[] {
  return [...lines.slice(Math.max(0, lines.length - max + 1)), line];
}

/**
 * Log lines of the session into a screen's event pane (the screen replaces stdout's log): the
 * time of day and the event, without the date and tag a log file needs; progress lines are
 * left out (the screen draws progress itself).
 */
export const eventSink = (store: Store<{ events: string[] }>): { write(line: string): void } => ({
  write: (line) => {
    const short = line.replace(/^\d{4}-\d\d-\d\dT(\d\d:\d\d:\d\d)\.\d+Z \S+ /, '$1 ');
    if (/^\S+ progress /.test(short)) return;
    store.update((s) => ({ events: pushLine(s.events, short) }));
  },
});
