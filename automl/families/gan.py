"""GANs: a dense GAN for table rows, DCGAN-style for images, optionally class-conditional.

Training alternates ``train_on_batch`` on two compiled models (portable across backends): the discriminator, and
generator -> frozen copy of the discriminator (its weights synced before each generator step). An epoch is one pass
over the training rows, or ``MIN_STEPS`` generator steps on a small data set. The objective is
the Frechet distance of samples to the validation split in a fixed feature space fitted once per data set
(``_quality``). Generators and discriminators are kept as lists with domain labels, so a later CycleGAN/StarGAN
adds pieces rather than rewriting the loop. Given a labeled task, the family trains its discriminator as a classifier.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np

from automl.data import Dataset, DataSpec
from automl.families import Export, Family
from automl.families._generative import SUPERVISED_TASKS, build_decoder, build_encoder
from automl.families._heads import output_head
from automl.families._quality import feature_space, image_grid, sample_score
from automl.training import TrainingData, fit_model, log_trial_image

GRID_SAMPLES = 64
GRID_EVERY = 3  # epochs between the sample grids logged on a trial's run
SCORE_SEED = 0  # the same latent draws score every epoch and every trial
MIN_STEPS = 200  # generator steps per epoch at least, so that small data sets train enough per epoch


def piece_params(params: Mapping[str, Any], prefix: str, activation: str) -> dict[str, Any]:
    """The shared encoder/decoder builders' params for the generator (``g_``) or discriminator (``d_``)."""
    return {
        "architecture": params.get("architecture", "dense"),
        "units": params.get(f"{prefix}units", 64),
        "n_layers": params.get(f"{prefix}layers", 2),
        "filters": params.get(f"{prefix}filters", 16),
        "activation": activation,
    }


def n_labels(params: Mapping[str, Any], spec: DataSpec) -> int:
    return int(spec.extra.get("n_labels", 0)) if params.get("conditional") else 0


def with_channels(shape: tuple[int, ...], extra: int) -> tuple[int, ...]:
    return (*shape[:-1], shape[-1] + extra)


def build_model(params: Mapping[str, Any], spec: DataSpec) -> keras.Model:
    """One container model, ``[latent(+label), data(+label)] -> [sample, logit]``, holding both pieces."""
    if spec.task in SUPERVISED_TASKS:
        inputs = keras.Input(shape=spec.input_shape, name="features")
        features = build_encoder(piece_params(params, "d_", "leaky_relu"), spec, 32, name="discriminator")(inputs)
        return keras.Model(inputs, output_head(features, spec), name="gan_classifier")
    labels = n_labels(params, spec)
    latent = int(params.get("latent_size", 16))
    generator = build_decoder(piece_params(params, "g_", "relu"), spec, latent + labels, name="generator")
    d_spec = DataSpec(spec.kind, spec.task, with_channels(tuple(spec.input_shape), labels))
    discriminator = build_encoder(piece_params(params, "d_", "leaky_relu"), d_spec, 1, name="discriminator")
    g_in = keras.Input(shape=(latent + labels,), name="latent")
    d_in = keras.Input(shape=d_spec.input_shape, name="sample")
    return keras.Model([g_in, d_in], [generator(g_in), discriminator(d_in)], name="gan")


