// handleSummary for every scenario: the k6 summary as JSON, and a text summary, written side
// by side (SUMMARY_JSON, default summary-<scenario>.json; the text goes next to it as .txt)
// and printed. Written here rather than imported from jslib.k6.io: no network at run time.
import { BASE_URL, PHASE } from './config.js';
import { capacityPlan, SLO, soakPlan } from './profiles.js';

function fmt(metric, key, value) {
  if (value === undefined || value === null) return '-';
  if (metric.contains === 'time') return value >= 1000 ? `${(value / 1000).toFixed(2)}s` : `${value.toFixed(2)}ms`;
  if (metric.contains === 'data') return value >= 1048576 ? `${(value / 1048576).toFixed(1)}MB` : `${(value / 1024).toFixed(1)}kB`;
  if (key === 'rate' && metric.type === 'rate') return `${(value * 100).toFixed(3)}%`;
  return Number.isInteger(value) ? String(value) : value.toFixed(2);
}

function metricLine(name, metric) {
  const v = metric.values;
  let text;
  if (metric.type === 'trend') {
    text = ['avg', 'med', 'p(95)', 'p(99)', 'max'].map((k) => `${k}=${fmt(metric, k, v[k])}`).join(' ');
  } else if (metric.type === 'counter') {
    text = `${fmt(metric, 'count', v.count)} (${v.rate.toFixed(1)}/s)`;
  } else if (metric.type === 'rate') {
    text = `${fmt(metric, 'rate', v.rate)} (${v.passes} of ${v.passes + v.fails})`;
  } else {
    text = `${fmt(metric, 'value', v.value)} (min ${v.min}, max ${v.max})`;
  }
  return `  ${name.padEnd(44, '.')} ${text}`;
}

// The highest capacity step whose own numbers met the SLO (per-step sub-metrics, see profiles).
// When the SLO stopped k6 early, the step it stopped in is shown too: cut short (its share is
// of the seconds it ran, not of the whole step), or broken in the ramp up to it.
export function capacityVerdict(data) {
  const plan = capacityPlan();
  // The run's length includes setup()'s health gate, a fraction of a second.
  const ran = data.state && data.state.testRunDurationMs ? data.state.testRunDurationMs / 1000 : Infinity;
  const rows = [];
  for (const step of plan.steps) {
    const reqs = data.metrics[`http_reqs{step:${step.rate}}`];
    const dur = data.metrics[`http_req_duration{step:${step.rate}}`];
    const failed = data.metrics[`http_req_failed{step:${step.rate}}`];
    if (!reqs || !reqs.values.count) {
      // The run stopped before this step served anything: in the ramp up to it, or (when
      // `ran`, which counts setup() too, passed its start) before a request of it began.
      // Either way it is where the run ended: leaving it out would make every step before it
      // look like a run that held all the way. (A run stopped by hand ends the same way: its
      // next step reads as broken, and the text says where it stopped.)
      const stopped = ran < step.from ? 'in the ramp up to it' : 'before any request of it began';
      rows.push({ rate: step.rate, from_s: step.from, requests: 0, ran_s: 0, achieved: 0, p95_ms: null, error_rate: null, ok: false, stopped });
      break;
    }
    const seconds = Math.min(plan.hold, Math.max(ran - step.from, 1));
    const cut = seconds < plan.hold - 1;
    const achieved = reqs.values.count / (step.rate * seconds);
    const p95 = dur.values['p(95)'];
    const errors = failed.values.rate;
    const ok = !cut && p95 < SLO.p95Ms && errors < SLO.errorRate && achieved >= 1 - SLO.droppedShare;
    const row = { rate: step.rate, from_s: step.from, requests: reqs.values.count, ran_s: seconds, achieved, p95_ms: p95, error_rate: errors, ok };
    if (cut) row.stopped = `cut short after ${seconds.toFixed(0)} of ${plan.hold} s`;
    rows.push(row);
    if (cut) break;
  }
  // The last step that held before the first that broke: one holding above a broken one is
  // noise, not capacity.
  const broke = rows.findIndex((r) => !r.ok);
  const held = (broke < 0 ? rows : rows.slice(0, broke)).filter((r) => r.ok);
  return { steps: rows, sustained_rate: held.length ? held[held.length - 1].rate : 0 };
}

