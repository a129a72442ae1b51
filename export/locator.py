"""Export of a sign-locator run (`edgesight train-locator`) to one self-describing ONNX file.

The locator stays float: its output is a dense grid, and int8 is only worth its risk once measured.
Parity with Keras is checked on the run's own validation scenes, the file is timed on a full frame.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort
from edgesight.runtime.errors import EdgesightError
from edgesight.runtime.files import write_json_atomic
from edgesight.runtime.learned_locate import LOCATOR_KEY, LOCATOR_TASK, LearnedLocator, LocatorGeometry
from edgesight.runtime.scenes import read_scenes

from .convert import keras_to_onnx, save_model

# Logits of Keras and onnxruntime may differ by float rounding, not more.
MAX_GRID_DIFFERENCE = 1e-3
TIMED_RUNS = 30


class LocatorExportError(EdgesightError, RuntimeError):
    """The locator file differs from the Keras model it was converted from."""


def _frames(run_config: dict, data: str, geometry: LocatorGeometry) -> list[np.ndarray]:
    """The run's validation scenes, downscaled and RGB as the network takes them (or the first 5 scenes if none)."""
    wanted = set(run_config["split"]["validation_scenes"])
    scenes = [scene for scene in read_scenes(data) if scene.name in wanted or not wanted]
    frames = []
    for scene in scenes[: max(5, len(wanted))]:
        height, width = scene.image_bgr.shape[:2]
        small = cv2.resize(scene.image_bgr, (width // geometry.downscale, height // geometry.downscale), interpolation=cv2.INTER_AREA)
        frames.append(cv2.cvtColor(small, cv2.COLOR_BGR2RGB)[np.newaxis])
    return frames


def export_locator(run_dir: Path, run_config: dict, train_report: dict, data: str | None, opset: int, provenance: dict) -> dict:
    """Write `locator.onnx` and `export_report.json` into the run folder; returns the report."""
    import keras

    geometry = LocatorGeometry(run_config["geometry"]["downscale"], run_config["geometry"]["stride"])
    data = data or run_config["train"]["data"]
    print(f"converting {run_dir / 'model.keras'} (sign locator) to ONNX (opset {opset})", file=sys.stderr)
    model = keras.models.load_model(run_dir / "model.keras", compile=False)
    proto = keras_to_onnx(model, opset)
    frames = _frames(run_config, data, geometry)
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    difference = max(float(np.max(np.abs(session.run(None, {"image": frame})[0] - model(frame, training=False).numpy())))
                     for frame in frames)
    if difference > MAX_GRID_DIFFERENCE:
        raise LocatorExportError(f"{run_dir}: the ONNX locator differs from Keras by {difference:.2e} "
                                 f"(> {MAX_GRID_DIFFERENCE}) on the validation scenes.")
    props = {
        "edgesight.format": 1, "edgesight.task": LOCATOR_TASK, LOCATOR_KEY: geometry.to_json(),
        "edgesight.input": {"name": "image", "height": None, "width": None, "channels": 3, "layout": "NHWC", "color": "RGB", "dtype": "uint8"},
        "edgesight.metrics": {"validation_proposal_recall": train_report.get("validation_proposal_recall"),
                              "validation_scenes": train_report.get("validation_scenes")},
        "edgesight.provenance": provenance | {"train_options": run_config["train"]},
    }
    for key, value in props.items():
        proto.metadata_props.add(key=key, value=json.dumps(value))
    path = run_dir / "locator.onnx"
    save_model(proto, path)

    locator = LearnedLocator(path, threads=1)
    frame = next(read_scenes(data)).image_bgr
    for _ in range(3):
        locator.propose(frame)
    timings = []
    for _ in range(TIMED_RUNS):
        started = time.perf_counter()
        locator.propose(frame)
        timings.append((time.perf_counter() - started) * 1000)
    report = {
        "locator": str(path), "bytes": path.stat().st_size, "max_grid_difference_keras_onnx": difference,
        "parity_frames": len(frames), "ms_per_frame_1_thread": round(float(np.median(timings)), 2),
        "frame_size": [frame.shape[1], frame.shape[0]], "parameters": train_report.get("parameters"),
        "macs_per_frame": train_report.get("macs_per_frame"),
    }
    write_json_atomic(run_dir / "export_report.json", report)
    print(f"wrote {path} ({report['bytes'] / 1024:.0f} KiB); ONNX matches Keras within {difference:.1e}; "
          f"{report['ms_per_frame_1_thread']} ms per {frame.shape[1]}x{frame.shape[0]} frame (1 thread, median, "
          f"including the downscale and decoding)")
    return report
