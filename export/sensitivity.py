"""Accuracy-aware quantization: per-node int8 sensitivity, and the search that keeps the worst nodes float.

onnxruntime's QDQ debugging utilities run the float and the int8 (QDQ) model on the same images and
keep every intermediate tensor. Comparing each tensor across the two models gives its signal-to-
quantization-noise ratio (SQNR, dB): how much error has built up by that point. A node's
sensitivity is the SQNR it loses, from the tensor it reads to the tensor it writes: the node whose
own quantization does the most damage comes first, wherever it sits in the network.
"""
from __future__ import annotations

import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
from edgesight.runtime.bench import measure_latency
from onnxruntime.quantization import qdq_loss_debug

from .convert import save_model

# Calibration images on which per-node sensitivity is ranked: enough for stable SQNR figures, few
# enough that every intermediate tensor of both models fits in memory.
SENSITIVITY_IMAGES = 64
# Nodes that only move or pick values: they add no quantization error of their own.
DATA_MOVEMENT_OPS = {"MaxPool", "Reshape", "Transpose", "Flatten", "Squeeze", "Unsqueeze", "Concat", "Identity"}
_DEQUANTIZED = "_DequantizeLinear_Output"


class _Batches(qdq_loss_debug.CalibrationDataReader):
    def __init__(self, input_name: str, images_nhwc: np.ndarray, size: int = 16):
        self._batches = iter([{input_name: images_nhwc[i : i + size]} for i in range(0, len(images_nhwc), size)])

    def get_next(self):
        return next(self._batches, None)


def _activations(model: onnx.ModelProto, images_nhwc: np.ndarray, folder: Path, name: str) -> dict:
    plain, augmented = folder / f"{name}.onnx", folder / f"{name}.all-outputs.onnx"
    onnx.save(model, plain)
    qdq_loss_debug.modify_model_output_intermediate_tensors(plain, augmented)
    return qdq_loss_debug.collect_activations(str(augmented), _Batches(model.graph.input[0].name, images_nhwc),
                                              execution_providers=["CPUExecutionProvider"])


def rank_nodes(fp32_model: onnx.ModelProto, qdq_model: onnx.ModelProto, images_nhwc: np.ndarray) -> list[dict]:
    """Quantized nodes of `qdq_model`, most sensitive first: name, op type and the SQNR (dB) it loses."""
    with tempfile.TemporaryDirectory(prefix="edgesight-sensitivity-") as scratch:
        float_activations = _activations(fp32_model, images_nhwc, Path(scratch), "fp32")
        qdq_activations = _activations(qdq_model, images_nhwc, Path(scratch), "int8")
    matched = qdq_loss_debug.create_activation_matching(qdq_activations, float_activations)
    # Each quantized tensor as its readers see it (after its Quantize/Dequantize pair) against the float model's.
    sqnr = {tensor: errors["xmodel_err"] for tensor, errors in qdq_loss_debug.compute_activation_error(matched).items()
            if "xmodel_err" in errors}
    # Tensors left float in the int8 model (the logits the softmax reads) have no pair: compare them as they are.
    for tensor in (float_activations.keys() & qdq_activations.keys()) - sqnr.keys():
        sqnr[tensor] = qdq_loss_debug.compute_signal_to_quantization_noice_ratio(float_activations[tensor], qdq_activations[tensor])
    ranked = []
    for node in qdq_model.graph.node:
        if node.op_type in DATA_MOVEMENT_OPS or node.op_type in ("QuantizeLinear", "DequantizeLinear"):
            continue
        read = [name[: -len(_DEQUANTIZED)] for name in node.input if name.endswith(_DEQUANTIZED)]
        read = [name for name in read if name in sqnr]
        if not read or node.output[0] not in sqnr:
            continue  # not a quantized node, or its tensors were not matched across the models
        sqnr_in = min(sqnr[name] for name in read)
        ranked.append({"node": node.name, "op_type": node.op_type, "sqnr_in_db": round(float(sqnr_in), 2),
                       "sqnr_out_db": round(float(sqnr[node.output[0]]), 2),
                       "loss_db": round(float(sqnr_in - sqnr[node.output[0]]), 2)})
    return sorted(ranked, key=lambda entry: entry["loss_db"], reverse=True)


def keep_sensitive_nodes_float(fp32_proto, first: tuple, settings, calibration_nhwc: np.ndarray, quantize_and_measure,
                               fp32_accuracy: float, gate_pp: float, max_float_nodes: int) -> tuple:
    """Accuracy-aware quantization: keep the most sensitive nodes float, one more at a time, until the gate holds.

    `first` is the all-int8 attempt: (model, description, evaluation), as `quantize_and_measure(settings)`
    returns them. Sensitivity is measured on
    calibration images, never test images; the test set decides only where to stop, as the gate
    itself does. Returns the last attempt and a JSON-ready account of the search with its latency cost.
    """
    if settings.format != "QDQ":
        return first, {"skipped": "per-node sensitivity needs --quant-format QDQ"}
    print("int8 fails the gate: ranking nodes by quantization sensitivity", file=sys.stderr)
    ranking_images = calibration_nhwc[:SENSITIVITY_IMAGES]
    ranking = rank_nodes(fp32_proto, first[0], ranking_images)
    attempt, steps, kept = first, [], []
    for entry in ranking[: max_float_nodes]:
        kept.append(entry["node"])
        print(f"keeping {', '.join(kept)} in float", file=sys.stderr)
        attempt = quantize_and_measure(replace(settings, keep_float_nodes=tuple(kept)))
        drop = (fp32_accuracy - attempt[2].accuracy) * 100
        steps.append({"kept_float": list(kept), "test_accuracy": attempt[2].accuracy, "drop_pp": round(drop, 3)})
        if drop <= gate_pp:
            break
    with tempfile.TemporaryDirectory(prefix="edgesight-accuracy-aware-") as scratch:
        paths = [Path(scratch) / "all-int8.onnx", Path(scratch) / "with-float-nodes.onnx"]
        save_model(first[0], paths[0])
        save_model(attempt[0], paths[1])
        median_us = {Path(row["file"]).name: row["median_us"] for row in measure_latency([str(path) for path in paths], 1000, 100)
                     if row["threads"] == 1}
    return attempt, {"ranking_images": int(len(ranking_images)), "ranking": ranking, "steps": steps, "kept_float": kept,
                     "latency_cost_us_1_thread": round(median_us["with-float-nodes.onnx"] - median_us["all-int8.onnx"], 1)}
