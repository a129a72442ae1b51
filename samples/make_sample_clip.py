"""Make samples/gtsdb_drive.mp4: a virtual camera moving and zooming toward real signs in GTSDB road scenes.

The clip is what a person holding a phone toward signs would film: a wide view of a road scene, then
a zoom that brings one sign into the demo's centre box, a short handheld hold, and the next scene.
Scenes and boxes come from the GTSDB development archive (see samples/README.md for attribution).

    pip install imageio-ffmpeg   # an ffmpeg with H.264: OpenCV's own mp4v writer makes a 3x larger file
    python samples/make_sample_clip.py ../shared/datasets/gtsdb/GTSDB_dev_scenes.zip samples/gtsdb_drive.mp4
"""
from __future__ import annotations

import argparse
import json
import subprocess
import zipfile
from pathlib import Path

import cv2
import numpy as np

WIDTH, HEIGHT, FPS = 640, 480, 15
CENTRE_BOX_FRACTION = 0.4  # the demo's default centre box: 0.4 of the shorter side
SIGN_FILL = 0.8  # the sign spans this much of the centre box at the end of the zoom, like a GTSRB ROI
WIDE_FRAMES, ZOOM_FRAMES, HOLD_FRAMES = 6, 22, 14


def read_scenes(archive: Path) -> tuple[zipfile.ZipFile, list[tuple[str, tuple[int, int, int, int], int]]]:
    bundle = zipfile.ZipFile(archive)
    signs = []
    for line in bundle.read("FullIJCNN2013/gt.txt").decode().split():
        name, x1, y1, x2, y2, class_id = line.split(";")
        signs.append((name, (int(x1), int(y1), int(x2), int(y2)), int(class_id)))
    return bundle, signs


def choose_signs(signs, count: int):
    """The largest sign of each class, largest first, one per scene: sharp enough to zoom into."""
    best: dict[int, tuple] = {}
    for sign in signs:
        width = sign[1][2] - sign[1][0]
        if sign[2] not in best or width > best[sign[2]][1][2] - best[sign[2]][1][0]:
            best[sign[2]] = sign
    chosen, scenes = [], set()
    for sign in sorted(best.values(), key=lambda s: -(s[1][2] - s[1][0])):
        if sign[0] not in scenes:
            chosen.append(sign)
            scenes.add(sign[0])
    return chosen[:count]


def render(scene_bgr: np.ndarray, centre_xy: tuple[float, float], scale: float) -> np.ndarray:
    """The view of a virtual camera centred on a scene point, `scale` output pixels per scene pixel."""
    cx, cy = centre_xy
    matrix = np.float32([[scale, 0, WIDTH / 2 - scale * cx], [0, scale, HEIGHT / 2 - scale * cy]])
    return cv2.warpAffine(scene_bgr, matrix, (WIDTH, HEIGHT), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def ease(t: float) -> float:
    return 0.5 - 0.5 * np.cos(np.pi * t)


def shots(scene_bgr: np.ndarray, box: tuple[int, int, int, int], rng: np.random.Generator):
    height, width = scene_bgr.shape[:2]
    wide_scale = HEIGHT / height
    wide_centre = (width / 2, height / 2)
    sign_centre = ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)
    sign_size = max(box[2] - box[0] + 1, box[3] - box[1] + 1)
    close_scale = SIGN_FILL * CENTRE_BOX_FRACTION * HEIGHT / sign_size
    for _ in range(WIDE_FRAMES):
        yield render(scene_bgr, wide_centre, wide_scale)
    for step in range(ZOOM_FRAMES):
        t = ease((step + 1) / ZOOM_FRAMES)
        centre = tuple(w + (s - w) * t for w, s in zip(wide_centre, sign_centre))
        yield render(scene_bgr, centre, wide_scale * (close_scale / wide_scale) ** t)
    phase = rng.uniform(0, 2 * np.pi)
    for step in range(HOLD_FRAMES):
        # A hand is never still: a few output pixels of drift around the sign.
        drift_x, drift_y = 6 * np.sin(phase + step * 0.7), 5 * np.cos(phase + step * 0.5)
        yield render(scene_bgr, (sign_centre[0] + drift_x / close_scale, sign_centre[1] + drift_y / close_scale), close_scale)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("archive", type=Path, help="GTSDB_dev_scenes.zip")
    parser.add_argument("output", type=Path, help="MP4 file to write")
    parser.add_argument("--signs", type=int, default=8, help="signs to visit")
    arguments = parser.parse_args()
    bundle, signs = read_scenes(arguments.archive)
    rng = np.random.default_rng(0)
    try:
        import imageio_ffmpeg
    except ImportError:
        raise SystemExit("needs imageio-ffmpeg for its H.264 encoder: pip install imageio-ffmpeg") from None
    encoder = subprocess.Popen(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "bgr24",
         "-s", f"{WIDTH}x{HEIGHT}", "-r", str(FPS), "-i", "-", "-c:v", "libx264", "-crf", "26", "-preset", "slow",
         "-pix_fmt", "yuv420p", "-movflags", "+faststart", str(arguments.output)],
        stdin=subprocess.PIPE,
    )
    segments, frame_count = [], 0
    for name, box, class_id in choose_signs(signs, arguments.signs):
        scene = cv2.imdecode(np.frombuffer(bundle.read(f"FullIJCNN2013/{name}"), np.uint8), cv2.IMREAD_COLOR)
        print(f"{name}: class {class_id}, box {box}")
        segments.append({"scene": name, "box_in_scene": list(box), "class_id": class_id,
                         "first_frame": frame_count, "hold_first_frame": frame_count + WIDE_FRAMES + ZOOM_FRAMES,
                         "last_frame": frame_count + WIDE_FRAMES + ZOOM_FRAMES + HOLD_FRAMES - 1})
        for frame in shots(scene, box, rng):
            encoder.stdin.write(frame.tobytes())
            frame_count += 1
    encoder.stdin.close()
    if encoder.wait() != 0:
        raise SystemExit(f"ffmpeg failed writing {arguments.output}")
    # Ground truth of the clip: which sign fills the centre box in which frames (the "hold" frames).
    truth = {"source": "GTSDB development scenes, FullIJCNN2013", "fps": FPS, "size": [WIDTH, HEIGHT],
             "centre_box_fraction": CENTRE_BOX_FRACTION, "frames": frame_count, "segments": segments}
    arguments.output.with_suffix(".json").write_text(json.dumps(truth, indent=2) + "\n")
    print(f"wrote {arguments.output} ({arguments.output.stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
