"""Signs in a full frame: locate candidate boxes, classify them all in one batch, keep the confident, suppress overlaps."""
from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from .classifier import Classifier, Prediction
from .locate import Box, ColourLocator


@dataclass(frozen=True)
class FoundSign:
    box: Box
    prediction: Prediction


@dataclass
class SignFinder:
    classifier: Classifier
    locator: ColourLocator = field(default_factory=ColourLocator)
    min_score: float = 0.5  # a box whose best class scores less is taken for background
    overlap: float = 0.3  # suppress a box overlapping a better one by more than this IoU

    def find(self, frame_bgr: np.ndarray) -> list[FoundSign]:
        """The signs in a BGR frame, best score first."""
        boxes = self.locator.propose(frame_bgr)
        if not boxes:
            return []
        best = [predictions[0] for predictions in self.classifier.classify_boxes(frame_bgr, boxes)]
        kept = [(box, prediction) for box, prediction in zip(boxes, best) if prediction.score >= self.min_score]
        if not kept:
            return []
        corner_and_size = [[x1, y1, x2 - x1 + 1, y2 - y1 + 1] for (x1, y1, x2, y2), _ in kept]
        scores = [prediction.score for _, prediction in kept]
        chosen = cv2.dnn.NMSBoxes(corner_and_size, scores, self.min_score, self.overlap)
        return [FoundSign(*kept[index]) for index in np.asarray(chosen, dtype=int).reshape(-1)]
