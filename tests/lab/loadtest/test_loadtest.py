"""`python -m lab.loadtest`: its arguments, and a real bounded k6 smoke run against phase 1.

The real run proves what the numbers of the lab stand on: every valid signup k6 counted as
acknowledged is a row in PostgreSQL, no email is ever sent twice (a repeat would be a 409 and
one row fewer), across two runs, and k6's metrics reach Prometheus tagged with test id and
phase.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from lab import loadtest, state
from lab._proc import free_port
from lab.loadtest import _capacity, _k6
from lab.loadtest._k6 import Summary
from lab.loadtest._run import LoadTest
from lab.native.stack import Stack, running
from tests.conftest import child_env

CLOSED = f"http://127.0.0.1:{free_port()}"  # nothing listens: no Prometheus, no service


def _main(args: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **env: str) -> int:
    for key in ("BASE_URL", "PHASE", "TARGET", "MIX", "DURATION", "PROMETHEUS_URL", "STEPS"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("PROMETHEUS_URL", CLOSED)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    run_dir = tmp_path / "run"
    run_dir.mkdir(exist_ok=True)
    return loadtest.main(
        [*args, "--run-dir", str(run_dir), "--results-dir", str(tmp_path / "results")]
    )


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["marathon"], {"PHASE": "phase1"}, "unknown scenario 'marathon'"),
        (["target"], {"PHASE": "phase1", "TARGET": "2k"}, "TARGET='2k': use TARGET=1k, 100k"),
        (["target"], {"PHASE": "phase1"}, "TARGET='': use TARGET=1k, 100k"),
        (["smoke"], {"PHASE": "phase1", "TARGET": "1k"}, "TARGET=1k only applies to `target`"),
        (["smoke"], {"PHASE": "phase1", "BASE_URL": "localhost:8080"}, "is not an http(s) URL"),
        (["smoke"], {"PHASE": "phase1", "BASE_URL": "http://h:99999"}, "is not an http(s) URL"),
        (["smoke"], {"PHASE": "phase1", "BASE_URL": "http:///x"}, "is not an http(s) URL"),
        (["smoke"], {"PHASE": "phase9"}, "PHASE='phase9': use phase1, phase2, phase3, phase4"),
        (["smoke"], {"RUNTIME": "native"}, "no phase is running here"),
        (["smoke"], {"PHASE": "phase1", "MIX": "invalid=2"}, "MIX='invalid=2': use none"),
        (["smoke"], {"PHASE": "phase1", "MIX": "invalid=0.6,duplicate=0.6"}, "more than 1"),
        (["smoke", "--duration", "3 s"], {"PHASE": "phase1"}, "use a k6 duration like 5s"),
        (["load", "--duration", "3s"], {"PHASE": "phase1"}, "applies to smoke and soak only"),
        (["soak"], {"PHASE": "phase3"}, "the soak samples the processes of a native phase3"),
        (["capacity"], {"PHASE": "phase1", "STEPS": "100,50"}, "STEPS=100,50: increasing"),
        (["smoke"], {"PHASE": "phase1", "STEPS": "100"}, "STEPS=100 only applies to capacity"),
    ],
)
def test_bad_arguments_fail_with_one_clear_line(
    args: list[str],
    env: dict[str, str],
    message: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert _main(args, tmp_path, monkeypatch, **env) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert err.startswith("error: ")
    assert message in err
    assert not (tmp_path / "results").exists(), "nothing may be written for a bad argument"


def test_plan_passes_variables_through(tmp_path: Path) -> None:
    env = {
        "BASE_URL": "http://127.0.0.1:18080/",
        "PHASE": "phase3",
        "TARGET": "1M",
        "MIX": "invalid=0.1,duplicate=0.05",
        "PROMETHEUS_URL": CLOSED,
    }
    p = loadtest.plan("target", env, results=tmp_path, state=None)
    assert p.base_url == "http://127.0.0.1:18080"
    assert p.variables["TARGET"] == "1m"
    assert p.variables["PHASE"] == "phase3"
    assert p.variables["MIX"] == "invalid=0.1,duplicate=0.05"
    assert p.prometheus is None
    assert p.summary.name.endswith("-target-phase3.json")
    assert p.meta.name == p.summary.name.replace(".json", ".meta.json")
    again = loadtest.plan("target", env, results=tmp_path, state=None)
    assert again.variables["RUN_ID"] != p.variables["RUN_ID"], "emails must differ per run"


def _state_of(stack: Stack, run_dir: Path) -> None:
    """The state file `make phase1` would write, so detection is tested on the real format."""
    run_dir.mkdir(parents=True, exist_ok=True)
    state.write(state.path(run_dir), stack.supervisor.state())


def test_phase_url_and_prometheus_come_from_the_running_stack(
    phase1: Stack, tmp_path: Path
) -> None:
    _state_of(phase1, tmp_path)
    state = loadtest.running_stack(tmp_path)
    assert state is not None
    p = loadtest.plan("smoke", {}, results=tmp_path / "r", state=state)
    assert p.phase == "phase1"
    assert p.base_url == phase1.url
    assert p.prometheus == phase1.prometheus_url


@pytest.fixture(scope="module")
def phase1() -> Iterator[Stack]:
    # Not under pytest's tmp folder: a pytest session starting elsewhere resets
    # /tmp/pytest-of-<user> to 0700, and PostgreSQL (the postgres account) must reach its data.
    with (
        tempfile.TemporaryDirectory(prefix="lab-loadtest-") as folder,
        running("phase1", Path(folder), skip=("alertmanager", "postgres-exporter")) as stack,
    ):
        yield stack


def _smoke(run_dir: Path, results: Path) -> subprocess.CompletedProcess[str]:
    env = child_env(THINK_TIME="0.05", LOADTEST_RESULTS_DIR=str(results))
    for key in ("BASE_URL", "PHASE", "TARGET", "MIX", "PROMETHEUS_URL"):
        env.pop(key, None)
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "lab.loadtest",
            "smoke",
            "--duration",
            "3s",
            "--quiet",
            "--run-dir",
            str(run_dir),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.e2e
def test_smoke_run_persists_every_acknowledged_signup_once(phase1: Stack, tmp_path: Path) -> None:
    run_dir, results = tmp_path / "run", tmp_path / "results"
    _state_of(phase1, run_dir)
    with psycopg.connect(phase1.database_url(), autocommit=True) as conn:
        conn.execute("TRUNCATE users")

    acknowledged = 0
    metas = []
    for _ in range(2):  # two runs: emails must not repeat across runs either
        before = set(results.glob("*.meta.json")) if results.exists() else set()
        done = _smoke(run_dir, results)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
        (meta_file,) = set(results.glob("*.meta.json")) - before
        meta = json.loads(meta_file.read_text())
        assert set(meta) == {"scenario", "phase", "base_url", "started_at", "ended_at", "test_id"}
        assert meta["scenario"] == "smoke"
        assert meta["phase"] == "phase1"
        assert meta["base_url"] == phase1.url
        assert meta["started_at"] < meta["ended_at"]
        assert meta_file.name == f"{meta['test_id']}.meta.json"
        summary_file = results / f"{meta['test_id']}.json"
        assert (results / f"{meta['test_id']}.txt").read_text().startswith("k6 smoke against")
        summary = Summary.read(summary_file)
        assert summary.failed_thresholds() == []
        assert summary.acknowledged > 0
        # Every signup request was a new valid one and got its 201: none was a repeat (409).
        assert summary.count("http_reqs") == summary.acknowledged + 1  # + the /readyz gate
        assert summary.error_rate == 0
        # lab.loadtest counted this run's rows itself (it knows the database from the state).
        persisted = summary.data["lab"]["persisted"]
        assert persisted["rows"] == persisted["distinct_emails"] == summary.acknowledged
        assert persisted["missing"] == 0
        acknowledged += summary.acknowledged
        metas.append(meta)

    assert metas[0]["test_id"] != metas[1]["test_id"]
    with psycopg.connect(phase1.database_url()) as conn:
        rows, distinct = conn.execute(
            "SELECT count(*), count(DISTINCT email) FROM users"
        ).fetchone()  # type: ignore[misc]
    assert rows == distinct == acknowledged

    # k6's own metrics reached the phase's Prometheus by remote write, with both tags.
    query = f'sum(k6_signups_acknowledged_total{{testid="{metas[1]["test_id"]}",phase="phase1"}})'
    answer = httpx.get(f"{phase1.prometheus_url}/api/v1/query", params={"query": query}).json()
    (result,) = answer["data"]["result"]
    assert float(result["value"][1]) > 0


def test_k6_env_points_remote_write_at_prometheus(tmp_path: Path) -> None:
    p = loadtest.plan(
        "smoke", {"PHASE": "phase2", "PROMETHEUS_URL": CLOSED}, results=tmp_path, state=None
    )
    assert "K6_PROMETHEUS_RW_SERVER_URL" not in loadtest.k6_environment(p, os.environ)
    live = LoadTest(**{**p.__dict__, "prometheus": "http://127.0.0.1:9"})
    env = loadtest.k6_environment(live, {})
    assert env["K6_PROMETHEUS_RW_SERVER_URL"] == "http://127.0.0.1:9/api/v1/write"
    assert env["K6_PROMETHEUS_RW_TREND_STATS"] == "p(95),p(99)"


def _inspect(script: str, **env: str) -> subprocess.CompletedProcess[str]:
    """k6's own view of a script's options: runs the real init code of loadtests/<script>.js."""
    args = [str(Path(sys.executable).parent / "k6"), "inspect"]
    for key, value in env.items():
        args += ["-e", f"{key}={value}"]
    return subprocess.run(
        [*args, str(_k6.LOADTESTS / f"{script}.js")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("script", "env", "executor", "check"),
    [
        ("smoke", {}, "constant-vus", lambda s: s["vus"] == 5 and s["duration"] == "30s"),
        ("load", {}, "ramping-vus", lambda s: max(x["target"] for x in s["stages"]) == 100),
        ("stress", {}, "ramping-vus", lambda s: max(x["target"] for x in s["stages"]) == 3000),
        (
            "capacity",
            {},
            "ramping-arrival-rate",
            # k6 alone walks the search's coarse pass: a ramp and a hold per rate
            lambda s: [x["target"] for x in s["stages"][1::2]] == list(_capacity.COARSE),
        ),
        ("target", {"TARGET": "1k"}, "constant-arrival-rate", lambda s: s["rate"] == 1000),
        ("target", {"TARGET": "100k"}, "constant-arrival-rate", lambda s: s["rate"] == 10000),
        ("target", {"TARGET": "1m"}, "constant-arrival-rate", lambda s: s["rate"] == 100000),
        ("rate", {"RATE": "50"}, "constant-arrival-rate", lambda s: s["rate"] == 50),
    ],
)
def test_every_scenario_loads_with_its_profile_and_slo(
    script: str, env: dict[str, str], executor: str, check: Callable[[dict[str, Any]], bool]
) -> None:
    done = _inspect(script, **env)
    assert done.returncode == 0, done.stderr
    options = json.loads(done.stdout)
    (scenario,) = options["scenarios"].values()
    assert scenario["executor"] == executor
    assert check(scenario), scenario
    thresholds = options["thresholds"]
    assert "http_req_duration{kind:valid}" in thresholds
    assert "http_req_failed{name:POST /signup}" in thresholds
    if "arrival-rate" in executor:
        assert "dropped_iterations" in thresholds  # the open model's own SLO
    if script == "capacity":
        (rule,) = thresholds["http_req_duration{kind:valid}"]
        assert rule["abortOnFail"] is True
    if script == "target":
        total = {"1k": 1000, "100k": 100_000, "1m": 1_000_000}[env["TARGET"]]
        assert scenario["timeUnit"] == "1m0s"
        assert thresholds["signups_acknowledged"] == [f"count=={total}"]


@pytest.mark.parametrize(
    ("script", "env", "message"),
    [
        ("target", {"TARGET": "2k"}, "TARGET=2k: use 1k, 100k or 1m"),
        ("smoke", {"MIX": "lots"}, "MIX=lots: use none, realistic"),
        ("smoke", {"BASE_URL": "nope"}, "BASE_URL=nope is not like"),
        ("smoke", {"PHASE": "phase9"}, "PHASE=phase9: use phase1"),
        ("capacity", {"STEPS": "100,50"}, "STEPS=100,50: increasing"),
        ("rate", {}, "RATE is required"),
    ],
)
def test_scripts_refuse_bad_variables_by_name(
    script: str, env: dict[str, str], message: str
) -> None:
    done = _inspect(script, **env)
    assert done.returncode != 0
    assert message in done.stderr


def test_k6_judges_by_the_slo_the_bench_reads() -> None:
    # One SLO (loadtests/lib/slo.json): what k6 thresholds on is what the bench counts as held.
    from lab.bench import _plan

    thresholds = json.loads(_inspect("smoke").stdout)["thresholds"]
    assert thresholds["http_req_duration{kind:valid}"] == [f"p(95)<{_plan.P95_MS:g}"]
    assert thresholds["http_req_failed{name:POST /signup}"] == [f"rate<{_plan.ERROR_RATE:g}"]
    # The dropped share too: 100/s for the default 30 s plans 3,000 arrivals.
    rate = json.loads(_inspect("rate", RATE="100").stdout)["thresholds"]
    assert rate["dropped_iterations"] == [f"count<={int(3000 * _plan.DROPPED_SHARE)}"]
    # Read from the file, not written again in JavaScript.
    profiles = (_k6.LOADTESTS / "lib" / "profiles.js").read_text()
    assert "export const SLO = JSON.parse(open('./slo.json'));" in profiles


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("MIX", "none"),
        ("MIX", "realistic"),
        ("MIX", "invalid=0.1,duplicate=0.05"),
        ("MIX", "invalid=2"),
        ("MIX", "invalid=0.6,duplicate=0.6"),
        ("MIX", "lots"),
        ("BASE_URL", "http://127.0.0.1:8081"),
        ("BASE_URL", "https://example.test/prefix"),
        ("BASE_URL", "ftp://127.0.0.1"),
        ("BASE_URL", "127.0.0.1:8080"),
        ("DURATION", "5s"),
        ("DURATION", "1m30s"),
        ("DURATION", "5 seconds"),
    ],
)
def test_python_and_k6_accept_and_refuse_the_same_values(name: str, value: str) -> None:
    """`make load-test*` checks the variables before k6 starts (a clear line, no k6 start-up);
    `k6 run` alone checks them in config.js. The two must draw the same line."""
    env = {"PHASE": "phase1", "PROMETHEUS_URL": CLOSED, name: value}
    try:
        loadtest.plan("smoke", env, results=Path("/nonexistent"), state=None)
        python_accepts = True
    except loadtest.UsageError:
        python_accepts = False
    k6_accepts = _inspect("smoke", **{name: value}).returncode == 0
    assert python_accepts == k6_accepts


@pytest.mark.parametrize(
    "steps", ["100,200,400", "5", " 50, 100", "100,50", "100,100", "0,5", "1.5", "a"]
)
def test_python_and_k6_accept_and_refuse_the_same_steps(steps: str) -> None:
    env = {"PHASE": "phase1", "PROMETHEUS_URL": CLOSED, "STEPS": steps}
    try:
        loadtest.plan("capacity", env, results=Path("/nonexistent"), state=None)
        python_accepts = True
    except loadtest.UsageError:
        python_accepts = False
    assert python_accepts == (_inspect("capacity", STEPS=steps).returncode == 0)


@pytest.mark.e2e
def test_a_capacity_run_without_steps_searches_and_names_its_wall(
    phase1: Stack, tmp_path: Path
) -> None:
    """The search for real, with steps of two seconds: a coarse pass, a fine pass between its
    last held and first broken rate, and the wall read from the supervisor's cgroups."""
    run_dir, results = tmp_path / "run", tmp_path / "results"
    _state_of(phase1, run_dir)
    env = child_env(LOADTEST_RESULTS_DIR=str(results), STEP_DURATION="2s", RAMP="1s")
    for key in ("BASE_URL", "PHASE", "TARGET", "MIX", "PROMETHEUS_URL", "STEPS"):
        env.pop(key, None)
    done = subprocess.run(
        [sys.executable, "-m", "lab.loadtest", "capacity", "--quiet", "--run-dir", str(run_dir)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    out = done.stdout + done.stderr
    (meta_file,) = results.glob("*.meta.json")
    meta = json.loads(meta_file.read_text())
    answer = json.loads((results / f"{meta['test_id']}.json").read_text())["lab"]
    held, broke = answer["capacity"]["sustained_rate"], answer["capacity"]["broke_at"]
    # The machine decides the rates; the shape is the test's: a broken coarse step, and a
    # fine pass walked between the rates around it.
    coarse = json.loads((results / meta["passes"]["coarse"]).read_text())["lab"]
    coarse_rates = [s["rate"] for s in coarse["capacity"]["steps"]]
    assert coarse_rates == list(_capacity.COARSE[: len(coarse_rates)])
    first_broken = next(s["rate"] for s in coarse["capacity"]["steps"] if not s["ok"])
    fine = json.loads((results / meta["passes"]["fine"]).read_text())["lab"]
    coarse_held = coarse["capacity"]["sustained_rate"]
    assert (
        fine["capacity"]["steps"][0]["rate"] == _capacity.fine_steps(coarse_held, first_broken)[0]
    )
    assert broke is not None
    assert held < broke <= first_broken
    # Every pass counted its own rows: none missing.
    assert coarse["persisted"]["missing"] == fine["persisted"]["missing"] == 0
    # The wall: the step that broke, judged from the app's and the database's own cgroups
    # under the compose limits (1 CPU each).
    windows = {w["label"]: w for w in answer["wall"]["windows"]}
    assert windows["broke"]["rate"] == broke
    assert windows["broke"]["services"]["app"]["quota_cores"] == pytest.approx(1.0)
    assert windows["broke"]["services"]["db"]["quota_cores"] == pytest.approx(1.0)
    assert windows["broke"]["services"]["app"]["cores"] > 0
    assert answer["wall"]["limited_by"] == windows["broke"]["limited_by"]
    if held:
        assert done.returncode == 0, out[-3000:]
        assert f"capacity: held {held}/s within the SLO; it broke at {broke}/s." in out
    else:
        assert done.returncode == 1, out[-3000:]
    assert "\n  limited by " in out


def _capacity_verdict_with(tmp_path: Path, p95: dict[int, float]) -> dict[str, Any]:
    """The three steps run through, each at its whole count, with these p95s (ms)."""
    return _capacity_verdict(tmp_path, 75_000, {100: 2000, 200: 4000, 400: 8000}, p95)


def _capacity_verdict(
    tmp_path: Path, run_ms: int, counts: dict[int, int], p95: dict[int, float] | None = None
) -> dict[str, Any]:
    """loadtests/lib/summary.js's capacityVerdict, run by k6 on a summary in the shape k6
    hands to handleSummary: three 20 s steps with 5 s ramps, stopped after `run_ms`."""
    metrics: dict[str, Any] = {}
    for rate, count in counts.items():
        latency = (p95 or {}).get(rate, 20.0)
        metrics[f"http_reqs{{step:{rate}}}"] = {"values": {"count": count}}
        metrics[f"http_req_duration{{step:{rate}}}"] = {"values": {"p(95)": latency}}
        metrics[f"http_req_failed{{step:{rate}}}"] = {"values": {"rate": 0.0}}
    data = {"metrics": metrics, "state": {"testRunDurationMs": run_ms}}
    script = tmp_path / "verdict.js"
    script.write_text(
        f"import {{ capacityVerdict }} from '{_k6.LOADTESTS / 'lib' / 'summary.js'}';\n"
        "export const options = { iterations: 1, vus: 1 };\n"
        "export default function () {}\n"
        f"export function handleSummary() {{ return {{ stdout: JSON.stringify("
        f"capacityVerdict({json.dumps(data)})) }}; }}\n"
    )
    env = {"PATH": os.environ["PATH"], "STEPS": "100,200,400", "STEP_DURATION": "20s"}
    done = subprocess.run(
        [_k6.binary(), "run", "--quiet", "--no-usage-report", str(script)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    verdict: dict[str, Any] = json.loads(done.stdout)
    return verdict


def test_a_step_k6_stopped_in_is_shown_with_its_share_of_the_time_it_ran(tmp_path: Path) -> None:
    # Step 200 runs from 30 s to 50 s; k6 stopped at 37 s: 7 s of 200/s, all served.
    verdict = _capacity_verdict(tmp_path, 37_000, {100: 2000, 200: 1400})
    held, cut = verdict["steps"]
    assert held["ok"]
    assert cut["achieved"] == pytest.approx(1.0)
    assert not cut["ok"]
    assert cut["stopped"] == "cut short after 7 of 20 s"
    assert verdict["sustained_rate"] == 100


def test_a_step_k6_stopped_in_the_ramp_to_is_shown_as_broken(tmp_path: Path) -> None:
    verdict = _capacity_verdict(tmp_path, 27_000, {100: 2000})
    assert [s["rate"] for s in verdict["steps"]] == [100, 200]
    assert verdict["steps"][1]["stopped"] == "in the ramp up to it"
    assert verdict["sustained_rate"] == 100


def test_a_step_the_run_reached_without_a_request_of_it_is_broken(tmp_path: Path) -> None:
    """k6's run time counts setup() too, so a run stopped in the ramp can read as past the
    next step's start (seen in CI: 100/s held, then nothing tagged 200, and the verdict said
    every step held). The step with no request is where the run broke, whatever the clock."""
    verdict = _capacity_verdict(tmp_path, 30_200, {100: 2000})
    assert [(s["rate"], s["ok"]) for s in verdict["steps"]] == [(100, True), (200, False)]
    assert verdict["steps"][1]["stopped"] == "before any request of it began"
    assert verdict["sustained_rate"] == 100


@pytest.mark.parametrize(
    ("steps", "held", "code", "said"),
    [
        ([(100, True), (200, False)], 100, 0, "held 100/s within the SLO; it broke at 200/s"),
        ([(100, True), (200, True)], 200, 0, "every step held, up to 200/s: try higher STEPS"),
        ([(400, False)], 0, 1, "broke at the first step (400/s), so no rate held"),
    ],
)
def test_a_capacity_run_ends_with_its_answer(
    steps: list[tuple[int, bool]],
    held: int,
    code: int,
    said: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    rows = [{"rate": rate, "ok": ok} for rate, ok in steps]
    summary = {"lab": {"capacity": {"steps": rows, "sustained_rate": held}}}
    assert _capacity.result(summary, Path("s.json")) == code
    out = capsys.readouterr()
    assert said in out.out + out.err
    if code:
        assert "STEPS=50,100,150,200,300" in out.err, "says what to try instead"


def test_the_burst_is_rate_for_a_minute(tmp_path: Path) -> None:
    env = {"PHASE": "phase3", "PROMETHEUS_URL": CLOSED, "RATE": "900"}
    p = loadtest.plan("burst", env, results=tmp_path, state=None)
    assert (p.variables["RATE"], p.variables["DURATION"]) == ("900", "60s")
    done = _inspect("burst", RATE=p.variables["RATE"], DURATION=p.variables["DURATION"])
    assert done.returncode == 0, done.stderr
    (scenario,) = json.loads(done.stdout)["scenarios"].values()
    assert (scenario["executor"], scenario["rate"], scenario["duration"]) == (
        "constant-arrival-rate",
        900,
        "1m0s",
    )


@pytest.mark.parametrize("rate", ["", "0", "fast", "-5"])
def test_the_burst_needs_a_rate(rate: str, tmp_path: Path) -> None:
    env = {"PHASE": "phase3", "PROMETHEUS_URL": CLOSED, "RATE": rate}
    with pytest.raises(loadtest.UsageError, match="the burst needs arrivals per second"):
        loadtest.plan("burst", env, results=tmp_path, state=None)


def test_a_step_that_held_above_a_broken_one_is_not_the_capacity(tmp_path: Path) -> None:
    """1,600/s broke on p95 and 1,800/s then held (seen in a run): the wall is the first break."""
    verdict = _capacity_verdict(tmp_path, 75_000, {100: 2000, 200: 4000, 400: 8000})
    assert verdict["sustained_rate"] == 400
    broken = _capacity_verdict_with(tmp_path, {200: 500.0})
    assert [s["ok"] for s in broken["steps"]] == [True, False, True]
    assert broken["sustained_rate"] == 100