@dataclass
class Pieces:
    """The networks of a GAN and the domain (class) labels they condition on."""

    generators: list[keras.Model]
    discriminators: list[keras.Model]
    latent_size: int
    domains: int = 0
    kind: str = "table"

    @classmethod
    def of(cls, model: keras.Model) -> Pieces:
        generator, discriminator = model.get_layer("generator"), model.get_layer("discriminator")
        sample_shape = tuple(generator.outputs[0].shape[1:])
        domains = int(discriminator.inputs[0].shape[-1]) - int(sample_shape[-1])
        width = int(generator.inputs[0].shape[-1])
        kind = "image" if len(sample_shape) == 3 else "table"
        return cls([generator], [discriminator], width - domains, domains, kind)

    def latent(self, n: int, labels: np.ndarray | None, rng: np.random.Generator) -> np.ndarray:
        z = rng.normal(size=(n, self.latent_size)).astype("float32")
        return np.concatenate([z, self.one_hot(labels, n)], axis=1) if self.domains else z

    def one_hot(self, labels: np.ndarray | None, n: int) -> np.ndarray:
        labels = np.arange(n) % self.domains if labels is None else np.asarray(labels)
        return np.eye(self.domains, dtype="float32")[labels]

    def label_channels(self, labels: np.ndarray | None, like: np.ndarray) -> np.ndarray:
        """One-hot labels shaped to sit beside samples like ``like``: columns (rows) or constant channels (images)."""
        codes = self.one_hot(labels, len(like))
        if like.ndim == 4:
            codes = np.broadcast_to(codes[:, None, None, :], (*like.shape[:3], self.domains))
        return np.asarray(codes, dtype="float32")

    def condition(self, x: np.ndarray, labels: np.ndarray | None) -> np.ndarray:
        """Append the label to a sample (nothing for an unconditional GAN)."""
        if not self.domains:
            return x
        return np.concatenate([x, self.label_channels(labels, x)], axis=-1).astype("float32")

    def sample(self, n: int, labels: np.ndarray | None = None, seed: int = SCORE_SEED) -> np.ndarray:
        z = self.latent(n, labels, np.random.default_rng(seed))
        return np.asarray(self.generators[0].predict(z, batch_size=1024, verbose=0))


