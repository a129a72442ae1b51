"""Sign proposals in a full frame: where the classifier should look.

A sign covers 1–5% of a road scene, so classifying the frame as a whole means nothing. This
locator is the classical one: German signs are red or blue, strongly saturated, so colour
masks at half resolution give blobs, and blobs of sign-like size and shape become boxes. The
one yellow sign, priority road, gets its own locator (DiamondLocator), which boxes the
whole sign around a yellow diamond. The classifier then decides what each box holds (and the
detector drops what it doubts).
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import cv2
import numpy as np

Box = tuple[int, int, int, int]  # inclusive x1, y1, x2, y2 in the original frame
HsvRanges = list[tuple[tuple[int, int, int], tuple[int, int, int]]]  # inclusive (low, high) OpenCV HSV bounds


def box_size(box) -> int:
    """The longer side of an inclusive pixel box: what sign size bands are measured on."""
    return max(box[2] - box[0], box[3] - box[1]) + 1


def iou(a, b) -> float:
    """Intersection over union of two inclusive pixel boxes."""
    width = min(a[2], b[2]) - max(a[0], b[0]) + 1
    height = min(a[3], b[3]) - max(a[1], b[1]) + 1
    if width <= 0 or height <= 0:
        return 0.0
    inter = width * height
    return inter / ((a[2] - a[0] + 1) * (a[3] - a[1] + 1) + (b[2] - b[0] + 1) * (b[3] - b[1] + 1) - inter)


class ShrunkFrame:
    """A BGR frame and its downscaled copies (INTER_AREA, and their HSV tests), each made once however many locators ask.

    Locators take either a plain frame or one of these; the combined locator hands them one, which
    saves a resize of the full frame per extra locator (0.5 ms at 1360x800).
    """

    def __init__(self, frame_bgr: np.ndarray):
        self.full = frame_bgr
        self._copies: dict[int, np.ndarray] = {}
        self._hsv_planes: dict[int, tuple[np.ndarray, ...]] = {}
        self._plane_tests: dict[tuple[int, int, int, int], np.ndarray] = {}

    @classmethod
    def of(cls, frame) -> ShrunkFrame:
        return frame if isinstance(frame, ShrunkFrame) else cls(frame)

    def by(self, factor: int) -> np.ndarray:
        if factor not in self._copies:
            self._copies[factor] = self._shrink(factor)
        return self._copies[factor]

    def in_hsv_ranges(self, factor: int, ranges: HsvRanges) -> np.ndarray:
        """255 where the downscaled copy's OpenCV HSV lies in any of the inclusive `ranges`, else 0.

        The mask cv2.inRange gives on the HSV image, OR-ed over the ranges, but tested plane by plane: a test of one
        plane is made once per frame for every locator and range that asks for it (all three colours ask for value
        >= 41), and tests of one channel run several times faster than of three. The red, blue and yellow masks of a
        680x400 half frame, the same bit for bit: 0.40-0.57 against 1.3 ms (AMD EPYC, AVX2, 2026-12-07).
        """
        mask = None
        for low, high in ranges:
            in_range = cv2.bitwise_and(cv2.bitwise_and(self._plane_test(factor, 0, low[0], high[0]),
                                                       self._plane_test(factor, 1, low[1], high[1])),
                                       self._plane_test(factor, 2, low[2], high[2]))
            mask = in_range if mask is None else cv2.bitwise_or(mask, in_range)
        return mask

    def _planes(self, factor: int) -> tuple[np.ndarray, ...]:
        if factor not in self._hsv_planes:
            self._hsv_planes[factor] = tuple(cv2.split(cv2.cvtColor(self.by(factor), cv2.COLOR_BGR2HSV)))
        return self._hsv_planes[factor]

    def _plane_test(self, factor: int, channel: int, low: int, high: int) -> np.ndarray:
        key = (factor, channel, low, high)
        if key not in self._plane_tests:
            self._plane_tests[key] = cv2.inRange(self._planes(factor)[channel], low, high)
        return self._plane_tests[key]

    def _shrink(self, factor: int) -> np.ndarray:
        height, width = self.full.shape[:2]
        if factor == 2 and height % 2 == 0 and width % 2 == 0:
            # Halving even sides, bit-exact bilinear averages the same 2x2 blocks with the same rounding as INTER_AREA
            # (tests/test_runtime_signs.py checks it) in half the time: 0.3 against 0.6 ms for 1360x800.
            return cv2.resize(self.full, (width // 2, height // 2), interpolation=cv2.INTER_LINEAR_EXACT)
        if factor == 3:
            # OpenCV's INTER_AREA takes 2.6-3.2 ms for a third of 1360x800 (8 ms when the sides are not multiples of 3).
            # The half copy, which the colour locators share, shrunk bilinearly by 1.5 averages about the same 3x3
            # pixels of the frame into each one, in 0.3-0.5 ms (AMD EPYC, 2026-12-03).
            return cv2.resize(self.by(2), (max(1, width // 3), max(1, height // 3)), interpolation=cv2.INTER_LINEAR)
        return cv2.resize(self.full, (max(1, width // factor), max(1, height // factor)), interpolation=cv2.INTER_AREA)


# Inclusive OpenCV HSV ranges (hue 0-179) of the colours German signs are painted in. Red wraps
# around hue 0. OpenCV's tests make each mask several times faster than numpy comparisons (ShrunkFrame.in_hsv_ranges).
SIGN_COLOURS: dict[str, HsvRanges] = {
    "red": [((0, 61, 41), (9, 255, 255)), ((166, 61, 41), (179, 255, 255))],
    "blue": [((96, 91, 41), (129, 255, 255))],
}
# No yellow blob boxes: the one yellow German sign, "priority road", is a yellow diamond inside a white one, so a
# yellow blob's box never overlaps the sign's by IoU >= 0.5. On GTSDB scenes 00000-00099 a yellow mask proposed 20
# boxes a frame and found none of the 147 signs. Yellow blobs shaped like a diamond are boxed as the whole sign instead.
# Hue from GTSRB training images of priority road; saturation 90 chosen on scenes 00000-00099, where it kept 10 of
# their 19 priority-road signs at 1.9 proposals a frame (60: 9 at 3.0).
YELLOW_DIAMOND: HsvRanges = [((8, 90, 41), (35, 255, 255))]
DIAMOND_TO_SIGN = 2.1  # sign side over its yellow diamond's side: median over GTSRB training images of priority road


def _diamond_shaped(component: np.ndarray) -> bool:
    """Whether a blob (uint8 mask of its box) is a square standing on its tip: convex, and its tightest rectangle tilted 45°."""
    contours, _ = cv2.findContours(component, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    outline = max(contours, key=cv2.contourArea)
    area = cv2.contourArea(outline)
    (_, _), (side_a, side_b), angle = cv2.minAreaRect(outline)
    return (area >= 0.85 * cv2.contourArea(cv2.convexHull(outline))  # no notches: not foliage or a merged blob
            and abs(angle % 90 - 45) <= 15
            and component.sum() >= 0.75 * side_a * side_b)  # pixels, not outline area: small blobs stay countable


class Blob:
    """An 8-connected blob of a mask: its box in mask pixels, and on request its own pixels within that box."""

    def __init__(self, mask: np.ndarray, outline: np.ndarray):
        self._mask = mask
        self._start = outline[0, 0]  # a pixel of the blob, on its outline
        self.x, self.y, self.width, self.height = cv2.boundingRect(outline)

    @functools.cached_property
    def pixels(self) -> np.ndarray:
        """bool, height x width: the blob's pixels, not those of other blobs reaching into its box. Labelled within the
        box, which holds all of the blob."""
        _, labels = cv2.connectedComponents(self._mask[self.y : self.y + self.height, self.x : self.x + self.width],
                                            connectivity=8)
        return labels == labels[self._start[1] - self.y, self._start[0] - self.x]

    @property
    def area(self) -> int:
        return int(np.count_nonzero(self.pixels))


def blobs_of(mask: np.ndarray, min_side: int) -> list[Blob]:
    """The 8-connected blobs of a binary mask whose boxes have both sides at least `min_side` pixels, top to bottom: the
    blobs and boxes cv2.connectedComponentsWithStats gives, in less time on masks with few blobs.

    Labelling with stats adds every pixel, background included, to its label's statistics. Tracing outlines touches
    only the borders: each outer outline (RETR_CCOMP's top level) bounds one blob, and a closed chain of 8-neighbour
    steps spanning a box needs at least twice its longer side less two points, so specks are dropped by their outline's
    length alone. A blob's own pixels are labelled only when asked for (`Blob.pixels`), within its box. On the red and
    blue masks of GTSDB scenes 00100-00199 at half size: 0.32 against 0.56 ms and 0.13 against 0.52 ms (AMD EPYC,
    2026-12-06). Not on the yellow mask: its ~580 specks a frame take longer to trace than to label (0.67 against 0.64 ms).
    """
    contours, hierarchy = cv2.findContours(mask, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_NONE)
    if hierarchy is None:
        return []
    least_points = 2 * (min_side - 1)
    outlines = [outline for outline, parent in zip(contours, hierarchy[0, :, 3]) if parent < 0 and len(outline) >= least_points]
    blobs = [blob for blob in map(functools.partial(Blob, mask), outlines) if min(blob.width, blob.height) >= min_side]
    return sorted(blobs, key=lambda blob: (blob.y, blob.x))


@dataclass(frozen=True)
class _SignSizes:
    """Where the colour locators search, and the sizes of sign they box."""

    scale: int = 2  # search at 1/scale resolution: a 24 px sign is still 12 px there
    min_side: int = 16  # in original pixels
    max_side_fraction: float = 0.8  # of the frame's shorter side: a sign held up to the camera fills much of it


@dataclass(frozen=True)
class ColourLocator(_SignSizes):
    max_aspect: float = 2.0  # longer side over shorter side of a blob's box
    min_fill: float = 0.1  # blob pixels over box area: rings and outlines are thin

    def propose(self, frame: np.ndarray | ShrunkFrame) -> list[Box]:
        """Candidate sign boxes in a BGR frame, in no particular order; overlapping ones are left to the detector's suppression."""
        frame = ShrunkFrame.of(frame)
        height, width = frame.full.shape[:2]
        closing = np.ones((3, 3), np.uint8)  # joins a ring broken by a pixel or two
        max_side = self.max_side_fraction * min(height, width)
        boxes = []
        for ranges in SIGN_COLOURS.values():
            closed = cv2.morphologyEx(frame.in_hsv_ranges(self.scale, ranges), cv2.MORPH_CLOSE, closing)
            for blob in blobs_of(closed, math.floor(self.min_side / self.scale)):
                bx, by, bw, bh = blob.x, blob.y, blob.width, blob.height
                short, long = min(bw, bh), max(bw, bh)
                if (short * self.scale >= self.min_side and long * self.scale <= max_side and long <= self.max_aspect * short
                        and blob.area >= self.min_fill * bw * bh):
                    boxes.append((bx * self.scale, by * self.scale,
                                  min(width, (bx + bw) * self.scale) - 1, min(height, (by + bh) * self.scale) - 1))
        return boxes


@dataclass(frozen=True)
class DiamondLocator(_SignSizes):
    """Priority-road signs, which no red or blue mask finds: yellow blobs shaped like a diamond, boxed as the whole sign.

    One of the default locators since 2026-12-03: on GTSDB scenes 00100-00199 it added 5 signs of 126 (all priority
    roads) and 0.02 false detections per frame to the colour and learned locators, for 7-11% more time per frame
    (docs/ROAD_SCENES.md, "Priority road from its shape").
    """

    def propose(self, frame: np.ndarray | ShrunkFrame) -> list[Box]:
        frame = ShrunkFrame.of(frame)
        height, width = frame.full.shape[:2]
        max_side = self.max_side_fraction * min(height, width)
        # No closing: it would join the diamond to yellow around it across the thin white rim.
        mask = frame.in_hsv_ranges(self.scale, YELLOW_DIAMOND)
        count, labels, stats, _ = cv2.connectedComponentsWithStatsWithAlgorithm(mask, 8, cv2.CV_32S, cv2.CCL_BBDT)
        x, y, w, h, area = stats[1:count].T
        short, long = np.minimum(w, h), np.maximum(w, h)
        to_sign = self.scale * DIAMOND_TO_SIGN
        # A diamond fills half its box; a blob of a few pixels is blockier.
        most_fill = np.where(long <= 6, 0.8, 0.7)
        near_square_diamond = ((short * to_sign >= self.min_side) & (long * to_sign <= max_side) & (long <= 1.4 * short)
                               & (area >= 0.35 * w * h) & (area <= most_fill * w * h))
        # A diamond holds its box's centre and none of its corners: four lookups each, before any outline is traced.
        ids = np.arange(1, count)
        right, bottom = x + w - 1, y + h - 1
        near_square_diamond &= labels[y + h // 2, x + w // 2] == ids
        for corner_y, corner_x in ((y, x), (y, right), (bottom, x), (bottom, right)):
            near_square_diamond &= labels[corner_y, corner_x] != ids
        boxes = []
        for label in np.flatnonzero(near_square_diamond) + 1:
            bx, by, bw, bh = stats[label, :4].tolist()
            if not _diamond_shaped((labels[by : by + bh, bx : bx + bw] == label).astype(np.uint8)):
                continue
            centre_x, centre_y = (bx + bw / 2) * self.scale, (by + bh / 2) * self.scale
            half = max(bw, bh) * to_sign / 2
            boxes.append((max(0, round(centre_x - half)), max(0, round(centre_y - half)),
                          min(width, round(centre_x + half)) - 1, min(height, round(centre_y + half)) - 1))
        return boxes
