"""Signs in a full frame: locate candidate boxes, classify them all in one batch, keep the confident, suppress overlaps."""
from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from .classifier import Classifier, Prediction
from .locate import Box, ColourLocator
from .preprocess import crop_regions
from .shipped import shipped_model_path
from .tasks import NOT_A_SIGN

# A located box whose best class scores less is taken for background. Chosen on GTSDB scenes 00000-00099
# with gtsrb-locate and the default locators (the width-40 learned one then): 0.9 against 0.5 cut false
# detections from 0.16 to 0.07 per frame for 2 points of recall (89.8% -> 87.8%). Held-out scenes
# 00100-00199 agreed (0.31 -> 0.14, 84.1% -> 83.3%), and with the width-48 locator: 0.37 -> 0.12 at 84.9%.
SIGN_MIN_SCORE = 0.9
# A screen's "not a sign" probability at which a box goes no further. Chosen on GTSDB scenes 00000-00099 with the
# shipped gtsrb-screen in front of gtsrb-locate as the lowest of 0.5, 0.9, 0.99 and 0.999 that lost no sign there: all
# four found the same 135 of 147, with 0.06-0.10 false detections per frame against 0.11, in 0.94-1.03x the time.
# Held out (00100-00199): the same 115 of 126 signs, 0.05 false detections per frame against 0.06, 0.94x the time
# (benchmarks/results/2026-12-07-screen/).
SCREEN_THRESHOLD = 0.5
SHIPPED_SCREEN = "gtsrb-screen"


@dataclass(frozen=True)
class FoundSign:
    box: Box
    prediction: Prediction


@dataclass
class SignFinder:
    """Signs in a frame: the locator's boxes, each read by the classifier, the confident ones kept.

    With a `screen`, a smaller sign model with the same classes reads every box first, and a box it takes for "not a
    sign" with at least `screen_threshold` goes no further: most located boxes are no sign, and the screen costs a
    fraction of the classifier.
    """

    classifier: Classifier
    locator: object = field(default_factory=ColourLocator)  # anything with propose(frame_bgr) -> boxes
    min_score: float = SIGN_MIN_SCORE
    overlap: float = 0.3  # suppress a box overlapping a better one by more than this IoU
    screen: Classifier | None = None
    screen_threshold: float = SCREEN_THRESHOLD

    def __post_init__(self) -> None:
        if self.screen is not None and (self.screen.labels != self.classifier.labels or NOT_A_SIGN not in self.screen.labels):
            raise ValueError(f"{self.screen.path}: a screen must have the sign model's classes, {NOT_A_SIGN!r} among them. "
                             f"Received: {len(self.screen.labels)} classes for the screen, {len(self.classifier.labels)} for "
                             f"the model ({self.classifier.path})")
        if not 0.0 < self.screen_threshold <= 1.0:
            raise ValueError(f"screen_threshold must be in (0, 1]. Received: screen_threshold={self.screen_threshold}")

    def find(self, frame_bgr: np.ndarray) -> list[FoundSign]:
        """The signs in a BGR frame, best score first."""
        return self.select(self.candidates(frame_bgr), self.min_score)

    def candidates(self, frame_bgr: np.ndarray) -> list[FoundSign]:
        """Every located box the screen (if any) passes, with its best class, before any is dropped."""
        boxes = self.locator.propose(frame_bgr)
        if boxes and self.screen is not None:
            boxes = self.screened(frame_bgr, boxes)
        if not boxes:
            return []
        return [FoundSign(box, predictions[0]) for box, predictions in zip(boxes, self.classifier.classify_boxes(frame_bgr, boxes))]

    def screened(self, frame_bgr: np.ndarray, boxes: list[Box]) -> list[Box]:
        """The boxes the screen does not take for "not a sign" with at least the threshold, in their order."""
        not_a_sign = self.screen.probabilities(crop_regions(frame_bgr, self.screen.spec, boxes))[:, self.screen.labels.index(NOT_A_SIGN)]
        return [box for box, background in zip(boxes, not_a_sign) if background < self.screen_threshold]

    def select(self, candidates: list[FoundSign], min_score: float) -> list[FoundSign]:
        """The candidates read as a sign with at least `min_score`, overlaps suppressed, best score first."""
        kept = [sign for sign in candidates if sign.prediction.score >= min_score and sign.prediction.label != NOT_A_SIGN]
        if not kept:
            return []
        corner_and_size = [[x1, y1, x2 - x1 + 1, y2 - y1 + 1] for x1, y1, x2, y2 in (sign.box for sign in kept)]
        chosen = cv2.dnn.NMSBoxes(corner_and_size, [sign.prediction.score for sign in kept], min_score, self.overlap)
        return [kept[index] for index in np.asarray(chosen, dtype=int).reshape(-1)]


def open_screen(screen: str, classifier: Classifier, threads: int | None = 1) -> Classifier | None:
    """The screen for --screen: "auto" is the shipped gtsrb-screen when its classes are the sign model's (gtsrb-locate's)
    and none otherwise, "none" is none, anything else a model file or shipped name (SignFinder checks its classes)."""
    if screen == "none":
        return None
    if screen == "auto":
        if NOT_A_SIGN not in classifier.labels or shipped_model_path(SHIPPED_SCREEN) is None:
            return None
        shipped = Classifier(SHIPPED_SCREEN, threads=threads, max_batch=256)
        return shipped if shipped.labels == classifier.labels else None
    return Classifier(screen, threads=threads, max_batch=256)
