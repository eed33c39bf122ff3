// target: TARGET=1k|100k|1m signups at a fixed arrival rate (1k in 1 minute, 100k and 1M in
// 10 minutes), open model (`make load-test-target TARGET=1m`). Passes only if every one was
// sent and acknowledged within the SLO; count the rows afterwards to prove none was lost.
import exec from 'k6/execution';
import { options as withDefaults, target as profile, targetTotal } from './lib/profiles.js';
import { healthGate, signup } from './lib/requests.js';
import { summarize } from './lib/summary.js';

export const options = withDefaults(profile());
export const setup = healthGate;
export const handleSummary = summarize('target');

const TOTAL = targetTotal();

export default function (data) {
  // constant-arrival-rate may start one iteration more than rate x duration (one at each
  // end); the target is exactly TOTAL signups, so the extra one sends nothing.
  if (exec.scenario.iterationInTest >= TOTAL) return;
  signup(data);
}
