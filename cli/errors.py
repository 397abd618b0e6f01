"""Turn user mistakes into one line on stderr and exit code 2; anything else is a bug with a traceback."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import typer

from automl.errors import AutoMLError

F = TypeVar("F", bound=Callable[..., Any])
USER_ERROR = 2
INTERRUPTED = 130


def handle_errors(command: F) -> F:
    """Decorate a command: ``AutoMLError`` -> ``automl: error: ...`` and exit 2."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except AutoMLError as exc:
            message = " ".join(str(exc).split())
            print(f"automl: error: {message}", file=sys.stderr)
            raise typer.Exit(USER_ERROR) from None
        except KeyboardInterrupt:
            print("automl: interrupted; the running trial was recorded as failed (resume to carry on)", file=sys.stderr)
            raise typer.Exit(INTERRUPTED) from None

    return wrapper  # type: ignore[return-value]
