// The simulator agrees with the real program: two scenarios on a LAN of network namespaces
// (100 Mbit/s tbf links, with and without 5% nftables loss), real master and client
// processes against the simulated machines, within bench/realcheck.ts's tolerance.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { STEAL_LIMIT, TOLERANCE, compare } from '../../bench/realcheck.ts';
import { isRoot } from './netns.ts';

const skip = isRoot() ? false : 'network namespaces need root';

// Medians of three real runs: on the shared 2-core machine, other work running beside one
// real run once made it 15.2% slower than the simulation (the real program is CPU-bound there).
// Runs during which the hypervisor stole CPU are tried again (bench/realcheck.ts); if even the
// quietest tries lost more than STEAL_LIMIT, the host, not the program, would be measured.
test('simulated completion, first pass and ACKs match the real lab within the stated tolerance', { skip, timeout: 300_000 }, async (t) => {
  const results = await compare({ size: 16, runs: 3 });
  const steal = Math.max(...results.map((c) => c.steal));
  if (steal > STEAL_LIMIT) return t.skip(`the host stole ${(steal * 100).toFixed(1)}% of the CPU even in the quietest tries: no comparison`);
  for (const c of results) {
    for (const k of Object.keys(TOLERANCE) as Array<keyof typeof TOLERANCE>) {
      assert.ok(c.worst[k] <= TOLERANCE[k], `${c.name}: ${k} differs by ${(c.worst[k] * 100).toFixed(1)}% (tolerance ${TOLERANCE[k] * 100}%): real ${JSON.stringify(c.real)}, simulated ${JSON.stringify(c.sim)}`);
    }
  }
});
