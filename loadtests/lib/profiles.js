// Named load profiles and the SLO thresholds every scenario is judged by.
//
// Closed model (smoke, load, stress): a fixed number of users, each waiting for its answer
// before the next request, the usual way load tests are written. When the server slows down,
// these users slow down with it, so they hide overload. Open model (capacity, target, rate):
// requests arrive at a set rate whatever the server does, like real signups; when the server
// cannot keep up k6 runs out of VUs and counts `dropped_iterations`, which is why every open
// profile has a threshold on it.
import { duration, number, seconds } from './config.js';

// The SLO, in the one file the bench reads too (lab/bench/_plan.py): p95Ms, 95 % of valid
// signups answered within this many ms; errorRate, the share of requests that may fail (5xx,
// timeouts, wrong answers); droppedShare, the share of planned arrivals that may be dropped
// for lack of VUs. open() resolves the path from this module's folder.
export const SLO = JSON.parse(open('./slo.json'));

export const SUMMARY_TREND_STATS = ['avg', 'min', 'med', 'max', 'p(90)', 'p(95)', 'p(99)'];

// The SLO as k6 thresholds. `abort` stops the run once the SLO is broken (after `grace`, so
// the first slow requests of a cold start do not end it). `planned` arrivals (open model)
// bound dropped_iterations to SLO.droppedShare of them.
export function sloThresholds({ abort = false, grace = '10s', planned = 0, latencyMs = SLO.p95Ms } = {}) {
  const rule = (threshold) => (abort ? { threshold, abortOnFail: true, delayAbortEval: grace } : threshold);
  const thresholds = {
    'http_req_duration{kind:valid}': [rule(`p(95)<${latencyMs}`)],
    'http_req_failed{name:POST /signup}': [rule(`rate<${SLO.errorRate}`)],
    checks: [`rate>${1 - SLO.errorRate}`],
  };
  if (planned > 0) thresholds.dropped_iterations = [`count<=${Math.floor(planned * SLO.droppedShare)}`];
  return thresholds;
}

// VUs an open-model scenario may need: rate x latency (Little's law) with room for a slow
// moment. Capped so an overloaded server cannot make k6 eat the machine's memory.
// Allocating a VU mid-run takes a moment, so enough are made up front (PRE_VUS) for requests
// of 100 ms, the SLO's edge. `allUpFront`: every VU is made before the run, for a scenario
// that may drop no arrival at all: the 1M target dropped 246 of 1,000,000 while k6 was
// adding VUs during a 0.3 s stall, with its p95 at 7 ms.
function vusFor(ratePerSecond, allUpFront = false) {
  const maxVUs = number('MAX_VUS', Math.min(3000, Math.max(50, Math.ceil(ratePerSecond * 0.5))), 1, 20000);
  const fallback = allUpFront ? maxVUs : Math.max(10, Math.ceil(ratePerSecond * 0.1));
  const pre = number('PRE_VUS', fallback, 1, 20000);
  return { preAllocatedVUs: Math.min(maxVUs, pre), maxVUs };
}

export function smoke() {
  return {
    scenarios: { smoke: { executor: 'constant-vus', vus: number('VUS', 5, 1, 1000), duration: duration('DURATION', '30s') } },
    thresholds: sloThresholds(),
  };
}

export function load() {
  return {
    scenarios: {
      load: {
        executor: 'ramping-vus',
        startVUs: 0,
        stages: [
          { duration: '30s', target: 20 },
          { duration: '1m', target: 100 },
          { duration: '2m', target: 100 },
          { duration: '30s', target: 0 },
        ],
        gracefulRampDown: '10s',
      },
    },
    thresholds: sloThresholds(),
  };
}

export function stress() {
  // Past the knee on purpose: the SLO here is "degrades, does not fall over".
  return {
    scenarios: {
      stress: {
        executor: 'ramping-vus',
        startVUs: 0,
        stages: [
          { duration: '1m', target: 500 },
          { duration: '1m', target: 1000 },
          { duration: '2m', target: 3000 },
          { duration: '1m', target: 3000 },
          { duration: '1m', target: 0 },
        ],
        gracefulRampDown: '30s',
      },
    },
    thresholds: {
      'http_req_duration{kind:valid}': ['p(95)<1000'],
      'http_req_failed{name:POST /signup}': ['rate<0.01'],
      checks: ['rate>0.99'],
    },
  };
}

// Capacity: arrival-rate steps (STEPS=50,100,... per second, each held STEP_DURATION after a
// RAMP), stopping early once p95 or errors break the SLO. The default doubles: it is the
// coarse pass of `make load-test-capacity`'s search (lab/loadtest/_capacity.py's COARSE).
export function capacityPlan() {
  const raw = __ENV.STEPS || '50,100,200,400,800,1600,3200,6400';
  const rates = raw.split(',').map((s) => Number(s.trim()));
  if (rates.some((r) => !Number.isInteger(r) || r < 1) || rates.some((r, i) => i > 0 && r <= rates[i - 1])) {
    throw new Error(`STEPS=${raw}: increasing whole arrival rates per second, like 100,200,400`);
  }
  const hold = seconds(duration('STEP_DURATION', '30s'));
  const ramp = seconds(duration('RAMP', '5s'));
  const steps = [];
  let t = 0;
  let prev = rates[0];
  for (const rate of rates) {
    steps.push({ rate, from: t + ramp, to: t + ramp + hold, planned: rate * hold + ((rate + prev) / 2) * ramp });
    t += ramp + hold;
    prev = rate;
  }
  return { rates, hold, ramp, steps };
}

