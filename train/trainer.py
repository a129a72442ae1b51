"""`edgesight train`: read a task's data, split by track, train with checkpoints, report on the test set."""
from __future__ import annotations

import dataclasses
import json
import shutil
import sys
from pathlib import Path

import numpy as np
from edgesight.runtime.datasets import LabelledRegions, preprocess_regions
from edgesight.runtime.errors import DatasetNotFoundError, EdgesightError
from edgesight.runtime.evaluate import confusion_matrix
from edgesight.runtime.files import atomic_path, make_folder, write_json_atomic
from edgesight.runtime.preprocess import RESIZE_MODES
from edgesight.runtime.shipped import is_model_file
from edgesight.runtime.tasks import get_task, test_set_name

from .batchnorm import BN_STATISTICS_CHOICES
from .config import TrainConfig

CONFIG_FILE = "config.json"
BATCHNORM_RECORD = "batchnorm_statistics"  # the key of the refit's record in the run's state and report


class TrainError(EdgesightError, ValueError):
    """The run folder or options do not allow the requested training."""


def split_by_group(groups: list[str], labels: np.ndarray, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices of a train/validation split that never puts one group (a GTSRB track) on both sides.

    Each class gives round(val_fraction * its groups) groups to validation, at least one where it has two.
    """
    if not 0.0 <= val_fraction < 1.0:
        raise TrainError(f"val_fraction must be in [0, 1). Received: val_fraction={val_fraction}")
    rng = np.random.default_rng(seed)
    groups_array = np.array(groups)
    validation_groups: set[str] = set()
    for label in np.unique(labels):
        class_groups = sorted(set(groups_array[labels == label]))
        count = int(round(val_fraction * len(class_groups)))
        if val_fraction > 0 and count == 0 and len(class_groups) >= 2:
            count = 1
        validation_groups.update(rng.choice(class_groups, size=count, replace=False).tolist())
    return split_by_listed_groups(groups, sorted(validation_groups))


def split_by_listed_groups(groups: list[str], validation_groups: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the images outside and inside the named validation groups."""
    in_validation = np.isin(np.array(groups), validation_groups)
    return np.flatnonzero(~in_validation), np.flatnonzero(in_validation)


def _saved_validation_groups(run_folder: Path) -> list[str]:
    return json.loads((run_folder / CONFIG_FILE).read_text())["split"]["validation_groups"]


def input_spec(task, config: TrainConfig):
    """The task's preprocessing at the run's input size, resize mode and box margin."""
    spec = task.preprocess
    if config.input_size is not None:
        if not 8 <= config.input_size <= 512:
            raise TrainError(f"input_size must be 8..512 pixels. Received: input_size={config.input_size}")
        spec = dataclasses.replace(spec, height=config.input_size, width=config.input_size)
    if config.resize is not None:
        if config.resize not in RESIZE_MODES:
            raise TrainError(f"resize must be one of {', '.join(RESIZE_MODES)}. Received: resize={config.resize!r}")
        spec = dataclasses.replace(spec, resize=config.resize)
    if config.box_margin is not None:
        if not 0.0 <= config.box_margin <= 0.5:
            raise TrainError(f"box_margin must be in [0, 0.5]. Received: box_margin={config.box_margin}")
        spec = dataclasses.replace(spec, box_margin=config.box_margin)
    return spec


def _progress(stage: str):
    """A bar redrawn in place on a terminal; a line per step in a log file."""
    def report(done: int, total: int) -> None:
        if sys.stderr.isatty():
            filled = round(30 * done / total)
            end = "\n" if done == total else ""
            print(f"\r  {stage}: [{'#' * filled}{'.' * (30 - filled)}] {done}/{total} images", end=end, file=sys.stderr, flush=True)
        else:
            print(f"  {stage}: {done}/{total} images", file=sys.stderr, flush=True)
    return report


# The options of either trainer that name data a run's later commands read again.
RUN_DATA_OPTIONS = ("data", "background", "signs")


def prepare_run_dir(config, default_run_dir: str):
    """(run folder, options, saved state): a new run's folder, or the interrupted run's own options with --resume.

    `config` is a TrainConfig or LocatorTrainConfig; both name their data `data` and folder `run_dir`.
    """
    from .checkpoint import read_state

    run_dir = Path(config.run_dir or default_run_dir)
    state = read_state(run_dir)
    if config.resume:
        if state is None or not (run_dir / CONFIG_FILE).is_file():
            raise TrainError(f"{run_dir}: nothing to resume (no {CONFIG_FILE} and state.json); start without --resume.")
        saved = json.loads((run_dir / CONFIG_FILE).read_text())["train"]
        # The interrupted run's options win: a resumed run must continue the same training.
        return run_dir, dataclasses.replace(type(config)(**saved), resume=True, run_dir=str(run_dir), data=config.data or saved["data"]), state
    if not config.data:
        raise TrainError("--data is required for a new run: the folder or archive holding the training data.")
    if state is not None or (run_dir / "model.keras").exists():
        raise TrainError(f"{run_dir}: holds an earlier run; pass --resume to continue it, or choose another --run-dir.")
    make_folder(run_dir, f"--run-dir {run_dir}")
    # Saved absolute: export, bench and --resume read the data again from the run's config.json, often from another folder.
    data_paths = {name: str(Path(getattr(config, name)).resolve()) for name in RUN_DATA_OPTIONS
                  if getattr(config, name, None)}
    return run_dir, dataclasses.replace(config, run_dir=str(run_dir), **data_paths), None


def _adopt_source_run(config: TrainConfig, task) -> TrainConfig:
    """Options of a run started from another run's weights: its architecture and input, checked against the task."""
    from .from_onnx import read_source_model

    if is_model_file(config.init_from):
        model_file = read_source_model(config.init_from)
        labels, spec = model_file.metadata.labels, dataclasses.asdict(model_file.metadata.preprocess)
        saved = {"train": model_file.train_options}
        source = model_file.path
    else:
        source = Path(config.init_from)
        labels, spec, saved = _source_run_options(source)
    if tuple(labels) != task.labels:
        raise TrainError(f"{source}: its classes differ from the {task.name} task's; --init-from needs the same classes.")
    if config.input_size not in (None, spec["height"]) or config.resize not in (None, spec["resize"]):
        raise TrainError(f"{source}: was trained at {spec['height']}x{spec['width']} with resize {spec['resize']}; "
                         f"--input-size and --resize must match it or be left out.")
    # A new --box-margin is allowed: the weights fit any framing, and training adapts them to the new one.
    return dataclasses.replace(config, model=saved["train"]["model"], input_size=spec["height"], resize=spec["resize"],
                               box_margin=spec["box_margin"] if config.box_margin is None else config.box_margin,
                               val_fraction=saved["train"]["val_fraction"],
                               mirror_average=config.mirror_average or saved["train"].get("mirror_average", False))


def _source_run_options(source: Path) -> tuple[list[str], dict, dict]:
    if not all((source / name).is_file() for name in ("model.keras", CONFIG_FILE, "report.json")):
        raise TrainError(f"{source}: --init-from needs a finished run folder (model.keras, {CONFIG_FILE}, report.json) "
                         "or an fp32 model file that export made.")
    saved = json.loads((source / CONFIG_FILE).read_text())
    return saved["labels"], saved["preprocess"], saved


def _compile(model, config: TrainConfig, steps_per_epoch: int):
    import keras

    warmup_steps = steps_per_epoch
    schedule = keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=config.learning_rate * 0.1,
        decay_steps=max(1, steps_per_epoch * config.epochs - warmup_steps),
        warmup_target=config.learning_rate,
        warmup_steps=warmup_steps,
    )
    # Keras keeps the average inside the optimizer, so checkpoints carry it and a resumed run averages on.
    averaging = dict(use_ema=True, ema_momentum=config.weight_ema) if config.weight_ema else {}
    if config.optimizer == "sgd":
        optimizer = keras.optimizers.SGD(learning_rate=schedule, momentum=0.9, nesterov=True, weight_decay=config.weight_decay,
                                         **averaging)
    else:
        optimizer = keras.optimizers.AdamW(learning_rate=schedule, weight_decay=config.weight_decay, **averaging)
    if config.teacher:
        from .distill import DistillationLoss, distillation_metric

        model.compile(optimizer=optimizer, loss=DistillationLoss(config.distill_temperature, config.distill_weight),
                      metrics=[distillation_metric()])
    else:
        model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"])


