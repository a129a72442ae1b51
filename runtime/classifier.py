"""Classifier: load an edgesight model file, validate it, classify frames and regions of frames."""
from __future__ import annotations

import os
import threading
from typing import NamedTuple, Sequence

import numpy as np

from .errors import ModelFileError
from .metadata import ModelMetadata, parse_metadata
from .preprocess import crop_region, crop_regions
from .sessions import bound_run, open_session
from .shipped import SHIPPED_MODELS, resolve_model

Box = tuple[int, int, int, int]


class Prediction(NamedTuple):
    """One class hypothesis for one region.

    A named tuple rather than a frozen dataclass: one is made for every region classified, and the dataclass took
    0.6 µs longer to make (Intel Xeon 207, 2026-12-07).
    """

    label: str
    class_id: int
    score: float


class _RegionBuffers:
    """Input and output buffers for one region, bound to a session once, and the call that runs it on them.

    Bound buffers save onnxruntime's per-call feed dictionary and output allocation (~3 µs of ~50).
    """

    __slots__ = ("input", "output", "image", "scores", "binding", "run")

    def __init__(self, session, input_name: str, output_name: str, input_shape: tuple[int, ...], classes: int):
        self.input = np.empty(input_shape, np.uint8)
        self.output = np.empty((1, classes), np.float32)
        self.binding = binding = session.io_binding()  # kept: it holds onnxruntime's references to the bound arrays
        binding.bind_cpu_input(input_name, self.input)
        binding.bind_output(output_name, "cpu", 0, np.float32, list(self.output.shape), self.output.ctypes.data)
        self.image, self.scores = self.input[0], self.output[0]  # views, made once
        self.run = bound_run(session, binding)


