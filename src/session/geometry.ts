// How a session's object is cut into packets, blocks, segments and chunks.
// The object is the manifest followed by the image; packets are numbered from 0
// across both, so one bitmap and one repair mechanism serve the two regions.

export interface Span {
  region: 'manifest' | 'image';
  /** Byte offset inside the region. */
  offset: number;
  length: number;
}

export class Geometry {
  readonly payloadSize: number;
  readonly blockPackets: number;
  readonly manifestLength: number;
  readonly imageSize: number;
  readonly manifestPackets: number;
  readonly imagePackets: number;
  readonly packets: number;
  readonly blocks: number;
  readonly segmentPackets: number;
  readonly segments: number;

  constructor(o: { payloadSize: number; blockPackets: number; manifestLength: number; imageSize: number; segmentPackets: number }) {
    this.payloadSize = o.payloadSize;
    this.blockPackets = o.blockPackets;
    this.manifestLength = o.manifestLength;
    this.imageSize = o.imageSize;
    this.manifestPackets = Math.ceil(o.manifestLength / o.payloadSize);
    this.imagePackets = Math.ceil(o.imageSize / o.payloadSize);
    this.packets = this.manifestPackets + this.imagePackets;
    this.blocks = Math.ceil(this.packets / o.blockPackets);
    this.segmentPackets = o.segmentPackets > 0 && o.segmentPackets < this.packets ? o.segmentPackets : this.packets;
    if (this.segmentPackets % o.blockPackets !== 0 && this.segmentPackets !== this.packets)
      throw new Error(`segment of ${this.segmentPackets} packets is not a whole number of ${o.blockPackets}-packet blocks`);
    this.segments = Math.max(1, Math.ceil(this.packets / this.segmentPackets));
  }

  span(packet: number): Span {
    if (packet < this.manifestPackets) {
      const offset = packet * this.payloadSize;
      return { region: 'manifest', offset, length: Math.min(this.payloadSize, this.manifestLength - offset) };
    }
    const offset = (packet - this.manifestPackets) * this.payloadSize;
    return { region: 'image', offset, length: Math.min(this.payloadSize, this.imageSize - offset) };
  }

  /** Whether `packet` carries a whole payload's worth of image bytes (every image packet but a short last one). */
  isFullImagePacket(packet: number): boolean {
    return packet >= this.manifestPackets && (packet - this.manifestPackets + 1) * this.payloadSize <= this.imageSize;
  }

  blockOf(packet: number): number { return Math.floor(packet / this.blockPackets); }
  blockStart(block: number): number { return block * this.blockPackets; }
  blockEnd(block: number): number { return Math.min((block + 1) * this.blockPackets, this.packets); }
  isLastOfBlock(packet: number): boolean { return packet + 1 === this.blockEnd(this.blockOf(packet)); }

  segmentOf(packet: number): number { return Math.floor(packet / this.segmentPackets); }
  segmentStart(s: number): number { return s * this.segmentPackets; }
  segmentEnd(s: number): number { return Math.min((s + 1) * this.segmentPackets, this.packets); }

  /** Object packets [first, end) that carry bytes of image range [offset, offset+length). */
  imagePacketsOf(offset: number, length: number): { first: number; end: number } {
    const first = this.manifestPackets + Math.floor(offset / this.payloadSize);
    const end = this.manifestPackets + Math.ceil(Math.min(offset + length, this.imageSize) / this.payloadSize);
    return { first, end };
  }
}
