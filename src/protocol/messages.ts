// The messages of MUST, independent of how they are laid out on the wire.
// docs/PROTOCOL.md is the reference; change the two together.

export const MsgType = {
  Data: 1,
  Ack: 2,
  Announce: 3,
  Join: 4,
  Welcome: 5,
  Status: 6,
  RepairRequest: 7,
  Done: 8,
  DoneAck: 9,
  Drop: 10,
  Auth: 11,
  Solicit: 12,
} as const;
export type MsgType = (typeof MsgType)[keyof typeof MsgType];

/** Data flags. */
export const DataFlag = {
  /** Last packet of its block: a receiver may acknowledge the block now. */
  Last: 0x01,
  /** A retransmission in the repair phase: never acknowledged. */
  Repair: 0x02,
  /**
   * With REPAIR: the payload is the XOR of several packets' payloads, no client having asked for two of
   * them (Caps.CodedRepairs). The packet number names the first (below CODED_LIMIT); the acked-block
   * field and the packet number's high bytes hold the others as offsets from it (codedMembers in codec.ts).
   */
  Coded: 0x04,
} as const;

/** Packets one coded repair carries at most: the first, and one for each offset byte of the header. */
export const MAX_CODED = 7;
/** How far after the first packet the others of a coded repair may lie (an offset is one byte). */
export const CODED_SPAN = 255;
/** A coded repair names its first packet in 32 bits (the high 16 carry offsets): later packets are repaired one by one. */
export const CODED_LIMIT = 2 ** 32;

export const Phase = {
  Waiting: 1,
  Transfer: 2,
  Repair: 3,
  Done: 4,
} as const;
export type Phase = (typeof Phase)[keyof typeof Phase];
export const phaseName = (p: Phase): string =>
  ({ 1: 'waiting', 2: 'transfer', 3: 'repair', 4: 'done' })[p];

export const WireMode = { Default: 1, Classic: 2 } as const;
export type WireMode = (typeof WireMode)[keyof typeof WireMode];

/** What the session carries; a client refuses a kind it was not started for. */
export const ImageKind = { Disk: 1, Files: 2 } as const;
export type ImageKind = (typeof ImageKind)[keyof typeof ImageKind];

export const ClientPhase = {
  Searching: 1,
  Waiting: 2,
  Receiving: 3,
  Repairing: 4,
  Verifying: 5,
  Verified: 6,
  Failed: 7,
} as const;
export type ClientPhase = (typeof ClientPhase)[keyof typeof ClientPhase];
export const clientPhaseName = (p: ClientPhase): string =>
  ({ 1: 'searching', 2: 'waiting', 3: 'receiving', 4: 'repairing', 5: 'verifying', 6: 'verified', 7: 'failed' })[p];

export const DoneResult = { Verified: 1, Failed: 2 } as const;
export type DoneResult = (typeof DoneResult)[keyof typeof DoneResult];

/** A client is named on the wire by 8 bytes, shown as 16 hex digits. */
export type ClientId = string;
/** Classic MTP feedback carries no client id. */
export const ANONYMOUS: ClientId = '';

export const NO_BLOCK = 0xffff_ffff;

export interface DataMsg {
  type: typeof MsgType.Data;
  session: number;
  flags: number;
  /** Packet number in the session's object (manifest first, then the image). */
  packet: number;
  /** Highest block the master holds an ACK for, echoed so that late ACKs are cancelled; NO_BLOCK if none. */
  ackedBlock: number;
  payload: Uint8Array;
}

export interface AckMsg {
  type: typeof MsgType.Ack;
  session: number;
  client: ClientId;
  block: number;
  /**
   * The acknowledging client's first-pass packets of the `sampled` blocks just before `block`
   * (`sampled` 0: of `block` itself), for the master's rate control.
   */
  received: number;
  sampled: number;
}

/** ANNOUNCE capability bits. Unknown bits are ignored by a receiver. */
export const Caps = {
  /** The stream is placed through the manifest (packed chunks, extents): nothing can be written before it is in. */
  Mapped: 0x0001,
  /** The master signs (Ed25519): ANNOUNCE and DROP end in a signature, and AUTH vouches for every data packet. */
  Signed: 0x0002,
  /** Every data payload is sealed (AES-256-GCM) under a key derived from a secret the clients must hold. */
  Sealed: 0x0004,
  /**
   * A repair that one client alone asked for goes to that client's address, not to the group; so clients
   * suppress no request of theirs by the ones they hear (the repair they would wait for may not reach them).
   */
  UnicastRepairs: 0x0008,
  /**
   * JOIN: this client decodes coded repairs (DataFlag.Coded). A master sends them only while every
   * client that joined says so; one that does not would take the XOR for the first packet.
   */
  CodedRepairs: 0x0010,
} as const;

