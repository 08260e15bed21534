// dnsmasq, driven and supervised by the master: DHCP (a full range on an isolated
// network, or ProxyDHCP beside the lab's own server) and TFTP for the first stage. The
// master writes its configuration, reads its log into events, restarts it if it dies,
// and stops it when the session ends.

import { type ChildProcess, spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { createInterface } from 'node:readline';

export type DhcpMode = { kind: 'proxy'; subnet: string } | { kind: 'range'; start: string; end: string; mask: string };

export interface DnsmasqOptions {
  iface: string;
  address: string;
  mode: DhcpMode;
  tftpRoot: string;
  httpPort: number;
  leaseFile: string;
}

/** The configuration, pure. */
export function dnsmasqConfig(o: DnsmasqOptions): string {
  const boot = `http://${o.address}:${o.httpPort}/boot.ipxe`;
  const lines = [
    '# Written by must master --pxe; do not edit (it is rewritten at every start).',
    'port=0', // no DNS service
    `interface=${o.iface}`, 'bind-interfaces', 'log-dhcp',
    `dhcp-leasefile=${o.leaseFile}`,
    'enable-tftp', `tftp-root=${o.tftpRoot}`,
    // iPXE identifies itself with option 175; firmware PXE ROMs get iPXE first (BIOS or UEFI x86-64).
    'dhcp-match=set:ipxe,175',
    'dhcp-match=set:efi64,option:client-arch,7',
    'dhcp-match=set:efi64,option:client-arch,9',
    // UEFI HTTP boot clients (architecture 16) get an address but no boot file, so that firmware
    // which tries HTTP boot after PXE (after iPXE sent it to the disk) moves on at once.
    'dhcp-match=set:efihttp,option:client-arch,16',
  ];
  if (o.mode.kind === 'proxy') {
    lines.push(
      `dhcp-range=${o.mode.subnet},proxy`,
      'pxe-prompt="MUST",0',
      'pxe-service=tag:!ipxe,X86PC,"MUST (BIOS)",undionly.kpxe',
      'pxe-service=tag:!ipxe,tag:efi64,X86-64_EFI,"MUST (UEFI)",ipxe.efi',
      `pxe-service=tag:ipxe,X86PC,"MUST",${boot}`,
      `pxe-service=tag:ipxe,X86-64_EFI,"MUST",${boot}`,
      `dhcp-boot=tag:ipxe,${boot}`,
    );
  } else {
    lines.push(
      `dhcp-range=${o.mode.start},${o.mode.end},${o.mode.mask},1h`,
      'dhcp-boot=tag:!ipxe,tag:!efi64,tag:!efihttp,undionly.kpxe',
      'dhcp-boot=tag:!ipxe,tag:efi64,ipxe.efi',
      `dhcp-boot=tag:ipxe,${boot}`,
    );
  }
  return `${lines.join('\n')}\n`;
}

export interface DhcpLease { mac: string; ip: string; hostname: string }

/** DHCPACK lines of dnsmasq's log: "dnsmasq-dhcp[12]: DHCPACK(br0) 10.78.0.150 52:54:00:12:34:56 pc-1". */
export function parseLease(line: string): DhcpLease | undefined {
  const m = /DHCPACK\([^)]*\) (\d+\.\d+\.\d+\.\d+) ([0-9a-f:]{17})(?: (\S+))?/i.exec(line);
  return m ? { ip: m[1]!, mac: m[2]!.toLowerCase(), hostname: m[3] ?? '' } : undefined;
}

export class Dnsmasq {
  private child: ChildProcess | undefined;
  private stopping = false;
  private restarts = 0;
  private readonly o: DnsmasqOptions & { binary: string; env: Record<string, string>; configPath: string; onLine(line: string): void; onLease(l: DhcpLease): void; onExit(why: string): void };

  constructor(o: Dnsmasq['o']) { this.o = o; }

  async start(): Promise<void> {
    await writeFile(this.o.configPath, dnsmasqConfig(this.o));
    this.spawn();
  }

  private spawn(): void {
    const c = spawn(this.o.binary, ['--keep-in-foreground', '--log-facility=-', `--conf-file=${this.o.configPath}`, '--pid-file=', '--user=root'], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...this.o.env } });
    this.child = c;
    for (const s of [c.stdout!, c.stderr!]) {
      createInterface({ input: s }).on('line', (line) => {
        this.o.onLine(line);
        const lease = parseLease(line);
        if (lease) this.o.onLease(lease);
      });
    }
    c.on('error', (e) => this.o.onExit(`cannot run ${this.o.binary}: ${e.message}`));
    c.on('exit', (code, signal) => {
      if (this.stopping) return;
      // Supervised: a dnsmasq that dies is started again, a few times, then reported.
      if (++this.restarts > 5) return this.o.onExit(`dnsmasq keeps exiting (last: ${signal ?? `status ${code}`})`);
      this.o.onLine(`dnsmasq exited (${signal ?? `status ${code}`}); restarting`);
      setTimeout(() => this.spawn(), 1000);
    });
  }

  async stop(): Promise<void> {
    this.stopping = true;
    const c = this.child;
    if (!c || c.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      c.once('exit', () => resolve());
      c.kill('SIGTERM');
      setTimeout(() => { c.kill('SIGKILL'); resolve(); }, 3000);
    });
  }
}
