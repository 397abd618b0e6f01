"""What the search needs from a tracker (``StudyTracker``), its no-op (``--no-tracking``), and ``open_tracker``.

``automl.tracking.Tracker`` is the MLflow one. ``open_tracker`` is the one place either is built; the rest of
the package sees only this protocol, and run ids are opaque strings to it.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from automl.config import Store

logger = logging.getLogger(__name__)


class TrialTracker(Protocol):
    """One child record per trial: started with its params, finished with its per-epoch history and state."""

    def start_trial(self, parent_id: str, number: int, params: dict[str, Any], tags: dict[str, str]) -> str: ...
    def log_image(self, run_id: str, image: Any, artifact_file: str) -> None: ...
    def finish_trial(
        self,
        run_id: str,
        state: str,
        history: list[dict[str, float]],
        summary: dict[str, float] | None = ...,
        tags: dict[str, str] | None = ...,
        error: str | None = ...,
        run_status: str | None = ...,
    ) -> None: ...


class StudyTracker(TrialTracker, Protocol):
    """A study's record outside Optuna: a parent record, its trials, the best model in a registry."""

    def attach_parent(self, run_id: str | None, tags: Mapping[str, str]) -> str: ...
    def run_exists(self, run_id: str) -> bool: ...
    def delete_runs(self) -> int: ...
    def log_study_inputs(self, parent_id: str, space_text: str, data_description: Mapping[str, Any]) -> None: ...
    def finish_study(
        self, parent_id: str, metrics: Mapping[str, float], tags: Mapping[str, str], status: str = ...
    ) -> None: ...
    def kill_trial(self, run_id: str, reason: str) -> None: ...
    def log_best_model(
        self,
        parent_id: str,
        keras_model: Any,
        model_metadata: Mapping[str, Any],
        raw_example: Any,
        register_name: str,
        networks: Mapping[str, Any] | None = None,
    ) -> tuple[str, str]: ...
    def copy_champion(self, source_name: str, name: str) -> str: ...
    def promote(self, register_name: str, version: str) -> None: ...
    def log_files(self, run_id: str, paths: Sequence[str | os.PathLike[str]], artifact_dir: str = ...) -> None: ...
    def run_tags(self, run_id: str) -> dict[str, str]: ...
    def tag_model_version(self, register_name: str, version: str, tags: Mapping[str, Any]) -> None: ...


class NoTracker:
    """Records nothing outside Optuna; the best model is saved as ``HOME/models/NAME.keras`` (no registry)."""

    def __init__(self, store: Store, study_name: str) -> None:
        self.store = store
        self.study_name = study_name

    def start_trial(self, parent_id: str, number: int, params: dict[str, Any], tags: dict[str, str]) -> str:
        return f"{parent_id}/trial-{number}"

    def log_image(self, run_id: str, image: Any, artifact_file: str) -> None:
        return None

    def finish_trial(
        self,
        run_id: str,
        state: str,
        history: list[dict[str, float]],
        summary: dict[str, float] | None = None,
        tags: dict[str, str] | None = None,
        error: str | None = None,
        run_status: str | None = None,
    ) -> None:
        return None

    def attach_parent(self, run_id: str | None, tags: Mapping[str, str]) -> str:
        return run_id or f"untracked:{self.study_name}"

    def run_exists(self, run_id: str) -> bool:
        return run_id.startswith("untracked:")

    def delete_runs(self) -> int:
        return 0

    def log_study_inputs(self, parent_id: str, space_text: str, data_description: Mapping[str, Any]) -> None:
        return None

    def finish_study(
        self, parent_id: str, metrics: Mapping[str, float], tags: Mapping[str, str], status: str = "FINISHED"
    ) -> None:
        return None

    def kill_trial(self, run_id: str, reason: str) -> None:
        return None

    def log_best_model(
        self,
        parent_id: str,
        keras_model: Any,
        model_metadata: Mapping[str, Any],
        raw_example: Any,
        register_name: str,
        networks: Mapping[str, Any] | None = None,
    ) -> tuple[str, str]:
        folder = self.store.home / "models"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{register_name}.keras"
        keras_model.save(path)
        for name, network in (networks or {}).items():
            network.save(folder / f"{register_name}.{name}.keras")
        folder.joinpath(f"{register_name}.json").write_text(json.dumps(dict(model_metadata), default=str))
        logger.info("no tracking: the best model is %s (not registered)", path)
        return str(path), "0"

    def copy_champion(self, source_name: str, name: str) -> str:
        from automl.errors import AutoMLError

        raise AutoMLError("this study runs without tracking: there is no model registry to register in")

    def promote(self, register_name: str, version: str) -> None:
        self.copy_champion(register_name, register_name)

    def log_files(self, run_id: str, paths: Sequence[str | os.PathLike[str]], artifact_dir: str = "report") -> None:
        return None

    def run_tags(self, run_id: str) -> dict[str, str]:
        return {}

    def tag_model_version(self, register_name: str, version: str, tags: Mapping[str, Any]) -> None:
        return None


def open_tracker(store: Store, study_name: str, tracking: bool = True) -> StudyTracker:
    """The study's tracker: MLflow at the store's tracking URI, or the no-op one."""
    if not tracking:
        return NoTracker(store, study_name)
    from automl.tracking import Tracker

    return Tracker(store, study_name)


__all__ = ["NoTracker", "StudyTracker", "TrialTracker", "open_tracker"]
