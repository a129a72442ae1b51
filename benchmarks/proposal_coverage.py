"""How many signs the locators' proposals cover, before any classifier reads them: locators side by side on road scenes.

A sign counts as covered when a proposal overlaps it by IoU >= 0.5, the overlap `eval-frames` asks of a detection,
so a sign no proposal covers cannot be found whatever the classifier does. Only signs of 24 px or more count, as
in issue 5's goal. Each locator is NAME=LOCATORS[@CENTRE_SCORE]: LOCATORS as for --locator, comma-separated (colour,
sign-locator, locator files); CENTRE_SCORE replaces the operating point stamped in the learned locator files.

    python benchmarks/proposal_coverage.py --data scenes-100-199.zip learned=sign-locator both=colour,sign-locator \\
        new=colour,runs/sign-locator/locator.onnx@0.2 --out benchmarks/results/DATE-proposal-coverage
"""
from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

import cv2
from edgesight.runtime.files import write_json_atomic, write_text_atomic
from edgesight.runtime.frame_eval import BANDS, GOAL_MIN_SIZE, MIN_IOU, size_band
from edgesight.runtime.learned_locate import CLASSICAL_LOCATORS, open_locator
from edgesight.runtime.locate import ShrunkFrame, iou
from edgesight.runtime.scenes import read_scenes
from edgesight.runtime.tasks import TASKS


def parse_locators(spec: str) -> tuple[str, list[str], float | None]:
    """'NAME=LOCATORS[@CENTRE_SCORE]' -> (name, locators, centre score or None)."""
    name, _, rest = spec.partition("=")
    locators, _, score = rest.partition("@")
    if not name or not locators:
        raise argparse.ArgumentTypeError(f"a locator is NAME=LOCATORS[@CENTRE_SCORE], such as both=colour,sign-locator. "
                                         f"Received: {spec!r}")
    if not score:
        return name, locators.split(","), None
    try:
        centre_score = float(score)
    except ValueError:
        centre_score = None
    if centre_score is None or not 0 < centre_score < 1:
        raise argparse.ArgumentTypeError(f"CENTRE_SCORE must be a number in (0, 1). Received: {spec!r}")
    return name, locators.split(","), centre_score


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", required=True, help="road scenes in the GTSDB layout (folder or .zip with gt.txt)")
    parser.add_argument("locators", nargs="+", type=parse_locators, help="NAME=LOCATORS[@CENTRE_SCORE]")
    parser.add_argument("--out", type=Path, help="folder for coverage.md and coverage.json")
    args = parser.parse_args(argv)
    names = [name for name, *_ in args.locators]
    if len(set(names)) < len(names):
        parser.error(f"each locator needs a name of its own. Received: {', '.join(names)}")
    cv2.setNumThreads(1)
    locators = {name: open_locator(locators, threads=1, min_score=score) for name, locators, score in args.locators}
    class_names = TASKS["gtsrb"].labels

    frames = 0
    signs_per_band, signs_per_class = Counter(), Counter()
    covered_per_band = {name: Counter() for name in locators}
    covered_per_class = {name: Counter() for name in locators}
    proposals = Counter()
    for scene in read_scenes(args.data):
        frames += 1
        shrunk = ShrunkFrame.of(scene.image_bgr)  # one downscaled copy for every locator, as the finder shares it
        boxes = {name: locator.propose(shrunk) for name, locator in locators.items()}
        for name, proposed in boxes.items():
            proposals[name] += len(proposed)
        for sign in scene.signs:
            if sign.size < GOAL_MIN_SIZE:
                continue
            band = size_band(sign.size)
            signs_per_band[band] += 1
            signs_per_class[sign.class_id] += 1
            for name, proposed in boxes.items():
                if any(iou(sign.box, box) >= MIN_IOU for box in proposed):
                    covered_per_band[name][band] += 1
                    covered_per_class[name][sign.class_id] += 1

    signs = sum(signs_per_band.values())
    bands = [band for band, _, _ in BANDS if signs_per_band[band]]
    rows = [{"locator": name, "locators": spec, "centre_score": score,
             "covered": sum(covered_per_band[name].values()), "signs_24px_and_more": signs,
             "per_band": {band: covered_per_band[name][band] for band in bands},
             "proposals_per_frame": round(proposals[name] / max(frames, 1), 1),
             "uncovered_per_class": {class_names[class_id]: count - covered_per_class[name][class_id]
                                     for class_id, count in sorted(signs_per_class.items())
                                     if count > covered_per_class[name][class_id]}}
            for name, spec, score in args.locators]
    lines = [f"# Proposal coverage: {args.data}", "",
             f"{frames} frames, {signs} signs of {GOAL_MIN_SIZE} px or more; covered = a proposal at IoU >= {MIN_IOU}.", "",
             "| locator | locators | centre score | covered | " + " | ".join(f"{band} ({signs_per_band[band]})" for band in bands)
             + " | proposals per frame |",
             "|---|---|---|---|" + "---|" * len(bands) + "---|"]
    for row in rows:
        learned = any(name not in CLASSICAL_LOCATORS for name in row["locators"])
        score = row["centre_score"] if row["centre_score"] is not None else ("file's" if learned else "-")
        lines.append(f"| {row['locator']} | {','.join(row['locators'])} | {score} | {row['covered']} of {signs} | "
                     + " | ".join(str(row["per_band"][band]) for band in bands) + f" | {row['proposals_per_frame']} |")
    lines += ["", "Uncovered, by class:"] + [f"- {row['locator']}: " + (", ".join(f"{label} {count}" for label, count in
                                                                          row["uncovered_per_class"].items()) or "none")
                                             for row in rows]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        write_text_atomic(args.out / "coverage.md", text)
        write_json_atomic(args.out / "coverage.json", {"data": args.data, "frames": frames, "min_iou": MIN_IOU,
                                                       "min_size": GOAL_MIN_SIZE, "rows": rows})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
