"""`edgesight eval-frames`: how well signs are found and read in road scenes with ground truth.

A detection counts when its box overlaps an unclaimed true sign by IoU >= 0.5 and its class is
that sign's class; anything else is a false detection. Recall is reported per size band of the true
signs, precision per size band of the detections, with false detections per frame and the time to
locate and classify one frame (decoding excluded) on the threads asked for.
"""
from __future__ import annotations

import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np

from .bench import machine_description
from .classifier import Classifier
from .errors import DatasetError, ModelFileError
from .files import make_folder, write_bytes_atomic, write_json_atomic
from .learned_locate import COLOUR_GATE, open_locator
from .locate import box_size, iou
from .results import detection
from .roi import ROI_HELP, SEARCH_WIDTH_HELP, RegionOfInterest, as_searched
from .scenes import Scene, TrueSign, read_scenes
from .shipped import SHIPPED_MODEL_NAMES
from .signs import SCREEN_THRESHOLD, SIGN_MIN_SCORE, FoundSign, SignFinder, open_screen
from .stream import COLOUR_GATE_HELP, DEFAULT_LOCATORS, LOCATOR_HELP, SCREEN_HELP, SCREEN_THRESHOLD_HELP

MIN_IOU = 0.5
BANDS = (("< 32 px", 0, 31), ("32-64 px", 32, 64), ("> 64 px", 65, 10**9))
GOAL_MIN_SIZE = 24  # issue 5's goal counts signs of 24 px and more
# Confidence thresholds reported side by side: what rejecting doubtful boxes does to recall and precision.
SCORE_SWEEP = (0.5, 0.9, 0.99, 0.999, 0.9999)


@dataclass(frozen=True)
class EvalFramesConfig:
    model: str = field(metadata={"help": f"edgesight sign model file or shipped name ({SHIPPED_MODEL_NAMES}); gtsrb-locate, which "
                                                                 "knows 'not a sign', is the one the finder's figures are for"})
    data: str = field(metadata={"help": "road scenes in the GTSDB layout: a folder or .zip with images and gt.txt"})
    out: str = field(default="out/eval-frames", metadata={"help": "folder for eval_frames.json and annotated example frames"})
    min_score: float = field(default=SIGN_MIN_SCORE, metadata={"help": "a located box whose best class scores less is taken for background"})
    threads: int = field(default=1, metadata={"help": "onnxruntime and OpenCV threads (the speed goal is for one core)"})
    locator: list[str] = field(default_factory=lambda: list(DEFAULT_LOCATORS), metadata={"help": LOCATOR_HELP})
    colour_gate: float = field(default=COLOUR_GATE, metadata={"help": COLOUR_GATE_HELP})
    screen: str = field(default="auto", metadata={"help": SCREEN_HELP})
    screen_threshold: float = field(default=SCREEN_THRESHOLD, metadata={"help": SCREEN_THRESHOLD_HELP})
    roi: str | None = field(default=None, metadata={"help": ROI_HELP})
    search_width: int | None = field(default=None, metadata={"help": SEARCH_WIDTH_HELP})
    examples: int = field(default=4, metadata={"help": "annotated example frames to write: those with the most errors"})


def match(found: list[FoundSign], truth: tuple[TrueSign, ...]) -> tuple[list[bool], list[bool]]:
    """Which detections are right and which true signs were found; the best-scored detection claims first."""
    claimed, correct = [False] * len(truth), [False] * len(found)
    for index in sorted(range(len(found)), key=lambda i: -found[i].prediction.score):
        sign = found[index]
        overlap, best = max(((iou(sign.box, true.box), t) for t, true in enumerate(truth)
                             if not claimed[t] and true.class_id == sign.prediction.class_id), default=(0.0, -1))
        if overlap >= MIN_IOU:
            claimed[best] = correct[index] = True
    return correct, claimed


def size_band(size: int) -> str:
    """The size band (BANDS) of a sign whose longer side is `size` pixels."""
    return next(name for name, low, high in BANDS if low <= size <= high)


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _annotate(scene: Scene, found: list[FoundSign], correct: list[bool], claimed: list[bool], labels) -> np.ndarray:
    """True signs in green (thin where missed), right detections in yellow, false ones in red, each labelled."""
    image = scene.image_bgr.copy()
    for true, was_found in zip(scene.signs, claimed):
        x1, y1, x2, y2 = true.box
        cv2.rectangle(image, (x1, y1), (x2, y2), (0, 200, 0), 3 if was_found else 1)
        if not was_found:
            cv2.putText(image, f"missed: {labels[true.class_id]}", (x1, y2 + 14), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 200, 0), 1)
    for sign, right in zip(found, correct):
        x1, y1, x2, y2 = sign.box
        colour = (0, 220, 255) if right else (0, 0, 255)
        cv2.rectangle(image, (x1, y1), (x2, y2), colour, 1)
        cv2.putText(image, f"{sign.prediction.label} {sign.prediction.score:.2f}", (x1, max(12, y1 - 4)),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.45, colour, 1)
    return image


