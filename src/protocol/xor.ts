// The arithmetic of coded repairs (DataFlag.Coded): a payload is the XOR of its packets' payloads,
// and a client that holds all of them but one XORs the others out again.

/**
 * dst[at, at+src.length) ^= src. Four bytes at a time where both sides sit on a 4-byte boundary
 * (payloads of 1,452 bytes in pages and buffers that start on one do), byte by byte where not.
 */
export function xorInto(dst: Uint8Array, at: number, src: Uint8Array): void {
  const n = src.length;
  let i = 0;
  if (((dst.byteOffset + at) & 3) === 0 && (src.byteOffset & 3) === 0) {
    const words = n >>> 2;
    const d = new Int32Array(dst.buffer, dst.byteOffset + at, words), s = new Int32Array(src.buffer, src.byteOffset, words);
    for (let w = 0; w < words; w++) d[w]! ^= s[w]!;
    i = words << 2;
  }
  for (; i < n; i++) dst[at + i]! ^= src[i]!;
}
