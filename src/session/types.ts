// What the machines hand to their driver, and how they report what happened.

export interface Endpoint {
  address: string;
  port: number;
}

export type Dest = { kind: 'group'; port: number } | { kind: 'unicast'; to: Endpoint };

/** One datagram to send: header parts, then (for image data) bytes the driver reads from the image. */
export interface Transmit {
  dest: Dest;
  parts: Uint8Array[];
  image?: { offset: number; length: number };
  /** A coded repair: image bytes the driver XORs into `image`'s, each range as long as it. */
  xor?: Array<{ offset: number; length: number }>;
  /** Set on DATA: the object packet it carries (the driver seals payloads by it). */
  packet?: number;
  /** An AUTH for object packets [first, first+count): the driver hashes their payloads and signs. */
  auth?: { first: number; count: number };
}

export const sameEndpoint = (a: Endpoint, b: Endpoint): boolean => a.address === b.address && a.port === b.port;

/** A minimal synchronous event channel: the UI and the logger subscribe, nothing in the machine waits on them. */
export class Emitter<E> {
  private listeners: Array<(e: E) => void> = [];
  on(fn: (e: E) => void): () => void {
    this.listeners.push(fn);
    return () => { this.listeners = this.listeners.filter((l) => l !== fn); };
  }
  emit(e: E): void { for (const l of this.listeners) l(e); }
}

/** Counts of datagrams dropped, by reason. */
export type DropCounts = Record<string, number>;
export function countDrop(c: DropCounts, reason: string): void { c[reason] = (c[reason] ?? 0) + 1; }
/** Counts as "forged:12,unsigned:3" for a log line; undefined when there are none. */
export const countsText = (c: DropCounts): string | undefined => Object.entries(c).map(([k, v]) => `${k}:${v}`).join(',') || undefined;
