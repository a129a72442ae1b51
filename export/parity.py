"""What export changed: top-1 per model, agreement, per-class accuracy deltas and output differences.

Compares the probabilities of the Keras model, the ONNX fp32 file and the ONNX int8 file on the
same test images, so a user sees which classes int8 costs and how far its confidences moved.
"""
from __future__ import annotations

import numpy as np

# How many of the classes that lose most under int8 the report names.
WORST_CLASSES = 5


def _output_difference(probabilities: np.ndarray, reference: np.ndarray) -> dict:
    """Per-element and per-image differences; the per-image maximum is what moves a confidence threshold."""
    difference = np.abs(probabilities - reference)
    per_image = difference.max(axis=1)
    return {
        "max_abs": float(difference.max()),
        "mean_abs": float(difference.mean()),
        "p99_image_max_abs": float(np.percentile(per_image, 99)),
        "row_sum_max_deviation": float(np.max(np.abs(probabilities.sum(axis=1) - 1.0))),
    }


def per_class_accuracy(predicted: np.ndarray, truth: np.ndarray, num_classes: int) -> np.ndarray:
    """Accuracy per true class; NaN for a class absent from `truth`."""
    correct = np.bincount(truth, weights=(predicted == truth), minlength=num_classes)
    counts = np.bincount(truth, minlength=num_classes)
    with np.errstate(invalid="ignore", divide="ignore"):
        return correct / counts


def parity(labels: tuple[str, ...], truth: np.ndarray, keras: np.ndarray, fp32: np.ndarray, int8: np.ndarray) -> dict:
    """The parity section of the export report, from each model's probabilities on the same images."""
    outputs = {"keras": keras, "onnx_fp32": fp32, "onnx_int8": int8}
    predicted = {name: probabilities.argmax(axis=1) for name, probabilities in outputs.items()}
    per_class = {name: per_class_accuracy(guess, truth, len(labels)) for name, guess in predicted.items()}
    counts = np.bincount(truth, minlength=len(labels))
    delta = per_class["onnx_int8"] - per_class["onnx_fp32"]
    present = np.flatnonzero(counts)
    losers = [int(index) for index in present[np.argsort(delta[present], kind="stable")] if delta[index] < 0][:WORST_CLASSES]
    return {
        "images": int(len(truth)),
        "top1": {name: float(np.mean(guess == truth)) for name, guess in predicted.items()},
        "argmax_agreement": {
            "keras_onnx_fp32": float(np.mean(predicted["keras"] == predicted["onnx_fp32"])),
            "onnx_fp32_int8": float(np.mean(predicted["onnx_fp32"] == predicted["onnx_int8"])),
        },
        "output_difference": {
            "keras_onnx_fp32": _output_difference(fp32, keras),
            "onnx_fp32_int8": _output_difference(int8, fp32),
        },
        "per_class": [
            {"class": int(index), "label": labels[index], "images": int(counts[index]),
             "onnx_fp32": float(per_class["onnx_fp32"][index]), "onnx_int8": float(per_class["onnx_int8"][index]),
             "delta_pp": round(float(delta[index]) * 100, 3)}
            for index in present
        ],
        "classes_losing_most": [
            {"class": index, "label": labels[index], "images": int(counts[index]), "delta_pp": round(float(delta[index]) * 100, 3)}
            for index in losers
        ],
    }


def parity_markdown(section: dict) -> list[str]:
    """Report lines: top-1 per model, agreement, output differences and the classes int8 costs most."""
    top1, agreement, difference = section["top1"], section["argmax_agreement"], section["output_difference"]
    lines = [
        f"## Parity on {section['images']} test images", "",
        "| | Keras | ONNX fp32 | ONNX int8 |", "|---|---|---|---|",
        f"| top-1 | {top1['keras'] * 100:.2f}% | {top1['onnx_fp32'] * 100:.2f}% | {top1['onnx_int8'] * 100:.2f}% |", "",
        "| comparison | argmax agreement | max abs diff | mean abs diff | p99 of per-image max | row sums off by |",
        "|---|---|---|---|---|---|",
    ]
    for key, name in (("keras_onnx_fp32", "Keras vs ONNX fp32"), ("onnx_fp32_int8", "ONNX fp32 vs int8")):
        figures = difference[key]
        lines.append(f"| {name} | {agreement[key] * 100:.2f}% | {figures['max_abs']:.2e} | {figures['mean_abs']:.2e} | "
                     f"{figures['p99_image_max_abs']:.2e} | {figures['row_sum_max_deviation']:.1e} |")
    losers = section["classes_losing_most"]
    lines += ["", "Classes int8 costs most (per-class top-1, int8 minus fp32): "
              + ("; ".join(f"{entry['label']} ({entry['delta_pp']:+.2f} pp of {entry['images']} images)" for entry in losers)
                 if losers else "none loses accuracy") + "."]
    return lines
