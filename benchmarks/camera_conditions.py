"""How the sign finder fares when the camera is not GTSDB's: other resolutions, dusk, glare, blur, noise, compression.

GTSDB's scenes come from one camera: 1360x800, daylight JPEGs. Users' cameras differ. This writes, for each condition,
the scenes as that camera would have given them (in the GTSDB layout, PNG so no loss is added unless asked for, true
boxes moved with the pixels), runs `edgesight eval-frames` on each and tabulates what is found. A measurement for
information: nothing is chosen on it. Run it on scenes no model learnt from:

    python benchmarks/camera_conditions.py --data scenes-100-199.zip --out benchmarks/results/DATE-camera-conditions

"Signs" counts the true signs of 24 px or more in that condition's frames (issue 5's goal size), so at smaller
resolutions fewer signs count: those that shrank below 24 px would be out of the goal on such a camera too.
Upscaled frames are softer than a real camera of that resolution would give; blur, noise and glare are synthetic.
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
from close_up_scenes import write_scenes_zip
from edgesight.runtime.bench import machine_description
from edgesight.runtime.errors import DatasetError
from edgesight.runtime.files import make_folder, write_json_atomic, write_text_atomic
from edgesight.runtime.frame_eval import GOAL_MIN_SIZE, EvalFramesConfig, evaluate_frames
from edgesight.runtime.scenes import read_scenes
from edgesight.runtime.stream import DEFAULT_LOCATORS


@dataclass(frozen=True)
class Condition:
    name: str
    description: str
    scale: float  # frame and box scale against the recorded scenes
    pixels: Callable[[np.ndarray, np.random.Generator], np.ndarray]  # the rescaled frame as that camera gives it
    encoding: tuple[str, list[int]] = (".png", [])


def _unchanged(image, rng):
    return image


def _exposure(gain: float):
    return lambda image, rng: cv2.convertScaleAbs(image, alpha=gain)  # saturates at 255 like an over-exposed sensor


def _blur(sigma: float):
    return lambda image, rng: cv2.GaussianBlur(image, (0, 0), sigma)


def _noise(sigma: float):
    def noisy(image, rng):
        return np.clip(image.astype(np.float32) + rng.normal(0.0, sigma, image.shape), 0, 255).astype(np.uint8)
    return noisy


CONDITIONS = (
    Condition("recorded", "the scenes as recorded (1360x800)", 1.0, _unchanged),
    Condition("1920-wide", "an HD camera's frame width, 1920x1129 (upscaled: softer than a real one)", 1920 / 1360, _unchanged),
    Condition("1280-wide", "1280x753 (a 720p camera's width)", 1280 / 1360, _unchanged),
    Condition("960-wide", "960x565", 960 / 1360, _unchanged),
    Condition("640-wide", "640x376 (a VGA webcam's width)", 640 / 1360, _unchanged),
    Condition("dusk", "half the light (every pixel value halved)", 1.0, _exposure(0.5)),
    Condition("glare", "over-exposed: values times 1.6, clipped at 255", 1.0, _exposure(1.6)),
    Condition("blur", "out of focus or moving: Gaussian blur, sigma 1.5 px", 1.0, _blur(1.5)),
    Condition("noise", "sensor noise: Gaussian, sigma 8 levels", 1.0, _noise(8.0)),
    Condition("jpeg-30", "a streaming camera's compression: JPEG quality 30", 1.0, _unchanged, (".jpg", [cv2.IMWRITE_JPEG_QUALITY, 30])),
)


def scaled_box(box, scale: float, width: int, height: int) -> tuple[int, int, int, int]:
    """An inclusive pixel box of the recorded frame in the rescaled frame's pixels."""
    x1, y1, x2, y2 = box
    return (max(0, round(x1 * scale)), max(0, round(y1 * scale)),
            min(width - 1, round((x2 + 1) * scale) - 1), min(height - 1, round((y2 + 1) * scale) - 1))


