"""Dry-run lint of a space: every branch built at its extreme values, with parameter counts and memory."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from automl.errors import AutoMLError
from automl.lint import branches, lint_space, synthetic_spec
from automl.spaces import load_default_space, parse_space
from cli.main import app

runner = CliRunner()

TINY_SPACE = """
params:
  n_layers:      {type: int, low: 1, high: 1}
  units:         {type: int, low: 4, high: 4}
  batch_size:    {type: categorical, choices: [8]}
  optimizer:     {type: categorical, choices: [adam, sgd]}
  momentum:      {type: float, low: 0.0, high: 0.9, when: {optimizer: sgd}}
"""


def test_branches_cover_every_choice_and_both_ends_of_every_range() -> None:
    space = load_default_space("mlp")
    found = [params for _, params in branches(space, "classification")]
    for name, param in space.params.items():
        for value in param.extremes("classification"):
            assert any(p.get(name) == value for p in found), (name, value)
    sgd = [p for p in found if p["optimizer"] == "sgd"]
    assert {p["momentum"] for p in sgd} == {0.0, 0.99}  # the conditional param with its activating parent
    assert all("weight_decay" not in p for p in found if p["optimizer"] != "adamw")
    assert len(found) == len({json.dumps(p, sort_keys=True) for p in found})  # no branch twice
    regression = [params for _, params in branches(space, "regression")]
    assert {p["loss"] for p in regression} == {"mse", "mae", "huber"}


def test_memory_estimate_is_weights_state_and_activations() -> None:
    report = lint_space("mlp", parse_space(TINY_SPACE, "tiny.yaml"), synthetic_spec("table"))
    by_optimizer = {b.params["optimizer"]: b for b in report.branches if b.params.get("momentum", 0.9) > 0}
    adam = by_optimizer["adam"]
    # 16 inputs -> Dense(4) -> softmax(3): (16*4 + 4) + (4*3 + 3) = 83 float32 values
    assert adam.n_params == adam.trainable_params == 83 and adam.weights_bytes == 83 * 4
    assert adam.training_state_bytes == 83 * 4 * 3  # gradients + Adam's two slots
    assert adam.activations_bytes == (4 + 4 + 3) * 8 * 4  # dense_0, act_0, output for a batch of 8
    assert adam.total_bytes == 332 + 996 + 352
    assert by_optimizer["sgd"].training_state_bytes == 83 * 4 * 2  # gradients + momentum
    plain_sgd = next(b for b in report.branches if b.params.get("momentum") == 0.0)
    assert plain_sgd.training_state_bytes == 83 * 4  # gradients only
    assert report.largest is adam


def test_default_spaces_grow_from_low_to_high() -> None:
    report = lint_space("mlp", load_default_space("mlp"), synthetic_spec("table", "regression"))
    labels = {b.label: b for b in report.branches}
    assert labels["all high"].n_params > 100 * labels["all low"].n_params
    assert report.largest.label == "all high" and report.task == "regression"


def test_a_branch_that_cannot_build_is_a_user_error() -> None:
    broken = parse_space(
        TINY_SPACE + "  activation: {type: categorical, choices: [relu, no_such_activation]}\n", "b.yaml"
    )
    with pytest.raises(AutoMLError, match=r"b\.yaml: 1 of 3 branches") as raised:
        lint_space("mlp", broken, synthetic_spec("table"))
    assert '"activation": "no_such_activation"' in str(raised.value) and "activation function" in str(raised.value)


def test_lint_command_table_json_and_real_data(tmp_path: Path, table_csv: Path) -> None:
    space = tmp_path / "tiny.yaml"
    space.write_text(TINY_SPACE)
    text = runner.invoke(app, ["lint", "--family", "mlp", "--space", str(space)])
    assert text.exit_code == 0, text.output
    assert "all low" in text.stdout and "branches build" in text.stdout and "KiB" in text.stdout
    data = json.loads(runner.invoke(app, ["lint", "--family", "mlp", "--space", str(space), "--json"]).stdout)
    assert data["max_params"] == 83 and data["input_shape"] == [16] and data["kind"] == "table"
    real = runner.invoke(
        app, ["lint", "--family", "mlp", "--space", str(space), "--data", str(table_csv), "--target", "y", "--json"]
    )
    assert real.exit_code == 0, real.output
    # x1, x2 and a one-hot color (3 values + out-of-vocabulary) -> 6 inputs; two classes
    assert json.loads(real.stdout)["max_params"] == (6 * 4 + 4) + (4 * 2 + 2)
    image = json.loads(
        runner.invoke(
            app, ["lint", "--family", "mlp", "--space", str(space), "--kind", "image", "--shape", "8,8,1", "--json"]
        ).stdout
    )
    assert image["input_shape"] == [8, 8, 1] and image["max_params"] == (64 * 4 + 4) + 15


def _bad(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    line = result.stderr.strip()
    assert line.startswith("automl: error: ") and "\n" not in line, line
    return line


def test_lint_bad_inputs(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text(TINY_SPACE + "  activation: {type: categorical, choices: [relu, no_such_activation]}\n")
    assert "no_such_activation" in _bad("lint", "--family", "mlp", "--space", str(broken))
    assert "'nope'" in _bad("lint", "--family", "nope")
    assert "series" in _bad("lint", "--family", "mlp", "--kind", "series")
    assert "--shape" in _bad("lint", "--family", "mlp", "--shape", "a,b")
    assert "'unitz'" in _bad("lint", "--family", "mlp", "--set", "unitz=3")


def test_a_huge_branch_is_counted_not_built_and_refused_fast_in_little_memory(tmp_path: Path) -> None:
    """An MLP of up to 50 layers of 1e8 units: counted from its layers' shapes, refused in one line."""
    import subprocess
    import sys
    import time

    space = tmp_path / "huge.yaml"
    space.write_text(
        "params:\n  n_layers: {type: int, low: 1, high: 50}\n  units: {type: int, low: 8, high: 100000000}\n"
    )
    home = tmp_path / "store"
    # the child reports its own peak memory: VmHWM belongs to its address space (ru_maxrss would also count the
    # test process it was forked from, which Linux carries across exec)
    probe = (
        "import runpy, sys\n"
        "sys.argv = ['automl'] + sys.argv[1:]\n"
        "try:\n    runpy.run_module('cli.main', run_name='__main__')\n"
        "finally:\n"
        "    peak = next(l for l in open('/proc/self/status') if l.startswith('VmHWM:')).split()[1]\n"
        "    print('peak_kb', peak, file=sys.stderr)\n"
    )
    args = ["search", "--data", "demo:wine", "--space", str(space), "--home", str(home), "--trials", "1"]
    start = time.monotonic()
    done = subprocess.run([sys.executable, "-c", probe, *args], capture_output=True, text=True, timeout=300)
    elapsed = time.monotonic() - start
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, done.stderr[-2000:]
    error = next(line for line in lines if line.startswith("automl: error: "))
    assert "units" in error and "parameters, over the limit" in error and "--max-params" in error
    assert elapsed < 60
    peak_gb = int(lines[-1].split()[-1]) / 2**20
    assert peak_gb < 2, f"peak memory {peak_gb:.2f} GB"
    assert not home.exists()
