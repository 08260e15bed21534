// `must keygen`: the key pair a master signs sessions with.

import { existsSync, writeFileSync } from 'node:fs';
import { type Options, UsageError } from '../cli/args.ts';
import { generateKey } from '../protocol/auth.ts';

export async function keygen(o: Options): Promise<number> {
  const out = o.need('output', 'the private key file');
  for (const f of [out, `${out}.pub`]) if (existsSync(f)) throw new UsageError(`keygen: ${f} exists; a key is not replaced silently`);
  const k = generateKey();
  writeFileSync(out, k.pem, { mode: 0o600 });
  writeFileSync(`${out}.pub`, `${k.publicText}\n`);
  console.log(`private key ${out} (keep it on the master only)`);
  console.log(`public key  ${out}.pub: ${k.publicText}`);
  console.log(`fingerprint ${k.fingerprint}`);
  console.log(`clients: must client --trust ${out}.pub, or must.key=${k.publicText} on the kernel command line`);
  return 0;
}
