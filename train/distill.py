"""Knowledge distillation: a finished, larger run (the teacher) softens the targets a small model learns from.

The teacher reads each augmented training batch as the student does, so the student learns the
teacher's whole ranking of classes ("a 60 that looks a bit like an 80") rather than only the label.
Hinton, Vinyals, Dean, "Distilling the Knowledge in a Neural Network", 2015.

Targets travel as one (N, 1 + classes) tensor per batch, so Keras's fit, checkpoints and resume work
unchanged: column 0 is the true class, the rest the teacher's log-probabilities.

A teacher of the sign classes alone may teach a student that also learns "not a sign" from road-scene
background: it has no opinion on background images, so there the soft target is the label itself.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import keras
import tensorflow as tf
from edgesight.runtime.errors import EdgesightError
from edgesight.runtime.preprocess import PreprocessSpec
from edgesight.runtime.shipped import is_model_file
from edgesight.runtime.tasks import NOT_A_SIGN

_EPSILON = 1e-7


class DistillError(EdgesightError, ValueError):
    """The teacher run cannot teach this student."""


def _load_one_teacher(source: str, labels: tuple[str, ...], spec: PreprocessSpec, sample_images) -> keras.Model:
    from .from_onnx import keras_model_from_onnx, read_source_model

    if is_model_file(source):
        model_file = read_source_model(source)
        teacher_labels = model_file.metadata.labels
        teacher_spec = dataclasses.asdict(model_file.metadata.preprocess)
    else:
        folder = Path(source)
        if not (folder / "model.keras").is_file() or not (folder / "config.json").is_file():
            raise DistillError(f"{folder}: --teacher needs a finished run folder (model.keras and config.json) or an fp32 "
                               "model file that export made.")
        saved = json.loads((folder / "config.json").read_text())
        teacher_labels = tuple(saved["labels"])
        teacher_spec = saved["preprocess"]
    labels = tuple(labels)
    if teacher_labels != labels and teacher_labels + (NOT_A_SIGN,) != labels:
        raise DistillError(f"{source}: the teacher's classes differ from this task's; a teacher must know the same "
                           f"classes, or all but {NOT_A_SIGN!r}.")
    # Both read each augmented batch, so the teacher must have learnt signs framed as the student sees them. A teacher
    # of another input size reads the batch rescaled to its own (_at_student_size).
    if teacher_spec["box_margin"] != spec.box_margin:
        raise DistillError(f"{source}: the teacher reads images cropped with box margin {teacher_spec['box_margin']}, the "
                           f"student with {spec.box_margin}; they must see the same framing of each sign.")
    teacher_size = (teacher_spec["height"], teacher_spec["width"])
    if is_model_file(source):
        teacher = keras_model_from_onnx(model_file, _resized(sample_images, teacher_size))
    else:
        teacher = keras.models.load_model(folder / "model.keras", compile=False)
    return _at_student_size(teacher, (spec.height, spec.width), teacher_size)


def _resized(images, size: tuple[int, int]):
    """A uint8 batch bilinearly resized to size (height, width), as the teacher of another size reads it."""
    if tuple(images.shape[1:3]) == size:
        return images
    return tf.cast(tf.round(tf.clip_by_value(tf.image.resize(tf.cast(images, tf.float32), size), 0, 255)), tf.uint8).numpy()


def _at_student_size(teacher: keras.Model, student_size: tuple[int, int], teacher_size: tuple[int, int]) -> keras.Model:
    """The teacher as a model of the student's input: the batch is bilinearly rescaled to the teacher's size first.

    A 24x24 student can then learn from a 32x32 teacher: on GTSRB validation (margin 0) the 32x32 cnn-base teacher read
    24x24 crops scaled up as well as its own 32x32 crops (99.57% against 99.55%; docs/EXPERIMENTS.md).
    """
    if student_size == teacher_size:
        return teacher
    image = keras.Input((*student_size, 3), dtype="uint8", name="student_image")
    scaled = keras.layers.Resizing(*teacher_size, interpolation="bilinear", name="to_teacher_size")(image)
    return keras.Model(image, teacher(scaled), name=f"{teacher.name}_at_{student_size[0]}x{student_size[1]}")


def load_teacher(sources: list[str], labels: tuple[str, ...], spec: PreprocessSpec, sample_images) -> keras.Model:
    """The finished runs' or model files' Keras models as one teacher (their probabilities averaged), checked against the student.

    Args:
        sample_images: training images at the student's input size, for a teacher rebuilt from a model file.
    """
    models = [_load_one_teacher(source, labels, spec, sample_images) for source in sources]
    if len({model.output_shape[-1] for model in models}) > 1:
        raise DistillError(f"the teachers {', '.join(sources)} know different classes (some {NOT_A_SIGN!r}, some not); "
                           "averaged teachers must know the same classes.")
    if len(models) == 1:
        teacher = models[0]
    else:
        for index, model in enumerate(models):
            model.name = f"teacher_{index}"  # two runs of one architecture share a name, which one model cannot hold twice
        image = keras.Input((spec.height, spec.width, 3), dtype="uint8")
        teacher = keras.Model(image, keras.layers.Average()([model(image) for model in models]), name="teachers")
    teacher.trainable = False
    return teacher


def with_teacher_targets(dataset: tf.data.Dataset, teacher: keras.Model, classes: int) -> tf.data.Dataset:
    """(images, labels) batches -> (images, [label, teacher log-probabilities over the student's `classes`]) batches."""
    unknown_to_teacher = classes - teacher.output_shape[-1]  # 1 for "not a sign" (the last class) when the teacher lacks it

    def add_teacher(images, labels):
        probabilities = teacher(images, training=False)
        if unknown_to_teacher:
            # Signs give "not a sign" no share; background images get their label, one-hot, as the teacher's output.
            padded = tf.pad(probabilities, [[0, 0], [0, unknown_to_teacher]])
            is_background = (labels >= classes - unknown_to_teacher)[:, None]
            probabilities = tf.where(is_background, tf.one_hot(labels, classes), padded)
        log_probabilities = tf.math.log(probabilities + _EPSILON)
        return images, tf.concat([tf.cast(labels, tf.float32)[:, None], log_probabilities], axis=1)

    return dataset.map(add_teacher, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


@keras.saving.register_keras_serializable(package="edgesight")
class DistillationLoss(keras.losses.Loss):
    """(1 - weight) x cross-entropy with the true class + weight x T^2 x KL(teacher_T || student_T).

    The model outputs probabilities; softmax(log p / T) equals softmax(logits / T), so the softened
    student needs no separate logits output (the exported graph stays as it is).
    """

    def __init__(self, temperature: float = 4.0, weight: float = 0.7, name: str = "distillation", **kwargs):
        super().__init__(name=name, **kwargs)
        self.temperature, self.weight = float(temperature), float(weight)

    def call(self, y_true, y_pred):
        ops = keras.ops
        labels = ops.cast(y_true[:, 0], "int32")
        student_log = ops.log(ops.clip(y_pred, _EPSILON, 1.0))
        hard = -ops.take_along_axis(student_log, labels[:, None], axis=-1)[:, 0]
        teacher_soft_log = ops.log_softmax(y_true[:, 1:] / self.temperature, axis=-1)
        student_soft_log = ops.log_softmax(student_log / self.temperature, axis=-1)
        soft = ops.sum(ops.exp(teacher_soft_log) * (teacher_soft_log - student_soft_log), axis=-1) * self.temperature ** 2
        return (1.0 - self.weight) * hard + self.weight * soft

    def get_config(self) -> dict:
        return {**super().get_config(), "temperature": self.temperature, "weight": self.weight}


@keras.saving.register_keras_serializable(package="edgesight")
def true_class_accuracy(y_true, y_pred):
    """Top-1 accuracy against column 0 of the distillation targets."""
    ops = keras.ops
    return ops.cast(ops.equal(ops.cast(y_true[:, 0], "int64"), ops.argmax(y_pred, axis=-1)), "float32")


def distillation_metric() -> keras.metrics.Metric:
    # Named "accuracy" so the history, curves and reports read as for any run.
    return keras.metrics.MeanMetricWrapper(true_class_accuracy, name="accuracy")
