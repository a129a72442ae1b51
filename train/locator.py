"""`edgesight train-locator`: a small fully convolutional network that marks where signs are in road scenes.

See runtime/learned_locate.py for what it predicts and how the runtime reads it, and
train/locator_data.py for the crops it learns from. The run folder is like a classifier's
(config.json with "kind": "locator", checkpoints, state.json, model.keras, report.json), so
`--resume` and `edgesight export` work the same way.
"""
from __future__ import annotations

import dataclasses
import shutil
import sys
import time

import keras
import numpy as np
import onnxruntime as ort
import tensorflow as tf
from edgesight.runtime.datasets import GTSRB_CLASS_NAMES
from edgesight.runtime.files import atomic_path, write_json_atomic
from edgesight.runtime.frame_eval import GOAL_MIN_SIZE
from edgesight.runtime.learned_locate import (
    DEFAULT_MIN_SCORE,
    LOCATOR_TASK,
    LocatorGeometry,
    LocatorOutput,
    read_locator_metadata,
)
from edgesight.runtime.proposal_recall import proposal_recall
from edgesight.runtime.scenes import Scene, read_scenes
from edgesight.runtime.sessions import open_session
from edgesight.runtime.shipped import resolve_model
from keras import layers

from .config import LocatorTrainConfig
from .locator_data import MIN_PASTED_SIDE
from .locator_init import check_init_from, locator_from_file
from .trainer import CONFIG_FILE, TrainError, prepare_run_dir

VALIDATION_CROPS = 400
INIT_SAMPLE_CROPS = 256  # training crops for the statistics and channel ranking of a run started from a file


def _pointwise(x, filters: int, name: str):
    x = layers.Conv2D(filters, 1, use_bias=False, name=f"{name}_pw")(x)
    x = layers.BatchNormalization(name=f"{name}_pw_bn")(x)
    return layers.ReLU(name=f"{name}_pw_relu")(x)


def _separable(x, filters: int, name: str, strides: int = 1, dilation: int = 1):
    x = layers.DepthwiseConv2D(3, strides=strides, dilation_rate=dilation, padding="same", use_bias=False, name=f"{name}_dw")(x)
    x = layers.BatchNormalization(name=f"{name}_dw_bn")(x)
    x = layers.ReLU(name=f"{name}_dw_relu")(x)
    return _pointwise(x, filters, name)


def _check_architecture(stride: int, context_stride: int | None = None, fine_width: int | None = None) -> None:
    if stride not in (4, 8):
        raise TrainError(f"stride must be 4 or 8. Received: stride={stride}")
    if context_stride not in (None, stride) and (stride, context_stride) != (4, 8):
        raise TrainError(f"context_stride must be the stride or, with stride 4, 8 (an hourglass). "
                         f"Received: stride={stride}, context_stride={context_stride}")
    if fine_width is not None and ((stride, context_stride) != (4, 8) or fine_width < 4):
        raise TrainError(f"fine_width is the stride-4 width of an hourglass (stride 4, context_stride 8), at least 4. "
                         f"Received: stride={stride}, context_stride={context_stride}, fine_width={fine_width}")


def locator_geometry(config: LocatorTrainConfig) -> LocatorGeometry:
    """The grid of the network `config` builds: an hourglass takes sides that are multiples of its context stride."""
    hourglass = config.context_stride not in (None, config.stride)
    return LocatorGeometry(downscale=config.downscale, stride=config.stride,
                           input_multiple=config.context_stride if hourglass else None)


