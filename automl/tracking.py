"""MLflow, and only here: the study's parent run, one child run per trial, the best model and the registry."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import sqlite3
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.entities import Metric, Param, RunTag
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from automl.config import Store
from automl.errors import StoreError
from automl.sqlite_tuning import check_readable, creation_lock, save_mlflow_template, seed_mlflow_db

logger = logging.getLogger(__name__)

ROLE, STUDY, TRIAL_NUMBER, STATE = "automl.role", "automl.study", "automl.trial_number", "automl.state"
CHAMPION = "champion"
NETWORK_PREFIX = "network_"  # artifacts of the further networks in a registered model
TRUST_MODEL_CODE = "automl.trust_model_code"  # a model version tag: loaded with Keras safe_mode off
RUN_STATUS = {"COMPLETE": "FINISHED", "PRUNED": "FINISHED", "FAIL": "FAILED", "KILLED": "KILLED"}
MAX_METRICS_PER_BATCH = 1000
MAX_PARAM_LENGTH = 6000
SERVER_TIMEOUT_S = 10


def check_server(uri: str) -> None:
    """Fail fast, with the URI in the message, when a tracking server does not answer."""
    try:
        with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=SERVER_TIMEOUT_S) as response:
            if response.status >= 400:
                raise StoreError(f"MLflow tracking server {uri} answered HTTP {response.status}")
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise StoreError(f"MLflow tracking server {uri} is unreachable: {reason}") from None


# where an MLflow sqlite store keeps absolute artifact locations (table, column)
ARTIFACT_COLUMNS = (
    ("experiments", "artifact_location"),
    ("runs", "artifact_uri"),
    ("model_versions", "storage_location"),
    ("model_versions", "source"),
    ("logged_models", "artifact_location"),
)


def relocate_artifacts(tracking_uri: str) -> None:
    """A moved or copied home: point the store's artifact locations at the ``artifacts`` folder beside it.

    MLflow records absolute locations; a home copied to another folder or machine would otherwise keep reading
    and writing the original's. Best effort: a read-only store is left as it is.
    """
    if not tracking_uri.startswith("sqlite:///"):
        return
    path = Path(tracking_uri.removeprefix("sqlite:///"))
    if not path.is_file():
        return
    here = (path.parent / "artifacts").resolve().as_uri()
    try:
        with contextlib.closing(sqlite3.connect(path, timeout=60)) as db:
            rows = db.execute("SELECT artifact_location FROM experiments").fetchall()
            moved = {
                str(loc).rstrip("/")
                for (loc,) in rows
                if str(loc or "").startswith("file://") and str(loc).rstrip("/").endswith("/artifacts")
            } - {here}
            for old in moved:
                for table, column in ARTIFACT_COLUMNS:
                    with contextlib.suppress(sqlite3.OperationalError):  # a column this MLflow version lacks
                        db.execute(
                            f"UPDATE {table} SET {column} = ? || substr({column}, ?) "  # table and column: fixed names
                            f"WHERE substr({column}, 1, ?) = ?",
                            (here, len(old) + 1, len(old), old),
                        )
            db.commit()
    except sqlite3.Error as exc:
        logger.debug("artifact locations of %s left as they are: %s", path, exc)
        return
    if moved:  # this process may still hold artifact repositories at the old locations, cached by run id
        with contextlib.suppress(ImportError, AttributeError):
            from mlflow.tracking._tracking_service import utils as tracking_utils

            tracking_utils._artifact_repos_cache.clear()


def connect(store: Store) -> MlflowClient:
    """A client for the store's tracking URI (also its registry); checks that it can be reached."""
    uri = store.tracking_uri
    # the library never prints; MLflow would print two links (and fetch the run) for every finished run
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    if uri.startswith(("http://", "https://")):
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")
        check_server(uri)
    if not uri.startswith("sqlite:///"):
        return _client(uri)
    path = Path(uri.removeprefix("sqlite:///"))
    check_readable(path, "MLflow store")
    path.parent.mkdir(parents=True, exist_ok=True)
    with creation_lock(path):  # workers starting together on a new home: one creates the store, the rest wait
        relocate_artifacts(uri)
        if path.exists():
            return _client(uri)
        migrated = not seed_mlflow_db(path)  # no template yet: MLflow runs its migrations on the new file
        client = _client(uri, open_now=True)
        if migrated:
            save_mlflow_template(path)  # the template for the next new home
        return client


def _client(uri: str, open_now: bool = False) -> MlflowClient:
    """An MLflow client; ``open_now`` opens the store (creating its schema and Default experiment) at once."""
    try:
        client = MlflowClient(tracking_uri=uri, registry_uri=uri)
        if open_now:
            client.search_experiments(max_results=1)
        return client
    except MlflowException as exc:
        raise StoreError(f"MLflow tracking URI {uri} cannot be used: {exc.message.splitlines()[0]}") from None


