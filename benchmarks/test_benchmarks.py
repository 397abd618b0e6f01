"""Checks that the arms compare like with like: ``pytest benchmarks/test_benchmarks.py`` (not part of CI's suite)."""

from __future__ import annotations

import optuna
import pytest

from benchmarks.common import TASK, sample_configs, suggest_mlp
from benchmarks.report import best_by
from benchmarks.run import balanced_orders


@pytest.fixture(scope="module")
def configs() -> list[dict]:
    return sample_configs(30, seed=0)


def test_configs_are_reproducible(configs: list[dict]) -> None:
    assert sample_configs(30, seed=0) == configs
    assert {c["optimizer"] for c in configs} == {"adam", "adamw", "sgd", "rmsprop"}  # every branch is covered


def test_hand_written_space_is_the_yaml_space(configs: list[dict]) -> None:
    """The loop's ``suggest_mlp`` asks Optuna for the same names, ranges and branches as ``mlp.yaml``."""
    from automl.spaces import load_default_space

    space = load_default_space("mlp")
    for config in configs:
        assert suggest_mlp(optuna.trial.FixedTrial(config)) == config
    by_yaml = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=3))
    by_hand = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=3))
    for _ in range(25):
        a, b = by_yaml.ask(), by_hand.ask()
        assert space.suggest(a, TASK) == suggest_mlp(b)
        assert a.distributions == b.distributions
        by_yaml.tell(a, 0.0)
        by_hand.tell(b, 0.0)


def test_keras_tuner_space_mirrors_the_yaml(configs: list[dict]) -> None:
    keras_tuner = pytest.importorskip("keras_tuner")
    from automl.spaces import load_default_space
    from benchmarks.kt import kt_params

    for config in configs:
        hp = keras_tuner.HyperParameters()
        hp.values = dict(config)
        assert kt_params(hp) == config
    hp = keras_tuner.HyperParameters()
    kt_params(hp)
    assert {p.name for p in hp.space} == set(load_default_space("mlp").params)


def test_enqueued_oracle_hands_out_the_configs_in_order(configs: list[dict], tmp_path) -> None:
    pytest.importorskip("keras_tuner")
    from benchmarks.kt import EnqueuedOracle

    oracle = EnqueuedOracle(configs[:3], seed=1)
    oracle._set_project_dir(str(tmp_path), "p")
    handed = []
    for _ in range(4):
        trial = oracle.create_trial("tuner0")
        if trial.status == "STOPPED":
            break
        handed.append(dict(trial.hyperparameters.values))
        oracle.ongoing_trials.pop("tuner0")
    assert handed == configs[:3]


def test_orders_put_every_arm_in_every_position_equally() -> None:
    orders = balanced_orders(["a", "l", "k"], 6)
    assert orders[:4] == [["a", "l", "k"], ["k", "l", "a"], ["l", "k", "a"], ["a", "k", "l"]]
    for arm in "alk":
        assert sorted(order.index(arm) for order in orders) == [0, 0, 1, 1, 2, 2]


def test_best_so_far_counts_only_finished_trials() -> None:
    finished = [[1.0, 0.5], [2.0, None], [3.0, 0.9], [4.0, 0.7]]
    assert best_by(finished, 0.5) is None
    assert best_by(finished, 2.5) == 0.5
    assert best_by(finished, 3.0) == 0.9
    assert best_by(finished, 10.0) == 0.9


@pytest.mark.parametrize("name", ["digits8-ae", "digits8-vae", "digits8-gan", "ratings"])
def test_unsupervised_rows_pin_a_whole_config_and_get_only_the_mean_baseline(name: str) -> None:
    from benchmarks import quality

    setup = quality.data_setups("unused")[name]
    pins, dropped = quality.handpicked_params(setup.families[0], setup)
    assert pins and dropped == []
    assert quality.applicable_families("mean", setup) == (quality.ALL,)
    for peer in ("kt_random", "kt_hyperband", "autokeras", "majority", "last_value"):
        assert quality.applicable_families(peer, setup) == ()


def test_mean_baselines_score_the_training_mean_on_automls_split() -> None:
    import numpy as np

    from benchmarks import quality

    setups = quality.data_setups("unused")
    ratings = quality.load_split(setups["ratings"], "autorec", 0)
    global_mean = np.sqrt(np.mean(np.square(float(ratings.metadata["mean"]) - ratings.y_test)))
    assert quality.mean_baseline(setups["ratings"], 0)["value"] < global_mean  # item means know more
    digits = quality.load_split(setups["digits8-ae"], "autoencoder", 0)
    x_test = np.asarray(digits.x_test, dtype="float64")
    recon = quality.mean_baseline(setups["digits8-ae"], 0)["value"]
    assert 0 < recon < np.mean(np.square(x_test))  # the mean image is closer than a blank one
    assert recon == pytest.approx(np.mean(np.square(x_test - np.asarray(digits.x_train).mean(axis=0))))


def test_the_fit_probe_reads_the_batch_size_of_automls_pipeline_without_drawing_a_batch() -> None:
    import numpy as np
    import tensorflow as tf

    from automl.training import TrainingData, tf_pipelines
    from benchmarks.common import _batch_of

    x, y = np.zeros((100, 4), "float32"), np.zeros(100, "int64")
    pipelines = tf_pipelines(TrainingData(x, y, x[:10], y[:10], 1.0), 16)
    assert pipelines is not None
    assert _batch_of((pipelines[0],)) == 16
    unbatched_steps = tf.data.Dataset.from_tensor_slices((x, y)).batch(8).unbatch().batch(12)
    assert _batch_of((unbatched_steps,)) == 12
    assert _batch_of((x,)) is None
