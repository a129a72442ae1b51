"""Where and at what size the locators search each frame: a region of interest, and a width for larger cameras.

A car's forward camera sees no sign in the rows of its bonnet and the road just ahead; skipping them cuts every
locator's time in proportion (docs/ROAD_SCENES.md, "A region of interest"). A camera of more pixels than GTSDB's shows
signs larger than the learned locator learnt them, at a cost that follows the frame's area; shrunk to a search width,
its frames are searched as GTSDB's are. Only the search is changed: each box is still read from the whole frame, at
full detail, with the margin around it the model expects.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from .locate import Box, ShrunkFrame

ROI_HELP = ("search for signs only within LEFT,TOP,RIGHT,BOTTOM, fractions of the frame's width and height (for a car's "
            "forward camera 0,0.1,1,0.8 skips the bonnet and the road ahead); default: the whole frame")
# The region's corner is moved out to a multiple of this many frame pixels, so that the locators' shrunk copies and the
# learned locator's cells line up with the whole frame's: halved by 2, then cells of 4 (or an hourglass's 8) pixels.
# Away from the region's edges the proposals are then those the whole frame gives.
ALIGN = 16
MIN_SIDE = 64  # pixels; a learned locator needs a few cells of context each way


@dataclass(frozen=True)
class RegionOfInterest:
    """Left, top, right and bottom edges as fractions of the frame's width and height."""

    left: float
    top: float
    right: float
    bottom: float

    @classmethod
    def parse(cls, text: str) -> RegionOfInterest:
        """From "LEFT,TOP,RIGHT,BOTTOM", as --roi takes it."""
        parts = text.split(",")
        try:
            values = [float(part) for part in parts]
        except ValueError:
            values = []
        if len(values) != 4 or not (0.0 <= values[0] < values[2] <= 1.0 and 0.0 <= values[1] < values[3] <= 1.0):
            raise ValueError("roi must be LEFT,TOP,RIGHT,BOTTOM: four fractions of the frame's width and height with "
                             f"0 <= left < right <= 1 and 0 <= top < bottom <= 1, such as 0,0.1,1,0.8. Received: roi={text!r}")
        return cls(*values)

    def pixels(self, frame_shape: tuple[int, ...]) -> tuple[int, int, int, int]:
        """x1, y1, x2, y2 (ends exclusive) of the region in a frame of this shape: corner aligned, at least MIN_SIDE."""
        height, width = frame_shape[:2]
        x1, y1 = int(self.left * width) // ALIGN * ALIGN, int(self.top * height) // ALIGN * ALIGN
        x2, y2 = min(width, math.ceil(self.right * width)), min(height, math.ceil(self.bottom * height))
        if min(x2 - x1, y2 - y1) < MIN_SIDE:
            raise ValueError(f"roi {self.left},{self.top},{self.right},{self.bottom} is {x2 - x1}x{y2 - y1} pixels of a "
                             f"{width}x{height} frame; expected at least {MIN_SIDE} pixels each way.")
        return x1, y1, x2, y2

    def holds(self, box: Box, frame_shape: tuple[int, ...]) -> bool:
        """Whether an inclusive pixel box lies wholly inside the region of a frame of this shape."""
        x1, y1, x2, y2 = self.pixels(frame_shape)
        return x1 <= box[0] and y1 <= box[1] and box[2] < x2 and box[3] < y2


@dataclass(frozen=True)
class RegionLocator:
    """A locator that searches only the region of interest; its boxes are in whole-frame pixels.

    Locators judge a sign's largest size against the frame they are given, here the region.
    """

    locator: object  # anything with propose(frame) -> boxes
    region: RegionOfInterest

    def propose(self, frame: np.ndarray | ShrunkFrame) -> list[Box]:
        frame_bgr = frame.full if isinstance(frame, ShrunkFrame) else frame
        x1, y1, x2, y2 = self.region.pixels(frame_bgr.shape)
        return in_frame(self.locator.propose(frame_bgr[y1:y2, x1:x2]), x1, y1)


def in_frame(boxes: list[Box], x1: int, y1: int) -> list[Box]:
    """Boxes found in a region whose top-left corner is frame pixel (x1, y1), in frame pixels."""
    return [(left + x1, top + y1, right + x1, bottom + y1) for left, top, right, bottom in boxes]


LEARNT_WIDTH = 1360  # GTSDB's frame width: the scale of frame the learned locator learnt signs at
SEARCH_WIDTH_HELP = ("with signs located: frames wider than this many pixels are shrunk to it for the locators, and the "
                     f"signs they find are read from the full frame ({LEARNT_WIDTH}, GTSDB's width, searches an HD camera's frames "
                     "at the scale the learned locator learnt, in half the time, losing some of the smallest signs); "
                     "default: frames as they come")
MIN_SEARCH_WIDTH = 320


def search_width_hint(frame_shape: tuple[int, ...], search_width: int | None, latency_ms: float) -> str | None:
    """What to say once when signs are located in frames over twice the learnt width, searched whole (a 4K camera's
    frames took about 119 ms each on the AVX2-only AMD EPYC): the option that searches them at the learnt scale."""
    height, width = frame_shape[:2]
    if search_width is not None or width <= 2 * LEARNT_WIDTH:
        return None
    return (f"{width}x{height} frames are searched for signs whole ({latency_ms:.0f} ms this frame); --search-width "
            f"{LEARNT_WIDTH} searches them at the scale the learned locator learnt, in a fraction of the time, losing "
            "some of the smallest signs")


def check_search_width(search_width: int | None) -> None:
    if search_width is not None and search_width < MIN_SEARCH_WIDTH:
        raise ValueError(f"search_width must be at least {MIN_SEARCH_WIDTH} pixels or left out. Received: search_width={search_width}")


@dataclass(frozen=True)
class NarrowedLocator:
    """A locator that searches frames wider than `width` shrunk to that width; its boxes are in whole-frame pixels."""

    locator: object  # anything with propose(frame) -> boxes
    width: int

    def propose(self, frame: np.ndarray | ShrunkFrame) -> list[Box]:
        frame_bgr = frame.full if isinstance(frame, ShrunkFrame) else frame
        height, width = frame_bgr.shape[:2]
        if width <= self.width:
            return self.locator.propose(frame)
        scale = width / self.width
        # Bilinear, not area: OpenCV's area resize took 14.8 ms for 1920x1080 to 1360 wide, bilinear 2.1 ms (AMD EPYC,
        # 2026-12-07); the locators then average it down by 2 themselves.
        narrow = cv2.resize(frame_bgr, (self.width, max(1, round(height / scale))), interpolation=cv2.INTER_LINEAR)
        return [(max(0, math.floor(x1 * scale)), max(0, math.floor(y1 * scale)),
                 min(width - 1, math.ceil((x2 + 1) * scale) - 1), min(height - 1, math.ceil((y2 + 1) * scale) - 1))
                for x1, y1, x2, y2 in self.locator.propose(narrow)]


def as_searched(locator, roi: str | None, search_width: int | None = None):
    """The locator restricted to --roi and shrunk to --search-width, or as it is without them. The region's fractions
    are taken of the shrunk frame, so they mean what they mean on the whole one."""
    if roi is not None:
        locator = RegionLocator(locator, RegionOfInterest.parse(roi))
    check_search_width(search_width)
    return locator if search_width is None else NarrowedLocator(locator, search_width)
