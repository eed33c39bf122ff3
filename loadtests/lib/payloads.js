// Signup bodies. A new valid email is built from the run id, the VU's id in the test and that
// VU's iteration number, so no two requests of any run ever share one: a repeated email would
// be answered 409 and silently shrink the load that reaches the database.
import exec from 'k6/execution';
import { MIX } from './config.js';

const FIRST = ['Ada', 'Grace', 'Alan', 'Edsger', 'Barbara', 'Donald', 'Frances', 'Ken'];
const LAST = ['Lovelace', 'Hopper', 'Turing', 'Dijkstra', 'Liskov', 'Knuth', 'Allen', 'Thompson'];

// Each kind of bad input the service must refuse with 400, in turn.
const INVALID = [
  '{"email": "no-at-sign", "first_name": "A", "last_name": "B"}',
  '{"first_name": "A", "last_name": "B"}',
  '{"email": "x@example.com", "first_name": "", "last_name": "B"}',
  `{"email": "x@example.com", "first_name": "A", "last_name": "${'L'.repeat(101)}"}`,
  '{"email": "x@example.com", "first_name": "A"',
  '["not", "an", "object"]',
];

// The first email this VU signed up, resent for the duplicate share of the mix (a 409).
let firstEmail = null;

export function newRunId() {
  return `${Date.now().toString(36)}${Math.floor(Math.random() * 36 ** 4).toString(36)}`;
}

export function uniqueEmail(runId) {
  // idInTest is unique across the whole test (every scenario); iterationInInstance counts
  // every iteration this VU ever ran, so the pair never repeats within a run.
  return `u-${runId}-${exec.vu.idInTest}-${exec.vu.iterationInInstance}@signup-lab.test`;
}

export function validBody(runId) {
  const n = exec.vu.iterationInInstance;
  const email = uniqueEmail(runId);
  return {
    email,
    body: JSON.stringify({
      email,
      first_name: FIRST[n % FIRST.length],
      last_name: LAST[(n + exec.vu.idInTest) % LAST.length],
    }),
  };
}

// One request of the configured mix: { kind: valid|invalid|duplicate, body, email? }.
export function nextSignup(runId) {
  const roll = Math.random();
  if (roll < MIX.invalid) {
    return { kind: 'invalid', body: INVALID[exec.vu.iterationInInstance % INVALID.length] };
  }
  if (roll < MIX.invalid + MIX.duplicate && firstEmail !== null) {
    return {
      kind: 'duplicate',
      // Upper case: duplicates are found case-insensitively.
      body: JSON.stringify({ email: firstEmail.toUpperCase(), first_name: 'Dup', last_name: 'Licate' }),
    };
  }
  const valid = validBody(runId);
  return { kind: 'valid', ...valid };
}

export function remember(signup, accepted) {
  if (accepted && signup.kind === 'valid' && firstEmail === null) firstEmail = signup.email;
}
