"""Soak test of the live loop: a looping clip for minutes on end, resident memory and frame rate per minute.

    python benchmarks/soak.py --minutes 10 --out benchmarks/results/soak        # centre box, shipped gtsrb
    python benchmarks/soak.py --minutes 10 --locate --out benchmarks/results/soak-locate   # every sign, gtsrb-locate

Frames go through the same path as `edgesight demo` (runtime.stream.classify_frames), JSON lines
are formatted and discarded, so every allocation of a real run happens. Goal (issue 6): resident
memory grows by less than 20 MB from the first minute to the last, and the frame rate does not drift.
Memory is read from /proc (Linux). On a shared machine other load moves the frame rate: read the
drift beside the per-minute table, not alone.
"""
from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
from edgesight.runtime.classifier import Classifier
from edgesight.runtime.files import write_json_atomic, write_text_atomic
from edgesight.runtime.results import detection, frame_record
from edgesight.runtime.sources import Frame, FrameSource, VideoFileSource
from edgesight.runtime.stream import Recognizer, StreamOptions, classify_frames

REPOSITORY = Path(__file__).resolve().parents[1]
MEMORY_GOAL_MB = 20.0


class LoopingClip(FrameSource):
    """A video file played over and over, frame indices counting on: a camera that never ends."""

    def __init__(self, path: Path):
        self.name, self._path, self._index = str(path), path, 0
        self._clip = VideoFileSource(path)
        self.fps = self._clip.fps

    def read(self) -> Frame | None:
        frame = self._clip.read()
        if frame is None:
            self._clip.close()
            self._clip = VideoFileSource(self._path)
            frame = self._clip.read()
        self._index += 1
        return Frame(frame.image_bgr, self._index - 1, frame.captured, frame.origin)

    def close(self) -> None:
        self._clip.close()


def resident_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=None, help="model file or shipped name (default: gtsrb-locate with --locate, else gtsrb)")
    parser.add_argument("--clip", type=Path, default=REPOSITORY / "samples" / "gtsdb_drive.mp4")
    parser.add_argument("--minutes", type=float, default=10.0, help="how long to run; each minute is one row")
    parser.add_argument("--locate", action="store_true", help="find every sign (the default locators) instead of the centre box")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, required=True, help="folder for soak.json and soak.md")
    arguments = parser.parse_args()

    classifier = Classifier(arguments.model or ("gtsrb-locate" if arguments.locate else "gtsrb"), threads=arguments.threads)
    options = StreamOptions(locate=arguments.locate)
    recognize = Recognizer(classifier, options, arguments.threads, track=True)
    minutes: list[dict] = []
    started = time.monotonic()
    window_started, window_frames, latencies = started, 0, []
    with LoopingClip(arguments.clip) as clip:
        for result in classify_frames(clip, recognize):
            json.dumps(frame_record(result.frame.index, result.frame.origin, 0.0, result.latency_ms,
                                    [detection(box, predictions[0]) for box, predictions in result.detections]))
            window_frames += 1
            latencies.append(result.latency_ms)
            now = time.monotonic()
            if now - window_started >= 60.0 or now - started >= arguments.minutes * 60:
                minutes.append({"minute": len(minutes) + 1, "frames_per_second": round(window_frames / (now - window_started), 1),
                                "latency_ms_median": round(float(np.median(latencies)), 3), "resident_mb": round(resident_mb(), 1)})
                print(minutes[-1], flush=True)
                window_started, window_frames, latencies = now, 0, []
                if now - started >= arguments.minutes * 60:
                    break
    first, last = minutes[0], minutes[-1]
    growth = last["resident_mb"] - first["resident_mb"]
    drift = last["frames_per_second"] / first["frames_per_second"] - 1
    rates = [m["frames_per_second"] for m in minutes]
    # A trend, not noise: the slope of a line through the per-minute rates, as a fraction of their mean per minute.
    slope = float(np.polyfit(np.arange(len(rates)), rates, 1)[0] / np.mean(rates)) if len(rates) > 1 else 0.0
    report = {
        "model": str(classifier.path), "clip": str(arguments.clip), "locate": arguments.locate,
        "locators": list(options.locator) if arguments.locate else None, "threads": arguments.threads,
        "machine": f"{platform.processor() or platform.machine()}, {platform.system()}", "minutes": minutes,
        "resident_growth_mb": round(growth, 1), "memory_goal_met": growth < MEMORY_GOAL_MB,
        "frame_rate_change_first_to_last": round(drift, 4), "frame_rate_trend_per_minute": round(slope, 4),
    }
    arguments.out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(arguments.out / "soak.json", report)
    lines = [f"# Soak: {len(minutes)} min of `{arguments.clip.name}` on a loop, {'locate signs with ' + ' and '.join(options.locator) if arguments.locate else 'centre box'}, "
             f"{arguments.threads} thread(s)", "", "| minute | frames/s | latency median (ms) | resident MB |", "|---|---|---|---|"]
    lines += [f"| {m['minute']} | {m['frames_per_second']} | {m['latency_ms_median']} | {m['resident_mb']} |" for m in minutes]
    lines += ["", f"Resident memory grew {growth:+.1f} MB from the first minute to the last (goal < {MEMORY_GOAL_MB:g} MB); "
              f"frame rate changed {drift * 100:+.1f}% (trend {slope * 100:+.2f}% per minute)."]
    write_text_atomic(arguments.out / "soak.md", "\n".join(lines) + "\n")
    print(lines[-1])


if __name__ == "__main__":
    main()
