// Reads a pcap of a MUST session on loopback (Ethernet framing) and prints, as JSON,
// the first datagram of each message type with the fields a test checks.
import { readFileSync } from 'node:fs';
import { HEADER_LENGTH, decode } from '../src/protocol/codec.ts';
import { MsgType } from '../src/protocol/messages.ts';

const pcap = readFileSync(process.argv[2]!);
if (pcap.readUInt32LE(0) !== 0xa1b2c3d4) throw new Error('not a little-endian microsecond pcap');
const seen = new Map<number, { hex: string; type: number; fields: Record<string, number | string> }>();
for (let off = 24; off + 16 <= pcap.length;) {
  const incl = pcap.readUInt32LE(off + 8);
  const frame = pcap.subarray(off + 16, off + 16 + incl);
  off += 16 + incl;
  if (frame.readUInt16BE(12) !== 0x0800) continue;
  const ip = frame.subarray(14);
  const udp = ip.subarray((ip[0]! & 0x0f) * 4);
  let payload = udp.subarray(8, udp.readUInt16BE(4));
  let m;
  try { m = decode(payload); } catch { continue; }
  if (seen.has(m.type)) continue;
  const fields: Record<string, number | string> = {};
  for (const [k, v] of Object.entries(m)) if (typeof v === 'number' || typeof v === 'string') fields[k] = v;
  if (m.type === MsgType.Data) payload = payload.subarray(0, HEADER_LENGTH[MsgType.Data] + 64);
  seen.set(m.type, { hex: payload.toString('hex'), type: m.type, fields });
}
console.log(JSON.stringify([...seen.values()].sort((a, b) => a.type - b.type), null, 1));
