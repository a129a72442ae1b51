"""`edgesight export`: run folder -> model.onnx (fp32) + model.int8.onnx, checked, measured, stamped."""
from __future__ import annotations

import hashlib
import json
import sys
import time
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from edgesight.runtime.classifier import Classifier
from edgesight.runtime.cpu import int8_outlook
from edgesight.runtime.datasets import LabelledRegions, preprocess_regions
from edgesight.runtime.errors import EdgesightError
from edgesight.runtime.evaluate import evaluate_batch
from edgesight.runtime.files import write_json_atomic, write_text_atomic
from edgesight.runtime.metadata import ModelMetadata
from edgesight.runtime.preprocess import PreprocessSpec
from edgesight.runtime.shipped import is_model_file, resolve_model
from edgesight.runtime.tasks import task_of_run, test_set_name

from .config import ExportConfig
from .convert import SUPPORTED_OPSETS, keras_to_onnx, save_model, stamp_metadata
from .exact_int8 import exact_int8_probabilities, int8_accuracy_text
from .ort_format import write_ort_models
from .parity import parity, parity_markdown
from .quantize import quantize_int8, settings_from_choices, weights_text
from .sensitivity import keep_sensitive_nodes_float
from .simplify import simplify


class ExportError(EdgesightError, RuntimeError):
    """The run cannot be exported, or the exported model fails a check."""


def _read_run(run_dir: Path) -> tuple[dict, dict]:
    for name in ("model.keras", "config.json"):
        if not (run_dir / name).is_file():
            raise ExportError(f"{run_dir}: {name} missing; is this a finished `edgesight train` run folder?{_unfinished(run_dir)}")
    config = json.loads((run_dir / "config.json").read_text())
    train_report_path = run_dir / "report.json"
    train_report = json.loads(train_report_path.read_text()) if train_report_path.is_file() else {}
    return config, train_report


def _unfinished(run_dir: Path) -> str:
    """What to do about a run that stopped before its last epoch ("" for any other folder): its training's state
    file (train/checkpoint.py) says how far it got."""
    try:
        state = json.loads((run_dir / "state.json").read_text())
        config = json.loads((run_dir / "config.json").read_text())
        done, total = int(state["epochs_done"]), int(state["total_epochs"])
    except (OSError, ValueError, KeyError, TypeError):
        return ""
    command = "train-locator" if config.get("kind") == "locator" else "train"
    return (f" Its training stopped after epoch {done} of {total}; finish it with "
            f"`edgesight {command} --resume --run-dir {run_dir}`, then export it.")


