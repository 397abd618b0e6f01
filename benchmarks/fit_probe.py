"""Preloaded into automl's trial processes by the overhead benchmark: times every ``fit`` there as in the arms.

Each timed fit appends its row (seconds, callback seconds, wall-clock start and end, fingerprint) to the file that
``AUTOML_BENCH_FIT_LOG`` names; the arm reads the rows back once its trials are done.
"""

from __future__ import annotations

from benchmarks.common import install_fit_timer

install_fit_timer()