// Each soak window's own p99 of valid signups against the SLO's latency (per-window
// sub-metrics, see profiles).
export function soakWindows(data) {
  const plan = soakPlan();
  const rows = [];
  for (let w = 0; w < plan.windows; w += 1) {
    const dur = data.metrics[`http_req_duration{kind:valid,window:${w}}`];
    const reqs = data.metrics[`http_reqs{window:${w}}`];
    const p99 = dur && Number.isFinite(dur.values['p(99)']) ? dur.values['p(99)'] : null;
    const requests = reqs ? reqs.values.count : 0;
    rows.push({ window: w, from_s: w * plan.windowSeconds, requests, p99_ms: p99, ok: p99 !== null && p99 < SLO.p95Ms });
  }
  return { rate: plan.rate, window_s: plan.windowSeconds, slo_ms: SLO.p95Ms, windows: rows };
}

function text(data, extra) {
  const lines = [`k6 ${extra.scenario} against ${BASE_URL} (${PHASE})`, ''];
  lines.push('SLO thresholds:');
  for (const [name, metric] of Object.entries(data.metrics).sort()) {
    for (const [rule, result] of Object.entries(metric.thresholds || {})) {
      lines.push(`  ${result.ok ? 'ok  ' : 'FAIL'} ${name} ${rule}`);
    }
  }
  lines.push('', 'metrics:');
  for (const [name, metric] of Object.entries(data.metrics).sort()) lines.push(metricLine(name, metric));
  if (extra.capacity) {
    lines.push('', 'capacity steps (arrivals/s: share served of the arrivals in the seconds it ran, p95, errors):');
    for (const s of extra.capacity.steps) {
      const head = `  ${String(s.rate).padStart(6)}/s:`;
      if (s.requests === 0) {
        lines.push(`${head} SLO broken ${s.stopped}`);
        continue;
      }
      const verdict = s.ok ? 'ok' : `SLO broken${s.stopped ? ` (${s.stopped})` : ''}`;
      lines.push(`${head} ${(s.achieved * 100).toFixed(1)}%  p95=${s.p95_ms.toFixed(1)}ms  errors=${(s.error_rate * 100).toFixed(3)}%  ${verdict}`);
    }
    lines.push(`  highest step within the SLO: ${extra.capacity.sustained_rate}/s`);
  }
  if (extra.soak) {
    lines.push('', `soak windows of ${extra.soak.window_s}s at ${extra.soak.rate}/s (p99 of valid signups):`);
    for (const w of extra.soak.windows) {
      const p99 = w.p99_ms === null ? '-' : `${w.p99_ms.toFixed(1)}ms`;
      lines.push(`  ${String(w.window).padStart(3)}: ${String(w.requests).padStart(7)} requests  p99=${p99}  ${w.ok ? 'ok' : 'SLO broken'}`);
    }
  }
  return `${lines.join('\n')}\n`;
}

export function summarize(scenario) {
  return (data) => {
    const extra = { scenario };
    if (scenario === 'capacity') extra.capacity = capacityVerdict(data);
    if (scenario === 'soak') extra.soak = soakWindows(data);
    data.lab = { scenario, phase: PHASE, base_url: BASE_URL, ...extra };
    const json = __ENV.SUMMARY_JSON || `summary-${scenario}.json`;
    const out = text(data, extra);
    return { stdout: out, [json]: JSON.stringify(data, null, 1), [json.replace(/\.json$/, '') + '.txt']: out };
  };
}
