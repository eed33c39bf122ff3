// Everything a scenario reads from the environment (`k6 run -e NAME=value` or the shell), in
// one place, validated at init so a typo stops the run before the first request.

export const BASE_URL = (__ENV.BASE_URL || 'http://127.0.0.1:8080').replace(/\/+$/, '');
if (!/^https?:\/\/[^/\s:]+(:\d{1,5})?(\/\S*)?$/.test(BASE_URL)) {
  throw new Error(`BASE_URL=${BASE_URL} is not like http://127.0.0.1:8080`);
}

// Phases 1 and 2 insert the row before answering (201); phases 3 and 4 queue it (202).
// PHASE picks the expected status; EXPECT_STATUS overrides it for any other deployment.
export const PHASE = __ENV.PHASE || 'unknown';
const PHASE_STATUS = { phase1: 201, phase2: 201, phase3: 202, phase4: 202 };

function expectedStatuses() {
  if (__ENV.EXPECT_STATUS) {
    const codes = __ENV.EXPECT_STATUS.split(',').map((s) => Number(s.trim()));
    if (codes.some((c) => !(c === 201 || c === 202))) {
      throw new Error(`EXPECT_STATUS=${__ENV.EXPECT_STATUS}: use 201, 202 or 201,202`);
    }
    return codes;
  }
  if (PHASE in PHASE_STATUS) return [PHASE_STATUS[PHASE]];
  if (PHASE !== 'unknown') throw new Error(`PHASE=${PHASE}: use phase1, phase2, phase3 or phase4`);
  return [201, 202]; // no phase named: a signup is accepted either way
}
export const CREATED = expectedStatuses();

// MIX: the share of requests that are not new valid signups, so the error panels and alerts
// have something to show. `none` (default), `realistic` (5 % invalid, 2 % duplicate), or
// explicit shares like `invalid=0.1,duplicate=0.05`.
const MIX_PRESETS = { none: 'invalid=0,duplicate=0', realistic: 'invalid=0.05,duplicate=0.02' };

export function parseMix(raw) {
  const text = MIX_PRESETS[raw || 'none'] || raw;
  const mix = { invalid: 0, duplicate: 0 };
  for (const part of text.split(',')) {
    const [key, value] = part.split('=').map((s) => s.trim());
    const share = Number(value);
    if (!(key in mix) || value === undefined || value === '' || !(share >= 0 && share <= 1)) {
      throw new Error(`MIX=${raw}: use none, realistic, or invalid=0.05,duplicate=0.02`);
    }
    mix[key] = share;
  }
  if (mix.invalid + mix.duplicate > 1) throw new Error(`MIX=${raw}: shares add up to more than 1`);
  return mix;
}
export const MIX = parseMix(__ENV.MIX);

// Part of every email: letters, digits, dot and dash only, so emails stay valid.
export const RUN_ID = __ENV.RUN_ID || '';
if (!/^[A-Za-z0-9.-]{0,64}$/.test(RUN_ID)) throw new Error(`RUN_ID=${RUN_ID}: letters, digits, . and - only`);

// Pause between iterations of the closed-model scenarios (a user reading the page).
export const THINK_TIME = number('THINK_TIME', 1, 0, 60);

export function number(name, fallback, min, max) {
  const raw = __ENV[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < min || value > max) {
    throw new Error(`${name}=${raw}: expected a number from ${min} to ${max}`);
  }
  return value;
}

export function duration(name, fallback) {
  const raw = __ENV[name];
  if (raw === undefined || raw === '') return fallback;
  if (!/^(\d+(ms|s|m|h))+$/.test(raw)) throw new Error(`${name}=${raw}: use a duration like 30s or 2m`);
  return raw;
}

export function seconds(text) {
  let total = 0;
  const units = { ms: 0.001, s: 1, m: 60, h: 3600 };
  for (const [, value, unit] of text.matchAll(/(\d+)(ms|s|m|h)/g)) total += Number(value) * units[unit];
  return total;
}
