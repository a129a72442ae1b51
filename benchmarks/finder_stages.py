"""Where a road-scene frame's time goes in the sign finder: shrinking the frame, each locator, classifying the proposals.

One thread for onnxruntime and OpenCV, as `edgesight eval-frames` times the goal. Every frame passes through all
stages in turn, twice; the second pass is timed, so the stages share the machine's noise alike. Prints medians in ms.
As in the combined locator (`learned_locate.CombinedLocator`), learned locators run first, each split into its network
(with the frame's conversion to the network input) and the decoding of its output, and colour boxes then pass the colour
gate on the first learned locator's centre logits (its own stage; `--colour-gate 0` turns it off). Several learned
locator files may be timed in one pass; the boxes of all of them pass the screen (its own stage; `--screen none` turns
it off) and are classified. With `--roi` the locators search that region of each frame only, as eval-frames's.

    python benchmarks/finder_stages.py --data scenes-100-199.zip [--model gtsrb-locate] [--locator colour diamonds sign-locator] [--roi 0,0.1,1,0.8]
"""
from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict

import cv2
import numpy as np
from edgesight.runtime.bench import machine_description
from edgesight.runtime.classifier import Classifier
from edgesight.runtime.learned_locate import COLOUR_GATE, LearnedLocator, best_centre_score_within, open_locator
from edgesight.runtime.locate import ColourLocator, ShrunkFrame
from edgesight.runtime.roi import RegionOfInterest, in_frame
from edgesight.runtime.scenes import read_scenes
from edgesight.runtime.signs import SCREEN_THRESHOLD, SignFinder, open_screen
from edgesight.runtime.stream import DEFAULT_LOCATORS


class Laps:
    """Milliseconds since the previous lap (or since made), by stage name."""

    def __init__(self) -> None:
        self.laps: list[tuple[str, float]] = []
        self._last = time.perf_counter()

    def __call__(self, stage: str) -> None:
        now = time.perf_counter()
        self.laps.append((stage, (now - self._last) * 1000))
        self._last = now


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="road scenes in the GTSDB layout (folder or .zip)")
    parser.add_argument("--model", default="gtsrb-locate", help="sign model file or shipped name")
    parser.add_argument("--locator", nargs="+", default=list(DEFAULT_LOCATORS), help="locators, as eval-frames takes them (default: the runtime's default locators)")
    parser.add_argument("--colour-gate", type=float, default=COLOUR_GATE, help=f"as for eval-frames (default {COLOUR_GATE}; 0: no gate)")
    parser.add_argument("--screen", default="auto", help="as for eval-frames (default auto; none: no screen)")
    parser.add_argument("--screen-threshold", type=float, default=SCREEN_THRESHOLD, help=f"as for eval-frames (default {SCREEN_THRESHOLD})")
    parser.add_argument("--roi", help="as for eval-frames: the region the locators search (default: the whole frame)")
    arguments = parser.parse_args()
    region = RegionOfInterest.parse(arguments.roi) if arguments.roi else None
    cv2.setNumThreads(1)
    classifier = Classifier(arguments.model, threads=1, max_batch=256)
    # The finder's own screening step (SignFinder.candidates), timed as a stage of its own.
    finder = SignFinder(classifier, screen=open_screen(arguments.screen, classifier), screen_threshold=arguments.screen_threshold)
    opened = [(name, open_locator([name], threads=1)) for name in arguments.locator]
    ordered = sorted(opened, key=lambda pair: not isinstance(pair[1], LearnedLocator))  # stable: learned ones first
    frames = [scene.image_bgr for scene in read_scenes(arguments.data)]
    times: dict[str, list[float]] = defaultdict(list)
    proposals: dict[str, list[int]] = defaultdict(list)
    for timed in (False, True):
        for frame in frames:
            lap = Laps()
            x1, y1, x2, y2 = region.pixels(frame.shape) if region else (0, 0, frame.shape[1], frame.shape[0])
            shrunk = ShrunkFrame.of(frame[y1:y2, x1:x2])
            shrunk.by(2)  # the half-size copy the shipped locators share (each makes what else it needs itself)
            lap("shrink")
            boxes, gate = [], None
            for name, locator in ordered:
                if isinstance(locator, LearnedLocator):
                    output = locator.frame_output(shrunk)
                    lap(f"{name} network")
                    found = [box for box, _ in locator.scored_proposals_of(output, shrunk)]
                    lap(f"{name} decode")
                    gate = gate or (output.centre_logits, locator.geometry)
                else:
                    found = locator.propose(shrunk)
                    lap(name)
                    if isinstance(locator, ColourLocator) and gate and arguments.colour_gate:
                        found = [box for box in found if best_centre_score_within(*gate, box) >= arguments.colour_gate]
                        lap("colour gate")
                boxes += in_frame(found, x1, y1)
                if timed:
                    proposals[name].append(len(found))
            if boxes and finder.screen is not None:
                boxes = finder.screened(frame, boxes)
                lap("screen")
                if timed:
                    proposals["after the screen"].append(len(boxes))
            if boxes:
                classifier.classify_boxes(frame, boxes)
            lap("classify")
            if timed:
                for stage, milliseconds in lap.laps:
                    times[stage].append(milliseconds)
                times["total"].append(sum(milliseconds for _, milliseconds in lap.laps))
    print(json.dumps({"machine": machine_description(), "frames": len(frames), "colour_gate": arguments.colour_gate, "roi": arguments.roi,
                      "median_ms": {stage: round(float(np.median(values)), 2) for stage, values in times.items()},
                      "proposals_per_frame": {name: round(float(np.mean(counts)), 2) for name, counts in proposals.items()}}))


if __name__ == "__main__":
    main()
