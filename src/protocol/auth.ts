// Signed sessions (docs/PROTOCOL.md, "Signed sessions"): the master's Ed25519 key signs
// every ANNOUNCE and DROP and, in AUTH, a 16-byte hash of every data packet, so a client
// that trusts the key writes nothing the master did not send.

import { type KeyObject, createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Geometry, Span } from '../session/geometry.ts';
import { KEY_BYTES, PACKET_HASH_BYTES, SIGNATURE_BYTES, encode } from './codec.ts';
import { MsgType } from './messages.ts';

/** DER prefix of an Ed25519 SubjectPublicKeyInfo; the raw 32-byte key follows. */
const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

export class KeyError extends Error {
  constructor(message: string) { super(message); this.name = 'KeyError'; }
}

/** The raw public key as people and kernel command lines carry it. */
export const keyText = (raw: Uint8Array): string => Buffer.from(raw).toString('base64url');

/** Short, readable fingerprint of a public key (SHA-256, first 8 bytes). */
export function fingerprint(raw: Uint8Array): string {
  return createHash('sha256').update(raw).digest('hex').slice(0, 16).match(/..../g)!.join(':');
}

export interface Signer {
  readonly publicKey: Uint8Array;
  sign(data: Uint8Array): Uint8Array;
}

export interface Verifier {
  readonly publicKey: Uint8Array;
  verify(data: Uint8Array, signature: Uint8Array): boolean;
}

function signerOf(key: KeyObject): Signer {
  const der = createPublicKey(key).export({ format: 'der', type: 'spki' });
  const publicKey = new Uint8Array(der.subarray(der.length - KEY_BYTES));
  return { publicKey, sign: (data) => new Uint8Array(sign(null, data, key)) };
}

export function verifierOf(raw: Uint8Array): Verifier {
  if (raw.length !== KEY_BYTES) throw new KeyError(`an Ed25519 public key has ${KEY_BYTES} bytes, got ${raw.length}`);
  const key = createPublicKey({ key: Buffer.concat([SPKI_PREFIX, raw]), format: 'der', type: 'spki' });
  return {
    publicKey: raw,
    verify: (data, signature) => signature.length === SIGNATURE_BYTES && verify(null, data, key, signature),
  };
}

/** A new key pair: the private key as PEM, the public key as text. */
export function generateKey(): { pem: string; publicText: string; fingerprint: string } {
  const { privateKey } = generateKeyPairSync('ed25519');
  const s = signerOf(privateKey);
  return { pem: privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(), publicText: keyText(s.publicKey), fingerprint: fingerprint(s.publicKey) };
}

export function loadSigner(path: string): Signer {
  let key: KeyObject;
  try {
    key = createPrivateKey(readFileSync(path));
  } catch (e) {
    throw new KeyError(`${path}: not a private key (${(e as Error).message})`);
  }
  if (key.asymmetricKeyType !== 'ed25519') throw new KeyError(`${path}: an ${key.asymmetricKeyType} key; MUST signs with Ed25519 (must keygen)`);
  return signerOf(key);
}

/** A public key given as base64url text (the kernel's must.key=) or as a file holding that text. */
export function parseTrust(spec: string): Verifier {
  let text = spec.trim();
  if (text.includes('/') || text.endsWith('.pub')) {
    try { text = readFileSync(text, 'utf8').trim(); } catch (e) { throw new KeyError(`${spec}: ${(e as Error).message}`); }
  }
  const raw = Buffer.from(text, 'base64url');
  if (raw.length !== KEY_BYTES || keyText(raw) !== text.replace(/=+$/, '')) throw new KeyError(`"${spec}" is not a MUST public key (${KEY_BYTES} bytes, base64url)`);
  return verifierOf(new Uint8Array(raw));
}

/** The hash AUTH carries for a packet: SHA-256 of its number (48 bits) and payload, first 16 bytes. */
export function packetHash(packet: number, payload: Uint8Array | Uint8Array[]): Uint8Array {
  const h = createHash('sha256');
  const n = Buffer.alloc(6);
  n.writeUIntBE(packet, 0, 6);
  h.update(n);
  for (const p of Array.isArray(payload) ? payload : [payload]) h.update(p);
  return new Uint8Array(h.digest().subarray(0, PACKET_HASH_BYTES));
}

/** Fill the last 64 bytes of `bytes` with the signature of everything before them. */
export function signTrailer(bytes: Uint8Array, signer: Signer): Uint8Array {
  bytes.set(signer.sign(bytes.subarray(0, bytes.length - SIGNATURE_BYTES)), bytes.length - SIGNATURE_BYTES);
  return bytes;
}

/** Whether the last 64 bytes of `bytes` sign everything before them. */
export function trailerValid(bytes: Uint8Array, v: Verifier): boolean {
  if (bytes.length <= SIGNATURE_BYTES) return false;
  return v.verify(bytes.subarray(0, bytes.length - SIGNATURE_BYTES), bytes.subarray(bytes.length - SIGNATURE_BYTES));
}

/**
 * The signed AUTH for object packets [first, first+count) of a session; `payload` gives each packet's
 * bytes (as one or more views), or undefined when they are not at hand yet (then so is the AUTH).
 */
export function buildAuth(geo: Geometry, session: number, first: number, count: number, signer: Signer,
  payload: (span: Span, packet: number) => Uint8Array | Uint8Array[] | undefined): Uint8Array | undefined {
  const hashes = new Uint8Array(count * PACKET_HASH_BYTES);
  for (let i = 0; i < count; i++) {
    const bytes = payload(geo.span(first + i), first + i);
    if (!bytes) return undefined;
    hashes.set(packetHash(first + i, bytes), i * PACKET_HASH_BYTES);
  }
  return signTrailer(encode({ type: MsgType.Auth, session, first, hashes, signature: new Uint8Array(SIGNATURE_BYTES) }), signer);
}
