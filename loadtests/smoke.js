// smoke: closed model (see lib/profiles.js), the usual way load tests are written. `make load-test-smoke`
import { sleep } from 'k6';
import { THINK_TIME } from './lib/config.js';
import { smoke as profile, options as withDefaults } from './lib/profiles.js';
import { healthGate, signup } from './lib/requests.js';
import { summarize } from './lib/summary.js';

export const options = withDefaults(profile());
export const setup = healthGate;
export const handleSummary = summarize('smoke');

export default function (data) {
  signup(data);
  if (THINK_TIME > 0) sleep(THINK_TIME);
}
