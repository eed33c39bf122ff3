// capacity: open model, arrival-rate steps until p95 or errors break the SLO
// (`make load-test-capacity`). Each request is tagged with its step so the summary holds the
// numbers of every step, and the text summary names the highest step that held.
import exec from 'k6/execution';
import { capacity as profile, capacityPlan, options as withDefaults } from './lib/profiles.js';
import { healthGate, signup } from './lib/requests.js';
import { summarize } from './lib/summary.js';

export const options = withDefaults(profile());
export const setup = healthGate;
export const handleSummary = summarize('capacity');

const STEPS = capacityPlan().steps;

function stepAt(seconds) {
  for (const s of STEPS) if (seconds >= s.from && seconds < s.to) return String(s.rate);
  return 'ramp'; // between steps: counted in the totals, not in any step
}

export default function (data) {
  // Time since the scenario started (setup() runs before it, so not the test's clock).
  const elapsed = (Date.now() - exec.scenario.startTime) / 1000;
  exec.vu.metrics.tags.step = stepAt(elapsed);
  signup(data);
}
