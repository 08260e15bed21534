// A worker thread of pool.ts: runs each scenario it is sent and posts its metrics back.

import { parentPort } from 'node:worker_threads';
import { type Scenario, simulate } from './scenario.ts';

parentPort!.on('message', (s: Scenario) => parentPort!.postMessage(simulate(s)));
