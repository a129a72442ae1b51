"""Probe: the per-region path as it was at f8fc62f (rebuilt here from that commit's code) against `classify_boxes` now.

Both classify the bench's region with the same session, interleaved, batch 1, one thread; the results must agree.

    python benchmarks/results/2026-12-07-lean-path-probes-intel-xeon-207/path_before_after.py RUN/model.int8.onnx [ROUNDS]
"""
import sys
import threading
from dataclasses import dataclass

import cv2
import numpy as np
from edgesight.runtime.bench import bench_frame, interleaved_latency
from edgesight.runtime.classifier import Classifier
from edgesight.runtime.preprocess import RESIZE_MODES, _check_frame


@dataclass(frozen=True)
class OldPrediction:  # Prediction as at f8fc62f
    label: str
    class_id: int
    score: float


def old_expand(box_xyxy, margin, frame_shape):
    x1, y1, x2, y2 = box_xyxy
    height, width = frame_shape[:2]
    pad_x = (x2 - x1 + 1) * margin
    pad_y = (y2 - y1 + 1) * margin
    return (max(0, int(round(x1 - pad_x))), max(0, int(round(y1 - pad_y))),
            min(width - 1, int(round(x2 + pad_x))), min(height - 1, int(round(y2 + pad_y))))


def old_region(frame_bgr, spec, box_xyxy):
    x1, y1, x2, y2 = tuple(map(int, box_xyxy))
    if x2 < x1 or y2 < y1:
        raise ValueError(box_xyxy)
    x1, y1, x2, y2 = old_expand((x1, y1, x2, y2), spec.box_margin, frame_bgr.shape)
    crop_bgr = frame_bgr[y1 : y2 + 1, x1 : x2 + 1]
    if crop_bgr.size == 0:
        raise ValueError(box_xyxy)
    return crop_bgr


def old_crop(frame_bgr, spec, box_xyxy, out):
    _check_frame(frame_bgr)
    resized_bgr = cv2.resize(old_region(frame_bgr, spec, box_xyxy), (spec.width, spec.height),
                             interpolation=RESIZE_MODES[spec.resize])
    return cv2.cvtColor(resized_bgr, cv2.COLOR_BGR2RGB, dst=out)


class OldPath:
    """classify_boxes for one box as at f8fc62f: shared bound buffers under a lock, the public run call, top_k."""

    def __init__(self, classifier: Classifier):
        self.classifier = classifier
        self.lock = threading.Lock()
        self.input = np.empty((1, classifier.spec.height, classifier.spec.width, 3), np.uint8)
        self.output = np.empty((1, len(classifier.labels)), np.float32)
        self.binding = classifier.session.io_binding()
        self.binding.bind_cpu_input(classifier.session.get_inputs()[0].name, self.input)
        self.binding.bind_output(classifier.session.get_outputs()[0].name, "cpu", 0, np.float32, list(self.output.shape),
                                 self.output.ctypes.data)

    def top_k(self, probabilities, k):
        k = max(1, min(k, probabilities.shape[1]))
        if k == 1 and len(probabilities) == 1:
            class_id = int(probabilities[0].argmax())
            return [[OldPrediction(self.classifier.labels[class_id], class_id, float(probabilities[0, class_id]))]]
        raise NotImplementedError("only the live loop's case")

    def classify_boxes(self, frame_bgr, boxes_xyxy, top_k=1):
        if not boxes_xyxy:
            return []
        if len(boxes_xyxy) == 1:
            with self.lock:
                old_crop(frame_bgr, self.classifier.spec, boxes_xyxy[0], out=self.input[0])
                self.classifier.session.run_with_iobinding(self.binding)
                return self.top_k(self.output, top_k)
        raise NotImplementedError("only the live loop's case")


def main() -> None:
    cv2.setNumThreads(1)
    classifier = Classifier(sys.argv[1], threads=1)
    old = OldPath(classifier)
    frame, box = bench_frame()
    before, now = old.classify_boxes(frame, [box])[0][0], classifier.classify_boxes(frame, [box])[0][0]
    assert (before.label, before.class_id, before.score) == tuple(now), (before, now)
    timers = {"as at f8fc62f": lambda: old.classify_boxes(frame, [box]), "now": lambda: classifier.classify_boxes(frame, [box])}
    for round_index in range(int(sys.argv[2]) if len(sys.argv) > 2 else 4):
        results = interleaved_latency(timers, 6000, warmup=300)
        before_us, now_us = (results[name]["median_us"] for name in timers)
        print(f"round {round_index}: as at f8fc62f {before_us:.2f} µs, now {now_us:.2f} µs, "
              f"{before_us - now_us:.2f} µs less ({now_us / before_us:.3f}x)")


if __name__ == "__main__":
    main()