class Tracker:
    """Writes one study into MLflow: experiment = study, parent run = study, child run = trial."""

    def __init__(self, store: Store, study_name: str) -> None:
        self.store = store
        self.study_name = study_name
        self.client = connect(store)
        self.experiment_id = self._experiment(study_name)

    def _experiment(self, name: str) -> str:
        try:
            experiment = self.client.get_experiment_by_name(name)
            if experiment is not None:
                if experiment.lifecycle_stage == "deleted":
                    self.client.restore_experiment(experiment.experiment_id)
                return str(experiment.experiment_id)
            location = self.store.artifacts_dir.as_uri() if self.store.local_tracking else None
            if location:
                self.store.artifacts_dir.mkdir(parents=True, exist_ok=True)
            return str(self.client.create_experiment(name, artifact_location=location))
        except MlflowException as exc:
            raise StoreError(f"MLflow at {self.store.tracking_uri}: {exc.message.splitlines()[0]}") from None

    # ---- the study's parent run -------------------------------------------------------------
    def delete_runs(self) -> int:
        """Delete every run of the study's experiment (a study started again from scratch); how many."""
        runs = self.client.search_runs([self.experiment_id], max_results=50_000)
        for run in runs:
            self.client.delete_run(run.info.run_id)
        return len(runs)

    def run_exists(self, run_id: str) -> bool:
        """Whether ``run_id`` is a run of this study's experiment in this tracking store."""
        try:
            run = self.client.get_run(run_id)
        except Exception:  # a run from another tracking store
            return False
        return str(run.info.experiment_id) == self.experiment_id

    def attach_parent(self, run_id: str | None, tags: Mapping[str, str]) -> str:
        """Re-attach the study's parent run (by id, else by tag), or create it; never a second one."""
        if run_id is None:
            found = self.client.search_runs(
                [self.experiment_id], filter_string=f"tags.`{ROLE}` = 'study'", max_results=1
            )
            run_id = found[0].info.run_id if found else None
        if run_id is not None:
            self.client.update_run(run_id, status="RUNNING")
            return run_id
        run = self.client.create_run(
            self.experiment_id,
            tags={ROLE: "study", STUDY: self.study_name, **tags},
            run_name=self.study_name,
        )
        return str(run.info.run_id)

    def log_study_inputs(self, parent_id: str, space_text: str, data_description: Mapping[str, Any]) -> None:
        try:
            self.client.log_text(parent_id, space_text, "space.yaml")
            self.client.log_text(parent_id, json.dumps(data_description, indent=2, default=str), "data.json")
        except (OSError, MlflowException) as exc:
            raise StoreError(f"cannot write MLflow artifacts for run {parent_id}: {exc}") from None

    def finish_study(
        self,
        parent_id: str,
        metrics: Mapping[str, float],
        tags: Mapping[str, object],
        status: str = "FINISHED",
    ) -> None:
        now = _now_ms()
        self.client.log_batch(
            parent_id,
            metrics=[Metric(k, float(v), now, 0) for k, v in metrics.items()],
            tags=[RunTag(k, str(v)) for k, v in tags.items()],
        )
        self.client.set_terminated(parent_id, status=status)

    # ---- one child run per trial -------------------------------------------------------------
    def start_trial(self, parent_id: str, number: int, params: Mapping[str, Any], tags: Mapping[str, str]) -> str:
        run = self.client.create_run(
            self.experiment_id,
            tags={
                "mlflow.parentRunId": parent_id,
                ROLE: "trial",
                STUDY: self.study_name,
                TRIAL_NUMBER: str(number),
                STATE: "RUNNING",
                **tags,
            },
            run_name=f"trial-{number}",
        )
        run_id = str(run.info.run_id)
        self.client.log_batch(run_id, params=[Param(k, str(v)[:MAX_PARAM_LENGTH]) for k, v in params.items()])
        return run_id

    def finish_trial(
        self,
        run_id: str,
        state: str,
        history: Sequence[Mapping[str, float]],
        summary: Mapping[str, float] | None = None,
        tags: Mapping[str, str] | None = None,
        error: str | None = None,
        run_status: str | None = None,
    ) -> None:
        """Flush the trial's per-epoch metrics (``step=epoch``) in batches, then set its final state."""
        now = _now_ms()
        metrics = [
            Metric(key, value, now, epoch)
            for epoch, row in enumerate(history)
            for key, value in row.items()
            if np.isfinite(value)
        ]
        metrics += [Metric(k, float(v), now, 0) for k, v in (summary or {}).items() if np.isfinite(v)]
        all_tags = [RunTag(STATE, state), *(RunTag(k, str(v)) for k, v in (tags or {}).items())]
        if error:
            all_tags.append(RunTag("automl.error", error.strip().splitlines()[-1][:5000]))
        for start in range(0, max(len(metrics), 1), MAX_METRICS_PER_BATCH):
            self.client.log_batch(
                run_id, metrics=metrics[start : start + MAX_METRICS_PER_BATCH], tags=all_tags if start == 0 else ()
            )
        if error:
            try:
                self.client.log_text(run_id, error, "traceback.txt")
            except (OSError, MlflowException) as exc:
                logger.warning("could not store the traceback of run %s: %s", run_id, exc)
        self.client.set_terminated(run_id, status=run_status or RUN_STATUS[state])

    def kill_trial(self, run_id: str, reason: str) -> None:
        """Mark a trial run whose process died as KILLED."""
        self.client.set_tag(run_id, STATE, "FAIL")
        self.client.set_tag(run_id, "automl.error", reason)
        self.client.set_terminated(run_id, status="KILLED")

    # ---- the best model ---------------------------------------------------------------------
    def log_best_model(
        self,
        parent_id: str,
        keras_model: Any,
        model_metadata: Mapping[str, Any],
        raw_example: Any,
        register_name: str,
        networks: Mapping[str, Any] | None = None,
    ) -> tuple[str, str]:
        """Log the raw-input model as pyfunc on the parent run, register it, point ``champion`` at it.

        ``networks`` are more Keras models stored in the same registered model (``network_<name>`` artifacts).
        Returns ``(model_uri, version)`` where ``model_uri`` is ``models:/NAME/VERSION``.
        """
        try:
            info = self._log_pyfunc(parent_id, keras_model, model_metadata, raw_example, register_name, networks or {})
        except (OSError, MlflowException) as exc:
            message = getattr(exc, "message", str(exc)).splitlines()[0]
            raise StoreError(
                f"cannot write MLflow artifacts for the best model of run {parent_id}: {message}"
            ) from None
        version = str(info.registered_model_version)
        self.client.set_registered_model_alias(register_name, CHAMPION, version)
        self.client.set_model_version_tag(register_name, version, STUDY, self.study_name)
        if model_metadata.get("trust_model_code"):
            # loaded with Keras safe_mode off (its automl.json says so): visible in the registry, not only inside
            self.client.set_model_version_tag(register_name, version, TRUST_MODEL_CODE, "true")
        return f"models:/{register_name}/{version}", version

    def _log_pyfunc(
        self,
        parent_id: str,
        keras_model: Any,
        model_metadata: Mapping[str, Any],
        raw_example: Any,
        register_name: str,
        networks: Mapping[str, Any],
    ) -> Any:
        with tempfile.TemporaryDirectory(prefix="automl-model-") as tmp, _fluent_uris(self.store.tracking_uri):
            model_path = Path(tmp) / "model.keras"
            keras_model.save(model_path)
            more = {}
            for name, network in networks.items():
                more[f"{NETWORK_PREFIX}{name}"] = str(Path(tmp) / f"{name}.keras")
                network.save(more[f"{NETWORK_PREFIX}{name}"])
            meta_path = Path(tmp) / "automl.json"
            meta_path.write_text(json.dumps({**model_metadata, "networks": sorted(networks)}, default=str))
            python_model = RawInputModel()
            python_model.load_from(model_path, dict(model_metadata))
            example = _example_frame(raw_example, model_metadata)
            signature = mlflow.models.infer_signature(example, python_model.predict(None, example))
            with mlflow.start_run(run_id=parent_id), contextlib.redirect_stderr(io.StringIO()):
                info = mlflow.pyfunc.log_model(
                    name="model",
                    python_model=RawInputModel(),
                    artifacts={"keras_model": str(model_path), "metadata": str(meta_path), **more},
                    signature=signature,
                    input_example=example,
                    pip_requirements=_requirements(),
                    registered_model_name=register_name,
                )
        return info

    def copy_champion(self, source_name: str, name: str) -> str:
        """Register ``source_name``'s champion version under ``name`` too, as its champion; its model URI."""
        try:
            version = self.client.get_model_version_by_alias(source_name, CHAMPION).version
            copied = self.client.copy_model_version(f"models:/{source_name}/{version}", name)
        except MlflowException as exc:
            raise StoreError(f"cannot register {source_name}@{CHAMPION} as {name}: {exc.message}") from None
        self.client.set_registered_model_alias(name, CHAMPION, copied.version)
        self.client.set_model_version_tag(name, copied.version, STUDY, self.study_name)
        return f"models:/{name}/{copied.version}"

    def promote(self, register_name: str, version: str) -> None:
        self.client.set_registered_model_alias(register_name, CHAMPION, version)

    # ---- reports, provenance, promotion ---------------------------------------------------------
    def log_files(self, run_id: str, paths: Sequence[str | os.PathLike[str]], artifact_dir: str = "report") -> None:
        """Attach local files (plots, HTML) to a run under ``artifact_dir``."""
        try:
            for path in paths:
                self.client.log_artifact(run_id, str(path), artifact_dir)
        except (OSError, MlflowException) as exc:
            raise StoreError(f"cannot write MLflow artifacts for run {run_id}: {exc}") from None

    def run_tags(self, run_id: str) -> dict[str, str]:
        """A run's tags; empty when the run is not in this tracking store."""
        try:
            return dict(self.client.get_run(run_id).data.tags)
        except MlflowException:
            return {}

    def tag_model_version(self, register_name: str, version: str, tags: Mapping[str, Any]) -> None:
        for key, value in tags.items():
            self.client.set_model_version_tag(register_name, version, key, str(value))

    def log_image(self, run_id: str, image: np.ndarray, artifact_file: str) -> None:
        """Attach an image (H, W[, C] array, floats in [0, 1] or uint8) to a run, e.g. ``samples/grid.png``."""
        try:
            self.client.log_image(run_id, image, artifact_file=artifact_file)
        except (OSError, MlflowException) as exc:
            raise StoreError(f"cannot write MLflow artifacts for run {run_id}: {exc}") from None


