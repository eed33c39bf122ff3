"""The lab's own tooling: both runtimes, the load tests, the report, the bench and installing.

Its parts (shared/lab/README.md is the map):

- base, the modules at this level: topology (a phase's compose facts), state (the native run's
  state file), runtime (what a native run knows: ports, addresses, process specs, templates),
  _proc (real server processes), _show, and cli with __main__ (`python -m lab`, behind make);
- native/: the native runtime (supervisor, components, cgroups, stack, render);
- docker/: the Docker runtime (a compose project read as a run state);
- loadtest/: the load generator (k6 scenarios, the capacity search, walls, the soak);
- report/: the dashboards drawn from Prometheus as PNGs;
- bench/: every phase measured natively in one run;
- install/: the Debian packages and the pip pins (standard library only).

Imports point down the layers only: base < native, docker < loadtest, report < bench. The
base modules import no package; native and docker import base and never each other; loadtest
imports base and docker; report imports base; bench may import any of them. install imports
nothing of lab, and nothing imports it. The one exception is cli, the entry: a base module that
imports native and docker, the two runtimes it starts and stops. No two modules import each
other, even for types only. tests/lab/test_layout.py checks all of it.
"""
