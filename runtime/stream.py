"""`stream(model, source)`: the live loop as a Python iterator, for robots and other programs.

    from edgesight.runtime.stream import stream
    for result in stream("gtsrb", "0"):            # camera 0, the shipped GTSRB int8 model
        for box, predictions in result.detections:
            print(result.frame.index, box, predictions[0].label, predictions[0].score)

Each result is one classified frame, or, for a camera or stream, a change of its state
("reconnecting", "connected") while no frame comes: `result.frame` is None then. Frames are
classified as fresh as the source gives them: a live source keeps only its newest frame, so a
slow consumer skips frames instead of falling behind. The iterator releases the source when it
ends or is closed (leaving a `for` loop early closes it).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Iterator, Sequence

from .camera import CameraSettings
from .classifier import Classifier, Prediction
from .errors import SourceError
from .learned_locate import COLOUR, COLOUR_GATE, DIAMONDS, check_colour_gate, open_locator
from .locate import Box
from .preprocess import center_box, full_box
from .roi import RegionOfInterest, as_searched, check_search_width
from .signs import SCREEN_THRESHOLD, SignFinder, open_screen
from .sources import LOST, Frame, ImageFolderSource, LiveSource, open_source
from .tracking import SignTracker

REGION_MODES = ("center", "full")
# Red and blue blobs, yellow diamonds and the shipped learned locator: each finds signs the others miss. The diamonds
# cost about a tenth of a frame's time and find priority-road signs, which the other two mostly miss (docs/ROAD_SCENES.md,
# "Priority road from its shape": the decision of 2026-12-03).
DEFAULT_LOCATORS = (COLOUR, DIAMONDS, "sign-locator")
LOCATOR_HELP = ("where to look for signs: colour (red and blue blobs), diamonds (yellow diamonds: priority road), "
                "sign-locator (the shipped learned locator, int8; sign-locator-fp32 is its float original) or a locator file from train-locator and export; several are "
                "combined (their proposals are classified, colour boxes after --colour-gate)")
COLOUR_GATE_HELP = ("with colour and a learned locator combined: classify a colour box only if the learned locator scores a "
                    "sign centre under its middle half at least this high (0: classify every colour box)")
SCREEN_HELP = ("with signs located: a smaller sign model with the same classes that reads every located box first and "
               "drops those it takes for 'not a sign' (most are): auto, the shipped gtsrb-screen in front of gtsrb-locate "
               "(none for other models); none; or a model file")
SCREEN_THRESHOLD_HELP = "the screen's 'not a sign' probability at which a box goes no further"
# How long a live source is waited on before a result reports that it is still away.
POLL_S = 0.5


@dataclass(frozen=True)
class StreamResult:
    frame: Frame | None  # None: a state change of the source, no frame
    detections: list[tuple[Box, list[Prediction]]]  # each box with its top-k classes, best first
    source_state: str  # "connected", "reconnecting"; "file" for files and folders
    latency_ms: float = 0.0  # locate and classify
    frame_age_ms: float = 0.0  # from capture to the start of classification: time spent waiting
    end_to_end_ms: float = 0.0  # from capture to this result


@dataclass(frozen=True)
class StreamOptions:
    region: str = "center"  # center: the box in the middle of the frame; full: the whole frame
    box_fraction: float = 0.4  # side of the centre box over the frame's shorter side
    locate: bool = False  # find and classify every sign instead of one region
    locator: Sequence[str] = DEFAULT_LOCATORS  # with locate: colour, diamonds, sign-locator, locator files; several are combined
    colour_gate: float = COLOUR_GATE  # see learned_locate.CombinedLocator
    screen: str = "auto"  # with locate: see signs.open_screen
    screen_threshold: float = SCREEN_THRESHOLD
    roi: str | None = None  # with locate: search only there, see roi.RegionOfInterest
    search_width: int | None = None  # with locate: search frames wider than this shrunk to it, see roi.NarrowedLocator
    top_k: int = 3
    max_fps: float | None = None  # classify at most this many frames per second (a robot's CPU budget)

    def check(self) -> None:
        if self.region not in REGION_MODES:
            raise ValueError(f"region must be one of {REGION_MODES}. Received: region={self.region!r}")
        if not 0.05 <= self.box_fraction <= 1.0:
            raise ValueError(f"box_fraction must be in [0.05, 1]. Received: box_fraction={self.box_fraction}")
        check_colour_gate(self.colour_gate)
        if self.roi is not None:
            if not self.locate:
                raise ValueError(f"roi limits where signs are located, and signs are not located here (the region read is "
                                 f"region={self.region!r}). Received: roi={self.roi!r}")
            RegionOfInterest.parse(self.roi)
        if self.search_width is not None and not self.locate:
            raise ValueError(f"search_width sets the size signs are located at, and signs are not located here (the region "
                             f"read is region={self.region!r}). Received: search_width={self.search_width}")
        check_search_width(self.search_width)
        if self.top_k < 1:
            raise ValueError(f"top_k must be >= 1. Received: top_k={self.top_k}")
        if self.max_fps is not None and self.max_fps <= 0:
            raise ValueError(f"max_fps must be > 0 or left out. Received: max_fps={self.max_fps}")


def frames_with_states(source) -> Iterator[Frame | str]:
    """The source's frames; for a live source also its new state whenever it changes while no frame comes."""
    if not isinstance(source, LiveSource):
        yield from source
        return
    state = source.state
    while True:
        try:
            frame = source.poll(POLL_S)
        except EOFError:
            return
        except SourceError:
            if source.state == LOST:
                yield LOST  # reported before the error ends the stream
            raise
        if source.state != state:
            state = source.state
            yield state
        if frame is not None:
            yield frame


