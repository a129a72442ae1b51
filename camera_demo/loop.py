"""`edgesight demo`: the live loop — source, region, Classifier, overlay, JSON lines, video."""
from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import cv2
import numpy as np
from edgesight.runtime.camera import CAMERA_FORMAT_HELP, CAMERA_FPS_HELP, CAMERA_SIZE_HELP, CameraSettings
from edgesight.runtime.classifier import Classifier
from edgesight.runtime.results import JsonLinesWriter, detection, frame_record
from edgesight.runtime.roi import ROI_HELP, SEARCH_WIDTH_HELP, RegionOfInterest, search_width_hint
from edgesight.runtime.shipped import SHIPPED_MODEL_NAMES
from edgesight.runtime.signs import SCREEN_THRESHOLD
from edgesight.runtime.sources import ImageFolderSource, open_source
from edgesight.runtime.stream import (
    COLOUR_GATE,
    COLOUR_GATE_HELP,
    DEFAULT_LOCATORS,
    LOCATOR_HELP,
    SCREEN_HELP,
    SCREEN_THRESHOLD_HELP,
    Recognizer,
    StreamOptions,
    classify_frames,
)
from edgesight.runtime.tasks import NOT_A_SIGN, TASKS

from .overlay import Speed, draw_overlay, draw_signs, draw_source_state
from .video import VIDEO_SUFFIXES, VideoSink, check_video_path

WINDOW_TITLE = "edgesight"
LOCATE_MODES = ("auto", "signs", "none")


@dataclass(frozen=True)
class DemoConfig:
    model: str | None = field(default=None, metadata={"help": f"edgesight ONNX model file, or a shipped model's name ({SHIPPED_MODEL_NAMES}); "
                                                              "default: gtsrb-locate "
                                                              "(which knows 'not a sign'), or gtsrb with --locate none"})
    source: str = field(default="0", metadata={"help": "camera index, /dev/video* path, stream URL, video file, image folder or glob (quote it)"})
    camera_size: str | None = field(default=None, metadata={"help": CAMERA_SIZE_HELP})
    camera_fps: float | None = field(default=None, metadata={"help": CAMERA_FPS_HELP})
    camera_format: str | None = field(default=None, metadata={"help": CAMERA_FORMAT_HELP})
    locate: str = field(default="auto", metadata={"help": "signs: find and classify every sign in the frame (in video a sign shows once "
                                                           "seen in 3 of the last 5 frames); none: classify one region (--region); "
                                                           "auto: signs for a model that knows 'not a sign', else none"})
    region: str = field(default="center", metadata={"help": "with --locate none, center: classify the box drawn in the middle; full: the whole frame"})
    locator: list[str] = field(default_factory=lambda: list(DEFAULT_LOCATORS), metadata={"help": LOCATOR_HELP})
    colour_gate: float = field(default=COLOUR_GATE, metadata={"help": COLOUR_GATE_HELP})
    screen: str = field(default="auto", metadata={"help": SCREEN_HELP})
    screen_threshold: float = field(default=SCREEN_THRESHOLD, metadata={"help": SCREEN_THRESHOLD_HELP})
    roi: str | None = field(default=None, metadata={"help": "with signs located: " + ROI_HELP})
    search_width: int | None = field(default=None, metadata={"help": SEARCH_WIDTH_HELP})
    box_fraction: float = field(default=0.4, metadata={"help": "side of the centre box as a fraction of the frame's shorter side"})
    top_k: int = field(default=3, metadata={"help": "labels drawn per frame"})
    no_window: bool = field(default=False, metadata={"help": "never open a window (the default when there is no display)"})
    save_video: str | None = field(default=None, metadata={"help": f"write the annotated frames to this video file ({', '.join(VIDEO_SUFFIXES)})"})
    jsonl: str | None = field(default=None, metadata={"help": "write one JSON line per frame to this file ('-' = stdout)"})
    threads: int | None = field(default=None, metadata={"help": "onnxruntime threads (default: all cores)"})
    max_frames: int | None = field(default=None, metadata={"help": "stop after this many frames"})
    max_fps: float | None = field(default=None, metadata={"help": "classify at most this many frames per second (saves a robot's CPU)"})
    skip_bad_images: bool = field(default=False, metadata={"help": "with an image folder or glob as the source: skip images that do not "
                                                                    "decode, naming each on stderr, instead of stopping at the first"})
    lost_after: float = field(default=30.0, metadata={"help": "seconds a camera or stream may give no frame, while it is reopened "
                                                                "with a growing delay, before the demo ends with an error"})


