// The hop-by-hop link of Hopwise Reliable Multicast: TCP between a master and a relay, or a
// relay and the next one down the tree (docs/PROTOCOL.md, section 12). Frames carry the
// session's description, the stream in order, random reads for repairs, and the reports that
// climb back up. Pure codecs: bytes in, frames out, a typed error on anything malformed.

import { DecodeError, Reader, Writer, utf8 } from '../protocol/bytes.ts';

export const LINK_MAGIC = 0x4d48; // "MH"
export const LINK_VERSION = 1;
export const FRAME_HEADER = 8;
/** The largest body a peer may send: a fetch answer of one 4 MiB page with room to spare. */
export const MAX_BODY = 8 << 20;
const DIGEST = 32;

export const FrameType = {
  Hello: 1,
  Session: 2,
  Stream: 3,
  Fetch: 4,
  Fetched: 5,
  FetchFailed: 6,
  Report: 7,
  Refuse: 8,
} as const;
export type FrameType = (typeof FrameType)[keyof typeof FrameType];

/** What a link carries: the stream in order (and back-pressure), or fetches and reports. */
export const LinkRole = { Stream: 1, Fetch: 2 } as const;
export type LinkRole = (typeof LinkRole)[keyof typeof LinkRole];

export type Frame =
  /** Downstream to upstream, first on every connection: who it is, and from where it wants the stream. */
  | { type: typeof FrameType.Hello; role: LinkRole; resumeFrom: number; digest: Uint8Array | undefined; name: string; lan: string }
  /** Upstream's answer to a HELLO: what is being served (the manifest, its digest, the stream's size). */
  | { type: typeof FrameType.Session; streamSize: number; caps: number; kind: number; digest: Uint8Array; name: string; manifest: Uint8Array }
  /** Stream bytes [offset, offset + length): each follows the last without a gap. */
  | { type: typeof FrameType.Stream; offset: number; bytes: Uint8Array }
  | { type: typeof FrameType.Fetch; id: number; offset: number; length: number }
  | { type: typeof FrameType.Fetched; id: number; offset: number; bytes: Uint8Array }
  | { type: typeof FrameType.FetchFailed; id: number; reason: string }
  /** A relay's report of itself and its subtree, as JSON (src/relay/report.ts). */
  | { type: typeof FrameType.Report; json: string }
  /** Upstream will not serve this downstream (another image), and closes. */
  | { type: typeof FrameType.Refuse; reason: string };

export class LinkError extends Error {
  constructor(message: string) { super(message); this.name = 'LinkError'; }
}

function header(w: Writer, type: FrameType, body: number): Writer {
  return w.u16(LINK_MAGIC).u8(LINK_VERSION).u8(type).u32(body);
}

const text32 = (s: string): Uint8Array => new TextEncoder().encode(s);

/**
 * A frame as the parts to write, in order. Stream and fetch payloads are not copied: the last part
 * is the caller's bytes.
 */
export function encodeFrame(f: Frame): Uint8Array[] {
  switch (f.type) {
    case FrameType.Hello: {
      const name = utf8(f.name), lan = utf8(f.lan);
      const body = 1 + 3 + 8 + DIGEST + 1 + name.length + 1 + lan.length;
      const w = header(new Writer(FRAME_HEADER + body), f.type, body);
      w.u8(f.role).u8(0).u16(0).u64(f.resumeFrom).put(f.digest ?? new Uint8Array(DIGEST)).text(name).text(lan);
      return [w.done()];
    }
    case FrameType.Session: {
      const name = utf8(f.name);
      const body = 8 + 2 + 1 + 1 + DIGEST + 1 + name.length + f.manifest.length;
      const w = header(new Writer(FRAME_HEADER + body), f.type, body);
      return [w.u64(f.streamSize).u16(f.caps).u8(f.kind).u8(0).put(f.digest).text(name).put(f.manifest).done()];
    }
    case FrameType.Stream:
      return [header(new Writer(FRAME_HEADER + 8), f.type, 8 + f.bytes.length).u64(f.offset).done(), f.bytes];
    case FrameType.Fetch:
      return [header(new Writer(FRAME_HEADER + 16), f.type, 16).u32(f.id).u64(f.offset).u32(f.length).done()];
    case FrameType.Fetched:
      return [header(new Writer(FRAME_HEADER + 12), f.type, 12 + f.bytes.length).u32(f.id).u64(f.offset).done(), f.bytes];
    case FrameType.FetchFailed: {
      const reason = text32(f.reason);
      return [header(new Writer(FRAME_HEADER + 4 + reason.length), f.type, 4 + reason.length).u32(f.id).put(reason).done()];
    }
    case FrameType.Report:
    case FrameType.Refuse: {
      const body = text32(f.type === FrameType.Report ? f.json : f.reason);
      return [header(new Writer(FRAME_HEADER + body.length), f.type, body.length).put(body).done()];
    }
  }
}

