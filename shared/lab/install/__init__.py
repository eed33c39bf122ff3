"""Installing what the lab needs: the Debian packages (`deps`, behind `make deps` and the
first step of `make test` and a native `make phaseN`) and the pins of every pip install
(`lock`, behind `make lock`).

It imports nothing of lab and nothing outside the standard library: `deps` runs on the
system's Python (`python3 -S -m lab.install.deps`) before .venv exists, so this file must stay
a docstring. Nothing else of lab imports it.
"""
