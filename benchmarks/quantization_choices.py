"""Measure int8 quantization choices on exported training runs, one choice changed at a time.

For each run folder (already through `edgesight export`): quantize its fp32 file with the export
defaults and with each alternative (calibration method, calibration set size and class balance,
per-tensor weights, QOperator format, S8S8 types, weight bits), score every int8 file on the official test set,
and time them all side by side (interleaved, batch 1, per region, one thread and all cores).
The export defaults are the choices this table supports; the README keeps a copy of it.

    python benchmarks/quantization_choices.py RUN_DIR... --out benchmarks/results/DATE-quantization
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
from edgesight.export.config import ExportConfig
from edgesight.export.convert import save_model, stamp_metadata
from edgesight.export.parity import parity
from edgesight.export.pipeline import calibration_images
from edgesight.export.quantize import (
    CALIBRATION_METHODS,
    INT8_TYPES,
    QUANT_FORMATS,
    WEIGHT_BITS,
    quantize_int8,
    settings_from_choices,
)
from edgesight.runtime.bench import machine_description, measure_latency
from edgesight.runtime.classifier import Classifier
from edgesight.runtime.cpu import int8_outlook
from edgesight.runtime.datasets import preprocess_regions
from edgesight.runtime.files import write_json_atomic, write_text_atomic
from edgesight.runtime.metadata import parse_metadata
from edgesight.runtime.tasks import task_of_run, test_set_name

DEFAULTS = {"calibration_method": ExportConfig.calibration_method, "quant_format": ExportConfig.quant_format,
            "int8_types": ExportConfig.int8_types, "per_tensor": ExportConfig.per_tensor, "weight_bits": ExportConfig.weight_bits,
            "images": ExportConfig.calibration_images, "balanced": ExportConfig.calibration_balance == "balanced"}
# Each alternative changes one thing from the defaults.
CHOICES = {
    "defaults": {},
    **{f"{method} calibration": {"calibration_method": method}
       for method in CALIBRATION_METHODS if method != DEFAULTS["calibration_method"]},
    "128 calibration images": {"images": 128},
    "2048 calibration images": {"images": 2048},
    f"{'random (unbalanced)' if DEFAULTS['balanced'] else 'class-balanced'} calibration images": {"balanced": not DEFAULTS["balanced"]},
    f"{'per-tensor' if not DEFAULTS['per_tensor'] else 'per-channel'} weights": {"per_tensor": not DEFAULTS["per_tensor"]},
    **{f"{fmt} format": {"quant_format": fmt} for fmt in QUANT_FORMATS if fmt != DEFAULTS["quant_format"]},
    **{f"{types} types": {"int8_types": types} for types in INT8_TYPES if types != DEFAULTS["int8_types"]},
    **{f"{bits}-bit weights": {"weight_bits": bits} for bits in WEIGHT_BITS if bits != DEFAULTS["weight_bits"]},
}


def _probabilities(path: Path, images_nhwc: np.ndarray) -> np.ndarray:
    return Classifier(path, max_batch=512).probabilities(images_nhwc)


def measure_run(run_dir: Path, folder: Path, repeats: int) -> dict:
    run_config = json.loads((run_dir / "config.json").read_text())
    data = run_config["train"]["data"]
    task = task_of_run(run_config["train"], data)
    fp32_path = run_dir / "model.onnx"
    fp32_proto = onnx.load(fp32_path)
    metadata = parse_metadata({entry.key: entry.value for entry in fp32_proto.metadata_props}, str(fp32_path))
    regions = task.load(data, "test")
    test_nhwc, truth = preprocess_regions(regions, metadata.preprocess), regions.labels
    fp32 = _probabilities(fp32_path, test_nhwc)
    calibration_sets: dict[tuple[int, bool], np.ndarray] = {}
    files, rows = {"fp32": fp32_path}, []
    for name, change in CHOICES.items():
        choice = DEFAULTS | change
        count, balanced = key = (choice["images"], choice["balanced"])
        if key not in calibration_sets:
            calibration_sets[key] = calibration_images(run_config, task, data, count, ExportConfig.seed, balanced)
        settings = settings_from_choices(choice["calibration_method"], choice["quant_format"], choice["int8_types"], choice["per_tensor"],
                                         choice["weight_bits"])
        print(f"{run_dir.name}: quantizing with {name}", file=sys.stderr, flush=True)
        int8_proto, description = quantize_int8(fp32_proto, calibration_sets[key], settings)
        path = folder / f"{run_dir.name}-{len(files)}.int8.onnx"
        save_model(stamp_metadata(int8_proto, replace(metadata, quantization=description)), path)
        section = parity(metadata.labels, truth, fp32, fp32, _probabilities(path, test_nhwc))
        files[name] = path
        rows.append({"choice": name, "top1": section["top1"]["onnx_int8"],
                     "drop_pp": round((section["top1"]["onnx_fp32"] - section["top1"]["onnx_int8"]) * 100, 3),
                     "argmax_agreement": section["argmax_agreement"]["onnx_fp32_int8"],
                     "p99_image_max_abs": section["output_difference"]["onnx_fp32_int8"]["p99_image_max_abs"],
                     "bytes": path.stat().st_size})
    print(f"{run_dir.name}: timing {len(files)} files interleaved", file=sys.stderr, flush=True)
    latency = {(Path(row["file"]), row["threads"]): row for row in measure_latency([str(p) for p in files.values()], repeats, 200)}
    threads = sorted({count for _, count in latency})
    fp32_row = {"choice": "fp32", "top1": float(np.mean(fp32.argmax(1) == truth)), "bytes": fp32_path.stat().st_size}
    rows.insert(0, fp32_row)  # timed in the same rounds as the int8 files
    for row in rows:
        row["median_us"] = {str(count): latency[(files[row["choice"]], count)]["median_us"] for count in threads}
    return {"run": str(run_dir), "task": task.name, "test_set": test_set_name(task, data, len(truth)),
            "architecture": run_config["train"]["model"], "threads": threads, "rows": rows}


def format_table(report: dict) -> str:
    lines = [f"Machine: {report['machine']}. int8 outlook: {report['int8_outlook']['expectation']}.",
             f"Each int8 row changes one choice from the export defaults ({report['defaults']}). "
             "Latency: one region of a 640×480 frame (crop, resize, inference, top-1), "
             f"batch 1, median of {report['repeats']} interleaved runs.", ""]
    for result in report["runs"]:
        one, many = (str(count) for count in result["threads"])
        lines += [f"### {Path(result['run']).name} ({result['architecture']}), {result['test_set']}", "",
                  f"| choice | top-1 | drop vs fp32 (pp) | same top-1 as fp32 | p99 per-image max prob. diff | µs, {one} thread | µs, {many} threads | KiB |",
                  "|---|---|---|---|---|---|---|---|"]
        for row in result["rows"]:
            int8_only = (f"{row['drop_pp']:+.2f} | {row['argmax_agreement']:.2%} | {row['p99_image_max_abs']:.3f}"
                         if "drop_pp" in row else "— | — | —")
            lines.append(f"| {row['choice']} | {row['top1']:.2%} | {int8_only} | {row['median_us'][one]:.1f} | "
                         f"{row['median_us'][many]:.1f} | {row['bytes'] / 1024:.0f} |")
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="exported training run folders")
    parser.add_argument("--out", type=Path, required=True, help="folder for quantization.md and quantization.json")
    parser.add_argument("--repeats", type=int, default=2000, help="timed batch-1 runs per file and thread setting")
    arguments = parser.parse_args()
    missing = [str(run) for run in arguments.runs if not (run / "model.onnx").is_file() or not (run / "config.json").is_file()]
    if missing:
        parser.error(f"not exported run folders (model.onnx and config.json expected): {', '.join(missing)}")
    with tempfile.TemporaryDirectory(prefix="edgesight-quant-choices-") as scratch:
        runs = [measure_run(run, Path(scratch), arguments.repeats) for run in arguments.runs]
    defaults = (f"{DEFAULTS['calibration_method']}, {DEFAULTS['images']} {'class-balanced' if DEFAULTS['balanced'] else 'random'} "
                f"calibration images, {'per-tensor' if DEFAULTS['per_tensor'] else 'per-channel'} weights, "
                f"{DEFAULTS['quant_format']}, {DEFAULTS['int8_types']}, {DEFAULTS['weight_bits']}-bit weights")
    report = {"machine": machine_description(), "int8_outlook": int8_outlook().to_json(), "defaults": defaults,
              "repeats": arguments.repeats, "runs": runs}
    arguments.out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(arguments.out / "quantization.json", report)
    write_text_atomic(arguments.out / "quantization.md", format_table(report) + "\n")
    print(format_table(report))


if __name__ == "__main__":
    main()
