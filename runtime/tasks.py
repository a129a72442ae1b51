"""Tasks the tools know by name: their labels, their data reader and how regions become inputs.

Train writes the task name into the run; export, eval and the model file read it back from there,
so every stage sees the same labels and preprocessing.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from functools import partial
from typing import Callable

import numpy as np

from .cifar import CIFAR10_CLASS_NAMES, is_lossless_cifar10, load_cifar10
from .datasets import GTSRB_CLASS_NAMES, LabelledRegions, load_gtsrb
from .image_folder import discover_labels, load_image_folder
from .learned_locate import COLOUR, open_locator
from .preprocess import PreprocessSpec


@dataclass(frozen=True)
class Task:
    name: str
    labels: tuple[str, ...]
    preprocess: PreprocessSpec
    load: Callable[..., LabelledRegions]  # (data_dir, split, progress=None, skip_bad_images=False)
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
        load=load_cifar10,
        augmentation="objects",
        description="CIFAR-10, 10 object classes: official python or binary archive, or an image-folder tree",
    ),
}


# The extra class of a sign model trained with background scenes: what the locator proposes that is no sign.
NOT_A_SIGN = "not a sign"


def _with_background_regions(load: Callable[..., LabelledRegions], scenes: str, background_label: int, locators: tuple[str, ...]):
    def load_with_background(data, split, progress=None, skip_bad_images=False) -> LabelledRegions:
        regions = load(data, split, progress=progress, skip_bad_images=skip_bad_images)
        if split != "train":
            return regions  # scored on the task's own official test set
        from .scenes import scene_regions

        # Every colour box, ungated: the ones the gate would drop are the background the classifier must learn to reject
        # when it runs without a learned locator.
        extra = scene_regions(scenes, background_label, open_locator(list(locators), colour_gate=None))
        return LabelledRegions(regions.images_bgr + extra.images_bgr, np.concatenate([regions.boxes_xyxy, extra.boxes_xyxy]),
                               np.concatenate([regions.labels, extra.labels]), regions.groups + extra.groups,
                               regions.names + extra.names)

    return load_with_background


def with_background(task: Task, scenes: str, locators: tuple[str, ...] = (COLOUR,)) -> Task:
    """The task plus a "not a sign" class, trained on road scenes' background boxes (and their signs).

    The background boxes are what `locators` propose away from the signs: the reject class must know
    the mistakes of the locators it will sit behind.
    """
    if task.augmentation != "signs":
        raise ValueError(f"background scenes train a sign model's reject class; task {task.name!r} is not a sign task.")
    return replace(task, labels=task.labels + (NOT_A_SIGN,),
                   load=_with_background_regions(task.load, scenes, len(task.labels), tuple(locators)),
                   description=f"{task.description}, plus {NOT_A_SIGN!r} from the background of road scenes {scenes} "
                               f"(proposals of {' and '.join(locators)})")


def test_set_name(task: Task, data: str, images: int) -> str:
    """How a test score's data is named wherever the score is shown; a lossy copy says so."""
    if task.name not in TASKS:
        return f"{task.name} test split, {images} images"
    name = f"{task.name} official test, {images} images"
    if task.name == "cifar10" and not is_lossless_cifar10(data):
        name += " (lossy JPEG copy: scores run below published CIFAR-10 figures)"
    return name


def get_task(name: str, data: str | None = None, background: str | None = None,
             background_locators: tuple[str, ...] = (COLOUR,)) -> Task:
    """A built-in task, or a user's image-folder dataset at `data` under a name of the user's choice;
    with `background` road scenes, plus a "not a sign" class learnt from what `background_locators` propose there."""
    if background is not None:
        return with_background(get_task(name, data), background, background_locators)
    if name in TASKS:
        return TASKS[name]
    if data is None:
        raise ValueError(f"unknown task {name!r}: built-in tasks are {sorted(TASKS)}; any other name needs the "
                         "image-folder dataset (--data) it is trained on.")
    labels = discover_labels(data)
    return Task(
        name=name,
        labels=labels,
        # A user's images show the object: whole image in training, the centre box on a camera.
        preprocess=PreprocessSpec(height=32, width=32, crop="full", box_margin=0.0, resize="area"),
        load=partial(load_image_folder, labels=labels),
        augmentation="objects",
        description=f"image-folder dataset {data}, {len(labels)} classes",
    )



def task_of_run(train_options: dict, data: str | None) -> Task:
    """The task a training run used (its `config.json` "train" options), background scenes and their locators included."""
    return get_task(train_options["task"], data, train_options.get("background"),
                    tuple(train_options.get("background_locator") or (COLOUR,)))  # runs from before the option: colour
