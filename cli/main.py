"""The ``automl`` command: a root Typer app, one module per command area."""

from __future__ import annotations

import typer

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


def main() -> None:
    quiet_libraries()
    app()


if __name__ == "__main__":
    main()
