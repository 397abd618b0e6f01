"""The ``automl`` command: a root Typer app, one module per command area."""

from __future__ import annotations

import sys

import typer

try:  # Typer >= 0.22 ships its own copy of Click
    from typer._click import exceptions as click_exceptions
except ImportError:  # pragma: no cover - older Typer on plain Click
    from click import exceptions as click_exceptions  # type: ignore[no-redef]

from automl.logs import quiet_libraries
from cli import ecosystem, generative, inspect, models
from cli import search as search_commands

app = typer.Typer(
    name="automl",
    help="Keras hyperparameter search on Optuna, tracked in MLflow, with the best model in the registry.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.command("search")(search_commands.search)
app.command("resume")(search_commands.resume)
app.command("worker")(search_commands.worker)
app.add_typer(inspect.families_app, name="families")
app.command("trials")(inspect.trials)
app.command("best")(inspect.best)
app.command("predict")(models.predict)
app.command("ui")(models.ui)
app.command("report")(ecosystem.report)
app.command("reproduce")(ecosystem.reproduce)
app.command("promote")(ecosystem.promote)
app.command("lint")(ecosystem.lint)
app.command("dashboard")(ecosystem.dashboard)
app.command("sample")(generative.sample)
app.command("encode")(generative.encode)
app.command("translate")(generative.translate)


def main() -> None:
    """The console script: a usage mistake (a bad flag or value) is one ``automl: error:`` line and exit 2."""
    quiet_libraries()
    try:
        code = app(standalone_mode=False)
    except click_exceptions.NoArgsIsHelpError as exc:
        exc.show()  # no arguments: the help text, as before
        sys.exit(exc.exit_code)
    except click_exceptions.UsageError as exc:
        where = f"{exc.ctx.info_name}: " if exc.ctx is not None and exc.ctx.parent is not None else ""
        print(f"automl: error: {where}{' '.join(exc.format_message().split())}", file=sys.stderr)
        sys.exit(2)
    except typer.Abort:
        print("automl: interrupted", file=sys.stderr)
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
