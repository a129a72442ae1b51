"""Tasks the tools know by name: their labels, their data reader and how regions become inputs.

Train writes the task name into the run; export, eval and the model file read it back from there,
so every stage sees the same labels and preprocessing.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Callable

from .datasets import GTSRB_CLASS_NAMES, LabelledRegions, load_gtsrb
from .image_folder import load_image_folder
from .preprocess import PreprocessSpec

CIFAR10_CLASS_NAMES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


@dataclass(frozen=True)
class Task:
    name: str
    labels: tuple[str, ...]
    preprocess: PreprocessSpec
    load: Callable[..., LabelledRegions]  # (data_dir, split, progress=None)
    augmentation: str  # the training augmentation profile: "signs" (never mirrored) or "objects"
    description: str


TASKS = {
    "gtsrb": Task(
        name="gtsrb",
        labels=GTSRB_CLASS_NAMES,
        # The ROI plus 10% context on each side, as a detector's box or the demo's centre box gives it.
        preprocess=PreprocessSpec(height=32, width=32, crop="box", box_margin=0.1, resize="area"),
        load=load_gtsrb,
        augmentation="signs",
        description="German Traffic Sign Recognition Benchmark, 43 classes (official archives)",
    ),
    "cifar10": Task(
        name="cifar10",
        labels=CIFAR10_CLASS_NAMES,
        # CIFAR images are the whole object; on a camera the demo's centre box plays that role.
        preprocess=PreprocessSpec(height=32, width=32, crop="full", box_margin=0.0, resize="area"),
        load=partial(load_image_folder, labels=CIFAR10_CLASS_NAMES),
        augmentation="objects",
        description="CIFAR-10, 10 object classes, as an image-folder tree (train/ and test/)",
    ),
}


def get_task(name: str) -> Task:
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; expected one of {sorted(TASKS)}. Received: task={name!r}")
    return TASKS[name]

