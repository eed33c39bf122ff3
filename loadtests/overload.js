// overload: RATE signups per second for DURATION, then a quarter of it for AFTER, open model,
// in one run (`make bench PART=shed`): the 503s under overload, and when they stop after it.
import { options as withDefaults, overload as profile } from './lib/profiles.js';
import { healthGate, signup } from './lib/requests.js';
import { summarize } from './lib/summary.js';

export const options = withDefaults(profile());
export const setup = healthGate;
export const handleSummary = summarize('overload');

export default function (data) {
  signup(data);
}