class Classifier:
    """Classify BGR frames, or boxes of a frame, with an edgesight ONNX model.

    Args:
        model_path: an ONNX file following the edgesight metadata contract, or a shipped model's name.
        threads: intra-op threads; None uses every core.
        max_batch: regions sent to onnxruntime in one call at most.
    Raises:
        ModelFileError: the file is missing, not ONNX, or breaks the metadata contract.
    """

    def __init__(self, model_path: str | os.PathLike, threads: int | None = None, max_batch: int = 64):
        if threads is not None and threads < 0:
            raise ValueError(f"threads must be >= 0 or None. Received: threads={threads}")
        self.path = resolve_model(model_path)
        self.session = open_session(self.path, threads, f"model file not found (shipped models by name: {', '.join(SHIPPED_MODELS)}).")
        props = self.session.get_modelmeta().custom_metadata_map
        self.metadata: ModelMetadata = parse_metadata(props, str(self.path))
        self.max_batch = max_batch
        self._check_signature()
        self.labels = self.metadata.labels
        self.spec = self.metadata.preprocess

    def _check_signature(self) -> None:
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        if len(inputs) != 1 or len(outputs) != 1:
            raise ModelFileError(
                f"{self.path}: expected one input and one output tensor. "
                f"Received: {len(inputs)} inputs, {len(outputs)} outputs."
            )
        tensor_in, tensor_out = inputs[0], outputs[0]
        spec = self.metadata.preprocess
        if tensor_in.type != "tensor(uint8)" or list(tensor_in.shape[1:]) != [spec.height, spec.width, 3]:
            raise ModelFileError(
                f"{self.path}: input must be uint8 [batch, {spec.height}, {spec.width}, 3] as the metadata says. "
                f"Received: {tensor_in.type} {tensor_in.shape}"
            )
        width = tensor_out.shape[-1] if tensor_out.shape else None
        if len(tensor_out.shape) != 2 or width != len(self.metadata.labels):
            raise ModelFileError(
                f"{self.path}: output must be [batch, {len(self.metadata.labels)}] to match "
                f"{len(self.metadata.labels)} labels. Received: {tensor_out.shape}"
            )
        self._input_name, self._output_name = tensor_in.name, tensor_out.name
        self._per_thread = threading.local()  # each thread's `_RegionBuffers`

    def _region_buffers(self) -> _RegionBuffers:
        """This calling thread's bound buffers for one region at a time, made on its first call.

        Per thread rather than shared under a lock: onnxruntime runs one session from several threads at once, and
        the lock cost 0.4 µs of a ~50 µs region even with no other thread (Intel Xeon 207, 2026-12-07).
        """
        try:
            return self._per_thread.buffers
        except AttributeError:
            spec = self.spec
            buffers = self._per_thread.buffers = _RegionBuffers(
                self.session, self._input_name, self._output_name, (1, spec.height, spec.width, 3), len(self.labels))
            return buffers

    def probabilities(self, batch_nhwc: np.ndarray) -> np.ndarray:
        """Class probabilities (N, num_classes) float32 for preprocessed RGB uint8 inputs."""
        expected = (self.spec.height, self.spec.width, 3)
        if batch_nhwc.ndim != 4 or batch_nhwc.shape[1:] != expected or batch_nhwc.dtype != np.uint8:
            raise ValueError(
                f"expected a uint8 batch of shape (N, {expected[0]}, {expected[1]}, 3). "
                f"Received: shape={batch_nhwc.shape}, dtype={batch_nhwc.dtype}"
            )
        if len(batch_nhwc) == 1:
            buffers = self._region_buffers()
            buffers.input[...] = batch_nhwc
            buffers.run()
            return buffers.output.copy()
        if len(batch_nhwc) <= self.max_batch:
            return self.session.run([self._output_name], {self._input_name: batch_nhwc})[0]
        chunks = [
            self.session.run([self._output_name], {self._input_name: batch_nhwc[start : start + self.max_batch]})[0]
            for start in range(0, len(batch_nhwc), self.max_batch)
        ]
        return np.concatenate(chunks)

    def top_k(self, probabilities: np.ndarray, k: int) -> list[list[Prediction]]:
        """The k most probable classes of each row, best first."""
        k = max(1, min(k, probabilities.shape[1]))
        if k == 1 and len(probabilities) == 1:
            return self._best(probabilities[0])
        if k == 1:  # an argmax per row, no sort (it costs as much as a tiny model's layer)
            best = probabilities.argmax(axis=1).tolist()
            return [[Prediction(self.labels[class_id], class_id, float(row[class_id]))]
                    for row, class_id in zip(probabilities, best)]
        order = np.argsort(-probabilities, axis=1, kind="stable")[:, :k].tolist()
        return [[Prediction(self.labels[class_id], class_id, float(row[class_id])) for class_id in row_order]
                for row, row_order in zip(probabilities, order)]

    def _best(self, scores: np.ndarray) -> list[list[Prediction]]:
        """The live loop's case of `top_k`, one row and k = 1: one argmax, no sort, no per-row loop."""
        class_id = int(scores.argmax())
        return [[Prediction(self.labels[class_id], class_id, float(scores[class_id]))]]

    def classify(self, frame_bgr: np.ndarray, top_k: int = 1) -> list[Prediction]:
        """Classify one frame's region as the model's crop mode defines it (centre or full frame)."""
        return self.top_k(self.probabilities(crop_region(frame_bgr, self.spec)[None]), top_k)[0]

    def classify_frames(self, frames_bgr: Sequence[np.ndarray], top_k: int = 1) -> list[list[Prediction]]:
        """Classify several frames in batches."""
        if not frames_bgr:
            return []
        batch_nhwc = np.stack([crop_region(frame, self.spec) for frame in frames_bgr])
        return self.top_k(self.probabilities(batch_nhwc), top_k)

    def classify_boxes(self, frame_bgr: np.ndarray, boxes_xyxy: Sequence[Box], top_k: int = 1) -> list[list[Prediction]]:
        """Classify several inclusive pixel boxes of one frame in one batch."""
        if not boxes_xyxy:
            return []
        if len(boxes_xyxy) == 1:  # the per-region path of a live loop: straight into the bound input, no batch to assemble
            buffers = self._region_buffers()
            crop_region(frame_bgr, self.spec, boxes_xyxy[0], out=buffers.image)
            buffers.run()
            # Prediction objects hold copies of the scores. Calling `_best` itself saves 1 µs of ~50.
            return self._best(buffers.scores) if top_k == 1 else self.top_k(buffers.output, top_k)
        return self.top_k(self.probabilities(crop_regions(frame_bgr, self.spec, list(boxes_xyxy))), top_k)
