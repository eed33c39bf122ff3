"""The native runtime: a phase's compose services as local processes, without Docker.

It owns the supervisor (start in dependency order, cgroup limits, restarts, stop), the
components that turn each compose service into processes (components/), the per-service
cgroups and their cAdvisor-named metrics, the throwaway PostgreSQL cluster, the PgBouncer
exporter, `stack` (a whole phase inside a test or the bench) and `render` (the committed Docker
configs, from the same templates the native runtime renders at start).

It imports the base modules of lab (topology, state, runtime, _proc) and nothing else of lab:
not lab.docker, not the load tests, the report or the bench, which sit above it.
"""
