"""Plots of a study: optimization history, param importances, parallel coordinates, learning curves.

PNG files come from ``optuna.visualization.matplotlib``; when plotly is installed (``automl[report]``) the same
plots also go into one interactive ``report.html`` (plotly.js embedded once, so it opens offline).
"""

from __future__ import annotations

import logging
import tempfile
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import optuna

from automl.errors import AutoMLError
from automl.record import read_study, read_trial

logger = logging.getLogger(__name__)

DEFAULT_TOP = 5
HTML_NAME = "report.html"
ARTIFACT_DIR = "report"
PNG_DPI = 110


class FileLogger(Protocol):
    """The part of ``automl.tracking.Tracker`` that publishes files on a run."""

    def log_files(self, run_id: str, paths: Sequence[Path], artifact_dir: str = ...) -> None: ...


def monitor_of(study: optuna.Study) -> str:
    """The per-epoch key of the objective, e.g. ``val_accuracy``."""
    return read_study(study).monitor


def top_trials(study: optuna.Study, count: int) -> list[optuna.trial.FrozenTrial]:
    """The ``count`` best completed trials, best first."""
    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    reverse = study.direction == optuna.study.StudyDirection.MAXIMIZE
    valued = [(float(t.value), t) for t in complete if t.value is not None]
    return [t for _, t in sorted(valued, key=lambda pair: pair[0], reverse=reverse)][:count]


def html_available() -> bool:
    """Whether plotly is installed, so the interactive report can be written."""
    import optuna.visualization

    return bool(optuna.visualization.is_available())


def _curve_keys(trials: Sequence[optuna.trial.FrozenTrial], monitor: str) -> list[str]:
    """The objective's curve, then the training loss, where the trials recorded them."""
    rows = [row for trial in trials for row in read_trial(trial).history or []]
    return [key for key in (monitor, "loss") if any(key in row for row in rows)]


def _series(trial: optuna.trial.FrozenTrial, key: str) -> tuple[list[int], list[float]]:
    history = read_trial(trial).history or []
    points = [(epoch, float(row[key])) for epoch, row in enumerate(history) if key in row]
    return [p[0] for p in points], [p[1] for p in points]


def _label(trial: optuna.trial.FrozenTrial) -> str:
    return f"trial {trial.number} ({trial.value:.4g})"


def learning_curves_matplotlib(trials: Sequence[optuna.trial.FrozenTrial], monitor: str) -> Any:
    """Per-epoch curves of the top trials: the objective and the training loss side by side."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    keys = _curve_keys(trials, monitor)
    if not keys:
        raise ValueError("no trial recorded a per-epoch history")
    figure, axes = plt.subplots(1, len(keys), figsize=(6 * len(keys), 4), squeeze=False)
    for ax, key in zip(axes[0], keys, strict=True):
        for trial in trials:
            epochs, values = _series(trial, key)
            ax.plot(epochs, values, marker="o", label=_label(trial))
        ax.set_title(f"{key} per epoch")
        ax.set_xlabel("epoch")
        ax.set_ylabel(key)
        ax.grid(True, alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[0][0].legend(fontsize="small")
    figure.suptitle("Learning curves of the top trials")
    figure.tight_layout()
    return figure


def learning_curves_plotly(trials: Sequence[optuna.trial.FrozenTrial], monitor: str) -> Any:
    """The interactive twin of ``learning_curves_matplotlib``."""
    import plotly.colors
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    keys = _curve_keys(trials, monitor)
    if not keys:
        raise ValueError("no trial recorded a per-epoch history")
    figure = make_subplots(rows=1, cols=len(keys), subplot_titles=[f"{key} per epoch" for key in keys])
    palette = plotly.colors.DEFAULT_PLOTLY_COLORS
    for col, key in enumerate(keys, start=1):
        for index, trial in enumerate(trials):
            epochs, values = _series(trial, key)
            figure.add_trace(
                go.Scatter(
                    x=epochs,
                    y=values,
                    mode="lines+markers",
                    line={"color": palette[index % len(palette)]},  # one colour per trial across the panels
                    name=_label(trial),
                    legendgroup=str(trial.number),
                    showlegend=col == 1,
                ),
                row=1,
                col=col,
            )
        figure.update_xaxes(title_text="epoch", dtick=1, row=1, col=col)
        figure.update_yaxes(title_text=key, row=1, col=col)
    figure.update_layout(title="Learning curves of the top trials")
    return figure


@dataclass(frozen=True)
class Plot:
    """One plot of the report: a file stem and how to draw it with matplotlib and with plotly."""

    name: str
    matplotlib: Callable[[optuna.Study, list[optuna.trial.FrozenTrial], str], Any]
    plotly: Callable[[optuna.Study, list[optuna.trial.FrozenTrial], str], Any]
    min_complete: int = 1  # completed trials the plot needs to say anything


def _plots() -> list[Plot]:
    import optuna.visualization as vis
    import optuna.visualization.matplotlib as vis_mpl

    def with_target(draw: Callable[..., Any]) -> Callable[[optuna.Study, list[Any], str], Any]:
        return lambda study, top, monitor: draw(study, target_name=monitor)

    def parallel_matplotlib(study: optuna.Study, top: list[Any], monitor: str) -> Any:
        figure = _figure_of(vis_mpl.plot_parallel_coordinate(study, target_name=monitor))
        axes = 1 + len({name for trial in study.get_trials(deepcopy=False) for name in trial.params})
        figure.set_size_inches(max(8.0, 1.1 * axes), 5.5)  # one readable column per param
        return figure

    return [
        Plot(
            "optimization_history",
            with_target(vis_mpl.plot_optimization_history),
            with_target(vis.plot_optimization_history),
        ),
        Plot(
            "param_importances",
            with_target(vis_mpl.plot_param_importances),
            with_target(vis.plot_param_importances),
            min_complete=2,
        ),
        Plot(
            "parallel_coordinate",
            parallel_matplotlib,
            with_target(vis.plot_parallel_coordinate),
        ),
        Plot(
            "learning_curves",
            lambda study, top, monitor: learning_curves_matplotlib(top, monitor),
            lambda study, top, monitor: learning_curves_plotly(top, monitor),
        ),
    ]


def _figure_of(drawn: Any) -> Any:
    """Optuna's matplotlib plots return Axes (or an array of them); ours return the Figure."""
    if hasattr(drawn, "savefig"):
        return drawn
    first = drawn.flat[0] if hasattr(drawn, "flat") else drawn
    return first.get_figure()