class RawInputModel(mlflow.pyfunc.PythonModel):
    """pyfunc wrapper: raw inputs in, predictions in the original label space (or target units) out."""

    # predict() takes DataFrames, arrays and lists alike: no type-hint validation wrapper from MLflow
    _skip_type_hint_validation = True

    networks: dict[str, Any]  # the further networks of the registered model, by name (a CycleGAN's generators)

    def load_context(self, context: Any) -> None:
        from automl.export import load_keras_file

        meta = json.loads(Path(context.artifacts["metadata"]).read_text())
        self.load_from(Path(context.artifacts["keras_model"]), meta)
        trusted = bool(meta.get("trust_model_code"))
        self.networks = {
            name: load_keras_file(context.artifacts[f"{NETWORK_PREFIX}{name}"], trusted=trusted)
            for name in meta.get("networks", [])
        }

    def load_from(self, model_path: Path, meta: dict[str, Any]) -> None:
        from automl.export import load_keras_file

        self.keras_model = load_keras_file(model_path, trusted=bool(meta.get("trust_model_code")))
        self.metadata = meta
        self.networks = {}

    def predict(self, context, model_input, params=None):  # type: ignore[no-untyped-def]
        # no type hints here: MLflow would read them as a schema
        from automl.export import predict_raw

        return predict_raw(self.keras_model, self.metadata, model_input)


