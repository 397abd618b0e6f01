"""Preloaded by the trial forkserver: Keras (and its backend) imported once, before any child forks."""

from __future__ import annotations

from automl.logs import import_backend_quietly, quiet_libraries

quiet_libraries()
import_backend_quietly()

import automl.families  # noqa: E402
import automl.training  # noqa: E402,F401
