// soak: phase 3 for half an hour at a steady share of its sustained rate, open model
// (`make load-test-soak`; RATE and DURATION are set by lab.loadtest). Each request is tagged
// with its window (one a minute by default) so the summary holds every window's p99; the
// lab samples every service's memory at the same windows and forces a PostgreSQL checkpoint
// and a Redis AOF rewrite inside the run.
import exec from 'k6/execution';
import { options as withDefaults, soak as profile, soakPlan } from './lib/profiles.js';
import { healthGate, signup } from './lib/requests.js';
import { summarize } from './lib/summary.js';

export const options = withDefaults(profile());
export const setup = healthGate;
export const handleSummary = summarize('soak');

const PLAN = soakPlan();

export default function (data) {
  // Time since the scenario started (setup() runs before it, so not the test's clock).
  const elapsed = (Date.now() - exec.scenario.startTime) / 1000;
  const window = Math.min(PLAN.windows - 1, Math.floor(elapsed / PLAN.windowSeconds));
  exec.vu.metrics.tags.window = String(window);
  signup(data);
}
