"""Tasks the tools know by name: their labels, their data reader and how regions become inputs.

Train writes the task name into the run; export, eval and the model file read it back from there,
so every stage sees the same labels and preprocessing.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from .datasets import GTSRB_CLASS_NAMES, LabelledRegions, load_gtsrb
from .preprocess import PreprocessSpec


@dataclass(frozen=True)
class Task:
    name: str
    labels: tuple[str, ...]
    preprocess: PreprocessSpec
    load: Callable[..., LabelledRegions]  # (data_dir, split, progress=None)
    mirror_invariant: bool  # may training flip images left-right? Never for signs: keep left != keep right.
    description: str


TASKS = {
    "gtsrb": Task(
        name="gtsrb",
        labels=GTSRB_CLASS_NAMES,
        # The ROI plus 10% context on each side, as a detector's box or the demo's centre box gives it.
        preprocess=PreprocessSpec(height=32, width=32, crop="box", box_margin=0.1, resize="area"),
        load=load_gtsrb,
        mirror_invariant=False,
        description="German Traffic Sign Recognition Benchmark, 43 classes (official archives)",
    ),
}


def get_task(name: str) -> Task:
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; expected one of {sorted(TASKS)}. Received: task={name!r}")
    return TASKS[name]

