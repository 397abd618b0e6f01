"""Render a search's progress: a Rich bar, or plain log lines with --quiet."""

from __future__ import annotations

import sys
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def _epoch_text(trial: int, epoch: int, epochs: int, value: float) -> str:
    return f"running #{trial} epoch {epoch + 1}/{epochs} val {_fmt(value)}"


class RichProgress:
    """Trials done / total, best so far, the last trial's value and state, and the ETA."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)
        self.bar = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("best {task.fields[best]}  last {task.fields[last]}  {task.fields[running]}"),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            console=self.console,
            transient=False,
        )
        self.task: Any = None

    def on_start(self, study: str, total: int, done: int, direction: str, metric: str) -> None:
        self.bar.start()
        self.task = self.bar.add_task(study, total=total, completed=done, best="-", last="-", running="")

    def on_epoch(self, trial: int, epoch: int, epochs: int, value: float) -> None:
        self.bar.update(self.task, running=_epoch_text(trial, epoch, epochs, value))

    def on_progress(self, done: int, best: float | None, last: str) -> None:
        self.bar.update(self.task, completed=done, best=_fmt(best), last=last or "-")

    def on_finalize(self, message: str) -> None:
        self.bar.stop()
        self.console.print(message)


class PlainProgress:
    """One line per trial on stderr (for logs and CI); with ``verbose``, one per epoch too."""

    def __init__(self, verbose: bool = False) -> None:
        self.total = 0
        self.verbose = verbose

    def on_epoch(self, trial: int, epoch: int, epochs: int, value: float) -> None:
        if self.verbose:
            print(_epoch_text(trial, epoch, epochs, value), file=sys.stderr, flush=True)

    def on_start(self, study: str, total: int, done: int, direction: str, metric: str) -> None:
        self.total = total
        print(f"study {study}: {done}/{total} trials done, {direction} val_{metric}", file=sys.stderr, flush=True)

    def on_progress(self, done: int, best: float | None, last: str) -> None:
        if last:
            print(f"trial {last.lstrip('#')} best={_fmt(best)} [{done}/{self.total}]", file=sys.stderr, flush=True)

    def on_finalize(self, message: str) -> None:
        print(message, file=sys.stderr, flush=True)
