"""The parent's side of a worker: start it, send commands, wait for events, and read its own resource usage."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from benchmarks.common import REPO


class WorkerError(RuntimeError):
    """A worker reported an exception, died, or did not answer in time."""


class Worker:
    """One ``python -m benchmarks.worker`` child; its stderr goes to ``log``."""

    def __init__(self, label: str, args: list[str], log: Path, env: dict[str, str] | None = None) -> None:
        self.label = label
        self.log = log
        log.parent.mkdir(parents=True, exist_ok=True)
        environment = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})}
        environment.pop("AUTOML_HOME", None)
        self._log_file = log.open("w", encoding="utf-8")
        self.started = time.perf_counter()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.worker", *args],
            cwd=REPO,
            env=environment,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log_file,
            text=True,
            bufsize=1,
        )
        self._events: queue.Queue[dict[str, Any] | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.rusage: dict[str, float] = {}

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            line = line.strip()
            if line:
                self._events.put(json.loads(line))
        self._events.put(None)

    def send(self, cmd: str, **fields: Any) -> None:
        assert self.process.stdin is not None
        try:
            self.process.stdin.write(json.dumps({"cmd": cmd, **fields}) + "\n")
            self.process.stdin.flush()
        except BrokenPipeError:
            raise WorkerError(f"{self.label}: worker is gone\n{self.log_tail()}") from None

    def expect(self, event: str, timeout: float) -> dict[str, Any]:
        try:
            message = self._events.get(timeout=timeout)
        except queue.Empty:
            self.kill()
            tail = self.log_tail()
            raise WorkerError(f"{self.label}: no '{event}' within {timeout:.0f} s (killed)\n{tail}") from None
        if message is None:
            raise WorkerError(f"{self.label}: worker exited before '{event}'\n{self.log_tail()}")
        if message.get("event") == "error":
            raise WorkerError(f"{self.label}: {message.get('message')}\n{message.get('traceback', '')}")
        if message.get("event") != event:
            raise WorkerError(f"{self.label}: expected '{event}', got {message}")
        return message

    def request(self, cmd: str, event: str, timeout: float, **fields: Any) -> dict[str, Any]:
        self.send(cmd, **fields)
        return self.expect(event, timeout)

    def request_exit(self) -> None:
        """Ask the worker to exit (and close its command pipe); ``close`` then reaps it."""
        if self.process.stdin is None or self.process.stdin.closed:
            return
        with contextlib.suppress(WorkerError):
            self.send("exit")
        with contextlib.suppress(BrokenPipeError):
            self.process.stdin.close()

    def close(self, timeout: float = 60.0) -> dict[str, float]:
        """Ask the worker to exit and reap it with ``wait4``: its own peak RSS and CPU time, not the sum of all."""
        self.request_exit()
        deadline = time.perf_counter() + timeout
        try:
            while True:
                pid, status, usage = os.wait4(self.process.pid, os.WNOHANG)
                if pid:
                    break
                if time.perf_counter() > deadline:
                    self.kill()
                    pid, status, usage = os.wait4(self.process.pid, 0)
                    break
                time.sleep(0.05)
        except ChildProcessError:  # reaped elsewhere already: no usage to read
            self._log_file.close()
            return self.rusage
        self.process.returncode = os.waitstatus_to_exitcode(status)
        self._log_file.close()
        self.rusage = {
            "peak_rss_mb": usage.ru_maxrss / 1024.0,  # Linux reports KiB
            "cpu_user_s": usage.ru_utime,
            "cpu_sys_s": usage.ru_stime,
            "process_s": time.perf_counter() - self.started,
            "exit_code": float(self.process.returncode),
        }
        return self.rusage

    def kill(self) -> None:
        """SIGKILL without reaping (``Popen.kill`` would reap it and lose its resource usage)."""
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.process.pid, signal.SIGKILL)

    def log_tail(self, lines: int = 30) -> str:
        try:
            self._log_file.flush()
            return "\n".join(self.log.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
        except OSError:
            return ""