def build_locator(width: int, stride: int = 4, height: int | None = None, frame_width: int | None = None,
                  context_stride: int | None = None, fine_width: int | None = None,
                  pointwise_heads: bool = False) -> keras.Model:
    """uint8 RGB frame (any size unless given) -> [rows, columns, 5] grid at `stride` (4 or 8).

    Stride-2 steps down to the stride, then separable convolutions whose dilations reach about 120
    pixels of the downscaled frame around each cell, enough for the largest sign, at little cost
    (1, 2, 4, 8 at stride 4; 1, 2, 4 at stride 8, where each step spans twice the pixels).
    At stride 8 the stride-4 step has three quarters of the width: most of the cost is at the
    finest grid. Separate heads for the centre score and the box, as in CenterNet. (One shared head
    ran 1 ms a frame faster, but trained on the same recipe it scored signs lower: its validation
    recall needed centre score 0.1 and three times the proposals; docs/EXPERIMENTS.md, "One shared head".)

    With `context_stride` 8 at stride 4 (an hourglass, after the encoder-decoder networks CenterNet builds on), the
    context runs at stride 8 and `width` channels, on a quarter of the cells; a 1x1 convolution narrows it to the
    stride-4 layer's width (`fine_width`, by default half), and it is brought back to stride 4 (nearest neighbour) and
    added to that layer, so the heads (as wide as that layer) keep the fine grid's detail and see the context's reach.
    """
    _check_architecture(stride, context_stride, fine_width)
    inputs = keras.Input((height, frame_width, 3), dtype="uint8", name="image")
    x = layers.Rescaling(1.0 / 255.0, name="scale")(inputs)
    x = layers.Conv2D(16, 3, strides=2, padding="same", use_bias=False, name="stem_conv")(x)
    x = layers.BatchNormalization(name="stem_bn")(x)
    x = layers.ReLU(name="stem_relu")(x)
    if context_stride == 8 and stride == 4:
        head_width = fine_width or width // 2
        fine = _separable(x, head_width, "down", strides=2)
        x = _separable(fine, width, "down8", strides=2)
        for dilation in (1, 2, 4):
            x = _separable(x, width, f"context{dilation}", dilation=dilation)
        x = layers.Conv2D(head_width, 1, use_bias=False, name="narrow")(x)
        x = layers.BatchNormalization(name="narrow_bn")(x)
        x = layers.UpSampling2D(2, interpolation="nearest", name="up")(x)  # exported as one Resize (export/simplify.py)
        x = layers.ReLU(name="merge_relu")(layers.Add(name="merge")([x, fine]))
    else:
        if stride == 8:
            x = _separable(x, width * 3 // 4, "down", strides=2)
            x = _separable(x, width, "down8", strides=2)
            dilations = (1, 2, 4)
        else:
            x = _separable(x, width, "down", strides=2)
            dilations = (1, 2, 4, 8)
        for dilation in dilations:
            x = _separable(x, width, f"context{dilation}", dilation=dilation)
        head_width = width
    head = _pointwise if pointwise_heads else _separable
    # A prior of 2% per cell (bias -4) keeps the first steps from drowning in background loss.
    centre = layers.Conv2D(1, 1, name="centre", bias_initializer=keras.initializers.Constant(-4.0))(head(x, head_width, "centre_head"))
    box = layers.Conv2D(4, 1, name="box")(head(x, head_width, "box_head"))
    return keras.Model(inputs, layers.Concatenate(name="grid")([centre, box]), name="sign_locator")


@keras.saving.register_keras_serializable(package="edgesight")
class LocatorLoss(keras.losses.Loss):
    """CenterNet's penalty-reduced focal loss on the centre score, plus L1 on offset and log size at centres.

    Both are divided by the number of signs in the batch, so crops with many signs count as much per sign.
    With `distill_weight` > 0 the targets carry a teacher locator's grid too (channels 6-10: its centre score and
    box channels, see locator_data.teacher_targets), and that share of the loss follows the teacher: the KL
    divergence of the student's centre score from the teacher's at every cell (zero where they agree), and L1 to
    the teacher's box channels weighted by its centre score where that is at least the lowest
    operating point (DEFAULT_MIN_SCORE), divided by the signs as the rest.
    """

    def __init__(self, size_weight: float = 2.0, distill_weight: float = 0.0, name: str = "locator_loss", **kwargs):
        super().__init__(name=name, **kwargs)
        self.size_weight = size_weight
        self.distill_weight = distill_weight

    def call(self, targets, predicted):
        heat, box_targets, centres = targets[..., :1], targets[..., 1:5], targets[..., 5:6]
        score = tf.clip_by_value(tf.sigmoid(predicted[..., :1]), 1e-4, 1 - 1e-4)
        positive_loss = -tf.math.log(score) * (1 - score) ** 2 * centres
        negative_loss = -tf.math.log(1 - score) * score ** 2 * (1 - heat) ** 4 * (1 - centres)
        signs = tf.maximum(tf.reduce_sum(centres), 1.0)
        box_loss = tf.reduce_sum(tf.abs(predicted[..., 1:5] - box_targets) * centres)
        per_sign = (tf.reduce_sum(positive_loss + negative_loss) + self.size_weight * box_loss) / signs
        if self.distill_weight:
            teacher_score = tf.clip_by_value(targets[..., 6:7], 1e-4, 1 - 1e-4)
            divergence = (teacher_score * tf.math.log(teacher_score / score)
                          + (1 - teacher_score) * tf.math.log((1 - teacher_score) / (1 - score)))
            # A box channel means something only where a centre is: elsewhere the teacher's are as arbitrary as the
            # student's, and its background score (about 0.02 a cell) would spread over them 50 times the signs' weight.
            centre_weight = teacher_score * tf.cast(teacher_score >= DEFAULT_MIN_SCORE, teacher_score.dtype)
            teacher_box_loss = tf.reduce_sum(tf.abs(predicted[..., 1:5] - targets[..., 7:11]) * centre_weight)
            distilled = (tf.reduce_sum(divergence) + self.size_weight * teacher_box_loss) / signs
            per_sign = (1 - self.distill_weight) * per_sign + self.distill_weight * distilled
        # Keras averages per-crop values over the batch: every crop carries the batch's per-sign loss.
        return tf.fill([tf.shape(targets)[0]], per_sign)

    def get_config(self) -> dict:
        return {**super().get_config(), "size_weight": self.size_weight, "distill_weight": self.distill_weight}


def _open_teacher(config: LocatorTrainConfig, geometry: LocatorGeometry) -> ort.InferenceSession:
    """The teacher locator file's session, or a TrainError if its grid is not the student's cell for cell or not dense."""
    path = resolve_model(config.teacher)
    session = open_session(path, None, "--teacher needs a locator file (or the shipped sign-locator).")
    teacher = read_locator_metadata(session.get_modelmeta().custom_metadata_map, str(path))
    if (teacher.downscale, teacher.stride) != (geometry.downscale, geometry.stride) or config.crop_size % teacher.side_multiple:
        raise TrainError(f"{path}: a teacher's grid must be the student's cell for cell: downscale {geometry.downscale} and "
                         f"stride {geometry.stride}, and --crop-size a multiple of its input multiple "
                         f"({teacher.side_multiple}). Received: teacher downscale {teacher.downscale}, stride "
                         f"{teacher.stride}; --crop-size {config.crop_size}")
    if len(session.get_outputs()) != 1:
        raise TrainError(f"{path}: a teacher must give its box channels at every cell, and this file gives them at its "
                         "best peaks only (locator files exported since 2026-12-07). Write the dense form of its float "
                         "file with `python -m edgesight.export.peak_boxes --dense FLOAT_FILE TEACHER.onnx` and teach "
                         "with that.")
    return session


def split_scenes(scenes: list[Scene], val_fraction: float, seed: int) -> tuple[list[Scene], list[Scene]]:
    """Training and validation scenes: whole scenes, never crops of one scene on both sides."""
    if not 0.0 <= val_fraction < 1.0:
        raise TrainError(f"val_fraction must be in [0, 1). Received: val_fraction={val_fraction}")
    order = np.random.default_rng(seed).permutation(len(scenes))
    held = int(round(val_fraction * len(scenes)))
    if val_fraction > 0 and held == 0:
        print(f"--val-fraction {val_fraction} of {len(scenes)} scene(s) holds out none; training without validation "
              "(no validation loss or proposal recall)", file=sys.stderr)
    validation = {int(index) for index in order[:held]}
    return ([scene for index, scene in enumerate(scenes) if index not in validation],
            [scene for index, scene in enumerate(scenes) if index in validation])


def operating_min_score(sweep: list[dict]) -> float | None:
    """The strictest centre score that keeps recall within a point of the best: fewer proposals to classify, as many signs."""
    scored = [row for row in sweep if row["recall_24px_and_more"] is not None]
    if not scored:
        return None
    best = max(row["recall_24px_and_more"] for row in scored)
    return max(row["min_score"] for row in scored if row["recall_24px_and_more"] >= best - 0.01)


def _check(config: LocatorTrainConfig) -> None:
    if config.width < 4 or config.crops < 1 or config.epochs < 1 or config.batch_size < 1:
        raise TrainError(f"width must be >= 4 and crops, epochs, batch_size >= 1. Received: width={config.width}, "
                         f"crops={config.crops}, epochs={config.epochs}, batch_size={config.batch_size}")
    if not (config.learning_rate > 0 and config.size_weight > 0):
        raise TrainError(f"learning_rate and size_weight must be > 0. "
                         f"Received: learning_rate={config.learning_rate}, size_weight={config.size_weight}")
    if not 0.0 <= config.scene_jitter <= 1.0:
        raise TrainError(f"scene_jitter must be in [0, 1]. Received: scene_jitter={config.scene_jitter}")
    if config.paste_boost <= 0 or not all(0 <= class_id < len(GTSRB_CLASS_NAMES) for class_id in config.paste_boost_classes):
        raise TrainError(f"paste_boost must be > 0 and paste_boost_classes GTSRB class ids (0-{len(GTSRB_CLASS_NAMES) - 1}). Received: "
                         f"paste_boost={config.paste_boost}, paste_boost_classes={config.paste_boost_classes}")
    if not 0.0 <= config.pasted_fraction <= 1.0:
        raise TrainError(f"pasted_fraction must be in [0, 1]. Received: pasted_fraction={config.pasted_fraction}")
    if not 0.0 <= config.camera_conditions <= 1.0:
        raise TrainError(f"camera_conditions must be in [0, 1]. Received: camera_conditions={config.camera_conditions}")
    if not 0.0 < config.distill_weight <= 1.0:
        raise TrainError(f"distill_weight must be in (0, 1]. Received: distill_weight={config.distill_weight}")
    if not 1 <= config.downscale <= 4:
        raise TrainError(f"downscale must be 1, 2, 3 or 4. Received: downscale={config.downscale}")
    _check_architecture(config.stride, config.context_stride, config.fine_width)  # before the scenes are read and the crops built
    if config.init_from and not config.resume:
        check_init_from(config)
    multiple = locator_geometry(config).side_multiple
    if config.crop_size < 32 or config.crop_size % multiple:
        raise TrainError(f"crop_size must be >= 32 and a multiple of {multiple} (the network's deepest stride). "
                         f"Received: crop_size={config.crop_size}")
    crop_in_frame_pixels = config.crop_size * config.downscale
    if not MIN_PASTED_SIDE < config.paste_max_side <= crop_in_frame_pixels:
        raise TrainError(f"paste_max_side must be above {MIN_PASTED_SIDE} and at most the crop in frame pixels "
                         f"(crop_size {config.crop_size} x downscale {config.downscale} = {crop_in_frame_pixels}). "
                         f"Received: paste_max_side={config.paste_max_side}")


def train_locator(config: LocatorTrainConfig) -> dict:
    """Train the sign locator and write its run folder; returns the report.

    Raises:
        TrainError, DatasetError: unusable options, run folder or data.
    """
    from edgesight.runtime.datasets import load_gtsrb

    from .augment import CameraConditions, EpochSeeds, evaluation_dataset, training_dataset
    from .checkpoint import CHECKPOINT_DIR, EpochCheckpoint
    from .locator_data import LocatorCrops, build_crops, grid_targets, paste_probabilities, teacher_targets
    from .models import count_macs

    _check(config)
    run_dir, config, state = prepare_run_dir(config, "runs/sign-locator")
    geometry = locator_geometry(config)
    teacher = _open_teacher(config, geometry) if config.teacher else None  # before minutes of reading and cutting
    scenes = list(read_scenes(config.data))
    training_scenes, validation_scenes = split_scenes(scenes, config.val_fraction, config.seed)
    if not any(scene.signs for scene in training_scenes):
        raise TrainError(f"{config.data}: the training scenes hold no signs; a locator cannot learn from them.")
    signs = load_gtsrb(config.signs, "train") if config.signs else None
    if signs is None:
        print("no --signs: only the scenes' own signs teach, and the paste options do nothing", file=sys.stderr, flush=True)
    print(f"building {config.crops} crops from {len(training_scenes)} scenes", file=sys.stderr, flush=True)
    probabilities = paste_probabilities(signs.labels, config.paste_boost_classes, config.paste_boost) if signs else None
    crops = build_crops(training_scenes, signs, config.crops, config.pasted_fraction, config.crop_size, geometry, config.seed,
                        config.scene_jitter, probabilities, config.paste_shapes, config.paste_max_side)

    def crop_targets(cut: LocatorCrops) -> np.ndarray:
        """The crops' grid targets; with a teacher, its grid after them (channels 6-10, as LocatorLoss reads them)."""
        truth = grid_targets(cut.boxes, config.crop_size, geometry)
        return np.concatenate([truth, teacher_targets(teacher, cut.images)], axis=-1) if teacher else truth

    if teacher:
        print(f"reading the crops with the teacher {config.teacher}", file=sys.stderr, flush=True)
    targets = crop_targets(crops)
    if state is None:
        write_json_atomic(run_dir / CONFIG_FILE, {
            "kind": "locator", "task": LOCATOR_TASK, "train": dataclasses.asdict(config), "geometry": geometry.to_json(),
            "split": {"training_scenes": [scene.name for scene in training_scenes],
                      "validation_scenes": [scene.name for scene in validation_scenes]},
        })

    keras.utils.set_random_seed(config.seed)
    tf.config.experimental.enable_op_determinism()  # a resumed run must equal an uninterrupted one
    steps_per_epoch = int(np.ceil(config.crops / config.batch_size))
    epochs_done = state["epochs_done"] if state else 0
    history = state["history"] if state else {}
    if state:
        print(f"resuming after epoch {epochs_done} from {state['checkpoint']}", file=sys.stderr)
        model = keras.models.load_model(run_dir / state["checkpoint"])
    else:
        def design(width: int) -> keras.Model:
            return build_locator(width, config.stride, context_stride=config.context_stride, fine_width=config.fine_width,
                                 pointwise_heads=config.pointwise_heads)

        if config.init_from:
            print(f"starting from {config.init_from}", file=sys.stderr, flush=True)
            sample = crops.images[:: max(1, len(crops.images) // INIT_SAMPLE_CROPS)][:INIT_SAMPLE_CROPS]
            model = locator_from_file(config, sample, design)
        else:
            model = design(config.width)
        schedule = keras.optimizers.schedules.CosineDecay(config.learning_rate, steps_per_epoch * config.epochs)
        model.compile(optimizer=keras.optimizers.Adam(schedule),
                      loss=LocatorLoss(config.size_weight, config.distill_weight if teacher else 0.0))
    # Light, contrast and the camera only: moving or scaling the crop would move its targets too.
    photometric = [layers.RandomBrightness(0.3, value_range=(0, 255), seed=config.seed),
                   layers.RandomContrast(0.3, seed=config.seed + 1)]
    if config.camera_conditions:
        photometric.append(CameraConditions(config.camera_conditions, seed=config.seed + 2))
    augmenter = keras.Sequential(photometric, name="augment")
    seeds = EpochSeeds(augmenter, config.seed)
    validation = None
    if validation_scenes:
        held = build_crops(validation_scenes, None, VALIDATION_CROPS, 0.0, config.crop_size, geometry, config.seed + 1)
        validation = evaluation_dataset(held.images, crop_targets(held), 64)
    checkpoint = EpochCheckpoint(run_dir, history, config.epochs, state.get("train_seconds", 0.0) if state else 0.0)
    if epochs_done < config.epochs:
        model.fit(training_dataset(crops.images, targets, config.batch_size, augmenter, seeds), validation_data=validation,
                  epochs=config.epochs, initial_epoch=epochs_done, callbacks=[seeds, checkpoint], shuffle=False,
                  verbose=1 if sys.stdout.isatty() else 2)
    with atomic_path(run_dir / "model.keras") as temporary:
        model.save(temporary)
    shutil.rmtree(run_dir / CHECKPOINT_DIR, ignore_errors=True)

    started = time.monotonic()
    sweep = (proposal_recall(lambda image: LocatorOutput.of_grid(model(image, training=False).numpy()[0]), validation_scenes, geometry)
             if validation_scenes else [])
    frame_height, frame_width = scenes[0].image_bgr.shape[:2]
    sized = build_locator(config.width, config.stride, geometry.cut(frame_height // geometry.downscale),
                          geometry.cut(frame_width // geometry.downscale), config.context_stride,
                          config.fine_width, config.pointwise_heads)  # as network_input cuts it
    report = {
        "task": LOCATOR_TASK, "parameters": int(model.count_params()), "operating_min_score": operating_min_score(sweep),
        "macs_per_frame": count_macs(sized), "frame_size": [frame_width, frame_height],
        "epochs": config.epochs, "train_seconds": round(checkpoint.train_seconds, 1),
        "final_validation_loss": history.get("val_loss", [None])[-1],
        "validation_scenes": len(validation_scenes),
        "validation_proposal_recall": sweep,
        "validation_seconds": round(time.monotonic() - started, 1),
    }
    write_json_atomic(run_dir / "report.json", report)
    best = max(sweep, key=lambda row: row["recall_24px_and_more"] or 0.0, default=None)
    print(f"locator: {report['parameters']:,} parameters, {report['macs_per_frame'] / 1e6:.0f} M MACs per "
          f"{frame_width}x{frame_height} frame; validation proposal recall "
          f"{best['recall_24px_and_more'] if best else 'n/a (no validation scenes)'} (signs >= {GOAL_MIN_SIZE} px); run folder {run_dir}")
    return report
