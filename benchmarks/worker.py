"""One child process of the benchmark: one overhead arm, or one quality method, driven by the parent.

The parent writes one JSON command per line on stdin; the worker answers one JSON event per line on the stdout it
was started with. Everything else that would reach stdout (library prints) goes to stderr, the worker's log.
Waiting for a command is the only time excluded from the worker's clock.

    python -m benchmarks.worker --role overhead --name automl --configs C.json --workdir DIR
    python -m benchmarks.worker --role quality --name kt_random --workdir DIR
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import time
import traceback
from pathlib import Path
from typing import IO, Any

from benchmarks import common
from benchmarks.arms import IMPORTS, OVERHEAD_ARMS, quality_run


class Channel:
    """JSON lines to and from the parent; ``blocked`` is the time spent waiting for the parent."""

    def __init__(self, commands: IO[str], replies: IO[str]) -> None:
        self.commands = commands
        self.replies = replies
        self.blocked = 0.0

    def send(self, event: str, **fields: Any) -> None:
        self.replies.write(json.dumps({"event": event, **fields}, default=str) + "\n")
        self.replies.flush()

    def receive(self, *expected: str) -> dict[str, Any]:
        start = time.perf_counter()
        line = self.commands.readline()
        self.blocked += time.perf_counter() - start
        if not line:
            raise SystemExit("the parent closed the command pipe")
        command = json.loads(line)
        if expected and command.get("cmd") not in expected:
            raise RuntimeError(f"expected one of {expected}, got {command}")
        return dict(command)

    def active(self) -> float:
        """A clock that stands still while the worker waits for the parent."""
        return time.perf_counter() - self.blocked


def _devices() -> list[str]:
    import keras

    if keras.backend.backend() == "jax":
        import jax

        return [str(d) for d in jax.devices()]
    return []


def run_overhead(channel: Channel, args: argparse.Namespace) -> None:
    configs = common.read_configs(args.configs)
    arm = OVERHEAD_ARMS[args.name](configs, args.epochs, Path(args.workdir), args.block)
    channel.receive("setup")
    wall0, cpu0 = channel.active(), time.process_time()
    arm.setup()
    setup_s = channel.active() - wall0
    channel.send("setup_done", setup_s=setup_s)

    blocks: list[dict[str, Any]] = []
    mark: dict[str, Any] = {}

    def close_block(done: int) -> None:
        fits = common.FITS[mark["fits"] :]
        blocks.append(
            {
                "trials": done - mark["done"],
                "active_s": channel.active() - mark["wall"],
                "cpu_s": time.process_time() - mark["cpu"],
                "fit_s": sum(f["seconds"] for f in fits),
                "t0": mark["t0"],  # wall clock: the fits of a trial process are assigned to blocks by time
                "t1": time.time(),
            }
        )
        channel.send("block_done", done=done)

    def gate(index: int) -> None:
        if mark:
            close_block(index)
        channel.receive("run")
        mark.update(done=index, wall=channel.active(), cpu=time.process_time(), fits=len(common.FITS), t0=time.time())

    run0 = channel.active()
    arm.run(gate)
    trials_s = channel.active() - run0
    close_block(len(configs))

    channel.receive("finish")
    finish0 = channel.active()
    info = arm.finish()
    fits = info.pop("fits", common.FITS)
    end = channel.active()
    channel.send(
        "finished",
        setup_s=setup_s,
        trials_s=trials_s,
        finish_s=end - finish0,
        wall_s=end - wall0,
        cpu_s=time.process_time() - cpu0,
        blocks=blocks,
        fits=fits,
        **info,
    )
    channel.receive("exit")


def run_quality(channel: Channel, args: argparse.Namespace) -> None:
    while True:
        command = channel.receive("run", "exit")
        if command["cmd"] == "exit":
            return
        common.FITS.clear()
        cpu0 = time.process_time()
        workdir = Path(args.workdir) / f"seed-{command['seed']}"
        result = quality_run(args.name, int(command["seed"]), float(command["budget_s"]), args.epochs, workdir)
        measured = {
            "fit_s": sum(f["seconds"] for f in common.FITS),
            "fits": len(common.FITS),
            "epochs_trained": sum(f["epochs"] or 0 for f in common.FITS),
        }
        # automl's default trains each trial in a child process, out of this process's fit timer: its own
        # per-trial fit times (the same perf_counter around fit, in the child) stand in
        channel.send("result", **{**measured, **result}, cpu_s=time.process_time() - cpu0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--role", choices=("overhead", "quality"), required=True)
    parser.add_argument("--name", required=True)
    parser.add_argument("--configs")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--block", type=int, default=5)
    parser.add_argument("--workdir", required=True)
    args = parser.parse_args(argv)

    replies = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # stray prints of any library land in the log, not in the reply stream
    channel = Channel(sys.stdin, replies)
    try:
        start = time.perf_counter()
        common.quiet_libraries()
        for module in IMPORTS[args.name]:
            importlib.import_module(module)
        common.install_fit_timer()
        import keras

        channel.send(
            "ready",
            import_s=time.perf_counter() - start,
            pid=os.getpid(),
            backend=keras.backend.backend(),
            devices=_devices(),
        )
        if args.role == "overhead":
            run_overhead(channel, args)
        else:
            run_quality(channel, args)
    except BaseException as exc:  # the parent shows this; a worker never dies silently
        channel.send("error", traceback=traceback.format_exc(), message=f"{type(exc).__name__}: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
