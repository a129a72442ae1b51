"""Accuracy of a model file on a task's labelled test split, through the same runtime path as deployment."""
from __future__ import annotations

import sys
from dataclasses import dataclass, field

import numpy as np

from .classifier import Classifier
from .datasets import preprocess_regions
from .errors import ModelFileError
from .shipped import SHIPPED_MODEL_NAMES
from .tasks import NOT_A_SIGN, get_task, test_set_name


@dataclass(frozen=True)
class Evaluation:
    accuracy: float
    images: int
    predicted: np.ndarray  # (N,) class ids
    probabilities: np.ndarray  # (N, num_classes)


def evaluate_batch(classifier: Classifier, images_nhwc: np.ndarray, labels: np.ndarray) -> Evaluation:
    probabilities = classifier.probabilities(images_nhwc)
    predicted = np.argmax(probabilities, axis=1)
    return Evaluation(float(np.mean(predicted == labels)), int(len(labels)), predicted, probabilities)


@dataclass(frozen=True)
class EvalConfig:
    model: str = field(metadata={"help": f"edgesight ONNX model file, or a shipped model's name ({SHIPPED_MODEL_NAMES})"})
    data: str = field(metadata={"help": "folder with the task's official archives (the task comes from the model)"})
    split: str = field(default="test", metadata={"help": "which split to score: test or train"})
    threads: int | None = field(default=None, metadata={"help": "onnxruntime threads (default: all cores)"})
    skip_bad_images: bool = field(default=False, metadata={"help": "drop images that do not decode, naming each, instead of stopping"})
    confusions: int = field(default=5, metadata={"help": "list this many of the most frequent confusions (true class read as another); 0 for none"})


def confusion_matrix(true_labels: np.ndarray, predicted: np.ndarray, num_classes: int) -> np.ndarray:
    """Counts: row = true class, column = predicted class."""
    matrix = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(matrix, (true_labels, predicted), 1)
    return matrix


def most_frequent_confusions(matrix: np.ndarray, count: int) -> list[tuple[int, int, int]]:
    """The `count` most frequent (true class, predicted class, images) off the matrix's diagonal, most frequent first."""
    wrong = matrix.copy()
    np.fill_diagonal(wrong, 0)
    order = np.argsort(-wrong, axis=None, kind="stable")[:count]
    return [(int(true), int(read), int(wrong[true, read])) for true, read in zip(*np.unravel_index(order, wrong.shape)) if wrong[true, read]]


def evaluate(config: EvalConfig) -> Evaluation:
    """`edgesight eval`: accuracy of an edgesight model on its task's split read from `config.data`."""
    if config.confusions < 0:
        raise ValueError(f"confusions must be 0 or more. Received: {config.confusions}")
    model = config.model
    classifier = Classifier(model, threads=config.threads, max_batch=256)
    task = get_task(classifier.metadata.task, config.data)
    if tuple(classifier.labels) not in (task.labels, task.labels + (NOT_A_SIGN,)):
        raise ModelFileError(f"{model}: its labels differ from the {task.name} task's; cannot score it on {task.name} data.")
    regions = task.load(config.data, config.split, skip_bad_images=config.skip_bad_images)
    result = evaluate_batch(classifier, preprocess_regions(regions, classifier.spec), regions.labels)
    scored = test_set_name(task, config.data, result.images) if config.split == "test" else f"{result.images} {task.name} train images"
    print(f"{model}: accuracy {result.accuracy:.4f} on {scored}", file=sys.stdout)
    # Errors on sign and object test sets cluster in a few pairs of look-alike classes (60 read as 80); this is where to look.
    confusions = most_frequent_confusions(confusion_matrix(regions.labels, result.predicted, len(classifier.labels)), config.confusions)
    if confusions:
        print("most frequent confusions (true -> read as: images):", file=sys.stdout)
        for true, read, images in confusions:
            print(f"  {classifier.labels[true]} -> {classifier.labels[read]}: {images}", file=sys.stdout)
    return result
