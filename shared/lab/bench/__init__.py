"""`python -m lab.bench [--quick]`: every phase and its ceilings, measured natively in one run.

Phase after phase (and the HTTP ceiling: the same app with persistence switched off), each
under its compose file's CPU and memory limits, the bench finds the highest arrival rate that
holds the SLO (open model, k6 on the same host), measures latency and CPU per signup at that
rate, measures PostgreSQL's own insert and COPY rates, and writes
`docs/results/<date>-<host>.json`, a Markdown table and PNG plots.
"""
