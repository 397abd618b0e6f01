"""Ctrl-C and SIGTERM stop a search, even when TensorFlow wraps the interrupt in an error of its own."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

_requested = threading.Event()


def requested() -> bool:
    """Whether Ctrl-C or SIGTERM arrived while trials were running."""
    return _requested.is_set()


def _handler(signum: int, frame: FrameType | None) -> None:
    _requested.set()
    raise KeyboardInterrupt(signal.Signals(signum).name)


@contextmanager
def stop_on_signals() -> Iterator[None]:
    """While trials run, SIGINT and SIGTERM raise KeyboardInterrupt and are remembered.

    The interrupt may surface inside TensorFlow as some other exception (an op raising while Python
    code runs under it); ``requested()`` lets the objective still treat that trial as interrupted.
    """
    _requested.clear()
    try:
        previous = {sig: signal.signal(sig, _handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    except ValueError:  # not the main thread: the caller owns the signals
        yield
        return
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
