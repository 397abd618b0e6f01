"""cProfile one overhead arm (default: automl), phase by phase: setup, the trial loop, finish.

    python -m benchmarks.profile_automl                      # automl, 20 configs x 10 epochs
    python -m benchmarks.profile_automl --arm loop --configs 5

Writes ``benchmarks/results/profile_<arm>.txt`` (top functions by cumulative and by own time per phase) and the
raw ``.prof`` files to ``benchmarks/.work/``. Profiling slows Python code down, so these timings are not the
benchmark's; they show where the time that is not ``fit`` goes.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import shutil
import sys
import time
from pathlib import Path

from benchmarks import common
from benchmarks.arms import IMPORTS, OVERHEAD_ARMS

RESULTS = common.REPO / "benchmarks" / "results"
WORK = common.REPO / "benchmarks" / ".work" / "profile"


def _table(profile: cProfile.Profile, sort: str, limit: int) -> str:
    stream = io.StringIO()
    stats = pstats.Stats(profile, stream=stream)
    stats.strip_dirs().sort_stats(sort).print_stats(limit)
    text = stream.getvalue()
    return text[text.find("   ncalls") :] if "   ncalls" in text else text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.profile_automl", description=__doc__.splitlines()[0])
    parser.add_argument("--arm", default="automl", choices=sorted(OVERHEAD_ARMS))
    parser.add_argument("--configs", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--limit", type=int, default=35, help="rows per table")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)

    common.quiet_libraries()
    start = time.perf_counter()
    for module in IMPORTS[args.arm]:
        __import__(module)
    common.install_fit_timer()
    import_s = time.perf_counter() - start

    workdir = WORK / args.arm
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    configs = common.sample_configs(args.configs, 0)
    arm = OVERHEAD_ARMS[args.arm](configs, args.epochs, workdir, args.configs)
    sections = [
        f"# cProfile of the '{args.arm}' overhead arm: {args.configs} configs x {args.epochs} epochs",
        f"# imports before profiling: {import_s:.1f} s; the .prof files are in {workdir}",
        "",
    ]
    for phase, call in (("setup", arm.setup), ("trials", lambda: arm.run(lambda _: None)), ("finish", arm.finish)):
        fits_before = len(common.FITS)
        profile = cProfile.Profile()
        began = time.perf_counter()
        profile.enable()
        call()
        profile.disable()
        wall = time.perf_counter() - began
        fit_s = sum(f["seconds"] for f in common.FITS[fits_before:])
        profile.dump_stats(str(workdir / f"{phase}.prof"))
        sections += [
            f"## {phase}: {wall:.2f} s wall under cProfile, of which Σfit {fit_s:.2f} s",
            "",
            "### by cumulative time",
            _table(profile, "cumulative", args.limit),
            "### by own time",
            _table(profile, "tottime", args.limit),
        ]
    out = args.out or RESULTS / f"profile_{args.arm}.txt"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(sections), encoding="utf-8")
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
