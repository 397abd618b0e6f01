"""Turn the raw numbers of a run into summaries, a Markdown report and PNG plots.

python -m benchmarks.report benchmarks/results/results.json   # rebuild results.md and the plots
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path
from typing import Any

ARM_TITLES = {
    "automl": "automl, default path (prepare/run_trials/finalize, MLflow, trial processes)",
    "automl_inprocess": "automl --isolation none (fit in the search's process)",
    "loop": "hand-written Optuna+MLflow loop",
    "keras_tuner": "KerasTuner RandomSearch (replayed configs)",
}
METHOD_TITLES = {
    "automl": "automl defaults (TPE + median pruner)",
    "kt_random": "KerasTuner RandomSearch",
    "kt_bayes": "KerasTuner BayesianOptimization",
    "kt_hyperband": "KerasTuner Hyperband",
    "optuna_tpe": "Optuna TPE loop, no pruning",
    "automl_asha": "automl, TPE + ASHA (--pruner asha)",
    "automl_random": "automl, random sampler (--sampler random)",
    "automl_gp": "automl, Gaussian-process sampler (--sampler gp)",
    "automl_qmc": "automl, quasi-Monte Carlo sampler (--sampler qmc)",
    "automl_hyperband": "automl, TPE + Hyperband (--pruner hyperband)",
    "automl_nopruning": "automl, TPE, no pruning (--pruner none)",
}
CHECKPOINTS = (("T/3", 1 / 3), ("2T/3", 2 / 3), ("T", 1.0))


def _median(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def _median_so_far(values: list[float | None]) -> float | None:
    """Median over seeds of a best-so-far value, a seed with no finished trial yet counting as the worst.

    Unlike the median of the seeds that have a value, this never goes down as time goes on.
    """
    ranked = [float("-inf") if v is None else v for v in values]
    if not ranked:
        return None
    middle = statistics.median_low(ranked)
    return None if middle == float("-inf") else middle


def _fmt(value: Any, digits: int = 3, suffix: str = "") -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}{suffix}"
    return f"{value}{suffix}"


# ---- summaries ----------------------------------------------------------------------------------------------


def summarize(results: dict[str, Any]) -> None:
    """Add ``summary`` (and ``ratios``) next to the raw numbers of each part."""
    epochs = results["meta"]["settings"]["epochs"]
    if "overhead" in results:
        _summarize_overhead(results["overhead"], epochs)
    if "quality" in results:
        _summarize_quality(results["quality"])


def _fingerprints(fits: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What makes two fits the same training run (everything but the timings)."""
    return [{k: v for k, v in fit.items() if k not in ("seconds", "callback_s", "started", "ended")} for fit in fits]


def _summarize_overhead(overhead: dict[str, Any], epochs: int) -> None:
    n = overhead["n_configs"]
    summary: dict[str, dict[str, Any]] = {}
    reference: list[dict[str, Any]] | None = None
    for name, arm in overhead["arms"].items():
        if "wall_s" not in arm:
            continue
        fits = arm["fits"]
        fit_s = sum(f["seconds"] for f in fits)
        callback_s = sum(f.get("callback_s", 0.0) for f in fits)
        span_s = fit_span(arm["blocks"], fits)
        values = [v for v in arm.get("values", []) if v is not None]
        prints = _fingerprints(fits)
        fingerprinted = all("weights" in f for f in fits)  # fits timed in a trial process carry no fingerprint
        if fingerprinted and reference is None:
            reference = prints
        summary[name] = {
            "trials": n,
            "fits": len(fits),
            "all_fits_ran_epochs": all(f["epochs"] == epochs for f in fits),
            "same_models_as_first_arm": prints == reference if fingerprinted else None,
            "params_match_configs": arm.get("params_match"),
            "wall_s": arm["wall_s"],
            "setup_s": arm["setup_s"],
            "trials_s": arm["trials_s"],
            "finish_s": arm["finish_s"],
            "fit_s": fit_s,
            "callback_s": callback_s,
            "trials_per_min": n / arm["wall_s"] * 60,
            "trials_per_min_trial_loop": n / arm["trials_s"] * 60,
            "overhead_fraction": (arm["wall_s"] - fit_s) / arm["wall_s"],
            "trial_loop_overhead_fraction": (arm["trials_s"] - fit_s) / arm["trials_s"],
            "non_fit_ms_per_trial": (arm["trials_s"] - fit_s) / n * 1000,
            # the definition: the share of the span from a block's first fit start to its last fit end
            # spent outside fit, callbacks counted as outside
            "fit_span_s": span_s,
            "fit_span_overhead_fraction": (span_s - fit_s + callback_s) / span_s if span_s else None,
            "fit_span_non_fit_ms_per_trial": (span_s - fit_s + callback_s) / n * 1000 if span_s else None,
            "cpu_s": arm["cpu_s"],
            "peak_rss_mb": arm.get("rusage", {}).get("peak_rss_mb"),
            "import_s": arm.get("ready", {}).get("import_s"),
            "mean_best_val_accuracy": statistics.fmean(values) if values else None,
            "test_accuracy": arm.get("test_accuracy"),
        }
    overhead["summary"] = summary
    ratios = {}
    if "automl" in summary:
        a = overhead["arms"]["automl"]
        for other in ("loop", "keras_tuner"):
            if other not in summary:
                continue
            b = overhead["arms"][other]
            per_block = [
                y["active_s"] / x["active_s"] for x, y in zip(a["blocks"], b["blocks"], strict=False) if x["active_s"]
            ]
            ratios[f"automl/{other}"] = {
                "throughput_wall": b["wall_s"] / a["wall_s"],
                "throughput_trial_loop": b["trials_s"] / a["trials_s"],
                "throughput_per_block": per_block,
                "throughput_per_block_median": statistics.median(per_block) if per_block else None,
                "cpu": b["cpu_s"] / a["cpu_s"],
                "non_fit_per_trial": summary["automl"]["non_fit_ms_per_trial"] / summary[other]["non_fit_ms_per_trial"]
                if summary[other]["non_fit_ms_per_trial"] > 0
                else None,
                "fit_span_non_fit_per_trial": _ratio(
                    summary["automl"]["fit_span_non_fit_ms_per_trial"], summary[other]["fit_span_non_fit_ms_per_trial"]
                ),
            }
    overhead["ratios"] = ratios