@dataclass
class _Tally:
    per_band: dict = field(default_factory=lambda: {name: {"signs": 0, "found": 0, "detections": 0, "correct": 0} for name, _, _ in BANDS})
    goal: dict = field(default_factory=lambda: {"signs": 0, "found": 0})
    sweep: dict = field(default_factory=lambda: {score: {"found": 0, "detections": 0, "correct": 0} for score in SCORE_SWEEP})
    milliseconds: list = field(default_factory=list)
    records: list = field(default_factory=list)
    examples: list = field(default_factory=list)  # (errors, scene, found, correct, claimed) of the worst frames
    frames: int = 0
    false_detections: int = 0
    found_goal_signs: set = field(default_factory=set)  # (scene, index in its gt.txt) of each sign of goal size found
    missed_goal_classes: Counter = field(default_factory=Counter)  # class id -> signs of goal size missed
    goal_signs_outside_region: int = 0  # signs of goal size not wholly inside --roi: what the region gives up at most


def score_scenes(config: EvalFramesConfig, classifier: Classifier, finder: SignFinder) -> _Tally:
    """Locate and classify every scene (timed, decoding excluded) and tally the matches against its signs."""
    tally = _Tally()
    region = RegionOfInterest.parse(config.roi) if config.roi is not None else None
    for scene in read_scenes(config.data):
        unknown = sorted({sign.class_id for sign in scene.signs if not 0 <= sign.class_id < len(classifier.labels)})
        if unknown:
            raise DatasetError(f"{scene.source}: ground-truth class id(s) {unknown} outside the model's "
                               f"{len(classifier.labels)} classes; expected GTSRB class ids 0-42.")
        started = time.perf_counter()
        candidates = finder.candidates(scene.image_bgr)
        found = finder.select(candidates, config.min_score)
        tally.milliseconds.append((time.perf_counter() - started) * 1000)
        correct, claimed = match(found, scene.signs)
        for score, at_score_tally in tally.sweep.items():
            at_score = match(finder.select(candidates, score), scene.signs)
            at_score_tally["detections"] += len(at_score[0])
            at_score_tally["correct"] += sum(at_score[0])
            at_score_tally["found"] += sum(was and true.size >= GOAL_MIN_SIZE for was, true in zip(at_score[1], scene.signs))
        tally.frames += 1
        tally.false_detections += correct.count(False)
        for index, (true, was_found) in enumerate(zip(scene.signs, claimed)):
            band = tally.per_band[size_band(true.size)]
            band["signs"] += 1
            band["found"] += was_found
            if true.size >= GOAL_MIN_SIZE:
                tally.goal["signs"] += 1
                tally.goal_signs_outside_region += region is not None and not region.holds(true.box, scene.image_bgr.shape)
                tally.goal["found"] += was_found
                if was_found:
                    tally.found_goal_signs.add((scene.name, index))
                else:
                    tally.missed_goal_classes[true.class_id] += 1
        for sign, right in zip(found, correct):
            band = tally.per_band[size_band(box_size(sign.box))]
            band["detections"] += 1
            band["correct"] += right
        errors = correct.count(False) + claimed.count(False)
        tally.records.append({"source": scene.name, "signs": len(scene.signs), "missed": claimed.count(False),
                              "missed_signs": [{"box": list(true.box), "class_id": true.class_id, "label": classifier.labels[true.class_id]}
                                               for true, was_found in zip(scene.signs, claimed) if not was_found],
                              "detections": [detection(sign.box, sign.prediction) | {"correct": right} for sign, right in zip(found, correct)]})
        if config.examples and errors:
            tally.examples.append((errors, scene, found, correct, claimed))
            tally.examples = sorted(tally.examples, key=lambda item: (-item[0], item[1].name))[: config.examples]
    return tally


