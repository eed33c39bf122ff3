// What each kind of request must be answered with. A valid signup is 201 in phases 1-2 and
// 202 in phase 3 (config.CREATED); bad input is 400; a known email is 409.
import { check } from 'k6';
import http from 'k6/http';
import { Counter } from 'k6/metrics';
import { CREATED } from './config.js';

export const EXPECTED = { valid: CREATED, invalid: [400], duplicate: [409] };

// Tell k6 which answers are not failures, so http_req_failed counts only real errors (a
// 400 for an invalid payload is the right answer, a 503 is not).
export const RESPONSE_CALLBACKS = {
  valid: http.expectedStatuses(...CREATED),
  invalid: http.expectedStatuses(400),
  duplicate: http.expectedStatuses(409),
};

// Signups the service acknowledged: after a run the database must hold exactly this many
// new rows (phase 3: once the writer has drained the stream).
export const signupsAcknowledged = new Counter('signups_acknowledged');

const NAMES = {
  valid: `signup answered ${CREATED.join(' or ')}`,
  invalid: 'invalid payload answered 400',
  duplicate: 'duplicate email answered 409',
};

export function checkSignup(kind, res) {
  const ok = check(res, { [NAMES[kind]]: (r) => EXPECTED[kind].includes(r.status) }, { kind });
  if (ok && kind === 'valid') signupsAcknowledged.add(1);
  return ok;
}