def write_report(
    study: optuna.Study, out_dir: str | Path, top: int = DEFAULT_TOP, html: bool | None = None
) -> list[Path]:
    """Write the study's plots as PNG files (and ``report.html`` when plotly is installed) into ``out_dir``.

    A plot the study cannot support yet (importances need two completed trials with different params) is skipped
    and logged. Returns the files written, PNGs first.
    """
    import matplotlib
    import matplotlib.pyplot as plt

    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    monitor = monitor_of(study)
    best = top_trials(study, top)
    if not best:
        logger.info("study %s has no completed trial; no report", study.study_name)
        return []
    html = html_available() if html is None else html
    complete = len(study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)))
    written: list[Path] = []
    interactive: list[tuple[str, Any]] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Optuna marks its matplotlib plots experimental
        for plot in _plots():
            if complete < plot.min_complete:
                logger.info("skipped plot %s: it needs %d completed trials", plot.name, plot.min_complete)
                continue
            # Optuna's matplotlib plots switch the global style; keep that inside this block
            with matplotlib.rc_context():
                try:
                    figure = _figure_of(plot.matplotlib(study, best, monitor))
                except (ValueError, RuntimeError) as exc:
                    logger.info("skipped plot %s of study %s: %s", plot.name, study.study_name, exc)
                    continue
                path = folder / f"{plot.name}.png"
                figure.savefig(path, dpi=PNG_DPI)  # already tight_layout(); "tight" would draw it twice
                plt.close(figure)
            written.append(path)
            if html:
                interactive.append((plot.name, plot.plotly(study, best, monitor)))
    if interactive:
        written.append(_write_html(folder / HTML_NAME, study, monitor, interactive))
    return written


def _write_html(path: Path, study: optuna.Study, monitor: str, figures: list[tuple[str, Any]]) -> Path:
    parts = []
    for index, (name, figure) in enumerate(figures):
        body = figure.to_html(full_html=False, include_plotlyjs=index == 0, div_id=name)
        parts.append(f"<section><h2>{name.replace('_', ' ')}</h2>{body}</section>")
    title = f"automl study {study.study_name}: {monitor}"
    path.write_text(
        f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>{title}</title></head>'
        f"<body><h1>{title}</h1>{''.join(parts)}</body></html>",
        encoding="utf-8",
    )
    return path


def parent_run_id(study: optuna.Study) -> str:
    """The MLflow run of the study (tag ``automl.role=study``) recorded by the search."""
    run_id = read_study(study).parent_run_id
    if not run_id:
        raise AutoMLError(f"study '{study.study_name}' has no MLflow parent run (was it run by automl search?)")
    return str(run_id)


def log_report(
    study: optuna.Study,
    tracker: FileLogger,
    out_dir: str | Path | None = None,
    top: int = DEFAULT_TOP,
    html: bool | None = None,
) -> list[Path]:
    """Write the report (into ``out_dir``, else a temporary folder) and attach it to the study's parent run.

    Returns the files written; with no ``out_dir`` they are gone once logged, and their names are what counts.
    """
    run_id = parent_run_id(study)
    if out_dir is not None:
        paths = write_report(study, out_dir, top, html)
        if paths:
            tracker.log_files(run_id, paths, ARTIFACT_DIR)
        return paths
    with tempfile.TemporaryDirectory(prefix="automl-report-") as tmp:
        paths = write_report(study, tmp, top, html)
        if paths:
            tracker.log_files(run_id, paths, ARTIFACT_DIR)
        return paths


__all__ = ["ARTIFACT_DIR", "DEFAULT_TOP", "log_report", "top_trials", "write_report"]