class Recognizer:
    """What one frame is turned into: the centre region's classes, or every located sign (tracked over video)."""

    def __init__(self, classifier: Classifier, options: StreamOptions, threads: int | None, track: bool):
        self.classifier, self.options = classifier, options
        self.finder = None
        if options.locate:
            locator = as_searched(open_locator(list(options.locator), threads, colour_gate=options.colour_gate), options.roi,
                                  options.search_width)
            self.finder = SignFinder(classifier, locator=locator, screen=open_screen(options.screen, classifier, threads),
                                     screen_threshold=options.screen_threshold)
        self.tracker = SignTracker() if self.finder and track else None

    def __call__(self, frame_bgr) -> list[tuple[Box, list[Prediction]]]:
        if self.finder:
            found = self.finder.find(frame_bgr)
            signs = [sign for _, sign in self.tracker.update(found)] if self.tracker else found
            return [(sign.box, [sign.prediction]) for sign in signs]
        shape = frame_bgr.shape
        box = center_box(shape, self.options.box_fraction) if self.options.region == "center" else full_box(shape)
        return [(box, self.classifier.classify_boxes(frame_bgr, [box], self.options.top_k)[0])]


def classify_frames(source, recognize: Recognizer, max_fps: float | None = None) -> Iterator[StreamResult]:
    """Results for an open source's frames and state changes (the source stays the caller's to close)."""
    live = isinstance(source, LiveSource)
    next_slot = 0.0
    for item in frames_with_states(source):
        if isinstance(item, str):
            yield StreamResult(None, [], item)
            continue
        if max_fps:
            now = time.monotonic()
            if now < next_slot:
                continue  # a live source drops it anyway; a file's frame is skipped to keep the pace
            next_slot = max(now, next_slot) + 1.0 / max_fps
        started = time.monotonic()
        detections = recognize(item.image_bgr)
        done = time.monotonic()
        yield StreamResult(item, detections, source.state if live else "file", latency_ms=(done - started) * 1000,
                           frame_age_ms=(started - item.captured) * 1000, end_to_end_ms=(done - item.captured) * 1000)


def stream(model: str | Classifier, source, options: StreamOptions | None = None, threads: int | None = None,
           lost_after_s: float = 30.0, skip_bad_images: bool = False,
           camera: CameraSettings | None = None) -> Iterator[StreamResult]:
    """Classify a camera, stream, video file, image folder or glob, result by result (see the module docstring).

    `skip_bad_images`: an image folder's files that do not decode are reported on stderr and passed over instead of
    ending the stream with an error. `camera`: the frame size and rate a camera is asked for, such as
    `CameraSettings(1280, 720, 30.0)` (what it gives instead is reported on stderr).

    Raises:
        ModelFileError, SourceError: the model or source cannot be used, or a live source is lost.
    """
    options = options or StreamOptions()
    options.check()
    classifier = model if isinstance(model, Classifier) else Classifier(model, threads=threads)
    with open_source(source, lost_after_s=lost_after_s, skip_bad_images=skip_bad_images, camera=camera) as opened:
        # Images of a folder are unrelated to each other: nothing to confirm over time there.
        recognize = Recognizer(classifier, options, threads, track=not isinstance(opened, ImageFolderSource))
        yield from classify_frames(opened, recognize, options.max_fps)