def fit_span(blocks: list[dict[str, Any]], fits: list[dict[str, Any]]) -> float:
    """Σ over the interleaved blocks of (last fit's end - first fit's start): the arm's own time, waits excluded."""
    total = 0.0
    for block in blocks:
        inside = [f for f in fits if "started" in f and block.get("t0", 0.0) <= f["started"] <= block.get("t1", 0.0)]
        if inside:
            total += max(f["ended"] for f in inside) - min(f["started"] for f in inside)
    return total


def _pct(value: float | None) -> str | None:
    return None if value is None else f"{value:.1%}"


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def best_by(finished: list[list[float | None]], t: float) -> float | None:
    """Best value among trials that finished by ``t`` seconds (``None``: none had)."""
    values = [v for when, v in finished if v is not None and when <= t]
    return max(values) if values else None


def _summarize_quality(quality: dict[str, Any]) -> None:
    budget = quality["budget_s"]
    summary = {}
    for name, runs in quality["runs"].items():
        if not runs:
            continue
        row: dict[str, Any] = {"seeds": len(runs)}
        for label, fraction in CHECKPOINTS:
            values = [best_by(run["finished"], budget * fraction) for run in runs]
            row[f"best_val_at_{label}"] = _median_so_far(values)
            row[f"seeds_without_trial_at_{label}"] = sum(v is None for v in values)
        tests = [run.get("test_accuracy") for run in runs]
        row["test_accuracy"] = _median(tests)
        present = [t for t in tests if t is not None]
        row["test_accuracy_range"] = [min(present), max(present)] if present else None
        row["trials_by_T"] = _median([float(sum(1 for w, _ in run["finished"] if w <= budget)) for run in runs])
        row["trials_total"] = _median([float(len(run["finished"])) for run in runs])
        row["pruned_total"] = _median([float(run.get("states", {}).get("PRUNED", 0)) for run in runs])
        row["first_trial_at_s"] = _median([run.get("first_trial_at") for run in runs])
        row["total_s"] = _median([run.get("total_s") for run in runs])
        row["fit_share_of_search"] = _median(
            [run["fit_s"] / run["search_s"] if run.get("search_s") else None for run in runs]
        )
        summary[name] = row
    quality["summary"] = summary


# ---- plots --------------------------------------------------------------------------------------------------