def calibration_indices(labels: np.ndarray, allowed: np.ndarray, count: int, seed: int, balanced: bool = True) -> np.ndarray:
    """A seeded sample of `count` indices drawn from `allowed`: class-balanced, or plainly random."""
    rng = np.random.default_rng(seed)
    if not balanced:
        return np.sort(rng.permutation(allowed)[:count])
    classes = np.unique(labels[allowed])
    per_class = max(1, count // len(classes))
    chosen = [rng.permutation(allowed[labels[allowed] == c])[:per_class] for c in classes]
    picked = np.concatenate(chosen)
    rest = np.setdiff1d(allowed, picked)
    top_up = rng.permutation(rest)[: max(0, count - len(picked))]
    return np.sort(np.concatenate([picked, top_up]))[:count]


def calibration_images(run_config: dict, task, data: str, count: int, seed: int, balanced: bool = True) -> np.ndarray:
    """The int8 calibration set: preprocessed training-split images, never validation or test ones."""
    spec = PreprocessSpec(**run_config["preprocess"])
    train_regions: LabelledRegions = task.load(data, "train", skip_bad_images=run_config["train"].get("skip_bad_images", False))
    validation_groups = set(run_config["split"]["validation_groups"])
    training_only = np.array([i for i, group in enumerate(train_regions.groups) if group not in validation_groups])
    chosen = calibration_indices(train_regions.labels, training_only, count, seed, balanced)
    return preprocess_regions(train_regions.subset(chosen), spec)


def _provenance(source: Path) -> dict:
    import keras
    import onnx
    import onnxruntime
    import tensorflow as tf
    import tf2onnx

    return {
        "keras": keras.__version__, "tensorflow": tf.__version__, "tf2onnx": tf2onnx.__version__,
        "onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "source_model": source.name,
        "source_sha256": hashlib.sha256(source.read_bytes()).hexdigest(),
    }


def _measure(model_proto, metadata: ModelMetadata, path: Path, test_nhwc: np.ndarray, labels: np.ndarray):
    """Save with metadata, load through the runtime as a user would, and score on the test set."""
    save_model(stamp_metadata(model_proto, metadata), path)
    return evaluate_batch(Classifier(path, max_batch=512), test_nhwc, labels)


def export_run(config: ExportConfig) -> dict:
    """Convert, check, quantize and measure a training run; returns the report.

    Raises:
        ExportError: missing run files, a failed parity check, or int8 below the accuracy gate.
    """
    run_dir = Path(config.run_dir)
    try:
        settings = settings_from_choices(config.calibration_method, config.quant_format, config.int8_types, config.per_tensor,
                                         config.weight_bits)
    except ValueError as error:
        raise ExportError(str(error)) from None
    if config.max_float_nodes < 0:
        raise ExportError(f"--max-float-nodes must be 0 (off) or more. Received: {config.max_float_nodes}")
    if config.calibration_images < 1:
        raise ExportError(f"--calibration-images must be 1 or more. Received: {config.calibration_images}")
    if config.opset not in SUPPORTED_OPSETS:
        raise ExportError(f"--opset must be one of {', '.join(map(str, SUPPORTED_OPSETS))}, the opsets export is checked "
                          f"with (tf2onnx writes none above 18). Received: {config.opset}")
    if config.card_latency_runs < 50:
        raise ExportError(f"--card-latency-runs must be 50 or more. Received: {config.card_latency_runs}")
    if config.calibration_balance not in ("balanced", "random"):
        raise ExportError(f"--calibration-balance must be balanced or random. Received: {config.calibration_balance!r}")
    if is_model_file(config.run_dir):
        if config.locator_min_score is not None:
            raise ExportError(f"--locator-min-score is for locator runs; {config.run_dir} is a file, whose twin keeps its "
                              f"operating point. Received: {config.locator_min_score}")
        from .locator import export_locator_file

        return export_locator_file(resolve_model(config.run_dir), config.data)
    import keras  # not before: a locator file's twin needs no TensorFlow, which takes seconds to load

    run_config, train_report = _read_run(run_dir)
    is_locator = run_config.get("kind") == "locator"
    if config.locator_min_score is not None and not (is_locator and 0.0 < config.locator_min_score < 1.0):
        raise ExportError(f"--locator-min-score must be in (0, 1) and is for sign-locator runs only. Received: "
                          f"{config.locator_min_score} for {run_dir} ({'a locator' if is_locator else 'a classifier'} run)")
    if is_locator:
        from .locator import export_locator

        return export_locator(run_dir, run_config, train_report, config.data, config.opset, _provenance(run_dir / "model.keras"),
                              config.locator_min_score)
    data = config.data or run_config["train"]["data"]
    task = task_of_run(run_config["train"], data)
    spec = PreprocessSpec(**run_config["preprocess"])  # as trained, input size included
    started = time.monotonic()

    print(f"converting {run_dir / 'model.keras'} to ONNX (opset {config.opset})", file=sys.stderr)
    keras_model = keras.models.load_model(run_dir / "model.keras")
    fp32_proto = keras_to_onnx(keras_model, config.opset)
    simplifications = simplify(fp32_proto, keras_model)

    test_regions: LabelledRegions = task.load(data, "test", skip_bad_images=run_config["train"].get("skip_bad_images", False))
    test_nhwc = preprocess_regions(test_regions, spec)
    calibration_nhwc = calibration_images(run_config, task, data, config.calibration_images, config.seed,
                                          balanced=config.calibration_balance == "balanced")

    metadata = ModelMetadata(task=task.name, labels=tuple(run_config["labels"]), input_name="image", preprocess=spec,
                             provenance=_provenance(run_dir / "model.keras") | {
                                 "train_options": run_config["train"],
                                 # What the weights cost to train, kept for runs that later start from this file.
                                 "train_seconds_total": train_report.get("train_seconds_total", train_report["train_seconds"])})
    fp32_path, int8_path = run_dir / "model.onnx", run_dir / "model.int8.onnx"
    keras_probabilities = keras_model.predict(test_nhwc, batch_size=256, verbose=0)

    # Measure each file after writing it, then write it again with its own figures in the metadata.
    fp32 = _measure(fp32_proto, metadata, fp32_path, test_nhwc, test_regions.labels)
    max_difference = float(np.max(np.abs(fp32.probabilities - keras_probabilities)))
    if max_difference > 1e-4:
        raise ExportError(f"{fp32_path}: ONNX fp32 differs from Keras by {max_difference:.2e} (> 1e-4) on test images.")
    dataset_name = test_set_name(task, data, fp32.images)
    fp32_metadata = replace(metadata, metrics={"test_accuracy": fp32.accuracy, "dataset": dataset_name})
    save_model(stamp_metadata(fp32_proto, fp32_metadata), fp32_path)

    candidate_path = run_dir / "model.int8.candidate.onnx"

    def quantize_and_measure(with_settings):
        proto, description = quantize_int8(fp32_proto, calibration_nhwc, with_settings)
        return proto, description, _measure(proto, replace(metadata, quantization=description), candidate_path,
                                            test_nhwc, test_regions.labels)

    print(f"quantizing with {len(calibration_nhwc)} calibration images from the training split", file=sys.stderr)
    int8_proto, quantization, int8 = quantize_and_measure(settings)
    drop_pp = (fp32.accuracy - int8.accuracy) * 100
    if drop_pp > config.gate_pp and config.max_float_nodes > 0:
        (int8_proto, quantization, int8), search = keep_sensitive_nodes_float(
            fp32_proto, (int8_proto, quantization, int8), settings, calibration_nhwc, quantize_and_measure, fp32.accuracy,
            config.gate_pp, config.max_float_nodes)
        drop_pp = (fp32.accuracy - int8.accuracy) * 100
        quantization["accuracy_aware"] = search
    quantization |= {"calibration_seed": config.seed, "calibration_balance": config.calibration_balance,
                     "test_accuracy_drop_pp": round(drop_pp, 3)}
    int8_metadata = replace(metadata, metrics={"test_accuracy": int8.accuracy, "dataset": dataset_name},
                            quantization=quantization)
    save_model(stamp_metadata(int8_proto, int8_metadata), candidate_path)

    parity_section = parity(tuple(run_config["labels"]), test_regions.labels, keras_probabilities,
                            fp32.probabilities, int8.probabilities)
    exact_predicted = exact_int8_probabilities(candidate_path, test_nhwc).argmax(axis=1)
    exact_int8 = {"test_accuracy": float(np.mean(exact_predicted == test_regions.labels)),
                  "same_top1_as_this_cpu": float(np.mean(exact_predicted == int8.predicted)),
                  "this_cpu": int8_outlook().to_json()}
    report = {
        "run_dir": str(run_dir), "task": task.name, "test_dataset": dataset_name,
        "keras_test_accuracy": parity_section["top1"]["keras"],
        "fp32": {"file": fp32_path.name, "test_accuracy": fp32.accuracy, "bytes": fp32_path.stat().st_size},
        "int8": {"file": int8_path.name, "test_accuracy": int8.accuracy, "bytes": candidate_path.stat().st_size,
                 "exact_arithmetic": exact_int8},
        "int8_drop_pp": round(drop_pp, 3), "gate_pp": config.gate_pp, "gate_passed": drop_pp <= config.gate_pp,
        "keras_vs_onnx_fp32_max_abs_difference": max_difference, "parity": parity_section,
        "quantization": quantization, "opset": config.opset, "graph_simplifications": simplifications,
    }
    if report["gate_passed"]:
        candidate_path.replace(int8_path)
        print("writing ORT-format copies for onnxruntime minimal builds", file=sys.stderr)
        report["ort_format"] = write_ort_models([fp32_path, int8_path], test_nhwc)
    else:
        report["int8"]["file"] = candidate_path.name
    report["export_seconds"] = round(time.monotonic() - started, 1)
    write_json_atomic(run_dir / "export_report.json", report)
    write_text_atomic(run_dir / "export_report.md", _markdown(report))
    if not report["gate_passed"]:
        raise ExportError(
            f"{candidate_path}: int8 test accuracy {int8.accuracy:.4f} is {drop_pp:.2f} points below fp32 "
            f"{fp32.accuracy:.4f}, more than the gate of {config.gate_pp} points"
            + (f" even with {len(kept)} node(s) kept float ({', '.join(kept)})" if (kept := quantization.get("accuracy_aware", {}).get("kept_float")) else "")
            + f"; kept as a candidate, not as {int8_path.name}. See {run_dir / 'export_report.md'}."
        )
    from .card import write_model_card

    write_model_card(run_dir, run_config, train_report, report, config.card_latency_runs)
    print(f"fp32 {fp32.accuracy:.4f}, int8 {int8.accuracy:.4f} (drop {drop_pp:.2f} pp) on {dataset_name}; "
          f"wrote {fp32_path} and {int8_path}")
    return report


def _accuracy_aware_lines(search: dict | None) -> list[str]:
    if search is None:
        return []
    if "skipped" in search:
        return [f"- Accuracy-aware quantization skipped: {search['skipped']}"]
    ranked = ", ".join(f"{entry['node']} ({entry['op_type']}, {entry['loss_db']:+.1f} dB)" for entry in search["ranking"][:5])
    tried = "; ".join(f"{', '.join(step['kept_float'])} float: drop {step['drop_pp']:.2f} pp" for step in search["steps"])
    return [f"- Accuracy-aware quantization: nodes ranked by the SQNR they lose on {search['ranking_images']} calibration "
            f"images, most sensitive first: {ranked or 'none found'}. Tried: {tried or 'nothing'}. "
            f"Latency cost of the float nodes: {search['latency_cost_us_1_thread']:+.1f} µs per region, 1 thread."]


def _markdown(report: dict) -> str:
    keras_accuracy = report["keras_test_accuracy"]
    rows = [
        ("Keras", "model.keras", keras_accuracy, None),
        ("ONNX fp32", report["fp32"]["file"], report["fp32"]["test_accuracy"], report["fp32"]["bytes"]),
        ("ONNX int8", report["int8"]["file"], report["int8"]["test_accuracy"], report["int8"]["bytes"]),
    ]
    lines = [
        f"# Export report: {report['run_dir']}", "",
        f"Test set: {report['test_dataset']}.", "",
        "| model | file | test top-1 | size |", "|---|---|---|---|",
    ]
    for name, file_name, accuracy, size in rows:
        accuracy_text = "—" if accuracy is None else f"{accuracy * 100:.2f}%"
        if name == "ONNX int8":
            accuracy_text = int8_accuracy_text(report["int8"])
        size_text = "—" if size is None else f"{size / 1024:.0f} KiB"
        lines.append(f"| {name} | {file_name} | {accuracy_text} | {size_text} |")
    quantization = report["quantization"]
    lines += [
        "",
        f"- int8 drop: {report['int8_drop_pp']:.3f} percentage points (gate {report['gate_pp']}): "
        f"{'passed' if report['gate_passed'] else 'FAILED'}",
        f"- Quantization: {quantization['format']}, activations {quantization['activation_type']}, "
        f"weights {weights_text(quantization)}, per-channel {quantization['per_channel']}, "
        f"{quantization['calibration_method']} calibration on {quantization['calibration_images']} training-split images; "
        f"kept in float: {', '.join(quantization['excluded_nodes']) or 'nothing'}",
        *_accuracy_aware_lines(quantization.get("accuracy_aware")),
        f"- Graph simplifications: {'; '.join(report['graph_simplifications']) or 'none'}",
        "- ORT format (onnxruntime minimal and mobile builds): " + (
            ", ".join(f"`{name}` ({entry['bytes'] / 1024:.0f} KiB, outputs within {entry['max_abs_difference_from_onnx']:.1e} "
                      f"of its ONNX file here, equal to it without onnxruntime's NCHWc layout)" for name, entry in report["ort_format"]["files"].items())
            + f"; operators for a reduced build: `{report['ort_format']['operators_config']}`"
            if "ort_format" in report else "not written (int8 failed the gate)"),
        f"- Export took {report['export_seconds']} s.", "",
    ] + parity_markdown(report["parity"])
    return "\n".join(lines) + "\n"
