"""Faster sqlite stores.

* WAL journal + synchronous=NORMAL for the databases under a store's home. A commit then costs about 1-2 ms
  instead of an fsync (~15 ms). Optuna writes several trial attributes and MLflow several rows per trial, so this
  is most of the tool's per-trial overhead on a local store. It stays durable against a crashed or killed process
  (what resume handles); only a power cut can lose the last commits.
* A new MLflow sqlite store starts as a copy of an empty, already migrated one, kept per MLflow version in the
  user's cache. Running MLflow's ~60 schema migrations costs about a second for every new home otherwise.
* Workers that start together on a new home take turns to create its MLflow store (``creation_lock``): MLflow's
  migrations, run by several processes at once, fail in all but one of them.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

CACHE_ENV = "AUTOML_CACHE_DIR"

_ROOTS: set[str] = set()


def _pragmas(dbapi_connection: Any, _record: Any) -> None:
    if not isinstance(dbapi_connection, sqlite3.Connection) or not _ROOTS:
        return
    row = dbapi_connection.execute("PRAGMA database_list").fetchone()
    path = str(row[2]) if row else ""
    if any(path.startswith(root) for root in _ROOTS):
        dbapi_connection.execute("PRAGMA journal_mode=WAL")
        dbapi_connection.execute("PRAGMA synchronous=NORMAL")


def tune_sqlite_under(home: Path) -> None:
    """Apply the pragmas to every sqlite connection SQLAlchemy opens on a file under ``home``."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    if not _ROOTS:
        event.listen(Engine, "connect", _pragmas)
    _ROOTS.add(str(home.resolve()))


def _opens(uri: str) -> sqlite3.Error | None:
    try:
        with contextlib.closing(sqlite3.connect(uri, uri=True, timeout=10)) as db:
            db.execute("PRAGMA schema_version").fetchone()
    except sqlite3.Error as exc:
        return exc
    return None


def read_only(path: Path) -> bool:
    """Whether an existing sqlite file can be read but not written here (a read-only folder, file or mount)."""
    return path.is_file() and _opens(f"file:{path}?mode=rw") is not None and _opens(immutable_uri(path)) is None


def store_is_read_only(store: Any) -> bool:
    """Whether a home's local MLflow store can be read but not written."""
    uri = str(store.tracking_uri)
    return uri.startswith("sqlite:///") and read_only(Path(uri.removeprefix("sqlite:///")))


def immutable_uri(path: Path) -> str:
    """A URI that reads the file as it is: no journal, no shared memory (a WAL database in a read-only folder)."""
    return f"file:{path}?mode=ro&immutable=1"


def check_readable(path: Path, what: str) -> None:
    """Refuse, in one line and at once, a sqlite file that is not a database (libraries would retry for minutes)."""
    if not path.is_file():
        return
    error = _opens(f"file:{path}?mode=ro")
    if error is not None and _opens(immutable_uri(path)) is not None:
        from automl.errors import StoreError

        raise StoreError(f"{path}: the {what} cannot be read: {error}") from None


@contextlib.contextmanager
def creation_lock(path: Path) -> Iterator[None]:
    """An exclusive lock on a file beside ``path``, held while one process creates or opens it."""
    try:
        import fcntl

        handle = open(path.parent / f".{path.name}.lock", "a")  # noqa: SIM115
    except (ImportError, OSError):  # not POSIX, or a read-only home: nothing is created in it
        handle = None
    if handle is None:
        yield
        return
    with handle:  # closing the file releases the lock
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _template_path() -> Path | None:
    root = os.environ.get(CACHE_ENV) or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "automl"
    )
    try:
        version = metadata.version("mlflow")
    except metadata.PackageNotFoundError:
        return None
    return Path(root) / f"mlflow-{version}-empty.db"


def seed_mlflow_db(path: Path) -> bool:
    """Copy the migrated empty MLflow database to ``path`` (which must not exist); False if there is none yet."""
    template = _template_path()
    if template is None or path.exists() or not template.is_file():
        return False
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(template, path)
    except OSError:
        with contextlib.suppress(OSError):
            path.unlink()
        return False
    return True


def save_mlflow_template(path: Path) -> None:
    """Keep a copy of a just-migrated MLflow database, emptied of experiments, as the template for new homes.

    MLflow re-creates its Default experiment (with the new home's artifact root) when the copy is opened.
    Best effort: an unwritable cache only means the next home migrates again.
    """
    template = _template_path()
    if template is None or template.exists():
        return
    try:
        template.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=template.name, dir=template.parent)
        os.close(fd)
        try:
            with contextlib.closing(sqlite3.connect(path)) as source, contextlib.closing(sqlite3.connect(tmp)) as copy:
                source.backup(copy)
                copy.execute("DELETE FROM experiment_tags")
                copy.execute("DELETE FROM experiments")
                copy.commit()
                copy.execute("PRAGMA journal_mode=DELETE")
            os.replace(tmp, template)
        finally:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
    except (OSError, sqlite3.Error):
        return
