"""Would several finished runs teach more together? Validation accuracy of each run and of every average of them.

Before distilling from an ensemble of runs (`edgesight train --teacher RUN RUN ...`, which averages their
probabilities), check that the average is better than its best member. Runs fine-tuned from the same weights
often agree on almost every image, and then their average teaches nothing new.

Every run is scored on the validation images of the first run (its `config.json` names them), so list first a run
whose validation images none of the others trained on: a run and the runs `--init-from` it share them.

    python benchmarks/ensemble_validation.py --task cifar10 --data ../shared/datasets/cifar10 runs/a runs/b runs/c
"""
from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
from pathlib import Path

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--task", required=True, help="the runs' task, e.g. cifar10 or gtsrb")
    parser.add_argument("--data", required=True, help="the dataset the runs were trained on")
    parser.add_argument("runs", nargs="+", help="finished run folders (model.keras, config.json); the first one's validation images are used")
    args = parser.parse_args()

    import edgesight.train.distill  # noqa: F401  registers the distillation loss a saved model may name
    import keras
    from edgesight.runtime.datasets import preprocess_regions
    from edgesight.runtime.tasks import get_task
    from edgesight.train.trainer import split_by_listed_groups

    first = json.loads((Path(args.runs[0]) / "config.json").read_text())
    task = get_task(args.task, args.data, None, ("colour",))
    regions = task.load(args.data, "train")
    _, val_index = split_by_listed_groups(regions.groups, first["split"]["validation_groups"])
    spec = dataclasses.replace(task.preprocess, **{key: first["preprocess"][key] for key in ("height", "width", "resize")})
    images, labels = preprocess_regions(regions.subset(val_index), spec), regions.labels[val_index]
    print(f"{len(labels)} validation images of {args.runs[0]}")

    probabilities = {}
    for run in args.runs:
        model = keras.models.load_model(Path(run) / "model.keras", compile=False)
        probabilities[run] = model.predict(images, batch_size=500, verbose=0)
        print(f"{np.mean(probabilities[run].argmax(1) == labels):.4f}  {run}", flush=True)
    for size in range(2, len(args.runs) + 1):
        for combination in itertools.combinations(args.runs, size):
            average = np.mean([probabilities[run] for run in combination], axis=0)
            print(f"{np.mean(average.argmax(1) == labels):.4f}  average of {' + '.join(combination)}")


if __name__ == "__main__":
    main()
