"""The int8 twin of a sign-locator file: same contract, same uint8 input, same float grid out, in less time.

onnxruntime's int8 pointwise convolutions are where the time goes down: on an AMD EPYC with AVX-512 VNNI (Zen 4) each
48-channel one fell from 0.73 to 0.25 ms (2026-12-06), on an AVX2-only one from 0.88 to 0.56 ms (2026-12-07). The
stem over the 3 image channels is another matter: onnxruntime's int8 kernels gather its input tap by tap (1.8 ms
against 0.7 ms in float on the Zen 4), and depthwise convolutions run slower in int8 on both hosts (0.39 against 0.21,
0.58 against 0.32 ms). So the twin keeps its float prefix, everything before the first pointwise convolution (the stem
and the stride-2 depthwise convolution), and quantizes the rest; the image goes in uint8 as before.

Until 2026-12-07 the stem was quantized and rewritten to run on blocks of 4 image columns (`export.stem_blocks`),
which brought its int8 time to 0.7 ms on the Zen 4. The float prefix took the same time for the network on the AVX2
host (8.40 against 8.41 ms) and 0.97-0.98x on the Zen 4 (2026-12-06, without the rewrite then), and its proposals are
closer to the float file's: with `gtsrb-locate`, the screen and the colour and diamond locators it found 139 of 147
signs of scenes 00000-00099 against 135, and 115 of 126 held out (+1 -1), at 0.065 false detections per frame over all
200 against 0.055 (benchmarks/results/2026-12-07-float-prefix-with-screen/, rule written first). Calibrated with the
whole grid, then the box head moved to the peaks (below).
"""
from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import sys
from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from edgesight.runtime.bench import interleaved_latency, machine_description
from edgesight.runtime.learned_locate import LearnedLocator, network_input
from edgesight.runtime.proposal_recall import proposal_recall
from edgesight.runtime.scenes import Scene, read_scenes

from .convert import drop_non_json_metadata, save_model
from .graph_edit import attributes
from .peak_boxes import box_head_at_peaks, box_head_everywhere
from .quantize import QuantizationSettings, quantize_int8, weights_text
from .simplify import stem_on_channels, stem_on_interleaved_columns

# Min-max calibration: the centre logits that matter are the peaks, the largest values of their tensor, which a
# percentile range would clip. On the shipped locator's 80 scenes of 00000-00099 not calibrated on (2026-12-06), its
# proposals at 0.2 covered 90.9% of the signs with min-max ranges, 90.1% with percentile ones, 92.6% in float; 8-bit
# weights or a float grid (the last Concat kept float) covered the same 90.9%. Weights in 7 bits, as for the
# classifiers (exact on CPUs without VNNI).
LOCATOR_QUANTIZATION = QuantizationSettings(calibration_method="MinMax", keep_float_ops=(), keep_float_layers=(),
                                            symbolic_shapes=False)
MOST_CALIBRATION_FRAMES = 20
TIMED_RUNS = 30  # per file, interleaved in blocks of 3


