// burst: RATE signups per second for 60 s, open model (`make load-test-burst RATE=...`): the
// burst of docs/03-queue.md. Run it at 1.5 times what phase 2 held: phase 2, past its
// database's wall, slows and sheds; phase 3 takes the excess into its stream and writes it
// after. The load test then counts the rows, waiting for phase 3's writer to drain.
import { options as withDefaults, rate as profile } from './lib/profiles.js';
import { healthGate, signup } from './lib/requests.js';
import { summarize } from './lib/summary.js';

export const options = withDefaults(profile());
export const setup = healthGate;
export const handleSummary = summarize('burst');

export default function (data) {
  signup(data);
}