def train(config: TrainConfig) -> dict:
    """Train a model for a task and write the run folder; returns the final report.

    Raises:
        TrainError, DatasetError: unusable options, run folder or data.
    """
    if config.list_models:
        from .models import zoo_table

        task = get_task(config.task, config.data, config.background, tuple(config.background_locator))
        spec = input_spec(task, config)
        print(zoo_table(spec.height, spec.width, len(task.labels)))
        return {}
    run_dir, config, state = prepare_run_dir(config, f"runs/{config.task}")
    task = get_task(config.task, config.data, config.background, tuple(config.background_locator))
    if config.init_from and state is None:
        config = _adopt_source_run(config, task)
    from .from_onnx import read_source_model
    from .models import ARCHITECTURES

    if config.model not in ARCHITECTURES:
        raise TrainError(f"unknown model {config.model!r}; expected one of {sorted(ARCHITECTURES)}.")
    if config.optimizer not in ("adamw", "sgd"):
        raise TrainError(f"optimizer must be adamw or sgd. Received: optimizer={config.optimizer!r}")
    # Zero epochs from a model file: a run folder holding its weights as they are, for the commands that take runs.
    if config.epochs < (0 if config.init_from else 1) or config.batch_size < 1:
        raise TrainError(f"epochs and batch_size must be >= 1 (epochs 0 only with --init-from). "
                         f"Received: epochs={config.epochs}, batch_size={config.batch_size}")
    if not (config.learning_rate > 0 and config.weight_decay >= 0):
        raise TrainError(f"learning_rate must be > 0 and weight_decay >= 0. "
                         f"Received: learning_rate={config.learning_rate}, weight_decay={config.weight_decay}")
    _check_augmentation(config.augmentation, task)
    _check_mirror_average(config, task)
    if config.bn_statistics not in (None, *BN_STATISTICS_CHOICES):
        raise TrainError(f"bn_statistics must be one of {', '.join(BN_STATISTICS_CHOICES)}. Received: bn_statistics={config.bn_statistics!r}")
    if not 0 <= config.weight_ema < 1:
        raise TrainError(f"weight_ema must be in [0, 1) (0: off). Received: weight_ema={config.weight_ema}")
    if config.teacher and not (config.distill_temperature > 0 and 0 <= config.distill_weight <= 1):
        raise TrainError(f"distill_temperature must be > 0 and distill_weight in [0, 1]. Received: "
                         f"distill_temperature={config.distill_temperature}, distill_weight={config.distill_weight}")
    _check_mixup(config)

    print(f"reading {task.name} training data from {config.data}", file=sys.stderr, flush=True)
    try:
        regions = task.load(config.data, "train", progress=_progress("decoded"), skip_bad_images=config.skip_bad_images)
    except DatasetNotFoundError as error:
        raise DatasetNotFoundError(f"{error} An image-folder dataset of your own trains under a task name of your "
                                   f"choice: --task NAME.") from None
    if config.init_from and state is None and is_model_file(config.init_from):
        train_index, val_index = read_source_model(config.init_from).training_split(regions.groups, regions.labels)
    elif config.init_from:
        # The source run learnt from every track outside its validation tracks, so only those can still
        # validate; a fresh split would score the weights on images they were trained on.
        held_out = _saved_validation_groups(Path(config.init_from) if state is None else run_dir)
        train_index, val_index = split_by_listed_groups(regions.groups, held_out)
        if held_out and not len(val_index):
            raise TrainError(f"{config.init_from}: none of its validation tracks is in {config.data}; "
                             f"--init-from needs the data the source run was trained on.")
    else:
        train_index, val_index = split_by_group(regions.groups, regions.labels, config.val_fraction, config.seed)
    spec = input_spec(task, config)
    images_nhwc = preprocess_regions(regions, spec)
    if state is None:
        write_json_atomic(run_dir / CONFIG_FILE, {
            "train": dataclasses.asdict(config),
            "labels": list(task.labels),
            "preprocess": dataclasses.asdict(spec),
            "split": {"train_images": int(len(train_index)), "validation_images": int(len(val_index)),
                      "validation_groups": sorted({regions.groups[i] for i in val_index})},
        })
    print(f"split by track: {len(train_index)} training, {len(val_index)} validation images", file=sys.stderr)

    model, history, seconds, batchnorm = _fit(config, task, run_dir, state, images_nhwc, regions.labels, train_index, val_index)
    return _report(config, task, run_dir, model, history, seconds, batchnorm)


