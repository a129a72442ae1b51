"""Timing on this machine: engines that classify one region of a frame, measured interleaved.

An engine is anything with `label`, `path`, `spec` and `predict(batch_nhwc) -> probabilities`.
The runtime tier provides onnxruntime and OpenCV DNN engines; `edgesight.export.peers` adds Keras
and LiteRT ones for `edgesight bench`. Every engine is timed on the same per-region path — crop and
resize with `crop_region`, inference at batch 1, top-1 — so rows differ only in the inference.
"""
from __future__ import annotations

import contextlib
import functools
import os
import platform
import time
from pathlib import Path
from typing import Callable, Protocol

import cv2
import numpy as np

from .classifier import Classifier
from .cpu import int8_outlook, read_cpuinfo
from .preprocess import PreprocessSpec, center_box, crop_region
from .shipped import resolve_model

FRAME_SHAPE = (480, 640, 3)
BOX_FRACTION = 0.2  # a 96×96 px box on a 640×480 frame: a sign or object a few metres away


class Engine(Protocol):
    label: str
    path: Path
    spec: PreprocessSpec

    def predict(self, batch_nhwc: np.ndarray) -> np.ndarray: ...


class OnnxRuntimeEngine:
    """The product path: `Classifier` on an edgesight ONNX file (fp32 or int8)."""

    def __init__(self, path: str | os.PathLike, threads: int, label: str | None = None):
        self.classifier = Classifier(path, threads=threads, max_batch=1024)
        self.path, self.spec = self.classifier.path, self.classifier.spec
        precision = "int8" if self.classifier.metadata.quantization else "fp32"
        self.label = label or f"onnxruntime {precision}"
        self.predict = self.classifier.probabilities

    def region_timer(self, frame_bgr: np.ndarray, box) -> Callable[[], object]:
        # Exactly what an application calls, result objects included.
        return lambda: self.classifier.classify_boxes(frame_bgr, [box], 1)


class OpenCvDnnEngine:
    """OpenCV DNN running the same fp32 ONNX file: the peer a C++/OpenCV application would pick."""

    def __init__(self, path: str | os.PathLike, threads: int, label: str = "opencv-dnn fp32"):
        self.path, self.label = Path(path), label
        self.spec = Classifier(path).spec
        cv2.setNumThreads(threads or os.cpu_count())  # process-wide: bench runs each thread setting apart
        try:
            self.network = cv2.dnn.readNetFromONNX(str(path))
            self.predict(np.zeros((1, self.spec.height, self.spec.width, 3), np.uint8))  # some models fail only here
        except cv2.error as error:
            # OpenCV ends its messages with a lone "> "; the reason is the last line with words in it.
            reason = ([line.strip(" >") for line in str(error).splitlines() if line.strip(" >")] or ["no reason given"])[-1]
            raise RuntimeError(f"OpenCV {cv2.__version__} cannot run {Path(path).name}: {reason[:200]}") from None

    def predict(self, batch_nhwc: np.ndarray) -> np.ndarray:
        self.network.setInput(batch_nhwc)
        return self.network.forward()


def region_timer(engine, frame_bgr: np.ndarray, box) -> Callable[[], object]:
    """One region through an engine: crop + resize, inference, top-1 (label and score)."""
    if hasattr(engine, "region_timer"):
        return engine.region_timer(frame_bgr, box)

    def classify_region():
        probabilities = engine.predict(crop_region(frame_bgr, engine.spec, box)[None])[0]
        best = int(np.argmax(probabilities))
        return best, float(probabilities[best])

    return classify_region


def bench_frame() -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """A camera-sized frame of noise and the box every engine classifies in it."""
    frame_bgr = np.random.default_rng(0).integers(0, 256, FRAME_SHAPE, dtype=np.uint8)
    return frame_bgr, center_box(frame_bgr.shape, BOX_FRACTION)