def evaluate_frames(config: EvalFramesConfig) -> dict:
    """Run the sign finder over every scene and write the report and example frames to `config.out`."""
    if not 0.0 <= config.min_score <= 1.0:
        raise ValueError(f"min_score must be within [0, 1]. Received: min_score={config.min_score}")
    if config.examples < 0 or config.threads < 1:
        raise ValueError(f"examples must be >= 0 and threads >= 1. Received: examples={config.examples}, threads={config.threads}")
    classifier = Classifier(config.model, threads=config.threads, max_batch=256)
    if classifier.metadata.task != "gtsrb":
        raise ModelFileError(f"{classifier.path}: a {classifier.metadata.task!r} model; eval-frames scores road scenes "
                             "labelled with GTSRB class ids, so it needs a gtsrb sign model (gtsrb, gtsrb-tiny, gtsrb-locate).")
    locator = as_searched(open_locator(config.locator, config.threads, colour_gate=config.colour_gate), config.roi,
                          config.search_width)
    finder = SignFinder(classifier, locator=locator,
                        min_score=config.min_score, screen=open_screen(config.screen, classifier, config.threads),
                        screen_threshold=config.screen_threshold)
    # OpenCV's resizes and colour conversions would otherwise use every core and flatter a one-core figure.
    opencv_threads = cv2.getNumThreads()
    cv2.setNumThreads(config.threads)
    try:
        tally = score_scenes(config, classifier, finder)
    finally:
        cv2.setNumThreads(opencv_threads)
    per_band, goal, sweep, milliseconds = tally.per_band, tally.goal, tally.sweep, tally.milliseconds
    frames, false_detections, records, examples = tally.frames, tally.false_detections, tally.records, tally.examples
    if not frames:
        raise ValueError(f"{config.data}: no scene images found beside gt.txt.")
    out = Path(config.out)
    make_folder(out, f"--out {out}")
    example_files = []
    for _, scene, found, correct, claimed in examples:
        target = out / f"{Path(scene.name).stem}.annotated.jpg"
        write_bytes_atomic(target, cv2.imencode(".jpg", _annotate(scene, found, correct, claimed, classifier.labels))[1].tobytes())
        example_files.append(target.name)
    report = {
        "model": str(classifier.path), "data": str(config.data), "config": asdict(config), "machine": machine_description(),
        "frames": frames, "min_iou": MIN_IOU,
        "bands": {name: band | {"recall": _ratio(band["found"], band["signs"]), "precision": _ratio(band["correct"], band["detections"])}
                  for name, band in per_band.items()},
        "recall_24px_and_more": _ratio(goal["found"], goal["signs"]), "signs_24px_and_more": goal["signs"],
        "signs_24px_and_more_outside_roi": tally.goal_signs_outside_region if config.roi is not None else None,
        "missed_24px_and_more_by_class": {classifier.labels[class_id]: count
                                          for class_id, count in tally.missed_goal_classes.most_common()},
        "precision": _ratio(sum(b["correct"] for b in per_band.values()), sum(b["detections"] for b in per_band.values())),
        "false_detections_per_frame": round(false_detections / frames, 4),
        "score_sweep": [{"min_score": score, "recall_24px_and_more": _ratio(tally["found"], goal["signs"]),
                         "precision": _ratio(tally["correct"], tally["detections"]),
                         "false_detections_per_frame": round((tally["detections"] - tally["correct"]) / frames, 4)}
                        for score, tally in sweep.items()],
        "ms_per_frame": {"median": round(float(np.median(milliseconds)), 2), "p90": round(float(np.percentile(milliseconds, 90)), 2)},
        "frames_per_second": round(1000 / float(np.mean(milliseconds)), 1),
        "examples": example_files, "per_frame": records,
    }
    write_json_atomic(out / "eval_frames.json", report)
    print(f"{frames} frames: {report['recall_24px_and_more']} of {goal['signs']} signs of {GOAL_MIN_SIZE} px and more found "
          f"with the right class; precision {report['precision']}; {report['false_detections_per_frame']} false detections "
          f"per frame; {report['ms_per_frame']['median']} ms per frame (median, {config.threads} thread(s)"
          f"{'' if config.roi is None else f', searching region {config.roi} only'}"
          f"{'' if config.search_width is None else f', frames wider than {config.search_width} px searched shrunk to it'}); "
          f"{'' if config.roi is None else f'{tally.goal_signs_outside_region} of the signs lie partly or wholly outside the region; '}"
          f"report in {out / 'eval_frames.json'}", file=sys.stdout)
    if tally.missed_goal_classes:
        print("most missed: " + ", ".join(f"{label} {count}" for label, count in
                                          list(report["missed_24px_and_more_by_class"].items())[:5]), file=sys.stdout)
    return report
