"""The lab's own tooling: native runtime, load tests, bench and report."""
