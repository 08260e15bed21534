// `must keygen`: the key pair a master signs sessions with.

import { existsSync, writeFileSync } from 'node:fs';
import { type Options, UsageError } from '../cli/args.ts';
import { generateKey } from '../protocol/auth.ts';
import { newSecret } from '../protocol/secret.ts';

export async function keygen(o: Options): Promise<number> {
  const out = o.need('output', 'the private key file');
  const secret = o.flag('secret');
  for (const f of secret ? [out] : [out, `${out}.pub`]) if (existsSync(f)) throw new UsageError(`keygen: ${f} exists; a key is not replaced silently`);
  if (secret) {
    writeFileSync(out, `${newSecret()}\n`, { mode: 0o600 });
    console.log(`secret ${out}: give the same file to the master and the clients (--secret ${out}); anyone holding it can read the sessions`);
    return 0;
  }
  const k = generateKey();
  writeFileSync(out, k.pem, { mode: 0o600 });
  writeFileSync(`${out}.pub`, `${k.publicText}\n`);
  console.log(`private key ${out} (keep it on the master only)`);
  console.log(`public key  ${out}.pub: ${k.publicText}`);
  console.log(`fingerprint ${k.fingerprint}`);
  console.log(`clients: must client --trust ${out}.pub, or must.key=${k.publicText} on the kernel command line`);
  return 0;
}
