"""Drawing on frames: the classified region, the top labels, frames/s and latency."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np
from edgesight.runtime.classifier import Prediction

FONT = cv2.FONT_HERSHEY_SIMPLEX
GREEN, AMBER, WHITE, BLACK = (80, 220, 80), (0, 190, 255), (255, 255, 255), (0, 0, 0)


def _text(image: np.ndarray, text: str, origin: tuple[int, int], scale: float, color) -> None:
    # A dark outline keeps text readable on bright road scenes and sky.
    cv2.putText(image, text, origin, FONT, scale, BLACK, max(2, int(4 * scale)), cv2.LINE_AA)
    cv2.putText(image, text, origin, FONT, scale, color, max(1, int(1.6 * scale)), cv2.LINE_AA)


def _shade(canvas: np.ndarray, height: int, width: int) -> None:
    """Darken the top-left corner, where the status text sits, so it reads on bright sky as on dark trees."""
    corner = canvas[:height, :width]
    corner[:] = (corner * 0.45).astype(np.uint8)


def _tag(canvas: np.ndarray, text: str, box_x1: int, box_y1: int, scale: float, color) -> None:
    """A label on a filled tag of the box's colour, above the box, or inside its top edge when the box is at the top."""
    thickness = max(1, int(1.6 * scale))
    (text_width, text_height), baseline = cv2.getTextSize(text, FONT, scale, thickness)
    tag_height = text_height + baseline + 4
    top = box_y1 - tag_height if box_y1 >= tag_height else box_y1
    cv2.rectangle(canvas, (box_x1, top), (box_x1 + text_width + 4, top + tag_height), color, cv2.FILLED)
    cv2.putText(canvas, text, (box_x1 + 2, top + 2 + text_height), FONT, scale, BLACK, thickness, cv2.LINE_AA)


@dataclass(frozen=True)
class Speed:
    fps: float
    latency_ms: float  # locate and classify
    end_to_end_ms: float  # from capture to result

    def describe(self) -> str:
        return f"{self.fps:5.1f} fps  {self.latency_ms:5.2f} ms  capture-to-result {self.end_to_end_ms:5.1f} ms"


def draw_overlay(
    frame_bgr: np.ndarray,
    box_xyxy: Sequence[int],
    predictions: Sequence[Prediction],
    speed: Speed,
    min_score: float = 0.5,
) -> np.ndarray:
    """A copy of the frame with the region, its top-k labels and the speed drawn on it."""
    canvas = frame_bgr.copy()
    height, width = canvas.shape[:2]
    scale = max(0.5, height / 800)
    line_height = int(32 * scale)
    x1, y1, x2, y2 = (int(v) for v in box_xyxy)
    confident = bool(predictions) and predictions[0].score >= min_score
    cv2.rectangle(canvas, (x1, y1), (x2, y2), GREEN if confident else AMBER, max(2, int(3 * scale)))
    # The labels sit in a shaded panel at the top left, away from the region being classified.
    panel_height = line_height * (len(predictions) + 1) + line_height // 2
    panel_width = min(width, int(640 * scale))
    _shade(canvas, panel_height, panel_width)
    _text(canvas, speed.describe(), (8, line_height), scale * 0.9, WHITE)
    for rank, prediction in enumerate(predictions):
        color = (GREEN if confident else AMBER) if rank == 0 else WHITE
        _text(canvas, f"{prediction.score * 100:3.0f}%  {prediction.label}", (8, line_height * (rank + 2)),
              scale * (1.0 if rank == 0 else 0.85), color)
    return canvas


def draw_signs(frame_bgr: np.ndarray, signs: Sequence[tuple[Sequence[int], Prediction]], speed: Speed,
               region: tuple[int, int, int, int] | None = None) -> np.ndarray:
    """A copy of the frame with every located sign's box and label, the speed, and the searched region if not all of it
    (x1, y1, x2, y2, ends exclusive)."""
    canvas = frame_bgr.copy()
    height, width = canvas.shape[:2]
    scale = max(0.5, height / 800)
    line_height = int(32 * scale)
    if region is not None:
        cv2.rectangle(canvas, region[:2], (region[2] - 1, region[3] - 1), WHITE, 1)
    _shade(canvas, line_height + line_height // 3, min(width, int(1000 * scale)))  # first: signs up there stay bright
    for box, prediction in signs:
        x1, y1, x2, y2 = (int(v) for v in box)
        cv2.rectangle(canvas, (x1, y1), (x2, y2), GREEN, max(2, int(2 * scale)))
        _tag(canvas, f"{prediction.label} {prediction.score * 100:.0f}%", x1, y1, scale * 0.7, GREEN)
    _text(canvas, f"{speed.describe()}  {len(signs)} sign(s)", (8, line_height), scale * 0.9, WHITE)
    return canvas


def draw_source_state(last_annotated_bgr: np.ndarray, state: str) -> np.ndarray:
    """The last shown frame, dimmed, with the source's state across it: what a viewer sees while a camera is away."""
    canvas = (last_annotated_bgr * 0.4).astype(np.uint8)
    height = canvas.shape[0]
    scale = max(0.6, height / 600)
    _text(canvas, f"camera {state}...", (16, height // 2), scale, AMBER)
    return canvas