def plot(results: dict[str, Any], out: Path) -> list[str]:
    """Write the PNGs; returns their file names."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = []
    overhead = results.get("overhead", {})
    if overhead.get("summary"):
        summary = overhead["summary"]
        arms = list(summary)
        fig, ax = plt.subplots(figsize=(9, 1.1 + 0.8 * len(arms)))
        parts = [
            ("fit: Keras", lambda s: s["fit_s"] - s.get("callback_s", 0.0), "#4c72b0"),
            ("fit: callbacks", lambda s: s.get("callback_s", 0.0), "#8172b3"),
            ("trial loop, not fit", lambda s: s["trials_s"] - s["fit_s"], "#dd8452"),
            ("setup", lambda s: s["setup_s"], "#55a868"),
            ("finish", lambda s: s["finish_s"], "#c44e52"),
        ]
        left = [0.0] * len(arms)
        for label, value, color in parts:
            widths = [max(0.0, value(summary[a])) for a in arms]
            ax.barh(arms, widths, left=left, color=color, label=label)
            left = [x + w for x, w in zip(left, widths, strict=True)]
        for i, arm in enumerate(arms):
            ax.text(left[i], i, f"  {summary[arm]['trials_per_min']:.1f} trials/min", va="center", fontsize=9)
        ax.set_xlabel("seconds (active wall time of the arm's process)")
        fig.set_size_inches(9, 1.6 + 0.8 * len(arms))
        ax.set_xlim(0, max(left) * 1.25)
        ax.invert_yaxis()
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.3), ncol=5, fontsize=8, frameon=False)
        ax.set_title(f"Overhead: {overhead['n_configs']} fixed configs, same models in every arm")
        fig.tight_layout()
        fig.savefig(out / "overhead.png", dpi=110)
        plt.close(fig)
        names.append("overhead.png")

    quality = results.get("quality", {})
    if quality.get("summary"):
        budget = quality["budget_s"]
        fig, ax = plt.subplots(figsize=(9, 5.5))
        colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
        styles = ["-", "--", "-.", ":", (0, (5, 1))]
        ends = [when for runs in quality["runs"].values() for run in runs for when, _ in run["finished"]]
        horizon = max([budget * 1.1, *ends])
        grid = [horizon * i / 400 for i in range(401)]
        lowest = 1.0
        for index, (name, runs) in enumerate(quality["runs"].items()):
            if not runs:
                continue
            color, style = colors[index % len(colors)], styles[index % len(styles)]
            for run in runs:
                curve = [best_by(run["finished"], t) for t in grid]
                xs = [t for t, v in zip(grid, curve, strict=True) if v is not None]
                ys = [v for v in curve if v is not None]
                ax.step(xs, ys, where="post", color=color, alpha=0.3, linewidth=1, linestyle=style)
                ends = [(w, best_by(run["finished"], w)) for w, _ in run["finished"]]
                ends = [(w, v) for w, v in ends if v is not None]
                ax.plot([w for w, _ in ends], [v for _, v in ends], ".", color=color, alpha=0.5, markersize=4)
                lowest = min([lowest, *ys])
            medians = [_median_so_far([best_by(run["finished"], t) for run in runs]) for t in grid]
            xs = [t for t, v in zip(grid, medians, strict=True) if v is not None]
            ys = [v for v in medians if v is not None]
            label = METHOD_TITLES.get(name, name)
            ax.step(xs, ys, where="post", color=color, linewidth=2.2, linestyle=style, label=label)
        for label, fraction in CHECKPOINTS:
            ax.axvline(budget * fraction, color="grey", linestyle="--", linewidth=0.8)
            ax.text(budget * fraction, 1.0, f" {label}", va="top", fontsize=8, color="grey")
        ax.set_xlim(0, horizon)
        # zoom on where the methods differ: from the lowest median at T/3 (earlier values fall off the bottom)
        early = [
            _median_so_far([best_by(run["finished"], budget / 3) for run in runs]) for runs in quality["runs"].values()
        ]
        floor = min([v for v in early if v is not None], default=lowest)
        ax.set_ylim(min(0.95, max(lowest, floor) - 0.03), 1.0)
        ax.set_xlabel("seconds since the search call (setup included)")
        ax.set_ylabel("best validation accuracy so far")
        ax.set_title(f"Search quality at T = {budget:g} s (thick: median of {quality['seeds']} seeds; thin: each seed)")
        ax.legend(loc="lower right", fontsize=8)
        ax.grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(out / "quality.png", dpi=110)
        plt.close(fig)
        names.append("quality.png")
    return names


# ---- Markdown -----------------------------------------------------------------------------------------------


def _machine_section(results: dict[str, Any]) -> list[str]:
    m = results["machine"]
    v = m.get("versions", {})
    lib = ", ".join(f"{k} {v[k]}" for k in v if k != "python")
    return [
        "## Machine",
        "",
        "| | |",
        "|---|---|",
        f"| CPU | {m.get('cpu')} |",
        f"| cores | {m.get('usable_cpus')} usable, {m.get('logical_cpus')} logical, "
        f"{m.get('physical_cores')} physical |",
        f"| memory | {m.get('memory_gb')} GiB ({m.get('memory_available_gb')} GiB available at start) |",
        f"| load average (1, 5, 15 min) | start {m.get('load_average_start')}, end {m.get('load_average_end')} |",
        f"| GPUs | {', '.join(m.get('gpus') or []) or 'none'} |",
        f"| OS | {m.get('os')} |",
        f"| Python | {m.get('python')} |",
        f"| Keras backend | {m.get('keras_backend')} |",
        f"| libraries | {lib} |",
        f"| automl | git {m.get('git', {}).get('commit')} ({m.get('git', {}).get('changed_files')} files changed) |",
        "",
    ]


def _overhead_section(results: dict[str, Any], plots: list[str]) -> list[str]:
    overhead = results["overhead"]
    settings = results["meta"]["settings"]
    summary = overhead.get("summary", {})
    lines = [
        f"## a) Overhead: {overhead['n_configs']} fixed configs x {settings['epochs']} epochs on demo:digits",
        "",
        f"The configs are drawn once from `search_spaces/mlp.yaml` (RandomSampler, seed {settings['config_seed']}) "
        "and enqueued, so every arm trains the same models with the same build function "
        "(`automl.families.mlp.build_model` + `automl.training.compile_model`), the same split and the same "
        "per-trial Keras seed. Each arm runs in its own process; the parent interleaves them in blocks of "
        f"{overhead['block']} trials, order per round: "
        + ", ".join("".join(name[0].upper() for name in order) for order in overhead["orders"])
        + " (A = automl, L = loop, K = KerasTuner). "
        "Times are the arm process's own active wall time (waiting for its turn excluded); Σfit sums "
        '`perf_counter` around every `keras.Model.fit` call, wrapped the same way in every arm; "callbacks" is '
        "the part of it spent in the hooks of the callbacks each framework passes to `fit` (per-epoch logging, "
        "checkpoints, reporting to the study). The fit span is the sum over blocks of the time from a block's "
        "first fit start to its last fit end; its overhead is the share of it spent outside `fit`, callbacks "
        "counted as outside. automl's default path fits in trial processes, timed there by the same wrapper "
        "(`benchmarks/fit_probe.py`, preloaded by their forkserver).",
        "",
        "| arm | trials/min | wall s | setup s | trial loop s | finish s | Σfit s | of which callbacks s "
        "| overhead (wall-Σfit)/wall | non-fit ms per trial | fit span s | overhead of the fit span "
        "| CPU s | peak RSS MiB | import s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, s in summary.items():
        lines.append(
            f"| {ARM_TITLES.get(name, name)} | {s['trials_per_min']:.1f} | {s['wall_s']:.1f} | {s['setup_s']:.1f} "
            f"| {s['trials_s']:.1f} | {s['finish_s']:.1f} | {s['fit_s']:.1f} | {s.get('callback_s', 0.0):.1f} "
            f"| {s['overhead_fraction']:.1%} "
            f"| {s['non_fit_ms_per_trial']:.0f} | {_fmt(s.get('fit_span_s'), 1)} "
            f"| {_fmt(_pct(s.get('fit_span_overhead_fraction')))} "
            f"| {s['cpu_s']:.1f} | {_fmt(s['peak_rss_mb'], 0)} "
            f"| {_fmt(s['import_s'], 1)} |"
        )
    if overhead.get("ratios"):
        lines += [
            "",
            'Ratios (> 1: automl is faster; "per block" pairs the interleaved blocks, so machine noise that '
            "hits one round hits every arm of it):",
            "",
            "| ratio | throughput, whole run | throughput, trial loop only | per block: median (min-max) "
            "| CPU time (other/automl) | non-fit time per trial (automl/other) "
            "| non-fit time per trial within the fit span (automl/other) |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        for label, r in overhead["ratios"].items():
            blocks = r["throughput_per_block"]
            spread = f"{r['throughput_per_block_median']:.2f} ({min(blocks):.2f}-{max(blocks):.2f})" if blocks else "-"
            lines.append(
                f"| {label} | {r['throughput_wall']:.2f} | {r['throughput_trial_loop']:.2f} | {spread} "
                f"| {r['cpu']:.2f} | {_fmt(r['non_fit_per_trial'], 2)} "
                f"| {_fmt(r.get('fit_span_non_fit_per_trial'), 2)} |"
            )
    checks = []
    first = next((name for name, s in summary.items() if s["same_models_as_first_arm"] is not None), "-")
    for name, s in summary.items():
        same = {None: "not fingerprinted (fit in a trial process)", True: "yes", False: "NO"}[
            s["same_models_as_first_arm"]
        ]
        checks.append(
            f"{name}: {s['fits']} fits, "
            f"all {settings['epochs']} epochs: {'yes' if s['all_fits_ran_epochs'] else 'NO'}, "
            f"same models as {first}: {same}, "
            f"params = configs: {'yes' if s['params_match_configs'] else 'NO'}, "
            f"mean best val acc {_fmt(s['mean_best_val_accuracy'])}, test acc of best {_fmt(s['test_accuracy'])}"
        )
    lines += ["", "Checks: " + "; ".join(checks) + "."]
    for name, error in overhead.get("errors", {}).items():
        lines += ["", f"**{name} failed:** `{error.splitlines()[0]}`"]
    if "overhead.png" in plots:
        lines += ["", "![overhead](overhead.png)"]
    return [*lines, ""]


def _quality_section(results: dict[str, Any], plots: list[str]) -> list[str]:
    quality = results["quality"]
    budget = quality["budget_s"]
    summary = quality.get("summary", {})
    lines = [
        f"## b) Search quality at an equal wall-clock budget: T = {budget:g} s, {quality['seeds']} seed(s)",
        "",
        "Each method searches the same space (`search_spaces/mlp.yaml`; for KerasTuner the same space in `hp` "
        "terms, `benchmarks/kt.py`) with the same build function, epochs "
        f"{results['meta']['settings']['epochs']}, on the split of seed s. The clock starts at the search call "
        "(study/tracking setup and data loading included). No trial starts after T (automl: `timeout=T`, which "
        "counts from the end of its setup); the trial running at T finishes and may give the final model, but the "
        "columns @T/3, @2T/3, @T count only trials finished by then. Values are medians over seeds of the best "
        'validation accuracy (best epoch) so far, a seed without a finished trial counting as the worst ("-" '
        'while most seeds have none); "test acc" is the final best model on the test split.',
        "",
        "| method | best val @T/3 | @2T/3 | @T | test acc (min-max) | trials by T | pruned | first trial starts at s "
        "| Σfit / search time | run s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, s in summary.items():
        cells = []
        for label, _ in CHECKPOINTS:
            cell = _fmt(s[f"best_val_at_{label}"], 4)
            missing = s[f"seeds_without_trial_at_{label}"]
            cells.append(cell + (f" ({missing}/{s['seeds']} none yet)" if missing else ""))
        spread = s["test_accuracy_range"]
        test = _fmt(s["test_accuracy"], 4) + (f" ({spread[0]:.3f}-{spread[1]:.3f})" if spread else "")
        lines.append(
            f"| {METHOD_TITLES.get(name, name)} | {' | '.join(cells)} | {test} | {_fmt(s['trials_by_T'], 0)} "
            f"| {_fmt(s['pruned_total'], 0)} | {_fmt(s['first_trial_at_s'], 1)} | {_fmt(s['fit_share_of_search'], 2)} "
            f"| {_fmt(s['total_s'], 1)} |"
        )
    if quality.get("budget_note"):
        lines += ["", f"Note: {quality['budget_note']}."]
    for name, error in quality.get("errors", {}).items():
        lines += ["", f"**{name} failed:** `{error.splitlines()[0]}`"]
    if "quality.png" in plots:
        lines += ["", "![quality](quality.png)"]
    return [*lines, ""]


def markdown(results: dict[str, Any], plots: list[str]) -> str:
    meta = results["meta"]
    lines = [
        "# automl benchmark: overhead and search quality",
        "",
        f"`{meta['command']}` ({meta['mode']} mode), started {meta['started']}, took "
        f"{meta.get('total_s', 0) / 60:.1f} min. Raw numbers: `results.json`. How to run: `benchmarks/README.md`.",
        "",
        *_machine_section(results),
    ]
    if "overhead" in results:
        lines += _overhead_section(results, plots)
    if "quality" in results:
        lines += _quality_section(results, plots)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    path = Path((argv or sys.argv[1:] or ["benchmarks/results/results.json"])[0])
    results = json.loads(path.read_text(encoding="utf-8"))
    summarize(results)
    plots = plot(results, path.parent)
    (path.parent / "results.md").write_text(markdown(results, plots), encoding="utf-8")
    print(path.parent / "results.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