/** One frame's body (without the 8-byte header) as a Frame; DecodeError if it is malformed. */
export function decodeBody(type: number, body: Uint8Array): Frame {
  const r = new Reader(body);
  const rest = (): Uint8Array => r.take(r.remaining, 'payload');
  const text = (): string => new TextDecoder().decode(rest());
  const end = (f: Frame): Frame => {
    if (r.remaining !== 0) throw new DecodeError('length', `${r.remaining} bytes after frame ${type}`);
    return f;
  };
  switch (type) {
    case FrameType.Hello: {
      const role = r.u8('role');
      r.u8('reserved');
      r.u16('reserved');
      if (role !== LinkRole.Stream && role !== LinkRole.Fetch) throw new DecodeError('field', `link role ${role}`);
      const resumeFrom = r.u64('resume from');
      const digest = Uint8Array.from(r.take(DIGEST, 'digest'));
      const name = r.text('name'), lan = r.text('lan');
      return end({ type, role, resumeFrom, digest: digest.some((b) => b !== 0) ? digest : undefined, name, lan });
    }
    case FrameType.Session: {
      const streamSize = r.u64('stream size');
      const caps = r.u16('caps');
      const kind = r.u8('kind');
      r.u8('reserved');
      const digest = Uint8Array.from(r.take(DIGEST, 'digest'));
      const name = r.text('name');
      const manifest = Uint8Array.from(rest());
      if (manifest.length === 0) throw new DecodeError('field', 'empty manifest');
      return { type, streamSize, caps, kind, digest, name, manifest };
    }
    case FrameType.Stream: {
      const offset = r.u64('offset');
      const bytes = rest();
      if (bytes.length === 0) throw new DecodeError('field', 'empty stream frame');
      return { type, offset, bytes };
    }
    case FrameType.Fetch: {
      const id = r.u32('id'), offset = r.u64('offset'), length = r.u32('length');
      if (length === 0 || length > MAX_BODY - 12) throw new DecodeError('field', `fetch of ${length} bytes`);
      return end({ type, id, offset, length });
    }
    case FrameType.Fetched: {
      const id = r.u32('id'), offset = r.u64('offset');
      return { type, id, offset, bytes: rest() };
    }
    case FrameType.FetchFailed: return { type, id: r.u32('id'), reason: text() };
    case FrameType.Report: return { type, json: text() };
    case FrameType.Refuse: return { type, reason: text() };
    default: throw new DecodeError('type', `frame type ${type}`);
  }
}

/**
 * Frames out of a TCP byte stream cut anywhere. A peer that breaks the framing (magic, version,
 * a body past MAX_BODY, a malformed body) gets a LinkError: the link is closed, never guessed at.
 */
export class FrameReader {
  private chunks: Uint8Array[] = [];
  private buffered = 0;

  push(chunk: Uint8Array): void {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
  }

  /** Bytes held that do not yet make a whole frame. */
  get pending(): number { return this.buffered; }

  /** The next whole frame, or undefined until more bytes come. */
  next(): Frame | undefined {
    if (this.buffered < FRAME_HEADER) return undefined;
    const head = this.peek(FRAME_HEADER);
    const view = new DataView(head.buffer, head.byteOffset, FRAME_HEADER);
    if (view.getUint16(0) !== LINK_MAGIC) throw new LinkError('not a MUST relay link (bad magic)');
    if (view.getUint8(2) !== LINK_VERSION) throw new LinkError(`relay link version ${view.getUint8(2)}, this program speaks ${LINK_VERSION}`);
    const type = view.getUint8(3), length = view.getUint32(4);
    if (length > MAX_BODY) throw new LinkError(`a frame of ${length} bytes (at most ${MAX_BODY})`);
    if (this.buffered < FRAME_HEADER + length) return undefined;
    const whole = this.take(FRAME_HEADER + length);
    try {
      return decodeBody(type, whole.subarray(FRAME_HEADER));
    } catch (e) {
      if (e instanceof DecodeError) throw new LinkError(`malformed frame ${type}: ${e.message}`);
      throw e;
    }
  }

  private peek(n: number): Uint8Array {
    const first = this.chunks[0]!;
    if (first.length >= n) return first.subarray(0, n);
    const out = new Uint8Array(n);
    let at = 0;
    for (const c of this.chunks) {
      const k = Math.min(c.length, n - at);
      out.set(c.subarray(0, k), at);
      at += k;
      if (at === n) break;
    }
    return out;
  }

  private take(n: number): Uint8Array {
    const first = this.chunks[0]!;
    let out: Uint8Array;
    if (first.length >= n) {
      out = first.subarray(0, n);
      if (first.length === n) this.chunks.shift(); else this.chunks[0] = first.subarray(n);
    } else {
      out = new Uint8Array(n);
      let at = 0;
      while (at < n) {
        const c = this.chunks[0]!;
        const k = Math.min(c.length, n - at);
        out.set(c.subarray(0, k), at);
        at += k;
        if (k === c.length) this.chunks.shift(); else this.chunks[0] = c.subarray(k);
      }
    }
    this.buffered -= n;
    return out;
  }
}
