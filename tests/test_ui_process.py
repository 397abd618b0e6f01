"""`automl ui`: loopback by default, a warning when exposed, and nothing left running after SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from mlflow.tracking import MlflowClient

from tests.reliability.conftest import clean_env, free_port


def _descendants(root: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = set(), [root]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_ui_warns_when_exposed_and_stops_its_whole_server(home: Path) -> None:
    MlflowClient(tracking_uri=f"sqlite:///{home / 'mlflow.db'}").create_experiment("x")
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "ui", "--home", str(home), "--port", str(port), "--host", "0.0.0.0"],
        env=clean_env(),
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        warning = process.stderr.readline()
        assert "warning" in warning and "0.0.0.0" in warning
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as response:
                    assert response.status == 200
                    break
            except OSError:
                assert time.monotonic() < deadline and process.poll() is None, "the UI did not start"
                time.sleep(0.5)
        server = _descendants(process.pid)
        assert server, "the MLflow server runs as a child of automl ui"
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
        time.sleep(1.0)
        assert not [pid for pid in server if _alive(pid)], "no server process outlives automl ui"
    finally:
        if process.poll() is None:
            process.kill()
        for pid in _descendants(process.pid):
            os.kill(pid, signal.SIGKILL)
