"""`edgesight bench`: latency of model files on this machine, interleaved so they share its noise."""
from __future__ import annotations

import os
import platform
import time
from dataclasses import dataclass, field

import cv2
import numpy as np

from .classifier import Classifier
from .preprocess import center_box, crop_region
from .shipped import resolve_model


@dataclass(frozen=True)
class BenchConfig:
    models: list[str] = field(metadata={"help": "edgesight ONNX model files (or shipped model names) to time side by side"})
    repeats: int = field(default=2000, metadata={"help": "timed runs per model and thread setting"})
    warmup: int = field(default=200, metadata={"help": "untimed runs first"})
    markdown: str | None = field(default=None, metadata={"help": "also write the table to this Markdown file"})
    opencv: bool = field(default=False, metadata={"help": "also time OpenCV DNN on the same files (a peer runtime)"})


def machine_description() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            cpu = next((line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")), cpu)
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} logical cores, {platform.system()} {platform.machine()}"


def _timed(run_region) -> float:
    tic = time.perf_counter_ns()
    run_region()
    return (time.perf_counter_ns() - tic) / 1000.0


def _onnxruntime_region(path: str, threads: int, frame_bgr: np.ndarray, box):
    classifier = Classifier(path, threads=threads)
    return lambda: classifier.classify_boxes(frame_bgr, [box], 1)


def _opencv_region(path: str, threads: int, frame_bgr: np.ndarray, box):
    """The same region through OpenCV DNN: the runtime's preprocessing, OpenCV's inference, top-1."""
    spec = Classifier(path).spec
    try:
        network = cv2.dnn.readNetFromONNX(path)
    except cv2.error as error:
        raise RuntimeError(str(error).strip().splitlines()[-1]) from None

    def run_region():
        cv2.setNumThreads(threads or os.cpu_count())
        network.setInput(crop_region(frame_bgr, spec, box)[None])
        return int(np.argmax(network.forward()))

    try:
        run_region()  # some models load but fail on the first forward pass
    except cv2.error as error:
        raise RuntimeError(str(error).strip().splitlines()[-1]) from None
    return run_region


def measure_latency(models: list[str], repeats: int = 2000, warmup: int = 200, opencv: bool = False) -> list[dict]:
    """Median and p99 latency per region (crop + resize + inference + top-1), batch 1, one thread and all.

    Runs of the models alternate in blocks so that a noisy neighbour slows all of them alike.
    A model OpenCV DNN cannot load (QDQ int8) gets a row saying why instead of figures.
    """
    files = {str(resolve_model(model)): model for model in models}  # file -> the name the user gave
    models = list(files)
    rng = np.random.default_rng(0)
    # A camera-sized frame with a sign-sized box: the real per-region path, preprocessing included.
    frame_bgr = rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)
    box = center_box(frame_bgr.shape, 0.2)
    runtimes = {"onnxruntime": _onnxruntime_region} | ({"opencv-dnn": _opencv_region} if opencv else {})
    results = []
    for threads in (1, 0):
        timers = {}
        for runtime_name, make in runtimes.items():
            for path in models:
                try:
                    timers[(runtime_name, path)] = make(path, threads, frame_bgr, box)
                except RuntimeError as error:
                    results.append({"model": files[path], "file": path, "runtime": runtime_name, "threads": threads or os.cpu_count(),
                                    "error": str(error)[:160]})
        for timer in timers.values():
            for _ in range(warmup):
                timer()
        samples: dict[tuple[str, str], list[float]] = {key: [] for key in timers}
        block = 50
        for _ in range(max(1, repeats // block)):
            for key, timer in timers.items():
                samples[key].extend(_timed(timer) for _ in range(block))
        for (runtime_name, path), values in samples.items():
            results.append({
                "model": files[path], "file": path, "runtime": runtime_name, "threads": threads or os.cpu_count(),
                "runs": len(values),
                "median_us": float(np.median(values)), "p99_us": float(np.percentile(values, 99)),
                "bytes": os.path.getsize(path),
            })
    return results


def bench(config: BenchConfig) -> list[dict]:
    """`edgesight bench`: print (and optionally write) the latency table of `measure_latency`."""
    results = measure_latency(config.models, config.repeats, config.warmup, config.opencv)
    table = format_table(results)
    print(table)
    if config.markdown:
        from .files import write_text_atomic
        write_text_atomic(config.markdown, table + "\n")
    return results


def format_table(results: list[dict]) -> str:
    lines = [f"Machine: {machine_description()}", "",
             "| model | runtime | threads | median µs / region | p99 µs | size KiB |", "|---|---|---|---|---|---|"]
    for row in results:
        if "error" in row:
            lines.append(f"| {row['model']} | {row['runtime']} | {row['threads']} | cannot run: {row['error']} | | |")
        else:
            lines.append(f"| {row['model']} | {row['runtime']} | {row['threads']} | {row['median_us']:.1f} | "
                         f"{row['p99_us']:.1f} | {row['bytes'] / 1024:.0f} |")
    return "\n".join(lines)
