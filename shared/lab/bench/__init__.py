"""`python -m lab.bench [--quick]`: every phase and its ceilings, measured natively in one run.

Phase after phase (and the HTTP ceiling: the same app with persistence switched off), each
under its compose file's CPU and memory limits, the bench finds the highest arrival rate that
holds the SLO (open model, k6 on the same host), measures latency and CPU per signup at that
rate, measures PostgreSQL's own insert and COPY rates, and writes
`docs/results/<date>-<host>.json`, a Markdown table and PNG plots.

The package is the bench and its parts (run is the whole run; the modules' docstrings say what
each figure is). It is the top layer of lab: it may import any other part (the native runtime
to start phases, the load tests' k6 and wall rules, the base modules), and nothing imports it.
"""