def _check_mixup(config: TrainConfig) -> None:
    """A blend of two images has no true class, so only a teacher may label it, and it alone."""
    if config.mixup < 0:
        raise TrainError(f"mixup must be >= 0 (0: off). Received: mixup={config.mixup}")
    if not config.mixup:
        return
    if not config.teacher or config.distill_weight != 1:
        raise TrainError("mixup blends two images into one that has no true class: it needs --teacher and --distill-weight 1. "
                         f"Received: mixup={config.mixup}, teacher={config.teacher}, distill_weight={config.distill_weight}")
    if config.background:
        raise TrainError("mixup cannot be used with --background: a teacher of the signs alone cannot label a blend that is "
                         f"part road-scene background. Received: mixup={config.mixup}, background={config.background!r}")


def _check_mirror_average(config: TrainConfig, task) -> None:
    if config.mirror_average:
        _refuse_mirror_images(task, "mirror_average reads the mirror image of each input", "it is for objects")


def _check_augmentation(profile: str | None, task) -> None:
    from .augment import AUGMENTATIONS

    if profile is None:
        return
    if profile not in AUGMENTATIONS:
        raise TrainError(f"augmentation must be one of {', '.join(AUGMENTATIONS)}. Received: augmentation={profile!r}")
    if AUGMENTATIONS[profile].mirror:
        _refuse_mirror_images(task, f"augmentation {profile!r} mirrors images", "choose signs")