def fit(model: keras.Model, params: Mapping[str, Any], data: TrainingData, epochs: int, callbacks: list[Any]) -> None:
    """Alternate D steps and G steps; per epoch log d_loss, g_loss and ``val_fid`` for the objective."""
    if model.name != "gan":
        fit_model(model, params, data, epochs, callbacks)
        return
    pieces = Pieces.of(model)
    generator, discriminator = pieces.generators[0], pieces.discriminators[0]
    bce = keras.losses.BinaryCrossentropy(from_logits=True)
    beta1 = float(params.get("beta1", 0.5))
    d_rate, g_rate = float(params.get("d_learning_rate", 2e-4)), float(params.get("g_learning_rate", 2e-4))
    discriminator.compile(optimizer=keras.optimizers.Adam(d_rate, beta_1=beta1), loss=bce)
    frozen = keras.models.clone_model(discriminator)
    frozen.trainable = False
    z_in = keras.Input(shape=generator.inputs[0].shape[1:])
    if pieces.domains:
        # the label reaches the discriminator beside the sample, as in the D step
        c_in = keras.Input(shape=(*generator.outputs[0].shape[1:-1], pieces.domains))
        both = keras.layers.Concatenate(axis=-1)([generator(z_in), c_in])
        combined = keras.Model([z_in, c_in], frozen(both), name="generator_step")
    else:
        combined = keras.Model(z_in, frozen(generator(z_in)), name="generator_step")
    combined.compile(optimizer=keras.optimizers.Adam(g_rate, beta_1=beta1), loss=bce)
    labels_train = data.y_train if pieces.domains else None
    labels_val = data.y_val if pieces.domains else None
    features = feature_space(data.x_train, data.y_train)
    x = np.asarray(data.x_train, dtype="float32")
    batch = min(int(params.get("batch_size", 64)), len(x))
    real_target = np.full((batch, 1), 1.0 - float(params.get("label_smoothing", 0.0)), dtype="float32")
    targets = np.concatenate([real_target, np.zeros((batch, 1), "float32")])
    rng = np.random.default_rng(int(np.random.randint(2**31 - 1)))  # follows the trial's seed
    d_steps = int(params.get("d_steps", 1))
    for cb in callbacks:
        cb.set_model(model)
        cb.on_train_begin()
    model.stop_training = False
    for epoch in range(epochs):
        d_losses, g_losses = [], []
        for _ in range(max(MIN_STEPS, len(x) // batch)):
            for _ in range(d_steps):
                rows = rng.choice(len(x), size=batch, replace=False)
                labels = None if labels_train is None else labels_train[rows]
                fake = np.asarray(generator.predict_on_batch(pieces.latent(batch, labels, rng)))
                both = np.concatenate([pieces.condition(x[rows], labels), pieces.condition(fake, labels)])
                d_losses.append(float(np.asarray(discriminator.train_on_batch(both, targets))))
            frozen.set_weights(discriminator.get_weights())
            labels = None if labels_train is None else labels_train[rng.choice(len(x), size=batch)]
            z = pieces.latent(batch, labels, rng)
            g_inputs = [z, pieces.label_channels(labels, x[:batch])] if pieces.domains else z
            g_losses.append(float(np.asarray(combined.train_on_batch(g_inputs, real_target))))
        samples = pieces.sample(len(data.x_val), labels_val)
        logs = {
            "loss": float(np.mean(g_losses)),
            "d_loss": float(np.mean(d_losses)),
            "g_loss": float(np.mean(g_losses)),
            "val_fid": sample_score(features, samples, data.x_val),
        }
        if pieces.kind == "image" and (epoch % GRID_EVERY == 0 or epoch == epochs - 1):
            log_trial_image(f"samples/epoch_{epoch:03d}.png", image_grid(pieces.sample(GRID_SAMPLES)))
        for cb in callbacks:
            cb.on_epoch_end(epoch, logs)
        if model.stop_training:
            break
    for cb in callbacks:
        cb.on_train_end()


def export(model: keras.Model, dataset: Dataset) -> Export | None:
    """The generator (latent vector [+ one-hot label] in, a sample out), a grid of samples, the test score."""
    if dataset.task in SUPERVISED_TASKS:
        return None
    pieces = Pieces.of(model)
    width = pieces.latent_size + pieces.domains
    inputs = keras.Input(shape=(width,), name="latent")
    network = keras.Model(inputs, pieces.generators[0](inputs), name="generator")
    labels = dataset.y_test if pieces.domains else None
    features = feature_space(dataset.x_train, dataset.y_train)
    test_fid = sample_score(features, pieces.sample(len(dataset.x_test), labels), dataset.x_test)
    columns = [f"z_{i}" for i in range(pieces.latent_size)] + [f"label_{i}" for i in range(pieces.domains)]
    import pandas as pd

    latent = pieces.latent(5, None, np.random.default_rng(SCORE_SEED)).astype("float64")  # plain floats accepted
    example = pd.DataFrame(latent, columns=columns)
    metadata: dict[str, Any] = {
        "kind": "latent",
        "latent_size": pieces.latent_size,
        "n_labels": pieces.domains,
        "classes": None,
        "sample_kind": pieces.kind,
        "test_metrics": {"test_fid": test_fid},
    }
    images = {}
    if pieces.kind == "image":
        images["samples/final_grid.png"] = image_grid(pieces.sample(GRID_SAMPLES))
    else:
        metadata["output_prefix"] = "x_"
    return Export(network, standalone=True, example=example, images=images, metadata=metadata)


def evaluate(exported: Any, dataset: Dataset, metadata: Mapping[str, Any]) -> dict[str, float] | None:
    """The test Frechet distance computed at export."""
    if dataset.task in SUPERVISED_TASKS:
        return None
    return dict(metadata.get("test_metrics", {}))


def compile_model(model: keras.Model, params: Mapping[str, Any], spec: DataSpec) -> keras.Model:
    """Supervised: as usual. A GAN compiles its pieces in ``fit`` (two optimizers); the container needs none."""
    from automl.training import compile_model as default_compile

    if spec.task in SUPERVISED_TASKS:
        return default_compile(model, params, spec.task)
    return model


FAMILY = Family(
    name="gan",
    build=build_model,
    data_kinds=frozenset({"table", "image"}),
    description="GAN (dense for rows, DCGAN-style for images, optionally conditional); Frechet-distance objective.",
    fit=fit,
    metrics={"generation": {"fid": "minimize"}},
    default_task="generation",
    compile=compile_model,
    evaluate=evaluate,
    export=export,
)