def interleaved_latency(timers: dict, repeats: int, warmup: int, block: int = 50) -> dict:
    """Microseconds per call of each timer; timers alternate in blocks so a noisy neighbour slows all alike."""
    for timer in timers.values():
        for _ in range(warmup):
            timer()
    samples: dict = {key: [] for key in timers}
    for _ in range(max(1, repeats // block)):
        for key, timer in timers.items():
            for _ in range(block):
                tic = time.perf_counter_ns()
                timer()
                samples[key].append((time.perf_counter_ns() - tic) / 1000.0)
    return {key: {"runs": len(values), "median_us": float(np.median(values)), "p99_us": float(np.percentile(values, 99))}
            for key, values in samples.items()}


FALLBACK_FLUSH_BYTES = 64 << 20  # where the OS lists no cache sizes: twice a large server L3 slice


@functools.cache  # read once: flush_caches runs before every cold call
def cache_flush_bytes() -> int:
    """Twice the largest CPU cache the OS lists for CPU 0: a copy that large leaves none of a model's code or data cached."""
    sizes = []
    for path in Path("/sys/devices/system/cpu/cpu0/cache").glob("index*/size"):
        text = path.read_text().strip().upper()
        with contextlib.suppress(ValueError):
            sizes.append(int(text[:-1]) * {"K": 1 << 10, "M": 1 << 20}[text[-1]] if text[-1] in "KM" else int(text))
    return 2 * max(sizes) if sizes else FALLBACK_FLUSH_BYTES


def flush_caches() -> None:
    """Evict the CPU caches by copying a buffer of `cache_flush_bytes`: the worst a camera loop's other work between two
    classifications (decoding a frame, a locator, OpenCV) can leave them in."""
    source, target = _flush_buffers()
    np.copyto(target, source)


@functools.cache  # allocated on the first cold call, kept for the process
def _flush_buffers() -> tuple[np.ndarray, np.ndarray]:
    return np.ones(cache_flush_bytes(), np.uint8), np.empty(cache_flush_bytes(), np.uint8)


def cold_latency(timers: dict, calls: int) -> dict:
    """Microseconds of single calls each made right after `flush_caches`, the timers taking turns: the median and the
    slowest tenth's bound. An engine whose code path is long pays more for it than its warm median says."""
    samples: dict = {key: [] for key in timers}
    for _ in range(calls):
        for key, timer in timers.items():
            flush_caches()
            tic = time.perf_counter_ns()
            timer()
            samples[key].append((time.perf_counter_ns() - tic) / 1000.0)
    return {key: {"runs": len(values), "median_us": float(np.median(values)), "p90_us": float(np.percentile(values, 90))}
            for key, values in samples.items()}


def machine_description(cpuinfo_text: str | None = None) -> str:
    """The CPU's name (with its x86 family and model: a hypervisor may show only "AMD EPYC"), cores and OS, and its
    strongest int8 instructions: hosts sold under one name differ in them, and int8 timings with them (on 2026-12-06
    such a host had AVX-512 VNNI, where earlier ones had AVX2 only). Reads /proc/cpuinfo unless given its text."""
    if cpuinfo_text is None:
        cpuinfo_text = read_cpuinfo()
    first_processor = cpuinfo_text.split("\n\n", 1)[0]
    fields = {key.strip(): value.strip() for key, value in (line.split(":", 1) for line in first_processor.splitlines() if ":" in line)}
    cpu = fields.get("model name") or platform.processor() or platform.machine()
    if "cpu family" in fields and "model" in fields:  # x86: one name ("AMD EPYC") covers several generations
        cpu += f" (family {fields['cpu family']}, model {fields['model']})"
    outlook = int8_outlook(cpuinfo_text)
    instructions = ""
    if outlook.int8_features:
        instructions = f", {outlook.int8_features[0]}" + ("" if outlook.dot_product else " (no int8 dot product)")
    return f"{cpu}, {os.cpu_count()} logical cores, {platform.system()} {platform.machine()}{instructions}"


def measure_latency(models: list[str], repeats: int = 2000, warmup: int = 200) -> list[dict]:
    """onnxruntime latency per region of ONNX files (or shipped names), batch 1, one thread and all cores."""
    files = {str(resolve_model(model)): model for model in models}  # file -> the name the user gave
    frame_bgr, box = bench_frame()
    results = []
    for threads in (1, 0):
        engines = {path: OnnxRuntimeEngine(path, threads) for path in files}
        timers = {path: region_timer(engine, frame_bgr, box) for path, engine in engines.items()}
        for path, stats in interleaved_latency(timers, repeats, warmup).items():
            results.append({"model": files[path], "file": path, "engine": engines[path].label,
                            "threads": threads or os.cpu_count(), "bytes": os.path.getsize(path)} | stats)
    return results