def _example_frame(raw_example: Any, meta: Mapping[str, Any]) -> Any:
    if not isinstance(raw_example, pd.DataFrame) or meta.get("kind") != "table":
        return raw_example
    frame = raw_example.copy()
    for column in meta["numeric_columns"]:
        frame[column] = frame[column].astype("float64")
    for column in meta["categorical_columns"]:
        frame[column] = frame[column].astype(object).where(frame[column].notna(), "").astype(str)
    return frame


def _requirements() -> list[str]:
    names = ["keras", "mlflow", "numpy", "pandas", "tensorflow"]
    pins = []
    for name in names:
        try:
            pins.append(f"{name}=={importlib_metadata.version(name)}")
        except importlib_metadata.PackageNotFoundError:
            continue
    return pins


@contextlib.contextmanager
def _fluent_uris(uri: str) -> Iterator[None]:
    """Point MLflow's fluent API at ``uri`` for a moment, then restore the caller's URIs (and env vars)."""
    saved_env = {key: os.environ.get(key) for key in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
    saved = (mlflow.get_tracking_uri(), mlflow.get_registry_uri())
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(saved[0])
        mlflow.set_registry_uri(saved[1])
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def load_pyfunc(uri: str, tracking_uri: str) -> Any:
    """Load a registered or logged model as pyfunc (``models:/NAME@champion``, ``runs:/...``)."""
    relocate_artifacts(tracking_uri)
    try:
        with _fluent_uris(tracking_uri):
            return mlflow.pyfunc.load_model(uri)
    except MlflowException as exc:
        raise StoreError(f"model '{uri}' cannot be loaded from {tracking_uri}: {exc.message.splitlines()[0]}") from None


def model_version_by_alias(tracking_uri: str, name: str, alias: str = CHAMPION) -> str | None:
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    try:
        return str(client.get_model_version_by_alias(name, alias).version)
    except MlflowException:
        return None


def _now_ms() -> int:
    return int(time.time() * 1000)
