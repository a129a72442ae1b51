"""A learned sign locator: a small fully convolutional network marks sign centres and sizes.

The colour locator misses signs that give no clean colour blob: backlit, pale, washed-out or
touching a neighbour. This one is trained (`edgesight train-locator`) on road scenes and on GTSRB
signs pasted into them. Like CenterNet, it predicts on a grid of cells (one cell = `stride` pixels
of the frame scaled down by `downscale`): per cell, how likely a sign's centre lies there, the centre's
offset within the cell, and the log of the sign's width and height. Each local maximum above a
threshold becomes a box; the classifier then decides what the box holds.

The locator file follows the model-file contract's conventions (ONNX, metadata_props values JSON,
input NHWC RGB uint8) with its own keys, since it has no classes:

    edgesight.format   1
    edgesight.task     "sign-locator"
    edgesight.locator  {"downscale": 2, "stride": 4,
                        "outputs": ["centre_logit", "offset_x", "offset_y", "log_width", "log_height"],
                        "min_score": 0.2,   (optional: the centre score chosen on validation scenes)
                        "input_multiple": 8}   (optional, default the stride: what the shrunk frame's sides
                                                must be multiples of, for a network that steps down further
                                                than its output grid, such as the hourglass locator)
                        "max_peaks": 40}   (optional: the file has peak outputs, below)
    edgesight.input    {"name", "height": null, "width": null, "channels": 3, "layout": "NHWC",
                        "color": "RGB", "dtype": "uint8"}   (any frame size)
    edgesight.metrics, edgesight.provenance   as for a classifier

For an input of H×W (after downscaling), both multiples of the input multiple (`network_input` cuts the shrunk
frame to that), and R×C = H/stride × W/stride cells, the output is either
- dense: one float32 tensor [batch, R, C, 5], the five `outputs` at every cell (files exported before 2026-12-07, and
  any without `max_peaks`); or
- with `max_peaks` P, four tensors, the box channels computed only at the best P peaks (export/peak_boxes.py):
  `centre_logit` float32 [batch, R, C, 1]; `peak_logit` float32 [batch, P'] and `peak_cell` int64 [batch, P'], the
  peaks' logits and row-major cell indices, best first (P' = min(P, R×C); cells past the frame's peaks score
  NOT_A_PEAK); `peak_box` float32 [batch, P', 4], the last four `outputs` at those cells.
"""
from __future__ import annotations

import json
import os
import weakref
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .errors import ModelFileError
from .locate import Box, ColourLocator, DiamondLocator, ShrunkFrame
from .sessions import open_session
from .shipped import resolve_model

LOCATOR_TASK = "sign-locator"
LOCATOR_KEY = "edgesight.locator"
LOCATOR_OUTPUTS = ("centre_logit", "offset_x", "offset_y", "log_width", "log_height")
DEFAULT_MIN_SCORE = 0.1  # for a locator file that names no operating point
# Proposals kept per frame at most: the classifier reads every one, so this bounds its cost.
MAX_BOXES = 40
PEAK_OUTPUTS = ("centre_logit", "peak_logit", "peak_cell", "peak_box")
NOT_A_PEAK = -1e30  # the logit a file's peak outputs give cells past its peaks: below any min_score


