// Master mode in the appliance: make the image named on the kernel line a local path
// (a device as it is, a file on a partition mounted read-only, a download into RAM), and
// mount the CD or USB stick this machine booted from, whose kernel and initramfs boot the lab.

import { createWriteStream } from 'node:fs';
import { freemem } from 'node:os';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { APPLIANCE_VOLUME } from '../disk/inventory.ts';
import type { ImageSpec, Sys } from './init.ts';

async function mountReadOnly(sys: Sys, device: string, where: string): Promise<void> {
  await sys.mkdir(where);
  const r = await sys.run('mount', ['-r', device, where]);
  if (r.code !== 0) throw new Error(`cannot mount ${device} read-only: ${r.out.trim()}`);
}

export async function prepareImage(spec: ImageSpec, sys: Sys): Promise<string> {
  switch (spec.kind) {
    case 'device':
      return spec.path;
    case 'file': {
      let device = spec.device;
      if (!device.startsWith('/dev/')) {
        const r = await sys.run('findfs', [device]);
        if (r.code !== 0 || !r.out.trim()) throw new Error(`no partition with ${device}`);
        device = r.out.trim();
      }
      await mountReadOnly(sys, device, '/mnt/image-source');
      return `/mnt/image-source${spec.path}`;
    }
    case 'http': {
      const res = await fetch(spec.url);
      if (!res.ok || !res.body) throw new Error(`${spec.url}: HTTP ${res.status}`);
      const size = Number(res.headers.get('content-length') ?? NaN);
      // The download lives in RAM (tmpfs): keep 512 MiB for everything else.
      if (Number.isFinite(size) && size > freemem() - (512 << 20)) throw new Error(`${spec.url} is ${size} bytes; this machine has ${freemem()} bytes of free RAM to hold it`);
      sys.log(`downloading ${spec.url}${Number.isFinite(size) ? ` (${size} bytes)` : ''}`);
      const path = '/run/must-image.img';
      await pipeline(Readable.fromWeb(res.body as import('node:stream/web').ReadableStream), createWriteStream(path));
      return path;
    }
  }
}

/** Mount the appliance's boot medium (a CD, or a USB stick written with dd) and return where. */
export async function prepareApplianceDir(sys: Sys): Promise<string> {
  const r = await sys.run('findfs', [`LABEL=${APPLIANCE_VOLUME}`]);
  const device = r.out.trim();
  if (r.code !== 0 || !device) throw new Error(`no medium labelled ${APPLIANCE_VOLUME}: PXE-booting a lab needs the MUST CD or USB stick (a master booted over the network has no copy of the appliance)`);
  await mountReadOnly(sys, device, '/run/appliance');
  return '/run/appliance';
}
