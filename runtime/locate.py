"""Sign proposals in a full frame: where the classifier should look.

A sign covers 1–5% of a road scene, so classifying the frame as a whole means nothing. This
locator is the classical one: German signs are red, blue or yellow, strongly saturated, so colour
masks at half resolution give blobs, and blobs of sign-like size and shape become boxes. The
classifier then decides what each box holds (and the detector drops what it doubts).
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

Box = tuple[int, int, int, int]  # inclusive x1, y1, x2, y2 in the original frame


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


@dataclass(frozen=True)
class ColourLocator:
    scale: int = 2  # search at 1/scale resolution: a 24 px sign is still 12 px there
    min_side: int = 16  # in original pixels
    max_side_fraction: float = 0.8  # of the frame's shorter side: a sign held up to the camera fills much of it
    max_aspect: float = 2.0  # longer side over shorter side of a blob's box
    min_fill: float = 0.1  # blob pixels over box area: rings and outlines are thin

    def _masks(self, small_bgr: np.ndarray) -> list[np.ndarray]:
        hue, saturation, value = cv2.split(cv2.cvtColor(small_bgr, cv2.COLOR_BGR2HSV))
        red = ((hue < 10) | (hue > 165)) & (saturation > 60) & (value > 40)
        blue = (hue > 95) & (hue < 130) & (saturation > 90) & (value > 40)
        yellow = (hue > 15) & (hue < 35) & (saturation > 100) & (value > 100)
        return [mask.astype(np.uint8) * 255 for mask in (red, blue, yellow)]

    def propose(self, frame_bgr: np.ndarray) -> list[Box]:
        """Candidate sign boxes, in no particular order; overlapping ones are left to the detector's suppression."""
        height, width = frame_bgr.shape[:2]
        small = cv2.resize(frame_bgr, (width // self.scale, height // self.scale), interpolation=cv2.INTER_AREA)
        closing = np.ones((3, 3), np.uint8)  # joins a ring broken by a pixel or two
        max_side = self.max_side_fraction * min(height, width)
        boxes = []
        for mask in self._masks(small):
            closed = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, closing)
            count, _, stats, _ = cv2.connectedComponentsWithStats(closed)
            for x, y, w, h, area in stats[1:count]:
                side_min, side_max = min(w, h) * self.scale, max(w, h) * self.scale
                if side_min < self.min_side or side_max > max_side or max(w, h) > self.max_aspect * min(w, h):
                    continue
                if area < self.min_fill * w * h:
                    continue
                boxes.append((int(x * self.scale), int(y * self.scale),
                              int(min(width, (x + w) * self.scale) - 1), int(min(height, (y + h) * self.scale) - 1)))
        return boxes
