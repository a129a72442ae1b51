"""`edgesight bench`: latency of model files on this machine, interleaved so they share its noise."""
from __future__ import annotations

import os
import platform
import time
from dataclasses import dataclass, field

import numpy as np

from .classifier import Classifier
from .preprocess import center_box


@dataclass(frozen=True)
class BenchConfig:
    models: list[str] = field(metadata={"help": "edgesight ONNX model files to time side by side"})
    repeats: int = field(default=2000, metadata={"help": "timed runs per model and thread setting"})
    warmup: int = field(default=200, metadata={"help": "untimed runs first"})
    markdown: str | None = field(default=None, metadata={"help": "also write the table to this Markdown file"})


def machine_description() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            cpu = next((line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")), cpu)
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} logical cores, {platform.system()} {platform.machine()}"


def _region_timer(classifier: Classifier, frame_bgr: np.ndarray, box):
    def run_once() -> float:
        tic = time.perf_counter_ns()
        classifier.classify_boxes(frame_bgr, [box], 1)
        return (time.perf_counter_ns() - tic) / 1000.0
    return run_once


def measure_latency(models: list[str], repeats: int = 2000, warmup: int = 200) -> list[dict]:
    """Median and p99 latency per region (crop + resize + inference + top-1), batch 1, one thread and all.

    Runs of the models alternate in blocks so that a noisy neighbour slows all of them alike.
    """
    rng = np.random.default_rng(0)
    # A camera-sized frame with a sign-sized box: the real per-region path, preprocessing included.
    frame_bgr = rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)
    box = center_box(frame_bgr.shape, 0.2)
    results = []
    for threads in (1, 0):
        timers = {path: _region_timer(Classifier(path, threads=threads), frame_bgr, box) for path in models}
        for timer in timers.values():
            for _ in range(warmup):
                timer()
        samples: dict[str, list[float]] = {path: [] for path in models}
        block = 50
        for _ in range(max(1, repeats // block)):
            for path, timer in timers.items():
                samples[path].extend(timer() for _ in range(block))
        for path, values in samples.items():
            results.append({
                "model": path, "threads": threads or os.cpu_count(), "runs": len(values),
                "median_us": float(np.median(values)), "p99_us": float(np.percentile(values, 99)),
                "bytes": os.path.getsize(path),
            })
    return results


def bench(config: BenchConfig) -> list[dict]:
    """`edgesight bench`: print (and optionally write) the latency table of `measure_latency`."""
    results = measure_latency(config.models, config.repeats, config.warmup)
    table = format_table(results)
    print(table)
    if config.markdown:
        from .files import write_text_atomic
        write_text_atomic(config.markdown, table + "\n")
    return results


def format_table(results: list[dict]) -> str:
    lines = [f"Machine: {machine_description()}", "",
             "| model | threads | median µs / region | p99 µs | size KiB |", "|---|---|---|---|---|"]
    for row in results:
        lines.append(f"| {row['model']} | {row['threads']} | {row['median_us']:.1f} | {row['p99_us']:.1f} | {row['bytes'] / 1024:.0f} |")
    return "\n".join(lines)