def _refuse_mirror_images(task, what: str, remedy: str) -> None:
    """Refuse an option that shows the model mirror images, for a task whose classes a mirror changes (signs)."""
    from .augment import AUGMENTATIONS

    if not AUGMENTATIONS[task.augmentation].mirror:
        raise TrainError(f"{what}, which changes the class of a {task.name} sign (a mirrored 'keep left' is 'keep right'); "
                         f"{remedy}.")


def _fit(config, task, run_dir, state, images_nhwc, labels, train_index, val_index):
    import keras
    import tensorflow as tf

    from .augment import (
        EpochSeeds,
        build_augmenter,
        evaluation_dataset,
        training_dataset,
    )
    from .checkpoint import CHECKPOINT_DIR, STATE_FILE, EpochCheckpoint
    from .models import build_model

    keras.utils.set_random_seed(config.seed)
    tf.config.experimental.enable_op_determinism()
    steps_per_epoch = int(np.ceil(len(train_index) / config.batch_size))
    epochs_done = state["epochs_done"] if state else 0
    history = state["history"] if state else {}
    seconds_before = state.get("train_seconds", 0.0) if state else 0.0
    if state and epochs_done >= config.epochs and (run_dir / "model.keras").is_file():
        print(f"{run_dir}: training already finished; reporting", file=sys.stderr)
        return keras.models.load_model(run_dir / "model.keras"), history, seconds_before, state.get(BATCHNORM_RECORD)
    if config.teacher:
        from .distill import load_teacher, with_teacher_targets  # also registers the loss a checkpoint names

        spec = input_spec(task, config)
        teacher = load_teacher(config.teacher, task.labels, spec, _statistics_sample(images_nhwc[train_index], config.seed))
    if state:
        print(f"resuming after epoch {epochs_done} from {state['checkpoint']}", file=sys.stderr)
        model = keras.models.load_model(run_dir / state["checkpoint"])
    elif config.init_from:
        print(f"starting from the weights of {config.init_from}", file=sys.stderr)
        model = _source_model(config.init_from, _statistics_sample(images_nhwc[train_index], config.seed), config.mirror_average)
        _compile(model, config, steps_per_epoch)  # a fresh optimizer and schedule
    else:
        spec = input_spec(task, config)
        model = build_model(config.model, spec.height, spec.width, len(task.labels), config.mirror_average)
        _compile(model, config, steps_per_epoch)

    augmenter = build_augmenter(config.augmentation or task.augmentation, config.seed, config.mixup)
    seeds = EpochSeeds(augmenter, config.seed)
    train_data = training_dataset(images_nhwc[train_index], labels[train_index], config.batch_size, augmenter, seeds)
    val_data = evaluation_dataset(images_nhwc[val_index], labels[val_index], 512) if len(val_index) else None
    if config.teacher:
        train_data = with_teacher_targets(train_data, teacher, len(task.labels))
        # The validation images never change, nor then the teacher's outputs on them: computed once, not per epoch.
        val_data = with_teacher_targets(val_data, teacher, len(task.labels)).cache() if val_data is not None else None
    checkpoint = EpochCheckpoint(run_dir, history, config.epochs, seconds_before)
    # Validation scores the averaged weights, the ones the run ends with; fit() itself puts them in place at its end.
    averaged_validation = [keras.callbacks.SwapEMAWeights()] if config.weight_ema else []
    if config.epochs:
        model.fit(train_data, validation_data=val_data, epochs=config.epochs, initial_epoch=epochs_done,
                  callbacks=[seeds, *averaged_validation, checkpoint], shuffle=False, verbose=1 if sys.stdout.isatty() else 2)
    elif val_data is not None:
        # A restored file's weights scored on its own validation tracks: the figure a later cycle must beat.
        scores = model.evaluate(val_data, verbose=0, return_dict=True)
        history = {"val_loss": [scores["loss"]], "val_accuracy": [scores["accuracy"]]}
    if config.teacher:
        # The finished model file names no training-only loss, so any Keras loads it as it loads the others.
        model.compile(optimizer=model.optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    batchnorm = _settle_batchnorm_statistics(config, model, images_nhwc, labels, train_index, val_index)
    if batchnorm and (run_dir / STATE_FILE).is_file():
        # The state file outlives the checkpoints: a resumed run that only has to report still knows what happened here.
        write_json_atomic(run_dir / STATE_FILE, json.loads((run_dir / STATE_FILE).read_text()) | {BATCHNORM_RECORD: batchnorm})
    with atomic_path(run_dir / "model.keras") as temporary:
        model.save(temporary)
    shutil.rmtree(run_dir / CHECKPOINT_DIR, ignore_errors=True)
    return model, history, checkpoint.train_seconds, batchnorm


def _settle_batchnorm_statistics(config: TrainConfig, model, images_nhwc, labels, train_index, val_index) -> dict | None:
    """Refit the batch-norm statistics on unaugmented training images when asked (see train/batchnorm.py); the record, or None."""
    from .batchnorm import batchnorm_layers, refit_if_better

    refit = config.bn_statistics == "refit" or (config.bn_statistics is None and config.epochs > 0)
    if not refit or not batchnorm_layers(model):
        return None
    if not len(val_index):
        print("batch-norm statistics kept as training left them: without validation images a refit cannot be judged",
              file=sys.stderr)
        return None
    record = refit_if_better(model, images_nhwc[train_index], images_nhwc[val_index], labels[val_index], config.seed)
    print(f"batch-norm statistics refit on {record['images']} unaugmented training images: validation accuracy "
          f"{record['validation_accuracy_before']:.4f} -> {record['validation_accuracy_after']:.4f}, "
          f"{'kept' if record['kept'] else 'not kept'}", file=sys.stderr)
    return record


def _statistics_sample(training_images: np.ndarray, seed: int) -> np.ndarray:
    """Training images for a model rebuilt from its file: enough for steady statistics of every convolution's output."""
    chosen = np.random.default_rng(seed).choice(len(training_images), size=min(1024, len(training_images)), replace=False)
    return training_images[np.sort(chosen)]


def _source_model(init_from: str, statistics_images: np.ndarray, mirror_average: bool):
    import keras

    from .from_onnx import keras_model_from_onnx, read_source_model
    from .models import is_mirror_averaged, with_mirror_average

    if is_model_file(init_from):
        model = keras_model_from_onnx(read_source_model(init_from), statistics_images)
    else:
        model = keras.models.load_model(Path(init_from) / "model.keras")
    return with_mirror_average(model) if mirror_average and not is_mirror_averaged(model) else model


def _source_seconds(config: TrainConfig) -> float | None:
    """The training wall time of the chain of runs behind --init-from; None when its model file does not record it."""
    from .from_onnx import read_source_model

    if not config.init_from:
        return 0.0
    if is_model_file(config.init_from):
        return read_source_model(config.init_from).metadata.provenance.get("train_seconds_total")
    source_report = json.loads((Path(config.init_from) / "report.json").read_text())
    return source_report.get("train_seconds_total", source_report["train_seconds"])


def _report(config: TrainConfig, task, run_dir: Path, model, history: dict, train_seconds: float, batchnorm: dict | None) -> dict:
    from .models import ARCHITECTURES, MIRROR_DESCRIPTION, count_macs
    from .report import (
        per_class_accuracy,
        save_confusion_matrix,
        save_training_curves,
        write_per_class_csv,
    )

    source_seconds = _source_seconds(config)
    write_json_atomic(run_dir / "history.json", history)
    save_training_curves(history, run_dir / "training_curves.png")

    # The official test set is read once, here, after training: nothing above may look at it.
    print(f"reading {task.name} test data", file=sys.stderr, flush=True)
    test: LabelledRegions = task.load(config.data, "test", progress=_progress("decoded"), skip_bad_images=config.skip_bad_images)
    test_nhwc = preprocess_regions(test, input_spec(task, config))
    predicted = np.argmax(model.predict(test_nhwc, batch_size=512, verbose=0), axis=1)
    matrix = confusion_matrix(test.labels, predicted, len(task.labels))
    accuracy = float(np.mean(predicted == test.labels))
    test_dataset = test_set_name(task, config.data, len(test))
    save_confusion_matrix(matrix, task.labels, run_dir / "confusion_matrix.png", f"{test_dataset}: accuracy {accuracy:.4f}")
    write_per_class_csv(matrix, task.labels, run_dir / "per_class_accuracy.csv")
    per_class = per_class_accuracy(matrix)
    report = {
        "task": task.name,
        "model": config.model,
        "architecture": ARCHITECTURES[config.model].description + (f"; {MIRROR_DESCRIPTION}" if config.mirror_average else ""),
        "parameters": int(model.count_params()),
        "macs": count_macs(model),
        "epochs": config.epochs,
        "train_seconds": round(train_seconds, 1),
        # With --init-from, the wall time of every run in the chain: what the model cost to make.
        "train_seconds_total": None if source_seconds is None else round(train_seconds + source_seconds, 1),
        "init_from": config.init_from,
        "teacher": config.teacher,
        # After a kept refit of the batch-norm statistics, the validation accuracy of the model as saved.
        "final_validation_accuracy": (batchnorm["validation_accuracy_after"] if batchnorm and batchnorm["kept"]
                                      else history.get("val_accuracy", [None])[-1]),
        BATCHNORM_RECORD: batchnorm,
        "test_accuracy": accuracy,
        "test_images": int(len(test)),
        "test_dataset": test_dataset,
        "worst_classes": [
            {"class_id": int(i), "label": task.labels[i], "accuracy": float(per_class[i])}
            for i in np.argsort(per_class)[:5]
        ],
    }
    write_json_atomic(run_dir / "report.json", report)
    print(f"test accuracy {accuracy:.4f} on {test_dataset}; run folder {run_dir}")
    return report
