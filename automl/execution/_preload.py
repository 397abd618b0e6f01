"""Preloaded by the pool's forkserver: Keras (and its backend) and the families imported once, before any fork."""

from __future__ import annotations

from automl.logs import import_backend_quietly, quiet_libraries

quiet_libraries()
import_backend_quietly()

import automl.execution.worker  # noqa: E402
import automl.families  # noqa: E402,F401
