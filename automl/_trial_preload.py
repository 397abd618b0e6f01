"""Preloaded by the pool's forkserver: Keras (and its backend) and the families imported once, before any fork."""

from __future__ import annotations

import gc

from automl.logs import import_backend_quietly, quiet_libraries

quiet_libraries()
import_backend_quietly()

import automl.execution.worker  # noqa: E402
import automl.families  # noqa: E402,F401

# Everything imported so far lives as long as the process: out of the cyclic collector's sight, a full collection in
# a trial process scans only what its trials made (with the libraries in view, one took ~0.6 s, a dozen times a fit)
gc.freeze()
