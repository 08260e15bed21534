// Encrypted sessions (docs/PROTOCOL.md, "Encrypted sessions"): for images that hold
// secrets, every data payload travels sealed with AES-256-GCM under a key derived from a
// secret the master and the clients share. Sealing hides the bytes; signing (auth.ts)
// says who sent them: a client holding the secret could seal too.

import { createCipheriv, createDecipheriv, createHmac, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { KeyError } from './auth.ts';

export const SECRET_BYTES = 32;
/** GCM tag carried after each sealed payload. */
export const SEAL_OVERHEAD = 16;

export const newSecret = (): string => randomBytes(SECRET_BYTES).toString('base64url');

export function loadSecret(path: string): Uint8Array {
  let text: string;
  try { text = readFileSync(path, 'utf8').trim(); } catch (e) { throw new KeyError(`${path}: ${(e as Error).message}`); }
  const raw = Buffer.from(text, 'base64url');
  if (raw.length !== SECRET_BYTES) throw new KeyError(`${path}: not a MUST secret (${SECRET_BYTES} bytes, base64url; must keygen --secret)`);
  return new Uint8Array(raw);
}

/** Seals and opens one session's payloads: the key depends on the session and its manifest, the nonce is the packet number. */
export class SessionSeal {
  private readonly key: Buffer;

  constructor(secret: Uint8Array, session: number, manifestDigest: Uint8Array) {
    const s = Buffer.alloc(4);
    s.writeUInt32BE(session >>> 0);
    this.key = createHmac('sha256', secret).update('MUST session key').update(s).update(manifestDigest).digest();
  }

  private static nonce(packet: number): Buffer {
    const n = Buffer.alloc(12);
    n.writeUIntBE(packet, 6, 6);
    return n;
  }

  seal(packet: number, plain: Uint8Array | Uint8Array[]): Uint8Array {
    const c = createCipheriv('aes-256-gcm', this.key, SessionSeal.nonce(packet));
    const parts = (Array.isArray(plain) ? plain : [plain]).map((p) => c.update(p));
    parts.push(c.final(), c.getAuthTag());
    return Buffer.concat(parts);
  }

  /** The plaintext, or undefined when the payload was not sealed by this session for this packet. */
  open(packet: number, sealed: Uint8Array): Uint8Array | undefined {
    if (sealed.length < SEAL_OVERHEAD) return undefined;
    const d = createDecipheriv('aes-256-gcm', this.key, SessionSeal.nonce(packet));
    d.setAuthTag(sealed.subarray(sealed.length - SEAL_OVERHEAD));
    try {
      return Buffer.concat([d.update(sealed.subarray(0, sealed.length - SEAL_OVERHEAD)), d.final()]);
    } catch {
      return undefined;
    }
  }
}
