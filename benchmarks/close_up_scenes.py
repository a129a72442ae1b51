"""Close-up frames cut from road scenes, as a webcam sees a sign held up to it, in the GTSDB layout.

Road scenes show signs at 16-128 px in 1360x800; a sign held up to a webcam fills a fifth of a 640x480 frame or more.
For each sign of --min-sign px or more, this cuts a 640x480 window around it (the sign at a random place in the
window's middle half), zoomed so the sign is --sizes px (at most --max-zoom times, so no frame is mostly blur).
Every sign wholly inside the window is ground truth. Frames are PNG, so the zoom adds no compression loss.
Cut them from scenes neither the locator nor the classifier learnt from:

    python benchmarks/close_up_scenes.py scenes-100-199.zip close-ups-100-199.zip
    python benchmarks/compare_sign_finders.py --data close-ups-100-199.zip shipped=gtsrb-locate@colour,sign-locator ...
"""
from __future__ import annotations

import argparse
import zipfile
from pathlib import Path

import cv2
import numpy as np
from edgesight.runtime.errors import DatasetError
from edgesight.runtime.files import atomic_path
from edgesight.runtime.scenes import read_scenes

FRAME_WIDTH, FRAME_HEIGHT = 640, 480  # VGA: what most webcams give by default


def close_up(scene_bgr: np.ndarray, sign_box, target_side: float, max_zoom: float, rng: np.random.Generator):
    """The zoomed frame around one sign and the affine map from scene to frame pixels (zoom, x0, y0)."""
    height, width = scene_bgr.shape[:2]
    side = max(sign_box[2] - sign_box[0], sign_box[3] - sign_box[1]) + 1
    zoom = max(1.0, min(max_zoom, target_side / side))
    window_width, window_height = FRAME_WIDTH / zoom, FRAME_HEIGHT / zoom
    centre_x, centre_y = (sign_box[0] + sign_box[2]) / 2, (sign_box[1] + sign_box[3]) / 2
    x0 = float(np.clip(centre_x - rng.uniform(0.25, 0.75) * window_width, 0, max(0.0, width - window_width)))
    y0 = float(np.clip(centre_y - rng.uniform(0.25, 0.75) * window_height, 0, max(0.0, height - window_height)))
    warp = np.float32([[zoom, 0, -x0 * zoom], [0, zoom, -y0 * zoom]])
    return cv2.warpAffine(scene_bgr, warp, (FRAME_WIDTH, FRAME_HEIGHT), flags=cv2.INTER_LINEAR), (zoom, x0, y0)


def write_scenes_zip(path: Path, frames: dict[str, bytes], truth: list[str]) -> None:
    """A .zip in the GTSDB layout, written atomically: each frame's encoded bytes by file name, and gt.txt's lines."""
    with atomic_path(path) as temporary, zipfile.ZipFile(temporary, "w") as archive:
        for name, data in frames.items():
            archive.writestr(name, data)
        archive.writestr("gt.txt", "\n".join(truth) + "\n")


def cut_close_ups(arguments: argparse.Namespace) -> tuple[dict[str, bytes], list[str]]:
    """PNG bytes of each close-up by file name, and gt.txt's lines."""
    rng = np.random.default_rng(arguments.seed)
    frames: dict[str, bytes] = {}
    truth: list[str] = []
    for scene in read_scenes(arguments.scenes):
        for sign in scene.signs:
            if sign.size < arguments.min_sign:
                continue
            frame, (zoom, x0, y0) = close_up(scene.image_bgr, sign.box, rng.uniform(*arguments.sizes), arguments.max_zoom, rng)
            name = f"{len(frames):05d}.png"
            frames[name] = cv2.imencode(".png", frame)[1].tobytes()
            for other in scene.signs:
                x1, y1, x2, y2 = (round((value - origin) * zoom) for value, origin in zip(other.box, (x0, y0, x0, y0)))
                if x1 >= 0 and y1 >= 0 and x2 < FRAME_WIDTH and y2 < FRAME_HEIGHT:
                    truth.append(f"{name};{x1};{y1};{x2};{y2};{other.class_id}")
    return frames, truth


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("scenes", type=Path, help="road scenes in the GTSDB layout (folder or .zip with gt.txt)")
    parser.add_argument("out", type=Path, help="the .zip to write")
    parser.add_argument("--min-sign", type=int, default=50, help="signs smaller than this (px, longer side) get no close-up")
    parser.add_argument("--sizes", type=float, nargs=2, default=(130.0, 230.0), metavar=("MIN", "MAX"),
                        help="the sign's size in the close-up, drawn evenly between these (px)")
    parser.add_argument("--max-zoom", type=float, default=3.5, help="never enlarge a scene more than this")
    parser.add_argument("--seed", type=int, default=0)
    arguments = parser.parse_args()
    if arguments.min_sign < 1 or not 0 < arguments.sizes[0] <= arguments.sizes[1] or arguments.max_zoom < 1:
        parser.error(f"needs --min-sign >= 1, 0 < MIN <= MAX for --sizes and --max-zoom >= 1. Received: --min-sign "
                     f"{arguments.min_sign} --sizes {arguments.sizes[0]} {arguments.sizes[1]} --max-zoom {arguments.max_zoom}")
    try:
        frames, truth = cut_close_ups(arguments)
    except DatasetError as error:
        parser.error(str(error))
    if not frames:
        parser.error(f"{arguments.scenes}: no sign of {arguments.min_sign} px or more to cut a close-up around.")
    write_scenes_zip(arguments.out, frames, truth)
    print(f"{arguments.out}: {len(frames)} close-ups of {FRAME_WIDTH}x{FRAME_HEIGHT}, {len(truth)} signs")


if __name__ == "__main__":
    main()