export function capacity() {
  const plan = capacityPlan();
  const stages = [];
  for (const rate of plan.rates) {
    stages.push({ target: rate, duration: `${plan.ramp}s` }, { target: rate, duration: `${plan.hold}s` });
  }
  const planned = plan.steps.reduce((sum, s) => sum + s.planned, 0);
  const thresholds = sloThresholds({ abort: true, grace: `${plan.ramp + plan.hold}s`, planned });
  // One non-aborting threshold per step, so the summary holds each step's own numbers.
  for (const s of plan.steps) {
    thresholds[`http_req_duration{step:${s.rate}}`] = [`p(95)<${SLO.p95Ms}`];
    thresholds[`http_req_failed{step:${s.rate}}`] = [`rate<${SLO.errorRate}`];
    thresholds[`http_reqs{step:${s.rate}}`] = ['count>=0'];
  }
  return {
    scenarios: {
      capacity: {
        executor: 'ramping-arrival-rate',
        startRate: plan.rates[0],
        timeUnit: '1s',
        stages,
        ...vusFor(plan.rates[plan.rates.length - 1]),
      },
    },
    thresholds,
  };
}

// TARGET=1k|100k|1m: exactly that many signups at a fixed rate.
export const TARGETS = {
  '1k': { total: 1000, minutes: 1 },
  '100k': { total: 100000, minutes: 10 },
  '1m': { total: 1000000, minutes: 10 },
};

function targetPlan() {
  const plan = TARGETS[(__ENV.TARGET || '').toLowerCase()];
  if (!plan) throw new Error(`TARGET=${__ENV.TARGET || ''}: use 1k, 100k or 1m`);
  return plan;
}

export function targetTotal() {
  return targetPlan().total;
}

export function target() {
  const plan = targetPlan();
  const perMinute = plan.total / plan.minutes;
  return {
    scenarios: {
      target: {
        executor: 'constant-arrival-rate',
        // Per minute, not per second: 1k in 1 minute is 16.7/s, which is not a whole number.
        rate: perMinute,
        timeUnit: '1m',
        duration: `${plan.minutes}m`,
        ...vusFor(perMinute / 60, true),
      },
    },
    thresholds: {
      ...sloThresholds(),
      // The target is met only if every planned signup was sent and acknowledged.
      dropped_iterations: ['count==0'],
      signups_acknowledged: [`count==${plan.total}`],
    },
  };
}

// One constant arrival rate (RATE per second for DURATION): the bench's measuring step.
export function rate() {
  const perSecond = number('RATE', 0, 1, 100000);
  if (!perSecond) throw new Error('RATE is required: arrivals per second, like RATE=500');
  const length = duration('DURATION', '30s');
  return {
    scenarios: {
      rate: { executor: 'constant-arrival-rate', rate: perSecond, timeUnit: '1s', duration: length, ...vusFor(perSecond) },
    },
    thresholds: sloThresholds({ planned: perSecond * seconds(length) }),
  };
}

// Overload and recovery, in one run so the two share a clock: RATE per second for DURATION,
// then a quarter of it for AFTER (the bench's shedding part: how fast the 503s come back under
// overload, and how soon after it they stop). No thresholds beyond the usual: it is read from
// its CSV output, per scenario.
export function overload() {
  const perSecond = number('RATE', 0, 4, 100000);
  if (!perSecond) throw new Error('RATE is required: arrivals per second, like RATE=3000');
  const over = duration('DURATION', '30s');
  const after = duration('AFTER', '20s');
  const quarter = Math.floor(perSecond / 4);
  return {
    scenarios: {
      over: { executor: 'constant-arrival-rate', rate: perSecond, timeUnit: '1s', duration: over, ...vusFor(perSecond) },
      after: {
        executor: 'constant-arrival-rate',
        rate: quarter,
        timeUnit: '1s',
        duration: after,
        startTime: over,
        ...vusFor(quarter),
      },
    },
    thresholds: sloThresholds(),
  };
}

// Soak: RATE per second for DURATION (30m), cut into SOAK_WINDOWS equal windows (30: one a
// minute for the full run). Every window's own p99 must stay within the SLO's latency: a
// soak fails on the minute it got worse, not on an average that hides it.
export function soakPlan() {
  const perSecond = number('RATE', 0, 1, 100000);
  if (!perSecond) throw new Error('RATE is required: arrivals per second, like RATE=1000');
  const length = seconds(duration('DURATION', '30m'));
  const windows = number('SOAK_WINDOWS', 30, 1, 120);
  if (!Number.isInteger(windows)) throw new Error(`SOAK_WINDOWS=${windows}: a whole number`);
  if (length < windows) throw new Error(`DURATION=${length}s: at least one second per window`);
  return { rate: perSecond, seconds: length, windows, windowSeconds: length / windows };
}

export function soak() {
  const plan = soakPlan();
  const thresholds = sloThresholds({ planned: plan.rate * plan.seconds });
  for (let w = 0; w < plan.windows; w += 1) {
    thresholds[`http_req_duration{kind:valid,window:${w}}`] = [`p(99)<${SLO.p95Ms}`];
    thresholds[`http_reqs{window:${w}}`] = ['count>=0']; // so the summary holds each count
  }
  return {
    scenarios: {
      soak: {
        executor: 'constant-arrival-rate',
        rate: plan.rate,
        timeUnit: '1s',
        duration: `${plan.seconds}s`,
        ...vusFor(plan.rate),
      },
    },
    thresholds,
  };
}

// Options every scenario shares.
export function options(profile) {
  return {
    ...profile,
    summaryTrendStats: SUMMARY_TREND_STATS,
    // Only the status is checked; not keeping bodies saves k6 the CPU it shares with the server.
    discardResponseBodies: true,
    setupTimeout: `${seconds(duration('READY_TIMEOUT', '30s')) + 15}s`,
  };
}