@dataclass(frozen=True)
class DemoSummary:
    frames: int
    seconds: float
    fps: float
    latency_ms_median: float
    latency_ms_p95: float
    end_to_end_ms_median: float  # from capture to result: what a robot reacting to the result waits
    end_to_end_ms_p99: float
    frame_age_ms_median: float  # from capture to the start of classification
    frame_age_ms_p99: float
    top_labels: list[tuple[str, int]]
    ended_by: str
    skipped_images: int = 0  # files of an image folder that did not decode (with skip_bad_images)

    def describe(self) -> str:
        labels = ", ".join(f"{label} ×{count}" for label, count in self.top_labels) or "none"
        return (f"{self.frames} frames in {self.seconds:.1f} s: {self.fps:.1f} frames/s; classification latency "
                f"median {self.latency_ms_median:.2f} ms, p95 {self.latency_ms_p95:.2f} ms; capture to result median "
                f"{self.end_to_end_ms_median:.1f} ms, p99 {self.end_to_end_ms_p99:.1f} ms (frame age median "
                f"{self.frame_age_ms_median:.1f} ms, p99 {self.frame_age_ms_p99:.1f} ms); ended by {self.ended_by}\n"
                f"most frequent confident labels: {labels}"
                + (f"\n{self.skipped_images} unreadable image{'s' if self.skipped_images > 1 else ''} skipped (named above)"
                   if self.skipped_images else ""))


class Terminated(Exception):
    """SIGTERM arrived: leave the loop as for Ctrl-C, releasing the camera and closing the files."""


@contextlib.contextmanager
def _sigterm_ends_the_loop():
    # A service manager or a robot's supervisor stops a process with SIGTERM, whose default kills it
    # on the spot: camera not released, video file left without its index. Only the main thread may
    # install handlers; elsewhere (a library caller's worker thread) the default stays.
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def terminate(signum, frame):
        raise Terminated

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def display_available() -> bool:
    """False on a headless Linux box, where cv2.imshow would fail."""
    if sys.platform.startswith("linux"):
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True