def condition_scenes(scenes_path: str, condition: Condition, seed: int) -> tuple[dict[str, bytes], list[str]]:
    """Each scene as the condition's camera gives it (encoded bytes by file name), and gt.txt's lines."""
    rng = np.random.default_rng(seed)
    frames: dict[str, bytes] = {}
    truth: list[str] = []
    for scene in read_scenes(scenes_path):
        height, width = scene.image_bgr.shape[:2]
        size = (round(width * condition.scale), round(height * condition.scale))
        image = scene.image_bgr if condition.scale == 1.0 else cv2.resize(
            scene.image_bgr, size, interpolation=cv2.INTER_AREA if condition.scale < 1 else cv2.INTER_LINEAR)
        name = f"{Path(scene.name).stem}{condition.encoding[0]}"
        frames[name] = cv2.imencode(condition.encoding[0], condition.pixels(image, rng), condition.encoding[1])[1].tobytes()
        truth += [f"{name};{';'.join(map(str, scaled_box(sign.box, condition.scale, *size)))};{sign.class_id}" for sign in scene.signs]
    return frames, truth


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", required=True, help="road scenes in the GTSDB layout (folder or .zip with gt.txt)")
    parser.add_argument("--out", type=Path, required=True, help="folder for each condition's scenes and reports, and conditions.md")
    parser.add_argument("--model", default="gtsrb-locate", help="sign model, as eval-frames takes it (default: gtsrb-locate)")
    parser.add_argument("--locator", nargs="+", default=list(DEFAULT_LOCATORS),
                        help=f"locators, as eval-frames takes them (default: {' '.join(DEFAULT_LOCATORS)})")
    parser.add_argument("--conditions", nargs="+", choices=[condition.name for condition in CONDITIONS],
                        default=[condition.name for condition in CONDITIONS], help="which conditions (default: all)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the noise")
    args = parser.parse_args(argv)
    make_folder(args.out, f"--out {args.out}")
    rows = []
    for condition in (condition for condition in CONDITIONS if condition.name in args.conditions):
        try:
            frames, truth = condition_scenes(args.data, condition, args.seed)
        except DatasetError as error:
            parser.error(str(error))
        scenes_zip = args.out / f"{condition.name}.zip"
        write_scenes_zip(scenes_zip, frames, truth)
        print(f"{condition.name}: {condition.description}", file=sys.stderr, flush=True)
        report = evaluate_frames(EvalFramesConfig(model=args.model, data=str(scenes_zip), out=str(args.out / condition.name),
                                                  locator=args.locator, examples=0))
        scenes_zip.unlink()  # the frames are made again by this script from the scenes; the report is what is kept
        rows.append({"condition": condition.name, "description": condition.description,
                     "signs_24px_and_more": report["signs_24px_and_more"], "recall_24px_and_more": report["recall_24px_and_more"],
                     "found": round(report["recall_24px_and_more"] * report["signs_24px_and_more"]),
                     "false_detections_per_frame": report["false_detections_per_frame"],
                     "ms_per_frame_median": report["ms_per_frame"]["median"],
                     "most_missed": dict(list(report["missed_24px_and_more_by_class"].items())[:3])})
    machine = machine_description()
    lines = [f"# The sign finder under other camera conditions: `{args.data}`", "",
             f"Model `{args.model}` with the locators {', '.join(f'`{name}`' for name in args.locator)}, one thread, min score as eval-frames; {machine}. Times are "
             f"from separate passes minutes apart, so compare them loosely.", "",
             f"| condition | what | signs of {GOAL_MIN_SIZE} px or more | found | false per frame | ms per frame | most missed |",
             "|---|---|---|---|---|---|---|"]
    lines += [f"| {row['condition']} | {row['description']} | {row['signs_24px_and_more']} | {row['found']} "
              f"({row['recall_24px_and_more']:.1%}) | {row['false_detections_per_frame']:.2f} | {row['ms_per_frame_median']:.2f} | "
              f"{', '.join(f'{label} {count}' for label, count in row['most_missed'].items())} |" for row in rows]
    write_text_atomic(args.out / "conditions.md", "\n".join(lines) + "\n")
    write_json_atomic(args.out / "conditions.json", {"data": args.data, "model": args.model, "locators": args.locator, "machine": machine, "conditions": rows})
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
