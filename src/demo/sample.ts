// A sample disk for the demo and the tests: an MBR partition table, two partitions of
// pseudo-random data with zero-filled stretches (as real disks have), deterministic by seed.

import { seeded } from '../session/rng.ts';

export function sampleDisk(size: number, seed: number): Uint8Array {
  if (size < 64 << 10 || size % 512 !== 0) throw new Error(`sample disk of ${size} bytes: want a multiple of 512, at least 64 KiB`);
  const img = new Uint8Array(size);
  const words = new Uint32Array(img.buffer);
  const r = seeded(seed);
  // Data in 64 KiB stretches; one stretch in four left zero.
  for (let i = 0; i < words.length; i++) if ((i >>> 14) % 4 !== 3) words[i] = r() * 2 ** 32;
  const mbr = img.subarray(0, 512);
  mbr.fill(0);
  const sectors = size / 512;
  const first = Math.min(2048, sectors / 8), half = Math.floor((sectors - first) / 2);
  writePartition(mbr, 0, 0x83, first, half);
  writePartition(mbr, 1, 0x07, first + half, sectors - first - half);
  new DataView(mbr.buffer, mbr.byteOffset).setUint32(440, 0x4d555354, true); // disk signature "MUST"
  mbr[510] = 0x55;
  mbr[511] = 0xaa;
  img.fill(0, 512, first * 512); // the gap before the first partition, as partitioning tools leave it
  return img;
}

function writePartition(mbr: Uint8Array, i: number, type: number, start: number, count: number): void {
  const e = 446 + 16 * i;
  const v = new DataView(mbr.buffer, mbr.byteOffset);
  mbr[e] = 0x00;
  mbr.set([0xfe, 0xff, 0xff], e + 1); // CHS "use LBA"
  mbr[e + 4] = type;
  mbr.set([0xfe, 0xff, 0xff], e + 5);
  v.setUint32(e + 8, start, true);
  v.setUint32(e + 12, count, true);
}
