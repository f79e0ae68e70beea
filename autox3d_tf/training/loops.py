"""``train``: one function behind ``training/train.py`` (and the demo), on ``model.fit``.

    from autox3d_tf.training import train
    result = train("data/train.csv", model="X3D_XS", out_dir="runs/xs", epochs=10, batch_size=8)
    result.weights_path        # runs/xs/final.weights.h5

A run folder holds everything the other scripts need:

    run.json            model / spec / classes / clip settings / recipe / results
    spec.json           the ArchSpec trained
    final.weights.h5    the trained weights (load with :func:`load_trained_model`)
    history.csv         one row per epoch (appended across restarts)
    logs/               TensorBoard event files
    backup/             keras.callbacks.BackupAndRestore state (weights, optimizer, epoch)

Running ``train`` again with the same ``out_dir`` resumes from the last finished epoch (a killed
run loses at most one epoch); a finished run is not trained again.

TensorFlow-only (tf.data input, tf.distribute strategies).
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import asdict, dataclass, field
from typing import Sequence

import keras
import tensorflow as tf

from autox3d_tf.arch.cells import CellNetSpec
from autox3d_tf.arch.spec import ArchSpec
from autox3d_tf.data.clip import ClipSettings, resolve_clip
from autox3d_tf.data.common import check_segments
from autox3d_tf.models.networks import build_network, load_network_spec, network_macs, spec_from_dict
from autox3d_tf.models.consensus import CONSENSUS_MODES, segment_consensus as consensus_model
from autox3d_tf.training import strategy as strategies
from autox3d_tf.training.data import HoldOut, eval_dataset, train_dataset
from autox3d_tf.training.finetune import CLASSIFIER, FINETUNE_WARMUP_FRACTION, finetune_learning_rate, freeze_before
from autox3d_tf.training.recipe import Recipe, build_optimizer, scaled_learning_rate
from autox3d_tf.weights.loading import RUN_WEIGHTS_FILE, load_keras_weights, load_pretrained, validate_weights_argument

__all__ = ["TrainResult", "train", "resolve_spec", "load_run", "load_trained_model", "precision_policy", "run_macs"]

logger = logging.getLogger("autox3d_tf.training")

RUN_FILE = "run.json"
WEIGHTS_FILE = RUN_WEIGHTS_FILE


class MultiWorkerModel(keras.Model):
    """The functional network, trainable by ``fit`` under ``MultiWorkerMirroredStrategy``.

    Keras 3's ``fit`` fails there (keras-team/keras#20585): it builds the model symbolically from a
    first batch (a ``PerReplica`` value it cannot convert) and reduces logs with
    ``strategy.reduce(MEAN, axis=0)``, which rejects scalars. The network is built already, and the
    logs are returned with shape (1,). Same layers and weights as the network it wraps.
    """

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        return

    def train_step(self, data):
        return strategies.keras_logs(super().train_step(data))

    def test_step(self, data):
        return strategies.keras_logs(super().test_step(data))


@dataclass
class TrainResult:
    """What :func:`train` did: the run folder, the trained model (logits), its Keras history."""

    run_dir: str
    model: keras.Model
    history: dict
    weights_path: str
    config: dict
    initial_epoch: int = 0
    seconds: float = 0.0
    extra: dict = field(default_factory=dict)


def resolve_spec(model: str, spec: ArchSpec | str | os.PathLike | None) -> tuple[ArchSpec, str]:
    """The architecture (``spec``: an ArchSpec or a JSON file; default the zoo ``model``'s) and
    the canonical zoo name whose clip settings are the defaults."""
    from autox3d_tf.zoo import canonical_name, get_spec

    name = canonical_name(model)
    if spec is None:
        return get_spec(name), name
    if isinstance(spec, (ArchSpec, CellNetSpec)):
        return spec, name
    return load_network_spec(spec), name


def precision_policy(mixed_precision: bool | str) -> str:
    """Keras dtype policy for a ``mixed_precision`` flag: False -> "float32"; True -> "mixed_float16"
    with a GPU, else "mixed_bfloat16"; a policy name is returned as is."""
    if isinstance(mixed_precision, str):
        if mixed_precision not in ("float32", "mixed_float16", "mixed_bfloat16"):
            raise ValueError(f"unknown precision policy {mixed_precision!r}")
        return mixed_precision
    if not mixed_precision:
        return "float32"
    return "mixed_float16" if tf.config.list_logical_devices("GPU") else "mixed_bfloat16"


def tensorboard_available() -> bool:
    """Whether ``tf.summary`` can write (TensorFlow >= 2.20 no longer installs tensorboard)."""
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        return False
    return True


# What a run.json written before a key existed meant by its absence.
_RESUME_DEFAULTS = {"segments": 1, "segment_consensus": "avg"}


def _check_resume(run_dir: str, config: dict) -> None:
    path = os.path.join(run_dir, RUN_FILE)
    if not os.path.exists(path):
        return
    with open(path, encoding="utf-8") as f:
        old = json.load(f)
    for key in ("spec", "classes", "clip", "batch_size", "epochs", "shuffle_frames", "weights", "unfreeze_from",
                "augmentation", "validation_split", "segments", "segment_consensus"):
        if old.get(key, _RESUME_DEFAULTS.get(key)) != config.get(key):
            raise ValueError(
                f"{run_dir} holds a different run ({key} differs: {old.get(key)!r} != {config.get(key)!r}); "
                "use a new out_dir, or delete the old one"
            )


def _write_json(path: str, data: dict) -> None:
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=1, default=str)
    os.replace(tmp, path)


def train(
    train_data: str | os.PathLike,
    *,
    model: str = "X3D_XS",
    spec: ArchSpec | str | os.PathLike | None = None,
    out_dir: str | os.PathLike = "runs/train",
    val_data: str | os.PathLike | None = None,
    validation_split: float | None = None,
    split_seed: int = 0,
    epochs: int = 10,
    batch_size: int = 8,
    steps_per_epoch: int | None = None,
    learning_rate: float | None = None,
    warmup_epochs: float | None = None,
    recipe: Recipe = Recipe(),
    frames: int | None = None,
    rate: int | None = None,
    crop: int | None = None,
    test_crop: int | None = None,
    scale_range: Sequence[int] | None = None,
    classes: Sequence[str] | str | None = None,
    train_split: str | None = None,
    val_split: str | None = None,
    flip: bool | None = None,
    shuffle_frames: bool = False,
    segments: int = 1,
    segment_consensus: str = "avg",
    mixed_precision: bool | str = False,
    strategy: str | tf.distribute.Strategy = "auto",
    weights: str | os.PathLike | None = None,
    freeze_backbone: bool = False,
    unfreeze_from: str | None = None,
    seed: int | None = 0,
    verbose: int | str = "auto",
    callbacks: Sequence[keras.callbacks.Callback] = (),
    causal: bool = False,
) -> TrainResult:
    """Trains a zoo model or an ``ArchSpec`` on a video dataset with the X3D recipe.

    Args:
      train_data: annotation file (Kinetics CSV, PySlowFast list, SSv2 JSON), a folder of class
        subfolders, or TFRecord shards.
      model: zoo model: the architecture (unless ``spec``) and the default clip settings.
      spec: an ``ArchSpec`` or a JSON file (e.g. a search result) to train instead of ``model``'s.
      out_dir: the run folder (resumed when it holds an unfinished run of the same configuration).
      val_data: optional validation data, scored once per epoch on one centre view per video.
      validation_split: instead of ``val_data``: hold this fraction of ``train_data``'s videos out
        of training and validate on them (Keras' ``validation_split``, by video, drawn with
        ``split_seed``; `autox3d evaluate` on the run's data scores the same videos).
      epochs, batch_size: epochs and global batch size (split over the replicas).
      steps_per_epoch: default: training examples // batch_size (at least 1).
      learning_rate: peak learning rate; default ``recipe.base_learning_rate`` scaled to the batch
        (a tenth of it when fine-tuning from ``weights``: `finetune_learning_rate`).
      warmup_epochs: linear warm-up; default ``recipe.warmup_fraction`` of the run (when
        fine-tuning: ``FINETUNE_WARMUP_FRACTION``, 5%).
      recipe: momentum, weight decay (not on BatchNorm / biases), dropout, label smoothing...
      frames, rate, crop, test_crop, scale_range: override the clip settings (``scale_range``: the
        short-side scale jitter ``(min, max)`` of training clips).
      classes: class names or a class-map file (default: the data's ``classes.json``).
      flip: random horizontal flips of training clips (default None: on, except for
        Something-Something annotations). Turn them off when a class names a direction (left / right swipes, clockwise / counter-clockwise).
      shuffle_frames: permute every clip's frames in time (train and validation): no motion.
      segments: K temporal segments (TSN-style): every clip is K snippets of ``frames`` x ``rate``,
        one per equal part of the video (random in training, centred in validation), and the model
        is the network wrapped by `autox3d_tf.models.segment_consensus` (the K snippets' logits
        reduced by ``segment_consensus``, ``"avg"`` or ``"max"``). Recorded in run.json; evaluate,
        export and `load_trained_model` rebuild the consensus model. The weights file holds the
        network's weights (a plain zoo-structured file).
      mixed_precision: False, True (float16 on GPU, bfloat16 on CPU) or a Keras policy name.
      strategy: "auto" (see :func:`~autox3d_tf.training.strategy.pick_strategy`), a name, or a strategy.
      weights: pretrained weights to start from: a registered dataset name ("kinetics400"), a
        PyTorch checkpoint, a ``.weights.h5`` file or a run folder. Loaded strictly; only the
        classifier is left out when its number of classes differs (see `load_pretrained`).
      freeze_backbone: train only the classifier (every other layer frozen, BatchNorm in
        inference mode).
      unfreeze_from: freeze the layer groups before this one ("stem", "stage1", ..., "head",
        "classifier"; see `autox3d_tf.training.finetune`) and train the rest.
      seed: seeds weights initialisation and the data pipeline.
      verbose: ``model.fit`` verbosity (1: progress bar).
      callbacks: extra Keras callbacks (run after the run's own).
      causal: train the causal form of the architecture (`ArchSpec.causal`; recorded in the run's
        spec, so evaluation, export and streaming rebuild it).
    """
    t0 = time.time()
    arch, zoo_name = resolve_spec(model, spec)
    if causal:
        if not isinstance(arch, ArchSpec):
            raise ValueError("causal=True needs an X3D-style architecture (an ArchSpec), not a cell network")
        arch = arch.replace(causal=True)
    segments = check_segments(segments)
    if segment_consensus not in CONSENSUS_MODES:
        raise ValueError(f"segment_consensus must be one of {CONSENSUS_MODES}, got {segment_consensus!r}")
    if freeze_backbone and unfreeze_from is not None:
        raise ValueError("give freeze_backbone or unfreeze_from, not both")
    if freeze_backbone:
        unfreeze_from = CLASSIFIER
    if unfreeze_from is not None and weights is None:
        raise ValueError("freezing layers needs pretrained `weights` to start from")
    if validation_split is not None and val_data is not None:
        raise ValueError("give val_data or validation_split, not both")
    hold_out = None if validation_split is None else HoldOut(float(validation_split), "training", int(split_seed))
    validate_weights_argument(zoo_name, weights)
    clip: ClipSettings = resolve_clip(zoo_name, arch if spec is not None else None, frames, rate, crop,
                                      test_crop, scale_range)
    if clip.train_crop < arch.total_stride:
        raise ValueError(f"crop {clip.train_crop} is smaller than the network's stride {arch.total_stride}")
    if seed is not None:
        keras.utils.set_random_seed(int(seed))
    dist = strategy if isinstance(strategy, tf.distribute.Strategy) else strategies.pick_strategy(strategy)
    replicas = dist.num_replicas_in_sync
    if batch_size % replicas:
        raise ValueError(f"batch_size {batch_size} is not a multiple of the {replicas} replicas")

    infos = []  # filled before dataset_per_worker returns (it calls make_train at once)

    def make_train(batch: int, ctx: tf.distribute.InputContext | None) -> tf.data.Dataset:
        ds, data_info = train_dataset(train_data, zoo_name, clip, batch_size=batch, class_names=classes,
                                      split=train_split, seed=seed, shuffle_time=shuffle_frames, flip=flip,
                                      hold_out=hold_out, segments=segments, input_context=ctx)
        infos.append(data_info)
        return ds

    train_ds = strategies.dataset_per_worker(dist, batch_size, make_train)
    info = infos[0]
    num_classes = len(info.class_names)
    if num_classes < 2:
        raise ValueError(f"need at least 2 classes, the class map of {train_data} has {num_classes}")
    steps = int(steps_per_epoch or max(info.num_examples // batch_size, 1))
    total_steps = steps * epochs
    finetuning = weights is not None
    if learning_rate is not None:
        peak = float(learning_rate)
    else:
        peak = finetune_learning_rate(batch_size, recipe) if finetuning else scaled_learning_rate(batch_size, recipe)
    warmup_fraction = FINETUNE_WARMUP_FRACTION if finetuning else recipe.warmup_fraction
    warmup_steps = (int(round(warmup_epochs * steps)) if warmup_epochs is not None
                    else int(round(warmup_fraction * total_steps)))
    val_ds, val_steps = None, None
    if val_data is not None or hold_out is not None:
        val_hold_out = None if hold_out is None else HoldOut(hold_out.fraction, "validation", hold_out.seed)
        views, val_info = eval_dataset(train_data if val_data is None else val_data, zoo_name, clip,
                                       batch_size=batch_size, num_clips=1, num_crops=1,
                                       class_names=info.class_names, split=train_split if val_data is None else val_split,
                                       shuffle_time=shuffle_frames, seed=None if seed is None else seed + 1,
                                       hold_out=val_hold_out, segments=segments)
        # Repeated, with a fixed number of steps: Keras warns about datasets of unknown length.
        # Not split per worker by video: every worker must run the same number of validation steps,
        # and shares of unequal size would count some views twice or drop some. Keras shards it by
        # element instead (AUTO falls back to DATA): every worker decodes every validation video.
        val_ds = views.map(lambda x, y, _: (x, tf.one_hot(y, num_classes))).repeat()
        val_steps = max(-(-val_info.num_examples // batch_size), 1)

    policy = precision_policy(mixed_precision)
    config = {
        "model": zoo_name,
        "spec": arch.to_dict(),
        "classes": info.class_names,
        "clip": asdict(clip),
        "train_data": os.fspath(train_data),
        "val_data": None if val_data is None else os.fspath(val_data),
        "validation_split": None if hold_out is None else {"fraction": hold_out.fraction, "seed": hold_out.seed},
        "epochs": int(epochs),
        "batch_size": int(batch_size),
        "steps_per_epoch": steps,
        "learning_rate": peak,
        "warmup_steps": warmup_steps,
        "recipe": recipe.to_dict(),
        "augmentation": {"flip": None if flip is None else bool(flip), "scale_range": list(clip.scale_range)},
        "shuffle_frames": bool(shuffle_frames),
        "segments": segments,
        "segment_consensus": segment_consensus,
        "macs": run_macs(arch, clip, num_classes, segments),
        "weights": None if weights is None else os.fspath(weights),
        "unfreeze_from": unfreeze_from,
        "precision": policy,
        "strategy": strategies.describe(dist),
        "seed": seed,
    }
    config = json.loads(json.dumps(config, default=str))  # as it reads back from run.json
    run_dir = os.fspath(out_dir)
    own_dir = strategies.task_dir(run_dir)
    os.makedirs(own_dir, exist_ok=True)
    _check_resume(own_dir, config)
    _write_json(os.path.join(own_dir, RUN_FILE), {**config, "completed": False})
    with open(os.path.join(own_dir, "spec.json"), "w", encoding="utf-8") as f:
        f.write(arch.to_json() + "\n")

    previous = keras.mixed_precision.global_policy().name
    keras.mixed_precision.set_global_policy(policy)
    try:
        with dist.scope():
            net = build_network(arch, input_shape=(clip.frames, None, None, 3), classes=num_classes,
                              classifier_activation=None, dropout_rate=recipe.dropout_rate, name=arch.name)
            pretrained = None if weights is None else load_pretrained(net, zoo_name, weights)
            if pretrained is not None:
                logger.info(pretrained.summary())
            layers_frozen = freeze_before(net, unfreeze_from)["frozen"] if unfreeze_from is not None else []
            trained = net if segments == 1 else consensus_model(net, segments, segment_consensus)
            if policy != "float32":  # float32 logits for the loss and metrics (Keras' mixed-precision advice)
                logits = keras.layers.Activation("linear", dtype="float32", name="logits_float32")(trained.output)
                trained = keras.Model(trained.input, logits, name=trained.name)
            if isinstance(dist, tf.distribute.MultiWorkerMirroredStrategy):
                trained = MultiWorkerModel(trained.inputs, trained.outputs, name=trained.name)
            optimizer = build_optimizer(trained, learning_rate=peak, batch_size=batch_size, total_steps=total_steps,
                                        warmup_steps=warmup_steps, recipe=recipe)
            trained.compile(
                optimizer=optimizer,
                loss=keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=recipe.label_smoothing),
                metrics=[keras.metrics.CategoricalAccuracy(name="accuracy"),
                         keras.metrics.TopKCategoricalAccuracy(k=min(5, num_classes), name="top5")],
                jit_compile=False,
            )
        backup = keras.callbacks.BackupAndRestore(os.path.join(own_dir, "backup"), save_freq="epoch",
                                                  delete_checkpoint=False)
        own_callbacks = [
            backup,
            keras.callbacks.CSVLogger(os.path.join(own_dir, "history.csv"), append=True),
        ]
        if tensorboard_available():
            own_callbacks.append(keras.callbacks.TensorBoard(os.path.join(own_dir, "logs"), update_freq="epoch"))
        else:
            logger.warning("tensorboard is not installed: no TensorBoard logs (pip install tensorboard)")
        history = trained.fit(
            train_ds,
            epochs=epochs,
            steps_per_epoch=steps,
            validation_data=val_ds,
            validation_steps=val_steps,
            shuffle=False,  # the pipeline shuffles
            callbacks=own_callbacks + list(callbacks),
            verbose=verbose,
        )
        initial_epoch = int(getattr(trained, "_initial_epoch", 0) or 0)
    finally:
        keras.mixed_precision.set_global_policy(previous)

    # A clean float32 copy of the weights (no optimizer state), loadable into the zoo model.
    clean = build_network(arch, input_shape=(clip.frames, None, None, 3), classes=num_classes,
                        classifier_activation="softmax", name=arch.name)
    for layer in clean.layers:  # by name: freezing may reorder a model's weight list
        if layer.weights:
            layer.set_weights(net.get_layer(layer.name).get_weights())
    weights_path = os.path.join(own_dir, WEIGHTS_FILE)
    clean.save_weights(weights_path)
    hist = {k: [float(v) for v in vals] for k, vals in history.history.items()}
    seconds = time.time() - t0
    final = {k: v[-1] for k, v in hist.items() if v}
    loaded = None if pretrained is None else {**pretrained.to_dict(), "loaded_layers": len(pretrained.loaded_layers)}
    _write_json(os.path.join(own_dir, RUN_FILE),
                {**config, "completed": True, "initial_epoch": initial_epoch, "final_metrics": final,
                 "seconds": round(seconds, 1), "pretrained": loaded, "frozen_layers": layers_frozen})
    extra = {"pretrained": loaded, "frozen_layers": layers_frozen,
             "pretrained_summary": None if pretrained is None else pretrained.summary()}
    return TrainResult(run_dir=own_dir, model=trained, history=hist, weights_path=weights_path, config=config,
                       initial_epoch=initial_epoch, seconds=seconds, extra=extra)


def run_macs(arch: ArchSpec, clip: ClipSettings, classes: int, segments: int = 1) -> dict:
    """The MACs of a run's model on one clip at the test crop (analytic, `autox3d_tf.arch.macs`):
    the network's per snippet, and ``segments`` times that per clip (the consensus runs the network
    on every snippet)."""
    network = network_macs(arch, clip.frames, clip.test_crop, classes)
    return {"per_clip": int(segments) * network, "network": network, "segments": int(segments),
            "input": [int(segments) * clip.frames, clip.test_crop, clip.test_crop, 3]}


def load_run(run_dir: str | os.PathLike) -> dict:
    """The ``run.json`` of a run folder."""
    path = os.path.join(os.fspath(run_dir), RUN_FILE)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{run_dir} is not a training run folder (no {RUN_FILE})")
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def load_trained_model(
    run_dir: str | os.PathLike,
    input_shape: Sequence[int | None] | None = None,
    classifier_activation: str | None = "softmax",
    weights: str | os.PathLike | None = None,
) -> tuple[keras.Model, dict]:
    """Rebuilds a run's model (float32, inference) with its trained weights.

    ``input_shape`` defaults to ``(frames, test_crop, test_crop, 3)`` of the run's clip settings.
    A run trained with ``segments=K`` gives its consensus model (a
    `autox3d_tf.models.SegmentConsensusModel` taking ``(K * frames, ...)``; ``input_shape`` is then
    the network's, one snippet, and ``classifier_activation`` applies to the consensus of the
    logits). Returns ``(model, run_config)``."""
    config = load_run(run_dir)
    spec = spec_from_dict(config["spec"])
    clip = config["clip"]
    shape = tuple(input_shape) if input_shape is not None else (clip["frames"], clip["test_crop"], clip["test_crop"], 3)
    segments = int(config.get("segments", 1))
    net = build_network(spec, input_shape=shape, classes=len(config["classes"]),
                        classifier_activation=classifier_activation if segments == 1 else None, name=spec.name)
    load_keras_weights(net, weights if weights else os.path.join(os.fspath(run_dir), WEIGHTS_FILE))
    if segments > 1:
        net = consensus_model(net, segments, config.get("segment_consensus", "avg"), activation=classifier_activation)
    return net, config