@dataclass(frozen=True)
class LocatorGeometry:
    """How the locator's grid maps onto the frame; training writes targets with the same numbers."""

    downscale: int = 2  # the frame is shrunk by this before the network: a 24 px sign is 12 px there
    stride: int = 4  # pixels of the shrunk frame per output cell
    # The shrunk frame's sides must be multiples of this (None: of the stride). An hourglass network steps down to twice
    # its output stride and back up, and its graph's padding and skip connection hold only for multiples of that.
    input_multiple: int | None = None

    @property
    def side_multiple(self) -> int:
        return self.input_multiple or self.stride

    def cut(self, side: int) -> int:
        """A shrunk frame's side as the network takes it: down to the input multiple, at least one multiple."""
        return max(self.side_multiple, side // self.side_multiple * self.side_multiple)

    def to_json(self) -> dict:
        values = {"downscale": self.downscale, "stride": self.stride, "outputs": list(LOCATOR_OUTPUTS)}
        return values | ({"input_multiple": self.input_multiple} if self.input_multiple else {})


def read_locator_metadata(props: dict[str, str], source: str) -> LocatorGeometry:
    """The geometry a locator file declares, or an error naming the file and the field."""
    if LOCATOR_KEY not in props:
        raise ModelFileError(f"{source}: not an edgesight sign locator: metadata lacks {LOCATOR_KEY} "
                             "(a classifier file goes to --model, a locator file to --locator).")
    try:
        values = json.loads(props[LOCATOR_KEY])
        multiple = values.get("input_multiple")
        geometry = LocatorGeometry(downscale=int(values["downscale"]), stride=int(values["stride"]),
                                   input_multiple=None if multiple is None else int(multiple))
        outputs = tuple(values["outputs"])
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as error:
        raise ModelFileError(f"{source}: metadata field {LOCATOR_KEY} must be JSON with downscale, stride and outputs "
                             f"({error}). Received: {props[LOCATOR_KEY][:80]!r}") from None
    if (outputs != LOCATOR_OUTPUTS or geometry.downscale < 1 or geometry.stride < 1
            or geometry.side_multiple % geometry.stride):
        raise ModelFileError(f"{source}: {LOCATOR_KEY} must declare outputs {list(LOCATOR_OUTPUTS)}, positive downscale "
                             f"and stride, and an input_multiple (if any) that is a multiple of the stride. Received: {values!r}")
    return geometry


@dataclass(frozen=True)
class LocatorOutput:
    """One frame's locator output: every cell's centre logit, and the best local maxima of those logits (a cell no
    neighbour in its 3x3 window outscores, the usual CenterNet peak test, which stands in for suppression here) with
    their box channels, best first (ties in row-major order)."""

    centre_logits: np.ndarray  # [rows, columns]
    peak_logits: np.ndarray  # [peaks]; a file's peak outputs end in cells scored NOT_A_PEAK when it found fewer
    peak_cells: np.ndarray  # [peaks] row-major cell indices
    peak_boxes: np.ndarray  # [peaks, 4]: offset_x, offset_y, log_width, log_height

    @classmethod
    def of_grid(cls, grid: np.ndarray, max_peaks: int = MAX_BOXES) -> LocatorOutput:
        """From a dense [rows, columns, 5] grid: a Keras model's, or a locator file's without peak outputs."""
        logits = np.ascontiguousarray(grid[..., 0])
        cells = np.flatnonzero(logits == cv2.dilate(logits, np.ones((3, 3), np.uint8)))
        cells = cells[np.argsort(-logits.ravel()[cells], kind="stable")[:max_peaks]]
        return cls(logits, logits.ravel()[cells], cells, grid.reshape(-1, grid.shape[-1])[cells, 1:5])


def difference_from_grid(outputs: list[np.ndarray], grid: np.ndarray) -> float:
    """The largest difference between a locator graph's outputs and the dense [N, rows, columns, 5] grid of the same
    input (a Keras model's, or the graph's before export/peak_boxes.py rewrote it): the whole grid for a dense file;
    for one with peak outputs, centre logits at every cell and box channels at its peaks."""
    if len(outputs) == 1:
        return float(np.abs(outputs[0] - grid).max())
    centre, _, cells, boxes = outputs
    dense_boxes = np.take_along_axis(grid[..., 1:].reshape(len(grid), -1, 4), cells[..., np.newaxis], axis=1)
    return float(max(np.abs(centre - grid[..., :1]).max(), np.abs(boxes - dense_boxes).max()))


def decode(output: LocatorOutput, geometry: LocatorGeometry, frame_shape: tuple[int, ...], min_score: float,
           max_boxes: int) -> list[tuple[Box, float]]:
    """Boxes in frame pixels with their centre scores, best first: the peaks scoring at least `min_score`."""
    height, width = frame_shape[:2]
    # Scores are compared as logits (the sigmoid keeps their order), so only the kept peaks need one.
    kept = output.peak_logits[:max_boxes] >= np.log(min_score / (1.0 - min_score))
    logits, cells, boxes = output.peak_logits[:max_boxes][kept], output.peak_cells[:max_boxes][kept], output.peak_boxes[:max_boxes][kept]
    rows, columns = np.divmod(cells, output.centre_logits.shape[1])
    offset_x, offset_y, log_width, log_height = boxes.T
    per_cell = geometry.stride * geometry.downscale
    centre_x, centre_y = (columns + offset_x) * per_cell, (rows + offset_y) * per_cell
    half_width = np.exp(np.clip(log_width, 0.0, 8.0)) * geometry.downscale / 2
    half_height = np.exp(np.clip(log_height, 0.0, 8.0)) * geometry.downscale / 2
    x1 = np.maximum(0, np.round(centre_x - half_width))
    y1 = np.maximum(0, np.round(centre_y - half_height))
    x2 = np.minimum(width - 1, np.round(centre_x + half_width) - 1)
    y2 = np.minimum(height - 1, np.round(centre_y + half_height) - 1)
    scores = 1.0 / (1.0 + np.exp(-logits))
    kept = (x2 > x1) & (y2 > y1)
    return [((int(a), int(b), int(c), int(d)), float(score))
            for a, b, c, d, score in zip(x1[kept], y1[kept], x2[kept], y2[kept], scores[kept])]


def network_input(frame: np.ndarray | ShrunkFrame, geometry: LocatorGeometry) -> np.ndarray:
    """[1, H, W, 3] RGB uint8: the frame shrunk by the downscale, its right and bottom edges cut to the input multiple.

    The exported graph's padding holds for sizes that are multiples of the network's deepest stride (export/convert.py,
    relax_spatial_dims), the input multiple; the cut is at most that less one pixel of the shrunk frame, and the
    cells keep their places, so boxes need no correction. A side shorter than one multiple (a thumbnail, a thin strip,
    a narrow region of interest) is padded with black to it instead, which the network's convolutions need; boxes that
    reach into the padding are clipped to the frame by `decode`.
    """
    small = ShrunkFrame.of(frame).by(geometry.downscale)
    rows, columns = geometry.cut(small.shape[0]), geometry.cut(small.shape[1])
    cut = small[:rows, :columns]
    if cut.shape[:2] != (rows, columns):
        cut = cv2.copyMakeBorder(cut, 0, rows - cut.shape[0], 0, columns - cut.shape[1], cv2.BORDER_CONSTANT, value=0)
    return cv2.cvtColor(cut, cv2.COLOR_BGR2RGB)[np.newaxis]


class LearnedLocator:
    """Sign proposals from a locator file (see the module docstring for its contract)."""

    def __init__(self, path: str | Path, threads: int | None = 1, min_score: float | None = None, max_boxes: int = MAX_BOXES):
        self.path = resolve_model(path)
        self._session = open_session(self.path, threads, "no such locator file; expected colour, diamonds, the shipped "
                                                         "sign-locator or a locator file.")
        props = self._session.get_modelmeta().custom_metadata_map
        self.geometry = read_locator_metadata(props, str(self.path))
        self._input_name = self._session.get_inputs()[0].name
        values = json.loads(props[LOCATOR_KEY])
        # The file's operating point was chosen on its validation scenes at training (train/locator.py).
        self.min_score = min_score if min_score is not None else values.get("min_score", DEFAULT_MIN_SCORE)
        self.max_boxes = max_boxes
        if not 0.0 < self.min_score < 1.0 or max_boxes < 1:
            raise ValueError(f"min_score must be in (0, 1) and max_boxes >= 1. Received: min_score={self.min_score}, max_boxes={max_boxes}")
        self._output_names = [output.name for output in self._session.get_outputs()]
        self.max_peaks = values.get("max_peaks")
        expected = list(PEAK_OUTPUTS) if self.max_peaks is not None else self._output_names[:1]
        if self._output_names != expected or (self.max_peaks is not None and not isinstance(self.max_peaks, int)):
            raise ModelFileError(f"{self.path}: {LOCATOR_KEY} max_peaks {self.max_peaks!r} needs outputs {list(PEAK_OUTPUTS)} "
                                 f"and an integer; without it, one output (the dense grid). Received outputs: {self._output_names}")
        if self.max_peaks is not None and max_boxes > self.max_peaks:
            raise ValueError(f"{self.path}: the file gives its best {self.max_peaks} peaks a frame. Received: max_boxes={max_boxes}")

    def scored_proposals(self, frame: np.ndarray | ShrunkFrame) -> list[tuple[Box, float]]:
        """Candidate boxes in a BGR frame with the locator's confidence that a sign is centred there, best first."""
        frame = ShrunkFrame.of(frame)
        return self.scored_proposals_of(self.frame_output(frame), frame)

    def scored_proposals_of(self, output: LocatorOutput, frame: ShrunkFrame) -> list[tuple[Box, float]]:
        """`scored_proposals` from the frame's output, computed once by `frame_output`."""
        return decode(output, self.geometry, frame.full.shape, self.min_score, self.max_boxes)

    def frame_output(self, frame: np.ndarray | ShrunkFrame) -> LocatorOutput:
        """The network's output for a BGR frame."""
        return self.output(network_input(ShrunkFrame.of(frame), self.geometry))

    def output(self, image: np.ndarray) -> LocatorOutput:
        """The network's output for one network input ([1, H, W, 3] uint8, see `network_input`)."""
        results = self._session.run(None, {self._input_name: image})
        if self.max_peaks is None:
            return LocatorOutput.of_grid(results[0][0], self.max_boxes)
        centre, peak_logits, peak_cells, peak_boxes = (result[0] for result in results)
        return LocatorOutput(centre[..., 0], peak_logits, peak_cells, peak_boxes)

    def propose(self, frame: np.ndarray | ShrunkFrame) -> list[Box]:
        """Candidate sign boxes, best first; overlapping ones are left to the detector's suppression."""
        return [box for box, _ in self.scored_proposals(frame)]


def best_centre_score_within(centre_logits: np.ndarray, geometry: LocatorGeometry, box: Box) -> float:
    """The highest centre score of a locator's [rows, columns] centre logits over the cells under the middle half of a
    frame box: how likely the learned locator thinks a sign is centred there. Cells past the grid's edge (the cut of
    `network_input`) count as the nearest."""
    per_cell = geometry.stride * geometry.downscale
    x1, y1, x2, y2 = box
    quarter_width, quarter_height = (x2 - x1) / 4, (y2 - y1) / 4
    rows, columns = centre_logits.shape
    top, bottom = (min(rows - 1, int(y // per_cell)) for y in (y1 + quarter_height, y2 - quarter_height))
    left, right = (min(columns - 1, int(x // per_cell)) for x in (x1 + quarter_width, x2 - quarter_width))
    logit = float(centre_logits[top : bottom + 1, left : right + 1].max())
    return float(1.0 / (1.0 + np.exp(-logit)))


# A colour box is classified only if the learned locator gives a sign centre under its middle half at least this
# score. Most red and blue blobs in a road scene are no sign: on GTSDB scenes 00000-00099 the colour locator
# proposed 27 boxes a frame against the learned locator's 12.7, at about 70 us each to classify. Every colour box on a
# sign there scored 0.11 or more (on close-ups cut from those scenes too), and 0.05, half that, dropped 45% of the
# others. Held out (scenes 00100-00199; AMD EPYC with AVX-512 VNNI, 2026-12-06): the same 115 of 126 signs, 0.06 false
# detections per frame either way, 0.968x the time per frame (docs/ROAD_SCENES.md, "The colour gate").
COLOUR_GATE = 0.05


@dataclass(frozen=True)
class CombinedLocator:
    """Every proposal of several locators: each finds signs the other misses (the classifier sorts them out).

    With a learned locator among them and a `colour_gate`, colour boxes are kept only where the first learned locator's
    centre logits score a sign centre under their middle half at least that high (`best_centre_score_within`); its
    output is computed once, for its own proposals and the gate.
    """

    locators: tuple
    colour_gate: float | None = None
    worker: ThreadPoolExecutor | None = None  # runs the other locators while the first learned one's network runs
    # (OpenCV and onnxruntime let go of the GIL); `open_locator` gives one when threads may use several cores.

    def propose(self, frame: np.ndarray | ShrunkFrame) -> list[Box]:
        frame = ShrunkFrame.of(frame)  # one downscaled copy for all of them
        learned = next((locator for locator in self.locators if isinstance(locator, LearnedLocator)), None)
        others = [locator for locator in self.locators if locator is not learned]
        if self.worker is not None and learned is not None and others:
            for locator in self.locators:  # the copies both threads read, made before they share the frame
                frame.by(locator.geometry.downscale if isinstance(locator, LearnedLocator) else locator.scale)
            pending = self.worker.submit(lambda: [locator.propose(frame) for locator in others])
            output = learned.frame_output(frame)
            proposed = dict(zip(map(id, others), pending.result()))
        else:
            output = learned.frame_output(frame) if learned is not None else None
            proposed = {id(locator): locator.propose(frame) for locator in others}
        boxes = []
        for locator in self.locators:
            if locator is learned:
                boxes += [box for box, _ in learned.scored_proposals_of(output, frame)]
            elif learned is not None and self.colour_gate and isinstance(locator, ColourLocator):
                boxes += [box for box in proposed[id(locator)]
                          if best_centre_score_within(output.centre_logits, learned.geometry, box) >= self.colour_gate]
            else:
                boxes += proposed[id(locator)]
        return boxes


COLOUR = "colour"
DIAMONDS = "diamonds"
CLASSICAL_LOCATORS = {COLOUR: ColourLocator, DIAMONDS: DiamondLocator}


def check_colour_gate(colour_gate: float) -> None:
    if not 0.0 <= colour_gate < 1.0:
        raise ValueError(f"colour_gate must be in [0, 1) (0: no gate). Received: colour_gate={colour_gate}")


def open_locator(names: list[str], threads: int | None = 1, min_score: float | None = None,
                 colour_gate: float | None = COLOUR_GATE, overlap: bool | None = None):
    """The locator for --locator: "colour" (red and blue blobs), "diamonds" (yellow diamonds: priority road), a locator
    file, or several of them combined.

    `min_score` replaces the centre score stamped in learned locator files (their operating point). `colour_gate`: see
    CombinedLocator (None or 0: every colour box is kept). `overlap` (default: when `threads` is not 1 on a machine
    with several cores) runs the other locators in a thread of their own while the first learned locator's network
    runs, with the same boxes: the sign finder at two threads on two cores took 0.82-0.94x the time of running them
    in turn, a held-out road scene 9.9-10.8 ms on good stretches (AMD EPYC, AVX2, 2026-12-07; 14-16 ms at one thread).
    """
    if not names:
        raise ValueError(f"locator needs {COLOUR!r}, a locator file, or both.")
    if colour_gate is not None:
        check_colour_gate(colour_gate)
    locators = tuple(CLASSICAL_LOCATORS[name]() if name in CLASSICAL_LOCATORS
                     else LearnedLocator(name, threads=threads, min_score=min_score) for name in names)
    if len(locators) == 1:
        return locators[0]
    if overlap is None:
        overlap = threads != 1 and (os.cpu_count() or 1) > 1
    if not overlap or not any(isinstance(locator, LearnedLocator) for locator in locators):
        return CombinedLocator(locators, colour_gate)
    worker = ThreadPoolExecutor(1, thread_name_prefix="edgesight-locators")
    combined = CombinedLocator(locators, colour_gate, worker)
    weakref.finalize(combined, worker.shutdown, False)  # its thread ends with the locator, not only with the process
    return combined
