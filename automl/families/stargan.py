"""StarGAN: one generator translates an image into any of two or more domains (sub-folders, in name order).

The generator takes an image and a one-hot target domain; the PatchGAN critic also classifies the domain. The
critic learns the domain of real images; the generator step weighs the adversarial loss, the classification of
its translations as the target domain, and the reconstruction of the input when translated back. The objective
is the mean over target domains of the Frechet distance between translated validation images and held-out real
images of that domain; a fixed domain classifier's accuracy on the translations is logged beside it.
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
    """One container ``[image, one-hot target] -> [translated, patch logits, domain logits]``."""
    shape, domains = tuple(spec.input_shape), int(spec.extra.get("n_labels", 0))
    generator = tr.build_generator(params, shape, domains, "generator")
    critic = tr.build_critic(params, shape, domains, "critic")
    image, target = keras.Input(shape=shape, name="image"), keras.Input(shape=(domains,), name="target")
    return keras.Model([image, target], [generator([image, target]), *critic(image)], name="stargan")


def _domains(generator: keras.Model) -> int:
    return int(generator.inputs[1].shape[-1])


def _translate(generator: keras.Model, x: np.ndarray, target: np.ndarray) -> np.ndarray:
    codes = tr.one_hot(target, _domains(generator))
    return np.asarray(generator.predict([x, codes], batch_size=256, verbose=0))


def scores(
    generator: keras.Model, x: np.ndarray, y: np.ndarray, features: tr.Features, classify: Any
) -> tuple[dict[str, float], Any]:
    """``fid`` (mean over target domains), ``domain_accuracy`` and ``reconstruction_mae``, and a grid."""
    distances, hits, errors = [], [], []
    for target in range(_domains(generator)):
        source = y != target
        if not source.any() or source.all():
            continue
        made = _translate(generator, x[source], np.full(source.sum(), target))
        back = _translate(generator, made, y[source])
        distances.append(tr.frechet(features, made, x[~source]))
        hits.append(classify(made) == target)
        errors.append(np.abs(back - x[source]).mean(axis=(1, 2, 3)))
    shown = x[: tr.GRID_IMAGES]
    to = (y[: tr.GRID_IMAGES] + 1) % _domains(generator)
    made = _translate(generator, shown, to)
    values = {
        "fid": float(np.mean(distances)),
        "domain_accuracy": float(np.mean(np.concatenate(hits))),
        "reconstruction_mae": float(np.mean(np.concatenate(errors))),
    }
    return values, tr.grid([shown, made, _translate(generator, made, y[: tr.GRID_IMAGES])])


def fit(model: keras.Model, params: Mapping[str, Any], data: TrainingData, epochs: int, callbacks: list[Any]) -> None:
    """Critic steps (real: real/fake + domain; translated: fake), then a generator step; log the val scores."""
    generator, critic = model.get_layer("generator"), model.get_layer("critic")
    domains = _domains(generator)
    adversarial = tr.adversarial_loss(params)
    classification = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    cls_weight, rec_weight = float(params.get("cls_weight", 1.0)), float(params.get("rec_weight", 10.0))
    critic.compile(
        optimizer=tr.adam(params, "d_learning_rate"), loss=[adversarial, classification], loss_weights=[1.0, cls_weight]
    )
    critic_fake = keras.Model(critic.inputs, critic.outputs[0], name="critic_on_translations")  # shares weights
    critic_fake.compile(optimizer=tr.adam(params, "d_learning_rate"), loss=adversarial)
    twin = tr.frozen_twin(critic)
    shape = tuple(generator.inputs[0].shape[1:])
    image, target, source = keras.Input(shape=shape), keras.Input(shape=(domains,)), keras.Input(shape=(domains,))
    made = generator([image, target])
    patches, classes = twin(made)
    combined = keras.Model([image, target, source], [patches, classes, generator([made, source])])
    combined.compile(
        optimizer=tr.adam(params, "g_learning_rate"),
        loss=[adversarial, classification, "mae"],
        loss_weights=[1.0, cls_weight, rec_weight],
    )
    x, y = np.asarray(data.x_train, dtype="float32"), np.asarray(data.y_train, dtype="int64")
    x_val, y_val = np.asarray(data.x_val, dtype="float32"), np.asarray(data.y_val, dtype="int64")
    features = tr.features_of(x, y)
    classify = tr.domain_classifier(x, y)
    batch = max(1, min(int(params.get("batch_size", 16)), len(x)))
    patch = tuple(critic.outputs[0].shape[1:])
    ones, zeros = np.ones((batch, *patch), "float32"), np.zeros((batch, *patch), "float32")
    rng = np.random.default_rng(int(np.random.randint(2**31 - 1)))  # follows the trial's seed

    def step() -> tuple[list[float], list[float]]:
        d_losses, g_losses = [], []
        for _ in range(max(1, len(x) // batch)):
            rows = rng.choice(len(x), size=batch, replace=False)
            real, labels = x[rows], y[rows]
            to = (labels + rng.integers(1, domains, size=batch)) % domains  # always another domain
            fake = np.asarray(generator.predict_on_batch([real, tr.one_hot(to, domains)]))
            d_losses.append(tr.loss_value(critic.train_on_batch(real, [ones, labels])))
            d_losses.append(tr.loss_value(critic_fake.train_on_batch(fake, zeros)))
            twin.set_weights(critic.get_weights())
            codes = [real, tr.one_hot(to, domains), tr.one_hot(labels, domains)]
            g_losses.append(tr.loss_value(combined.train_on_batch(codes, [ones, to, real])))
        return d_losses, g_losses

    tr.run_epochs(model, epochs, callbacks, step, lambda: scores(generator, x_val, y_val, features, classify))


def export(model: keras.Model, dataset: Dataset) -> Export:
    """``[raw images, one-hot target] -> translated``: the data's preprocessing, then the generator."""
    generator = model.get_layer("generator")
    domains = _domains(generator)
    network = tr.raw_translator(dataset, lambda x, target: generator([x, target]), domains, "stargan_translator")
    x, y = np.asarray(dataset.x_test, dtype="float32"), np.asarray(dataset.y_test, dtype="int64")
    x_train, y_train = np.asarray(dataset.x_train, dtype="float32"), np.asarray(dataset.y_train, dtype="int64")
    classify = tr.domain_classifier(x_train, y_train)
    values, picture = scores(generator, x, y, tr.features_of(x_train, y_train), classify)
    return Export(
        network,
        standalone=True,
        example=tr.example_input(dataset),
        images={"translations/best_grid.png": picture},
        metadata=tr.export_metadata(dataset, {f"test_{k}": v for k, v in values.items()}),
    )


def check(dataset: Dataset, source: str) -> None:
    tr.check_domains(dataset, source, exactly=None, family="stargan")


FAMILY = Family(
    name="stargan",
    build=build_model,
    data_kinds=frozenset({"image"}),
    description="StarGAN: one generator for many image domains; Frechet distance per target domain.",
    fit=fit,
    metrics={"translation": {"fid": "minimize", "domain_accuracy": "maximize", "reconstruction_mae": "minimize"}},
    default_task="translation",
    compile=tr.compile_model,
    evaluate=tr.evaluate,
    export=export,
    check=check,
    supervised=False,
)
