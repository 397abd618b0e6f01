"""Search-space files: validation errors name the file and the param; suggestions follow conditions."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from automl.errors import SpaceError
from automl.spaces import default_space_names, load_default_space, load_space, parse_space

GOOD = """
params:
  optimizer: {type: categorical, choices: [adam, sgd]}
  momentum: {type: float, low: 0.0, high: 0.9, when: {optimizer: sgd}}
  units: {type: int, low: 8, high: 64, log: true}
  batch_norm: {type: bool}
  loss:
    type: categorical
    choices: {classification: [cross_entropy], regression: [mse, huber]}
"""


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("params:\n  a: {type: complex, low: 0, high: 1}\n", "param 'a': unknown type 'complex'"),
        ("params:\n  lr: {type: float, low: 0.1, high: 0.01}\n", "param 'lr': low (0.1) > high (0.01)"),
        ("params:\n  lr: {type: float, low: 0.0, high: 1.0, log: true}\n", "param 'lr': log scale needs low > 0"),
        ("params:\n  n: {type: int, low: 0, high: 4, log: true}\n", "param 'n': log scale needs low > 0"),
        ("params:\n  act: {type: categorical, choices: []}\n", "param 'act': choices is empty"),
        ("params:\n  a: {type: bool}\n  a: {type: bool}\n", "duplicate name 'a'"),
        (
            "params:\n  m: {type: float, low: 0, high: 1, when: {optimiser: sgd}}\n",
            "condition on unknown param 'optimiser'",
        ),
        ("params:\n  a: {type: float, low: 0, high: 1, lw: 3}\n", "param 'a': lw"),
        ("params: [unclosed\n", "not valid YAML"),
        ("just a string\n", "expected a mapping"),
    ],
)
def test_invalid_space_names_file_and_problem(tmp_path: Path, text: str, fragment: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(SpaceError) as info:
        load_space(path)
    message = str(info.value)
    assert message.startswith(str(path)), message
    assert fragment in message
    assert "\n" not in message


def test_missing_space_file(tmp_path: Path) -> None:
    with pytest.raises(SpaceError, match="not found"):
        load_space(tmp_path / "nope.yaml")


def test_conditional_param_only_when_parent_has_value() -> None:
    space = parse_space(GOOD, "good.yaml")
    for optimizer in ("adam", "sgd"):
        params = space.suggest(
            optuna.trial.FixedTrial(
                {"optimizer": optimizer, "momentum": 0.5, "units": 16, "batch_norm": True, "loss": "cross_entropy"}
            ),
            "classification",
        )
        assert ("momentum" in params) is (optimizer == "sgd")
        assert params["loss"] == "cross_entropy"


def test_choices_follow_the_task() -> None:
    space = parse_space(GOOD, "good.yaml")
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    losses = {space.suggest(study.ask(), "regression")["loss"] for _ in range(30)}
    assert losses == {"mse", "huber"}


def test_pinned_params_are_typed_and_not_sampled() -> None:
    space = parse_space(GOOD, "good.yaml")
    fixed = space.parse_fixed(["units=32", "batch_norm=false", "optimizer=SGD", "momentum=0.25"])
    assert fixed == {"units": 32, "batch_norm": False, "optimizer": "sgd", "momentum": 0.25}
    trial = optuna.create_study().ask()
    params = space.suggest(trial, "classification", fixed)
    assert params["units"] == 32 and params["optimizer"] == "sgd" and params["momentum"] == 0.25
    assert "units" not in trial.params


@pytest.mark.parametrize(
    ("assignment", "fragment"),
    [
        ("unitz=3", "unknown param 'unitz'"),
        ("units=abc", "param 'units'"),
        ("optimizer=lbfgs", "not one of"),
        ("batch_norm=maybe", "not a bool"),
        ("units", "expected name=value"),
    ],
)
def test_bad_pins_are_refused(assignment: str, fragment: str) -> None:
    with pytest.raises(SpaceError, match=fragment):
        parse_space(GOOD, "good.yaml").parse_fixed([assignment])


def test_every_shipped_space_is_valid_and_mlp_covers_the_issue() -> None:
    assert "mlp" in default_space_names()
    for name in default_space_names():
        assert load_default_space(name).params
    mlp = load_default_space("mlp").params
    for name in (
        "n_layers",
        "units",
        "width_shape",
        "activation",
        "dropout",
        "l2",
        "batch_norm",
        "batch_size",
        "loss",
        "optimizer",
        "learning_rate",
        "momentum",
    ):
        assert name in mlp
    assert set(mlp["optimizer"].extremes("classification")) == {"adam", "adamw", "sgd", "rmsprop"}
    assert set(mlp["loss"].extremes("regression")) == {"mse", "mae", "huber"}
    assert mlp["learning_rate"].log is True
    assert mlp["momentum"].when == {"optimizer": ["sgd"]}
