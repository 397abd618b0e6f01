"""CycleGAN: unpaired translation between two image domains (sub-folders A and B, in name order).

Two generators (A->B, B->A) and two PatchGAN critics. The generator step weighs the adversarial loss of both
directions, the cycle loss (A->B->A and B->A->B) and the identity loss (a B image through A->B stays itself). The
objective is the mean over both directions of the Frechet distance between translated validation images and the
held-out real images of the target domain, in the GAN family's fixed feature space; the cycle error is logged
beside it. The registered model takes raw images and a target domain, and stores both generators.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import keras
import numpy as np

from automl.data import Dataset, DataSpec
from automl.families import Export, Family
from automl.families import _translation as tr
from automl.training import TrainingData


def build_model(params: Mapping[str, Any], spec: DataSpec) -> keras.Model:
    """One container ``[a, b] -> [A->B(a), B->A(b), critic_a(a), critic_b(b)]`` holding the four networks."""
    shape = tuple(spec.input_shape)
    g_ab = tr.build_generator(params, shape, 0, "generator_ab")
    g_ba = tr.build_generator(params, shape, 0, "generator_ba")
    d_a, d_b = tr.build_critic(params, shape, 0, "critic_a"), tr.build_critic(params, shape, 0, "critic_b")
    a, b = keras.Input(shape=shape, name="a"), keras.Input(shape=shape, name="b")
    return keras.Model([a, b], [g_ab(a), g_ba(b), d_a(a), d_b(b)], name="cyclegan")


def _pieces(model: keras.Model) -> tuple[keras.Model, keras.Model, keras.Model, keras.Model]:
    names = ("generator_ab", "generator_ba", "critic_a", "critic_b")
    g_ab, g_ba, d_a, d_b = (model.get_layer(n) for n in names)
    return g_ab, g_ba, d_a, d_b


def _predict(network: keras.Model, x: np.ndarray) -> np.ndarray:
    return np.asarray(network.predict(x, batch_size=256, verbose=0))


def scores(model: keras.Model, a: np.ndarray, b: np.ndarray, features: tr.Features) -> tuple[dict[str, float], Any]:
    """``fid`` (mean of both directions) and ``cycle_mae`` on held-out images of A and B, and their grid."""
    g_ab, g_ba, _, _ = _pieces(model)
    fake_b, fake_a = _predict(g_ab, a), _predict(g_ba, b)
    back_a, back_b = _predict(g_ba, fake_b), _predict(g_ab, fake_a)
    values = {
        "fid": float(np.mean([tr.frechet(features, fake_b, b), tr.frechet(features, fake_a, a)])),
        "cycle_mae": float(np.mean([np.mean(np.abs(back_a - a)), np.mean(np.abs(back_b - b))])),
    }
    return values, tr.grid([a, fake_b, back_a, b, fake_a, back_b])


def fit(model: keras.Model, params: Mapping[str, Any], data: TrainingData, epochs: int, callbacks: list[Any]) -> None:
    """Alternate critic steps and one generator step; per epoch log ``val_fid`` and ``val_cycle_mae``."""
    g_ab, g_ba, d_a, d_b = _pieces(model)
    adversarial = tr.adversarial_loss(params)
    for critic in (d_a, d_b):
        critic.compile(optimizer=tr.adam(params, "d_learning_rate"), loss=adversarial)
    twin_a, twin_b = tr.frozen_twin(d_a), tr.frozen_twin(d_b)
    shape = tuple(g_ab.inputs[0].shape[1:])
    a_in, b_in = keras.Input(shape=shape), keras.Input(shape=shape)
    fake_b, fake_a = g_ab(a_in), g_ba(b_in)
    combined = keras.Model(
        [a_in, b_in],
        [twin_b(fake_b), twin_a(fake_a), g_ba(fake_b), g_ab(fake_a), g_ba(a_in), g_ab(b_in)],
        name="generator_step",
    )
    cycle = float(params.get("cycle_weight", 10.0))
    identity = float(params.get("identity_weight", 0.5)) * cycle
    combined.compile(
        optimizer=tr.adam(params, "g_learning_rate"),
        loss=[adversarial, adversarial, "mae", "mae", "mae", "mae"],
        loss_weights=[1.0, 1.0, cycle, cycle, identity, identity],
    )
    train_a, train_b = tr.by_domain(data.x_train, data.y_train, 2)
    val_a, val_b = tr.by_domain(data.x_val, data.y_val, 2)
    features = tr.features_of(data.x_train, data.y_train)
    batch = max(1, min(int(params.get("batch_size", 16)), len(train_a), len(train_b)))
    patch = tuple(d_a.outputs[0].shape[1:])
    ones, zeros = np.ones((batch, *patch), "float32"), np.zeros((batch, *patch), "float32")
    critic_targets = np.concatenate([ones, zeros])
    rng = np.random.default_rng(int(np.random.randint(2**31 - 1)))  # follows the trial's seed

    def step() -> tuple[list[float], list[float]]:
        d_losses, g_losses = [], []
        for _ in range(max(1, max(len(train_a), len(train_b)) // batch)):
            a = train_a[rng.choice(len(train_a), size=batch, replace=False)]
            b = train_b[rng.choice(len(train_b), size=batch, replace=False)]
            made_b = np.asarray(g_ab.predict_on_batch(a))
            made_a = np.asarray(g_ba.predict_on_batch(b))
            d_losses.append(tr.loss_value(d_a.train_on_batch(np.concatenate([a, made_a]), critic_targets)))
            d_losses.append(tr.loss_value(d_b.train_on_batch(np.concatenate([b, made_b]), critic_targets)))
            twin_a.set_weights(d_a.get_weights())
            twin_b.set_weights(d_b.get_weights())
            g_losses.append(tr.loss_value(combined.train_on_batch([a, b], [ones, ones, a, b, a, b])))
        return d_losses, g_losses

    tr.run_epochs(model, epochs, callbacks, step, lambda: scores(model, val_a, val_b, features))


def export(model: keras.Model, dataset: Dataset) -> Export:
    """``[raw images, one-hot target] -> translated``: the target picks the generator; both are stored too."""
    g_ab, g_ba, _, _ = _pieces(model)
    shape = tuple(g_ab.inputs[0].shape[1:])

    def translate(x: Any, target: Any) -> Any:
        # stack both translations on a last axis and keep the target's: (to A, to B) . one-hot
        stacked = keras.layers.Concatenate(name="both")(
            [keras.layers.Reshape((*shape, 1), name=f"to_{i}")(g(x)) for i, g in enumerate((g_ba, g_ab))]
        )
        picked = keras.layers.Multiply(name="pick")([stacked, keras.layers.Reshape((1, 1, 1, 2))(target)])
        summed = keras.layers.Dense(1, use_bias=False, kernel_initializer="ones", trainable=False, name="sum")
        return keras.layers.Reshape(shape, name="translated")(summed(picked))

    network = tr.raw_translator(dataset, translate, 2, "cyclegan_translator")
    test_a, test_b = tr.by_domain(dataset.x_test, dataset.y_test, 2)
    values, picture = scores(model, test_a, test_b, tr.features_of(dataset.x_train, dataset.y_train))
    names = [tr.network_name(n) for n in dataset.metadata["labels"]]
    return Export(
        network,
        standalone=True,
        example=tr.example_input(dataset),
        images={"translations/best_grid.png": picture},
        metadata=tr.export_metadata(dataset, {f"test_{k}": v for k, v in values.items()}),
        networks={f"{names[0]}_to_{names[1]}": g_ab, f"{names[1]}_to_{names[0]}": g_ba},
    )


def check(dataset: Dataset, source: str) -> None:
    tr.check_domains(dataset, source, exactly=2, family="cyclegan")


FAMILY = Family(
    name="cyclegan",
    build=build_model,
    data_kinds=frozenset({"image"}),
    description="CycleGAN: unpaired translation between two image domains; Frechet distance in both directions.",
    fit=fit,
    metrics={"translation": {"fid": "minimize", "cycle_mae": "minimize"}},
    default_task="translation",
    compile=tr.compile_model,
    evaluate=tr.evaluate,
    export=export,
    check=check,
    supervised=False,
)
