"""Accuracy of a model file on a task's labelled test split, through the same runtime path as deployment."""
from __future__ import annotations

import sys
from dataclasses import dataclass, field

import numpy as np

from .classifier import Classifier
from .datasets import preprocess_regions
from .errors import ModelFileError
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
    model: str = field(metadata={"help": "edgesight ONNX model file, or a shipped model's name (gtsrb, gtsrb-tiny, cifar10; -fp32 for float)"})
    data: str = field(metadata={"help": "folder with the task's official archives (the task comes from the model)"})
    split: str = field(default="test", metadata={"help": "which split to score: test or train"})
    threads: int | None = field(default=None, metadata={"help": "onnxruntime threads (default: all cores)"})
    skip_bad_images: bool = field(default=False, metadata={"help": "drop images that do not decode, naming each, instead of stopping"})


def evaluate(config: EvalConfig) -> Evaluation:
    """`edgesight eval`: accuracy of an edgesight model on its task's split read from `config.data`."""
    model = config.model
    classifier = Classifier(model, threads=config.threads, max_batch=256)
    task = get_task(classifier.metadata.task, config.data)
    if tuple(classifier.labels) not in (task.labels, task.labels + (NOT_A_SIGN,)):
        raise ModelFileError(f"{model}: its labels differ from the {task.name} task's; cannot score it on {task.name} data.")
    regions = task.load(config.data, config.split, skip_bad_images=config.skip_bad_images)
    result = evaluate_batch(classifier, preprocess_regions(regions, classifier.spec), regions.labels)
    scored = test_set_name(task, config.data, result.images) if config.split == "test" else f"{result.images} {task.name} train images"
    print(f"{model}: accuracy {result.accuracy:.4f} on {scored}", file=sys.stdout)
    return result
