// rate: one constant arrival rate, RATE per second for DURATION, open model. The bench's
// measuring step (`python -m lab.bench` runs it rate after rate); usable by hand too.
import { options as withDefaults, rate as profile } from './lib/profiles.js';
import { healthGate, signup } from './lib/requests.js';
import { summarize } from './lib/summary.js';

export const options = withDefaults(profile());
export const setup = healthGate;
export const handleSummary = summarize('rate');

export default function (data) {
  signup(data);
}
