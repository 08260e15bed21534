// Bounds-checked big-endian reader and writer over one pre-sized buffer.
// Codecs size the message first and allocate once; every read checks the
// remaining length and throws a DecodeError naming the field, never a RangeError.

export type DropReason =
  | 'short'        // fewer bytes than the header or a field needs
  | 'magic'        // not a MUST datagram at all
  | 'version'      // a MUST datagram of a version we do not speak
  | 'type'         // unknown message type
  | 'length'       // a length field disagrees with the datagram
  | 'field'        // a field holds a value that cannot be right
  | 'session'      // well formed, but for another session
  | 'source'       // well formed, but not from the master we follow
  | 'phase';       // well formed, but impossible in the current phase

export class DecodeError extends Error {
  readonly reason: DropReason;
  constructor(reason: DropReason, detail: string) {
    // A bad datagram is an ordinary event (a flood of them is an attack we must shrug off):
    // skip the stack trace, which would cost more than decoding.
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    super(`${reason}: ${detail}`);
    Error.stackTraceLimit = limit;
    this.name = 'DecodeError';
    this.reason = reason;
  }
}

const TWO_32 = 0x1_0000_0000;

export class Reader {
  readonly bytes: Uint8Array;
  private readonly view: DataView;
  pos: number;
  constructor(bytes: Uint8Array, pos = 0) {
    this.bytes = bytes;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.pos = pos;
  }
  get remaining(): number { return this.bytes.length - this.pos; }
  need(n: number, what: string): void {
    if (this.remaining < n) throw new DecodeError('short', `${what} needs ${n} bytes, ${this.remaining} left`);
  }
  u8(what: string): number { this.need(1, what); return this.view.getUint8(this.pos++); }
  u16(what: string): number { this.need(2, what); const v = this.view.getUint16(this.pos); this.pos += 2; return v; }
  u32(what: string): number { this.need(4, what); const v = this.view.getUint32(this.pos); this.pos += 4; return v; }
  u48(what: string): number {
    this.need(6, what);
    const v = this.view.getUint16(this.pos) * TWO_32 + this.view.getUint32(this.pos + 2);
    this.pos += 6;
    return v;
  }
  /** 64-bit field as a JS number; values above 2^53 cannot be a size we accept. */
  u64(what: string): number {
    this.need(8, what);
    const hi = this.view.getUint32(this.pos);
    const lo = this.view.getUint32(this.pos + 4);
    this.pos += 8;
    if (hi >= 0x20_0000) throw new DecodeError('field', `${what} is above 2^53`);
    return hi * TWO_32 + lo;
  }
  take(n: number, what: string): Uint8Array {
    this.need(n, what);
    const v = this.bytes.subarray(this.pos, this.pos + n);
    this.pos += n;
    return v;
  }
  /** u8 length then UTF-8 text. */
  text(what: string): string {
    const n = this.u8(`${what} length`);
    return new TextDecoder('utf-8', { fatal: false }).decode(this.take(n, what));
  }
}

export class Writer {
  readonly bytes: Uint8Array;
  private readonly view: DataView;
  pos = 0;
  constructor(size: number) {
    // From Node's shared pool, zeroed: a fresh Uint8Array whose .buffer a DataView then asks
    // for costs about 2 us (V8 moves its bytes off the heap).
    this.bytes = Buffer.allocUnsafe(size).fill(0);
    this.view = new DataView(this.bytes.buffer, this.bytes.byteOffset, size);
  }
  u8(v: number): this { this.view.setUint8(this.pos, v); this.pos += 1; return this; }
  u16(v: number): this { this.view.setUint16(this.pos, v); this.pos += 2; return this; }
  u32(v: number): this { this.view.setUint32(this.pos, v >>> 0); this.pos += 4; return this; }
  u48(v: number): this {
    this.view.setUint16(this.pos, Math.floor(v / TWO_32));
    this.view.setUint32(this.pos + 2, v % TWO_32);
    this.pos += 6;
    return this;
  }
  u64(v: number): this {
    this.view.setUint32(this.pos, Math.floor(v / TWO_32));
    this.view.setUint32(this.pos + 4, v % TWO_32);
    this.pos += 8;
    return this;
  }
  put(b: Uint8Array): this { this.bytes.set(b, this.pos); this.pos += b.length; return this; }
  text(s: Uint8Array): this { this.u8(s.length); return this.put(s); }
  done(): Uint8Array {
    if (this.pos !== this.bytes.length) throw new Error(`codec sized ${this.bytes.length} bytes but wrote ${this.pos}`);
    return this.bytes;
  }
}

/** UTF-8 bytes of s cut to at most max bytes on a character boundary. */
export function utf8(s: string, max = 255): Uint8Array {
  let b = new TextEncoder().encode(s);
  if (b.length <= max) return b;
  // Find where the character that straddles (or ends at) max begins; keep it only if whole.
  let lead = max - 1;
  while (lead > 0 && (b[lead]! & 0xc0) === 0x80) lead--;
  const first = b[lead]!;
  const width = first < 0x80 ? 1 : first >= 0xf0 ? 4 : first >= 0xe0 ? 3 : 2;
  return b.subarray(0, lead + width <= max ? lead + width : lead);
}
