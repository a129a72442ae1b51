"""Where a road-scene frame's time goes in the sign finder: shrinking the frame, each locator, classifying the proposals.

One thread for onnxruntime and OpenCV, as `edgesight eval-frames` times the goal. Every frame passes through all
stages in turn, twice; the second pass is timed, so the stages share the machine's noise alike. Prints medians in ms.
Each locator runs alone here, so colour boxes are not gated by the learned locator as in the combined default
(`learned_locate.CombinedLocator`): the classify stage counts every colour box.

    python benchmarks/finder_stages.py --data scenes-100-199.zip [--model gtsrb-locate] [--locator colour diamonds sign-locator]
"""
from __future__ import annotations

import argparse
import json
import time

import cv2
import numpy as np
from edgesight.runtime.bench import machine_description
from edgesight.runtime.classifier import Classifier
from edgesight.runtime.learned_locate import open_locator
from edgesight.runtime.locate import ShrunkFrame
from edgesight.runtime.scenes import read_scenes
from edgesight.runtime.stream import DEFAULT_LOCATORS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="road scenes in the GTSDB layout (folder or .zip)")
    parser.add_argument("--model", default="gtsrb-locate", help="sign model file or shipped name")
    parser.add_argument("--locator", nargs="+", default=list(DEFAULT_LOCATORS), help="locators, as eval-frames takes them (default: the runtime's default locators)")
    arguments = parser.parse_args()
    cv2.setNumThreads(1)
    classifier = Classifier(arguments.model, threads=1, max_batch=256)
    locators = [open_locator([name], threads=1) for name in arguments.locator]
    frames = [scene.image_bgr for scene in read_scenes(arguments.data)]
    stages = ["shrink", *arguments.locator, "classify", "total"]
    times: dict[str, list[float]] = {stage: [] for stage in stages}
    for timed in (False, True):
        for frame in frames:
            marks = [time.perf_counter()]
            shrunk = ShrunkFrame.of(frame)
            shrunk.by(2)  # the half-size copy the shipped locators share (each makes what else it needs itself)
            marks.append(time.perf_counter())
            boxes = []
            for locator in locators:
                boxes += locator.propose(shrunk)
                marks.append(time.perf_counter())
            if boxes:
                classifier.classify_boxes(frame, boxes)
            marks.append(time.perf_counter())
            if timed:
                for stage, start, end in zip(stages, marks, marks[1:]):
                    times[stage].append((end - start) * 1000)
                times["total"].append((marks[-1] - marks[0]) * 1000)
    print(json.dumps({"machine": machine_description(), "frames": len(frames),
                      "median_ms": {stage: round(float(np.median(values)), 2) for stage, values in times.items()}}))


if __name__ == "__main__":
    main()
