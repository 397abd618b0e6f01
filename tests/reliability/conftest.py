"""Real servers for the fault-injection tests: a PostgreSQL cluster and an MLflow tracking server on it."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


def _as_postgres(command: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A throwaway PostgreSQL server on 127.0.0.1 (Debian's binaries; .ci/run installs them)."""
    bindir = _pg_bin()
    if bindir is None:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL is not installed (.ci/run installs Debian's postgresql package)")
        pytest.skip("PostgreSQL is not installed: apt-get install postgresql")
    root = Path(tempfile.mkdtemp(prefix="automl-pg-"))
    data, sockets = root / "data", root / "run"
    sockets.mkdir()
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        shutil.chown(sockets, "postgres")
    port = free_port()
    subprocess.run(
        _as_postgres([str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"]),
        check=True,
        capture_output=True,
        timeout=120,
    )
    options = f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1 -c max_connections=200 -c fsync=off"
    subprocess.run(
        _as_postgres(
            [str(bindir / "pg_ctl"), "-D", str(data), "-o", options, "-w", "-t", "60", "-l", str(root / "log"), "start"]
        ),
        check=True,
        capture_output=True,
        timeout=120,
    )
    try:
        for name in ("optuna", "mlflow"):
            subprocess.run(
                _as_postgres([str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", name]),
                check=True,
                capture_output=True,
                timeout=60,
            )
        yield f"postgresql://postgres@127.0.0.1:{port}"
    finally:
        subprocess.run(
            _as_postgres([str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
            capture_output=True,
            timeout=60,
        )
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def mlflow_server(postgres_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``mlflow server`` backed by PostgreSQL, serving artifacts from a temp dir, on loopback."""
    port = free_port()
    artifacts = tmp_path_factory.mktemp("mlflow-artifacts")
    log = open(artifacts.parent / "mlflow-server.log", "w")  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--backend-store-uri",
            f"{postgres_url}/mlflow",
            "--artifacts-destination",
            str(artifacts),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "2",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(url + "/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                log.flush()
                pytest.fail(
                    f"mlflow server did not start: {(artifacts.parent / 'mlflow-server.log').read_text()[-2000:]}"
                )
            time.sleep(0.5)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def automl_command(*args: str) -> list[str]:
    exe = shutil.which("automl")
    return [exe, *args] if exe else [sys.executable, "-m", "cli.main", *args]


def clean_env() -> dict[str, str]:
    """The environment without MLflow URIs that in-process tests may have exported."""
    return {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}


def run_automl(*args: str, home: Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    env = {**clean_env(), "AUTOML_HOME": str(home)}
    return subprocess.run(automl_command(*args), env=env, capture_output=True, text=True, timeout=timeout)


def start_automl(*args: str, home: Path) -> subprocess.Popen[str]:
    env = {**clean_env(), "AUTOML_HOME": str(home)}
    return subprocess.Popen(automl_command(*args), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
