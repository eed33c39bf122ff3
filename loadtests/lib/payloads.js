// Signup bodies. A new valid email is built from the run id, the VU's id in the test and a
// count of the signups this VU built, so no two requests of any run ever share one: a repeated
// email would be answered 409 and silently shrink the load that reaches the database.
//
// `exec.vu` builds a fresh object on every read, and four reads a request cost k6 about
// 0.05 ms of CPU per request: as much as a third of what the service spends on a signup. The
// VU's id never changes, so it is read once; the count is this VU's own (every VU has its own
// copy of this module).
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

let vuId = 0; // idInTest: unique across the whole test (every scenario), 1 and up
let built = 0; // valid signups this VU built
let invalidSent = 0;

export function validBody(runId) {
  if (vuId === 0) vuId = exec.vu.idInTest;
  built += 1;
  const email = `u-${runId}-${vuId}-${built}@signup-lab.test`;
  return {
    email,
    body: JSON.stringify({
      email,
      first_name: FIRST[built % FIRST.length],
      last_name: LAST[(built + vuId) % LAST.length],
    }),
  };
}

// One request of the configured mix: { kind: valid|invalid|duplicate, body, email? }.
export function nextSignup(runId) {
  const roll = Math.random();
  if (roll < MIX.invalid) {
    invalidSent += 1;
    return { kind: 'invalid', body: INVALID[invalidSent % INVALID.length] };
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
