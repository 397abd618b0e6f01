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
        ("params:\n  a: {type: bool}\nstart:\n  - params: {b: true}\n", "start[0]: unknown param 'b'"),
        (
            "params:\n  n: {type: int, low: 1, high: 4}\nstart:\n  - params: {n: 9}\n",
            "start[0]: param 'n': 9 is outside",
        ),
        ("params:\n  n: {type: int, low: 1, high: 4}\nstart:\n  - params: {n: 2.5}\n", "not an integer"),
        ("params:\n  a: {type: bool}\nstart:\n  - when: {colour: red}\n    params: {a: true}\n", "start[0]: when"),
        (
            "params:\n  f: {type: categorical, choices: [x, y], searched: false, default: x}\n"
            "start:\n  - params: {f: y}\n",
            "param 'f' is not searched",
        ),
        ("params:\n  f: {type: categorical, choices: [x, y], searched: false, default: z}\n", "'z' is not one of x, y"),
        (
            "params:\n  lr: {type: float, low: 0.1, high: 1, log: true, by: {opt: {sgd: {low: 1, high: 2}}}}\n",
            "by: unknown param 'opt'",
        ),
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


SMALL_BUDGET = """
params:
  optimizer: {type: categorical, choices: [adam, sgd]}
  learning_rate: {type: float, low: 1.0e-4, high: 1.0e-2, log: true, by: {optimizer: {sgd: {low: 1.0e-2, high: 0.5}}}}
  flip: {type: categorical, choices: [none, horizontal], searched: false, default: none}
  batch_size: {type: categorical, choices: [16, 32, 64, 128], max_train_fraction: 0.0625}
start:
  - when: {kind: image}
    params: {optimizer: adam, learning_rate: 2.0e-3, batch_size: 128}
  - when: {kind: table}
    params: {optimizer: sgd, learning_rate: 0.1}
"""


def test_learning_rate_range_follows_the_optimizer() -> None:
    space = parse_space(SMALL_BUDGET, "s.yaml")
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    drawn = [space.suggest(study.ask(), "classification") for _ in range(60)]
    sgd = [p["learning_rate"] for p in drawn if p["optimizer"] == "sgd"]
    adam = [p["learning_rate"] for p in drawn if p["optimizer"] == "adam"]
    assert sgd and adam
    assert all(1e-2 <= lr <= 0.5 for lr in sgd)
    assert all(1e-4 <= lr <= 1e-2 for lr in adam)
    assert max(sgd) > 0.05  # the larger steps SGD needs are actually drawn


def test_an_unsearched_param_keeps_its_default_unless_pinned() -> None:
    space = parse_space(SMALL_BUDGET, "s.yaml")
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    assert {space.suggest(study.ask(), "classification")["flip"] for _ in range(20)} == {"none"}
    trial = study.ask()
    pinned = space.suggest(trial, "classification", space.parse_fixed(["flip=horizontal"]))
    assert pinned["flip"] == "horizontal"
    assert "flip" not in trial.params  # never an Optuna param: the sampler cannot draw it
    assert space.describe()[2]["range"] == {"fixed": "none"}


def test_batch_sizes_are_bounded_by_the_training_split() -> None:
    space = parse_space(SMALL_BUDGET, "s.yaml")

    def drawn(n_train: int | None, count: int) -> set[int]:
        study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))  # one data set per study
        return {space.suggest(study.ask(), "classification", n_train=n_train)["batch_size"] for _ in range(count)}

    assert drawn(600, 30) == {16, 32}  # 600 / 16 = 37.5
    assert drawn(50, 10) == {16}  # the smallest choice always stays
    assert drawn(None, 40) == {16, 32, 64, 128}


def test_start_points_follow_the_data_kind_the_pins_and_the_split() -> None:
    space = parse_space(SMALL_BUDGET, "s.yaml")
    assert space.start_points("classification", "image") == [
        {"optimizer": "adam", "learning_rate": 2e-3, "batch_size": 128}
    ]
    assert space.start_points("classification", "table") == [{"optimizer": "sgd", "learning_rate": 0.1}]
    assert space.start_points("classification", "text") == []
    pinned = space.start_points("classification", "image", {"optimizer": "sgd"}, n_train=1000)
    assert pinned == [{"learning_rate": 2e-3, "batch_size": 32}]  # pins win; 128 > 1000/16 becomes 32


def test_every_shipped_family_has_a_start_that_its_lint_builds() -> None:
    from automl.lint import branches

    kinds = {"cnn": "image", "resnet": "image", "rnn": "series", "mlp": "table"}
    for name in default_space_names():
        space = load_default_space(name)
        assert space.starts, f"{name} has no starting configuration"
        if name in kinds:
            labels = [
                label
                for label, _ in branches(space, "classification" if name != "rnn" else "regression", kind=kinds[name])
            ]
            assert any(label.startswith("start[") for label in labels), name
