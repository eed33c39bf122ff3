// HTTP helpers every scenario shares: the signup call and the setup() health gate.
import exec from 'k6/execution';
import http from 'k6/http';
import { sleep } from 'k6';
import { BASE_URL, RUN_ID, duration, seconds } from './config.js';
import { checkSignup, RESPONSE_CALLBACKS } from './checks.js';
import { newRunId, nextSignup, remember } from './payloads.js';

const HEADERS = { 'Content-Type': 'application/json' };
const TIMEOUT = duration('REQUEST_TIMEOUT', '10s');
const PARAMS = {};
for (const kind of Object.keys(RESPONSE_CALLBACKS)) {
  PARAMS[kind] = {
    headers: HEADERS,
    timeout: TIMEOUT,
    responseCallback: RESPONSE_CALLBACKS[kind],
    // `name` groups every signup under one URL; `kind` lets thresholds and panels split
    // valid signups from the deliberate bad input of the mix.
    tags: { name: 'POST /signup', kind },
  };
}

// One signup of the configured mix, checked. `data` is what setup() returned.
export function signup(data) {
  const req = nextSignup(data.runId);
  const res = http.post(`${BASE_URL}/signup`, req.body, PARAMS[req.kind]);
  remember(req, checkSignup(req.kind, res));
  return res;
}

// setup(): wait (with a deadline) until the service says it is ready, then hand every VU
// the run id that keeps emails unique across runs. `startedAt` (the scenario starts right
// after) reaches the summary as setup_data: lab.loadtest cuts its CPU readings at the steps.
export function healthGate() {
  const deadline = Date.now() + seconds(duration('READY_TIMEOUT', '30s')) * 1000;
  let last = 'no answer';
  while (Date.now() < deadline) {
    const res = http.get(`${BASE_URL}/readyz`, { timeout: '2s', tags: { name: 'GET /readyz' } });
    if (res.status === 200) return { runId: RUN_ID || newRunId(), startedAt: Date.now() };
    last = res.status === 0 ? res.error : `HTTP ${res.status}`;
    sleep(0.5); // between polls of a real condition, not instead of one
  }
  exec.test.abort(`${BASE_URL}/readyz not ready: ${last}`);
  return {};
}