def calibration_picks(count: int, most: int = MOST_CALIBRATION_FRAMES) -> list[int]:
    """Indices of up to `most` of `count` scenes, every k-th (scenes are often numbered along a drive), k at least 2 so that
    as many scenes are left to measure on."""
    return list(range(0, count, max(2, -(-count // most))))


def float_prefix(model: onnx.ModelProto) -> tuple[str, ...]:
    """Names of the nodes a locator graph runs before its first pointwise convolution (1x1, one group): the stem and the
    stride-2 depthwise convolution with their normalizations and ReLUs, and the image's Transpose and Cast."""
    names = []
    for node in model.graph.node:  # topological order, as ONNX requires
        node_attributes = attributes(node)
        if node.op_type == "Conv" and node_attributes.get("kernel_shape") == [1, 1] and node_attributes.get("group", 1) == 1:
            return tuple(names)
        names.append(node.name)
    raise ValueError("a locator graph without a pointwise convolution")


def quantize_locator(fp32_model: onnx.ModelProto, calibration_frames: list[np.ndarray]) -> tuple[onnx.ModelProto, dict]:
    """The int8 twin of a float locator graph and a JSON-ready description of how it was made (module docstring).

    `calibration_frames`: network inputs ([1, H, W, 3] uint8, see `network_input`) of one size.
    """
    # Calibrated on the dense graph, whose box head sees every cell, then rewritten to run that head at the peaks only
    # (export/peak_boxes.py), which changes no value of the int8 graph: a twin made so from a float file with its box head
    # at the peaks is the twin of its dense form, value for value. (Calibrated with the head at the peaks, its ranges
    # came from the peaks alone, and its centre logits were no longer rounded with the box channels: on 2026-12-07 that
    # twin found 114 and 136 signs of 00100-00199 and 00000-00099 against 115 and 135, but with 0.08 and 0.15 false
    # detections per frame against 0.06 and 0.11; benchmarks/results/2026-12-07-box-head-at-peaks/.)
    # Calibrated, too, with the stem as tf2onnx wrote it, after a Transpose of the image, and rewritten after to read the
    # image without it (export/simplify.py, stem_on_interleaved_columns), as the shipped twin was on 2026-12-07 and then
    # judged side by side (benchmarks/results/2026-12-07-interleaved-stem/). Calibrated on the rewritten stem instead,
    # whose float sums round otherwise, the ranges moved in their last bits and the twin gave other boxes on 76 of the 400
    # frames of GTSDB's 200 scenes, whole and within the road-camera region; that twin was not scored.
    model = copy.deepcopy(fp32_model)
    box_head_everywhere(model)
    stem_on_channels(model)
    settings = dataclasses.replace(LOCATOR_QUANTIZATION, keep_float_nodes=float_prefix(model))
    int8_model, description = quantize_int8(model, np.concatenate(calibration_frames), settings)
    box_head_at_peaks(int8_model)
    stem_rewritten = stem_on_interleaved_columns(int8_model)
    drop_non_json_metadata(int8_model)
    onnx.checker.check_model(int8_model, full_check=True)
    return int8_model, description | {"box_head_at_peaks": True, "stem_on_interleaved_columns": stem_rewritten}


def int8_path(fp32_path: Path) -> Path:
    """Where a locator file's int8 twin goes: locator.onnx -> locator.int8.onnx, as model.onnx -> model.int8.onnx."""
    return fp32_path.with_name(f"{fp32_path.stem}.int8.onnx")


def _network_inputs(scenes: Iterable[Scene], locator: LearnedLocator) -> list[np.ndarray]:
    """The scenes as the network takes them, cut to the smallest among them (calibration stacks them in one batch)."""
    frames = [network_input(scene.image_bgr, locator.geometry) for scene in scenes]
    height, width = min(frame.shape[1] for frame in frames), min(frame.shape[2] for frame in frames)
    return [frame[:, :height, :width] for frame in frames]


def write_int8_twin(fp32_path: Path, scenes_path: str, calibration_names: list[str], measured_names: list[str],
                    measured_note: str = "") -> dict:
    """Quantize the locator file at `fp32_path` on the scenes of `scenes_path` named in `calibration_names`, write its twin
    beside it, and compare the two on the scenes named in `measured_names` (none of them a calibration scene): centre
    scores, proposal recall and time per frame. Scenes are decoded as they are read, never all held. Returns the comparison.

    `measured_note`: what the card should say of the measured scenes (that the locator learnt from them, say).
    """
    if not calibration_names or not measured_names or set(calibration_names) & set(measured_names):
        raise ValueError(f"{scenes_path}: an int8 locator needs scenes to calibrate on and others to measure on. "
                         f"Received: {len(calibration_names)} and {len(measured_names)}")
    fp32 = LearnedLocator(fp32_path, threads=1)
    print(f"quantizing {fp32_path} on {len(calibration_names)} scenes of {scenes_path}", file=sys.stderr)
    calibration = _network_inputs(read_scenes(scenes_path, set(calibration_names)), fp32)
    int8_model, description = quantize_locator(onnx.load(fp32_path), calibration)
    props = {entry.key: json.loads(entry.value) for entry in int8_model.metadata_props}
    props["edgesight.provenance"] = props.get("edgesight.provenance", {}) | {
        "quantization": description, "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "onnxruntime": ort.__version__, "onnx": onnx.__version__, "source_model": fp32_path.name,
        "source_sha256": hashlib.sha256(fp32_path.read_bytes()).hexdigest(), "calibration_data": scenes_path}
    del int8_model.metadata_props[:]
    for key, value in props.items():
        int8_model.metadata_props.add(key=key, value=json.dumps(value))
    path = int8_path(fp32_path)
    save_model(int8_model, path)

    int8 = LearnedLocator(path, threads=1)
    locators = {"fp32": fp32, "int8": int8}
    measured = set(measured_names)
    difference = max(float(np.max(np.abs(_sigmoid(fp32.output(image).centre_logits) - _sigmoid(int8.output(image).centre_logits))))
                     for image in (network_input(scene.image_bgr, fp32.geometry) for scene in read_scenes(scenes_path, measured)))
    recall = {name: proposal_recall(locator.output, read_scenes(scenes_path, measured), fp32.geometry)
              for name, locator in locators.items()}
    frame = next(read_scenes(scenes_path, measured)).image_bgr
    timings = interleaved_latency({"fp32": lambda: fp32.propose(frame), "int8": lambda: int8.propose(frame)},
                                  TIMED_RUNS * 2, warmup=3, block=3)
    operating = {name: next((row for row in rows if row["min_score"] == fp32.min_score), None) for name, rows in recall.items()}
    report = {
        "file": str(path), "bytes": path.stat().st_size, "quantization": description, "weights": weights_text(description),
        "calibration_scenes": len(calibration_names), "measured_scenes": len(measured_names), "scenes": scenes_path,
        "measured_note": measured_note,
        "max_centre_score_difference": round(difference, 4), "min_score": fp32.min_score,
        "proposal_recall": recall, "operating_point": operating,
        "ms_per_frame_1_thread": {name: round(figures["median_us"] / 1000, 2) for name, figures in timings.items()},
        "frame_size": [frame.shape[1], frame.shape[0]], "machine": machine_description(),
    }
    times = report["ms_per_frame_1_thread"]
    print(f"wrote {path} ({report['bytes'] / 1024:.0f} KiB): {times['int8']} against {times['fp32']} ms per frame "
          f"(1 thread, side by side); centre scores within {difference:.3f} of the float file", file=sys.stderr)
    fp32_recall, int8_recall = (operating[name]["recall_24px_and_more"] if operating[name] else None for name in ("fp32", "int8"))
    if None not in (fp32_recall, int8_recall) and int8_recall < fp32_recall:
        print(f"warning: at min centre score {fp32.min_score} the int8 locator's proposals cover {int8_recall:.1%} of the "
              f"signs of {len(measured_names)} scenes, against {fp32_recall:.1%} for the float file: measure both with "
              f"eval-frames before choosing", file=sys.stderr)
    return report


def _sigmoid(logits: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-logits))


def int8_card_section(report: dict) -> str:
    """The model card's section on the int8 twin."""
    sweep = "\n".join(f"| {fp32['min_score']} | {fp32['recall_24px_and_more']} | {int8['recall_24px_and_more']} | "
                      f"{fp32['proposals_per_frame']} | {int8['proposals_per_frame']} |"
                      for fp32, int8 in zip(report["proposal_recall"]["fp32"], report["proposal_recall"]["int8"]))
    width, height = report["frame_size"]
    times = report["ms_per_frame_1_thread"]
    peaks = (", and its box head run only at the centre logits' best peaks after calibration, which changes no value "
             "(`edgesight.export.peak_boxes`)" if report["quantization"].get("box_head_at_peaks") else "")
    if report["quantization"].get("stem_on_interleaved_columns"):
        peaks += ("; its stem reads the image without a transpose, rewritten so after calibration "
                  "(`edgesight.export.simplify.stem_on_interleaved_columns`)")
    return f"""## int8 twin

`{Path(report['file']).name}`, {report['bytes'] / 1024:.0f} KiB: QDQ, per-channel {report['weights']}, uint8 activations,
min-max ranges from {report['calibration_scenes']} scenes of `{report['scenes']}`; everything before the first pointwise
convolution (the stem and the stride-2 depthwise convolution) kept float (`edgesight.export.locator_int8`){peaks}. Same input,
output and operating point (min centre score {report['min_score']}); centre scores within
{report['max_centre_score_difference']} of the float file on {report['measured_scenes']} other scenes of the same data.
Time per {width}×{height} frame, 1 thread, side by side, downscale and decoding included: {times['int8']} ms against
{times['fp32']} ms float ({report['machine']}).

Made by `edgesight export {Path(report['file']).name.replace('.int8', '')} --data {report['scenes']}` (from a
training run, `edgesight export RUN_DIR` makes both files). Proposal recall on those {report['measured_scenes']} scenes{report['measured_note']} (signs of 24 px or more covered at IoU ≥ 0.5):

| min centre score | recall float | recall int8 | proposals per frame, float | int8 |
|---|---|---|---|---|
{sweep}
"""