def run_demo(config: DemoConfig) -> DemoSummary:
    """Run the live loop until the input ends, `q` is pressed, Ctrl-C, or max_frames.

    Raises:
        ModelFileError, SourceError: the model or source cannot be used.
    """
    if config.locate not in LOCATE_MODES:
        raise ValueError(f"locate must be one of {LOCATE_MODES}. Received: locate={config.locate!r}")
    if config.lost_after <= 0:
        raise ValueError(f"lost_after must be > 0 seconds. Received: lost_after={config.lost_after}")
    if config.max_frames is not None and config.max_frames < 1:
        raise ValueError(f"max_frames must be >= 1 or left out. Received: max_frames={config.max_frames}")
    if config.save_video is not None:
        check_video_path(config.save_video)
    camera = CameraSettings.parse(config.camera_size, config.camera_fps, config.camera_format)
    classifier = Classifier(config.model or ("gtsrb" if config.locate == "none" else "gtsrb-locate"), threads=config.threads)
    task = TASKS.get(classifier.metadata.task)
    if config.locate == "signs" and task is not None and task.augmentation != "signs":
        # The locators box red, blue and yellow blobs shaped like signs; an object model would name each a cat or a truck.
        raise ValueError(f"locate='signs' finds traffic signs for a sign model, and {classifier.path} is a "
                         f"{task.name!r} model ({task.description}). Use --locate none to classify a region.")
    # Locating needs a model that rejects what is no sign: without that class every leaf and tail light is read as a sign.
    locate = config.locate == "signs" or (config.locate == "auto" and NOT_A_SIGN in classifier.labels)
    options = StreamOptions(region=config.region, box_fraction=config.box_fraction, locate=locate,
                            locator=tuple(config.locator), colour_gate=config.colour_gate,
                            screen=config.screen, screen_threshold=config.screen_threshold, roi=config.roi,
                            search_width=config.search_width,
                            top_k=config.top_k, max_fps=config.max_fps)
    options.check()
    region = RegionOfInterest.parse(config.roi) if config.roi is not None else None
    show = not config.no_window and display_available()
    if not config.no_window and not show:
        print("no display found: running without a window", file=sys.stderr)

    timings: dict[str, list[float]] = {"latency": [], "age": [], "end_to_end": []}
    label_counts: Counter[str] = Counter()
    ended_by = "end of input"
    fps = 0.0
    started = time.monotonic()
    with contextlib.ExitStack() as stack:
        stack.enter_context(_sigterm_ends_the_loop())
        source = stack.enter_context(open_source(config.source, lost_after_s=config.lost_after,
                                                 skip_bad_images=config.skip_bad_images, camera=camera))
        recognize = Recognizer(classifier, options, config.threads, track=not isinstance(source, ImageFolderSource))
        writer = stack.enter_context(JsonLinesWriter(config.jsonl))
        sink = stack.enter_context(VideoSink(config.save_video, source.fps or 15.0)) if config.save_video else None
        if show:
            stack.callback(cv2.destroyAllWindows)
        previous, annotated = time.monotonic(), None
        try:
            for result in classify_frames(source, recognize, options.max_fps):
                if result.frame is None:  # the camera or stream went away or came back
                    print(f"{source.name}: {result.source_state}", file=sys.stderr, flush=True)
                    writer.write({"event": "source_state", "source": source.name, "t": round(time.monotonic() - started, 4),
                                  "state": result.source_state})
                    if show and annotated is not None:
                        cv2.imshow(WINDOW_TITLE, draw_source_state(annotated, result.source_state))
                        cv2.waitKey(1)
                    continue
                frame = result.frame
                for name, value in (("latency", result.latency_ms), ("age", result.frame_age_ms), ("end_to_end", result.end_to_end_ms)):
                    timings[name].append(value)
                if options.locate and len(timings["latency"]) == 2:  # the second frame's time: the first warms up
                    hint = search_width_hint(frame.image_bgr.shape, options.search_width, result.latency_ms)
                    if hint:
                        print(f"{source.name}: {hint}", file=sys.stderr)
                label_counts.update(predictions[0].label for _, predictions in result.detections if predictions[0].score >= 0.5)
                now = time.monotonic()
                # Smoothed so the number on screen is readable, yet follows changes within a second.
                instant = 1.0 / max(now - previous, 1e-6)
                fps = instant if len(timings["latency"]) == 1 else 0.9 * fps + 0.1 * instant
                previous = now
                writer.write(frame_record(frame.index, frame.origin, frame.captured - started, result.latency_ms,
                                          [detection(box, predictions[0]) for box, predictions in result.detections]))
                if sink or show:
                    speed = Speed(fps, result.latency_ms, result.end_to_end_ms)
                    annotated = draw_signs(frame.image_bgr, [(box, predictions[0]) for box, predictions in result.detections], speed,
                                           region.pixels(frame.image_bgr.shape) if region else None) \
                        if options.locate else draw_overlay(frame.image_bgr, *result.detections[0], speed)
                    if sink:
                        sink.write(annotated)
                    if show:
                        cv2.imshow(WINDOW_TITLE, annotated)
                        if cv2.waitKey(1) & 0xFF in (ord("q"), 27):
                            ended_by = "q pressed"
                            break
                if config.max_frames is not None and len(timings["latency"]) >= config.max_frames:
                    ended_by = "max_frames"
                    break
        except KeyboardInterrupt:
            ended_by = "Ctrl-C"
        except Terminated:
            ended_by = "SIGTERM"
    seconds = time.monotonic() - started
    frames = len(timings["latency"])

    def percentile(name: str, q: float) -> float:
        return float(np.percentile(timings[name], q)) if frames else 0.0

    summary = DemoSummary(
        frames=frames, seconds=seconds, fps=frames / seconds if seconds > 0 else 0.0,
        latency_ms_median=percentile("latency", 50), latency_ms_p95=percentile("latency", 95),
        end_to_end_ms_median=percentile("end_to_end", 50), end_to_end_ms_p99=percentile("end_to_end", 99),
        frame_age_ms_median=percentile("age", 50), frame_age_ms_p99=percentile("age", 99),
        top_labels=label_counts.most_common(5), ended_by=ended_by,
        skipped_images=source.skipped if isinstance(source, ImageFolderSource) else 0,
    )
    print(summary.describe(), file=sys.stderr if config.jsonl == "-" else sys.stdout)
    return summary
