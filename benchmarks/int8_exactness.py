"""Does this CPU compute int8 models exactly? Test accuracy of int8 files with this CPU's onnxruntime kernels and
with exact int8 arithmetic (the unfused graph), side by side, with the CPU's int8 instructions.

On x86 CPUs without VNNI, onnxruntime's U8S8 kernels add pairs of uint8 x int8 products in 16 bits, which saturates
with full-range (8-bit) weights; export's default 7-bit weights cannot saturate. Run this on a new device before
trusting a model card's int8 figure there.

    python benchmarks/int8_exactness.py --data ../shared/datasets/cifar10 cifar10 runs/x/model.int8.onnx
"""
from __future__ import annotations

import argparse
import json

import numpy as np
from edgesight.export.exact_int8 import exact_int8_probabilities
from edgesight.runtime.bench import machine_description
from edgesight.runtime.classifier import Classifier
from edgesight.runtime.cpu import int8_outlook
from edgesight.runtime.datasets import preprocess_regions
from edgesight.runtime.tasks import get_task


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="the models' dataset folder (official test split is scored)")
    parser.add_argument("models", nargs="+", help="int8 model files or shipped names of one task")
    arguments = parser.parse_args()
    outlook = int8_outlook()
    print(f"Machine: {machine_description()}; int8 instructions: {', '.join(outlook.int8_features) or 'none listed'}")
    test_sets: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}
    for model in arguments.models:
        classifier = Classifier(model, max_batch=512)
        key = (classifier.metadata.task, classifier.spec)
        if key not in test_sets:
            regions = get_task(classifier.metadata.task, arguments.data).load(arguments.data, "test")
            test_sets[key] = (preprocess_regions(regions, classifier.spec), regions.labels)
        images, truth = test_sets[key]
        here = classifier.probabilities(images).argmax(axis=1)
        exact = exact_int8_probabilities(classifier.path, images).argmax(axis=1)
        bits = (classifier.metadata.quantization or {}).get("weight_bits", 8)
        print(json.dumps({"model": str(model), "weight_bits": bits, "this_cpu": round(float(np.mean(here == truth)), 4),
                          "exact": round(float(np.mean(exact == truth)), 4),
                          "same_top1": round(float(np.mean(here == exact)), 4)}))


if __name__ == "__main__":
    main()