export interface AnnounceMsg {
  type: typeof MsgType.Announce;
  session: number;
  phase: Phase;
  mode: WireMode;
  kind: ImageKind;
  caps: number;
  /** Bytes of the stream that follows the manifest. */
  imageSize: number;
  /** Bytes the target must hold (the image size unless the stream is mapped). */
  targetSize: number;
  sectorSize: number;
  payloadSize: number;
  blockPackets: number;
  manifestLength: number;
  manifestDigest: Uint8Array;
  /** Repair epoch: a client sends at most one request burst per epoch. */
  epoch: number;
  /** Index of the segment now in flight (classic SN wrap-around); 0 when unsegmented. */
  segment: number;
  /** Packets per segment; 0 = the whole object is one segment. */
  segmentPackets: number;
  dataPort: number;
  feedbackPort: number;
  clients: number;
  /**
   * The multicast TTL the master sends with (0 from a master that does not say: 1). Clients send their
   * ACKs and repair requests with it, so that across multicast routers they reach the master.
   */
  ttl: number;
  name: string;
  /** Signed sessions (Caps.Signed): the master's Ed25519 public key, a sequence number that only grows, and the signature over every byte before it. */
  signed?: { key: Uint8Array; seq: number; signature: Uint8Array };
}

/** Vouches for packets [first, first+count): a 16-byte hash of each, signed by the master. */
export interface AuthMsg {
  type: typeof MsgType.Auth;
  session: number;
  first: number;
  hashes: Uint8Array;
  signature: Uint8Array;
}

export interface JoinMsg {
  type: typeof MsgType.Join;
  session: number;
  client: ClientId;
  caps: number;
  /**
   * Prefix length of the client's network (24 for a /24; 0 unknown): with its source address it names
   * the client's LAN, which the master needs for the intra-campus rule (one ACK per LAN).
   */
  prefix: number;
  capacity: number;
  have: number;
  /** MAC of the interface the client uses ("aa:bb:cc:dd:ee:ff"; all zero if unknown). */
  mac: string;
  name: string;
}

export interface WelcomeMsg {
  type: typeof MsgType.Welcome;
  session: number;
  client: ClientId;
}

export interface StatusMsg {
  type: typeof MsgType.Status;
  session: number;
  client: ClientId;
  phase: ClientPhase;
  /** Packets held (manifest and image). */
  have: number;
  /** Next segment (from the announced one, wrapping around) in which this client misses packets; the segment count when it misses none. */
  needSegment: number;
  chunksVerified: number;
  repaired: number;
  rejected: number;
  writeErrors: number;
}

export interface PacketRange {
  start: number;
  count: number;
}

export interface RepairRequestMsg {
  type: typeof MsgType.RepairRequest;
  session: number;
  client: ClientId;
  epoch: number;
  ranges: PacketRange[];
}

export interface DoneMsg {
  type: typeof MsgType.Done;
  session: number;
  client: ClientId;
  result: DoneResult;
  digest: Uint8Array;
  reason: string;
}

export interface DoneAckMsg {
  type: typeof MsgType.DoneAck;
  session: number;
  client: ClientId;
}

export interface DropMsg {
  type: typeof MsgType.Drop;
  session: number;
  client: ClientId;
  reason: string;
  /** Present in signed sessions: Ed25519 over every byte before it. */
  signature?: Uint8Array;
}

/**
 * A client that has heard no ANNOUNCE yet asks for one (to the group's port p+1, where a master
 * with the default ports listens): a client started just after an ANNOUNCE need not wait for the
 * next. The session is unknown to it (0).
 */
export interface SolicitMsg {
  type: typeof MsgType.Solicit;
  session: number;
  client: ClientId;
}

export type Message =
  | DataMsg
  | AckMsg
  | AnnounceMsg
  | JoinMsg
  | WelcomeMsg
  | StatusMsg
  | RepairRequestMsg
  | DoneMsg
  | DoneAckMsg
  | DropMsg
  | AuthMsg
  | SolicitMsg;
