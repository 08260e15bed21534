// The master's HTTP service for network boot: the chain script, a script per MAC from
// the boot policy, and the kernel and initramfs of the appliance.

import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { Server } from 'node:http';
import { type BootDecision, type BootPolicy, type ScriptParams, chainScript, ipxeScript } from './policy.ts';

export interface BootEvent {
  mac: string;
  ip: string;
  platform: string;
  decision: BootDecision;
}

export interface BootHttpOptions {
  address: string;
  port: number;
  policy: BootPolicy;
  script: Omit<ScriptParams, 'base'>;
  files: { vmlinuz: string; initrd: string };
  onBoot(e: BootEvent): void;
  onRequest?(line: string): void;
}

export function macFromPath(s: string): string | undefined {
  const m = /^([0-9a-f]{2})[-:]([0-9a-f]{2})[-:]([0-9a-f]{2})[-:]([0-9a-f]{2})[-:]([0-9a-f]{2})[-:]([0-9a-f]{2})$/i.exec(s);
  return m ? m.slice(1).join(':').toLowerCase() : undefined;
}

export async function startBootHttp(o: BootHttpOptions): Promise<{ server: Server; base: string; close(): Promise<void> }> {
  const base = `http://${o.address}:${o.port}`;
  // Loaded here, not imported: Node's ES module view of node:http loads its fetch library
  // (undici) with it, about 15 ms of every start of the program in a profile, and only a master
  // that boots a lab serves HTTP.
  const { createServer } = process.getBuiltinModule('node:http') as typeof import('node:http');
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', base);
    const ip = (req.socket.remoteAddress ?? '').replace(/^::ffff:/, '');
    o.onRequest?.(`${ip} ${req.method} ${url.pathname}`);
    const text = (code: number, body: string): void => {
      res.writeHead(code, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    };
    const send = (path: string): void => {
      stat(path).then((st) => {
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': st.size });
        createReadStream(path).pipe(res);
      }, () => text(404, `${url.pathname}: missing on the master\n`));
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') return text(405, 'GET only\n');
    if (url.pathname === '/boot.ipxe') return text(200, chainScript(base));
    if (url.pathname === '/vmlinuz') return send(o.files.vmlinuz);
    if (url.pathname === '/initrd.zst') return send(o.files.initrd);
    const m = /^\/ipxe\/([^/]+)$/.exec(url.pathname);
    const mac = m ? macFromPath(m[1]!) : undefined;
    if (mac) {
      const decision = o.policy.decide(mac);
      o.onBoot({ mac, ip, platform: url.searchParams.get('platform') ?? '', decision });
      return text(200, ipxeScript(decision, { ...o.script, base }));
    }
    return text(404, 'not a MUST boot path\n');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, o.address, () => { server.off('error', reject); resolve(); });
  });
  return { server, base, close: () => new Promise((r) => { server.closeAllConnections(); server.close(() => r()); }) };
}
