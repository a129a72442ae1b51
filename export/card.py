"""MODEL_CARD.md for an exported run, written from what train and export measured."""
from __future__ import annotations

import json
import shlex
from pathlib import Path

from edgesight.runtime.bench import machine_description, measure_latency
from edgesight.runtime.classifier import Classifier
from edgesight.runtime.files import write_text_atomic
from edgesight.runtime.metadata import ModelMetadata
from edgesight.runtime.shipped import is_model_file

from .exact_int8 import int8_accuracy_text
from .quantize import weights_text

CITATIONS = {
    "cifar10": 'A. Krizhevsky, "Learning Multiple Layers of Features from Tiny Images", 2009.',
    "gtsrb": ('J. Stallkamp, M. Schlipsing, J. Salmen, C. Igel, "Man vs. computer: Benchmarking machine learning '
              'algorithms for traffic sign recognition", Neural Networks 32, 2012.'),
}


def training_command(options: dict) -> str:
    arguments = ["edgesight", "train", "--task", options["task"], "--data", options["data"], "--run-dir", options["run_dir"],
                 "--model", options["model"], "--epochs", options["epochs"], "--batch-size", options["batch_size"],
                 "--learning-rate", options["learning_rate"], "--weight-decay", options["weight_decay"],
                 "--val-fraction", options["val_fraction"], "--seed", options["seed"]]
    for option in ("optimizer", "resize", "input_size", "box_margin", "augmentation", "background", "init_from"):
        if options.get(option) is not None:
            arguments += [f"--{option.replace('_', '-')}", options[option]]
    if options.get("mirror_average"):
        arguments.append("--mirror-average")
    if options.get("teacher"):
        arguments += ["--teacher", *options["teacher"], "--distill-temperature", options["distill_temperature"],
                      "--distill-weight", options["distill_weight"]]
        if options.get("mixup"):
            arguments += ["--mixup", options["mixup"]]
    if options.get("weight_ema"):
        arguments += ["--weight-ema", options["weight_ema"]]
    if options.get("background") and options.get("background_locator"):
        arguments += ["--background-locator", *options["background_locator"]]
    if options.get("bn_statistics") is not None:
        arguments += ["--bn-statistics", options["bn_statistics"]]
    elif "bn_statistics" not in options and options["epochs"]:
        arguments += ["--bn-statistics", "keep"]  # a run from before the refit existed kept what training left
    return " ".join(shlex.quote(str(a)) for a in arguments)


def training_commands(run_config: dict) -> list[str]:
    """The commands that made this run, the runs it learnt from (its teachers) or started from first.

    Each once: a run started from a distilled run often has the same teacher, which is trained once.
    """
    options = run_config["train"]
    earlier = []
    for source in [*(options.get("teacher") or []), options.get("init_from")]:
        if source and (Path(source) / "config.json").is_file():
            earlier += training_commands(json.loads((Path(source) / "config.json").read_text()))
        elif source:
            earlier += _model_file_command(source)
    return list(dict.fromkeys(earlier + [training_command(options)]))


def _model_file_command(source: str) -> list[str]:
    """The command that made a model file a run started from or learnt from, as its metadata records it (not its own sources)."""
    options = _model_file_training_options(source)
    return [training_command(options)] if options else []


def _model_file_metadata(source: str) -> ModelMetadata | None:
    """What a model file a run started from or learnt from says of itself; None for a run folder."""
    return Classifier(source).metadata if is_model_file(source) else None


def _model_file_training_options(source: str) -> dict:
    metadata = _model_file_metadata(source)
    return (metadata.provenance.get("train_options") or {}) if metadata else {}


def _wall_time(train_report: dict) -> str:
    total = train_report.get("train_seconds_total", train_report.get("train_seconds", 0))
    if total is None:  # started from a model file that does not record what it cost
        return (f"{train_report['train_seconds'] / 60:.0f} min for this run, after the training of `{train_report['init_from']}`, "
                "which its file does not record,")
    return f"{total / 60:.0f} min{' (this run and the run it started from)' if train_report.get('init_from') else ''}"


def _teacher_note(options: dict) -> list[str]:
    """A card paragraph naming the teachers of a distilled run and what they cost to train."""
    teachers = options.get("teacher") or []
    if not teachers:
        return []
    described = []
    for teacher in teachers:
        report = _source_report(teacher)
        facts = [report.get("model", "its model")]
        if "test_accuracy" in report:
            facts.append(f"test accuracy {report['test_accuracy'] * 100:.2f}%")
        if "train_seconds_total" in report:  # None for a teacher that started from a model file
            facts.append(f"trained in {_wall_time(report).rstrip(',')}, not counted above")
        described.append(f"`{teacher}` ({', '.join(facts)})")
    whose = "its outputs" if len(teachers) == 1 else "their averaged outputs"
    # A teacher of the signs alone (see edgesight.train.distill) knows nothing of the background the student also learns.
    background = (" On the road-scene background, which the teacher never learnt, the label stands in for the teacher's output."
                  if options.get("background") and not _knows_background(teachers[0]) else "")
    if options.get("mixup"):
        share = (f"the whole loss follows {whose} softened at temperature {options['distill_temperature']:g}, on training images "
                 f"blended in pairs (MixUp, shares from Beta({options['mixup']:g}, {options['mixup']:g})), which have no true class")
    else:
        share = (f"{options['distill_weight']:.0%} of the loss follows {whose} softened at temperature "
                 f"{options['distill_temperature']:g}, the rest the true class")
    return [f"Distilled from {' and '.join(described)}: {share}.{background} Their commands come first under Reproduce.", ""]


def _source_report(source: str) -> dict:
    """What a run folder's report, or a model file's metadata, says of the model: model, test accuracy, training time."""
    report_path = Path(source) / "report.json"
    if report_path.is_file():
        return json.loads(report_path.read_text())
    metadata = _model_file_metadata(source)
    if metadata is None:
        return {}
    found = {"model": (metadata.provenance.get("train_options") or {}).get("model"),
             "test_accuracy": metadata.metrics.get("test_accuracy"),
             "train_seconds_total": metadata.provenance.get("train_seconds_total")}
    return {key: value for key, value in found.items() if value is not None}


def _knows_background(source: str) -> bool:
    if is_model_file(source):
        return bool(_model_file_training_options(source).get("background"))
    config_path = Path(source) / "config.json"
    return config_path.is_file() and bool(json.loads(config_path.read_text())["train"].get("background"))


def _batchnorm_row(record: dict | None) -> list[str]:
    """The card's line on the batch-norm statistics refit after training (train/batchnorm.py), if one was tried."""
    if not record:
        return []
    return [f"| batch-norm statistics | refit after training on {record['images']:,} unaugmented training images: validation "
            f"accuracy {record['validation_accuracy_before'] * 100:.2f}% → {record['validation_accuracy_after'] * 100:.2f}%, "
            f"so {'kept' if record['kept'] else 'not kept'} (train/batchnorm.py) |"]


def write_model_card(run_dir: Path, run_config: dict, train_report: dict, export_report: dict, latency_runs: int = 2000) -> Path:
    """Measure latency of both files on this machine (`latency_runs` timed runs each) and write the card beside them."""
    fp32_path, int8_path = run_dir / export_report["fp32"]["file"], run_dir / export_report["int8"]["file"]
    latency = {(Path(row["file"]).name, row["threads"]): row
               for row in measure_latency([str(fp32_path), str(int8_path)], latency_runs, warmup=max(10, latency_runs // 10))}
    options = run_config["train"]
    spec = run_config["preprocess"]
    parity = export_report["parity"]
    int8_difference = parity["output_difference"]["onnx_fp32_int8"]
    ort_files = ", ".join(f"`{name}`" for name in export_report["ort_format"]["files"])
    ort_difference = max(entry["max_abs_difference_from_onnx"] for entry in export_report["ort_format"]["files"].values())
    on_exporting_machine = f"within {ort_difference:.1e} of them on the exporting machine" if ort_difference else "the same on the exporting machine"
    thread_counts = sorted({threads for _, threads in latency})
    latency_rows = [
        f"| {name} | {threads} | {latency[(name, threads)]['median_us']:.0f} | {latency[(name, threads)]['p99_us']:.0f} |"
        for name in (fp32_path.name, int8_path.name) for threads in thread_counts
    ]
    lines = [
        f"# Model card: {options['task']} / {options['model']}", "",
        f"{train_report.get('architecture', options['model'])}. Input: RGB uint8 {spec['height']}×{spec['width']} NHWC (scaling inside the graph); "
        f"output: softmax probabilities over {len(run_config['labels'])} classes.", "",
        "| | |", "|---|---|",
        f"| parameters | {train_report['parameters']:,} |",
        f"| multiply-accumulates per image | {train_report['macs'] / 1e6:.2f} M |",
        f"| preprocessing | crop `{spec['crop']}` with margin {spec['box_margin']} of the box on each side, resize `{spec['resize']}` |",
        f"| test set | {export_report['test_dataset']} |",
        f"| Keras test accuracy | {train_report['test_accuracy'] * 100:.2f}% |",
        f"| ONNX fp32 test accuracy (`{fp32_path.name}`, {export_report['fp32']['bytes'] / 1024:.0f} KiB) | {export_report['fp32']['test_accuracy'] * 100:.2f}% |",
        f"| ONNX int8 test accuracy (`{int8_path.name}`, {export_report['int8']['bytes'] / 1024:.0f} KiB) | {int8_accuracy_text(export_report['int8'])} |",
        f"| int8 drop | {export_report['int8_drop_pp']:.2f} percentage points |",
        f"| int8 vs fp32 outputs | same top-1 on {parity['argmax_agreement']['onnx_fp32_int8'] * 100:.2f}% of test images; "
        f"largest probability difference per image {int8_difference['p99_image_max_abs']:.3f} at the 99th percentile, "
        f"{int8_difference['max_abs']:.3f} at most |",
        f"| training wall time | {_wall_time(train_report)} on the machine below (2 cores, no GPU), "
        f"including any other work sharing it; validation split by {'track' if options['task'] == 'gtsrb' else 'image'} |",
        *_batchnorm_row(train_report.get("batchnorm_statistics")),
        "",
        *([f"The last class, \"not a sign\", was learnt from road scenes `{options['background']}`: the boxes the "
           f"{' and '.join(options.get('background_locator') or ['colour'])} locator(s) propose away from their signs, and random "
           "windows; their signs joined the training set. Measure road-scene figures on other scenes (`edgesight eval-frames`).", ""]
          if options.get("background") else []),
        *_teacher_note(options),
        "## Latency on this machine", "",
        f"Machine: {machine_description()}. Per 96×96 region of a 640×480 frame: crop, resize, inference, top-1; batch 1; "
        f"median and p99 of {latency_runs:,} interleaved runs after warm-up (`edgesight bench`).", "",
        "| file | threads | median µs | p99 µs |", "|---|---|---|---|", *latency_rows, "",
        "## Reproduce", "",
        "```", *training_commands(run_config), f"edgesight export {shlex.quote(str(run_dir))}", "```", "",
        f"Quantization: {export_report['quantization']['format']}, activations {export_report['quantization']['activation_type']}, "
        f"weights {weights_text(export_report['quantization'])}, per-channel, {export_report['quantization']['calibration_method']} "
        f"calibration on {export_report['quantization']['calibration_images']} training-split images; "
        f"kept in float: {', '.join(export_report['quantization']['excluded_nodes']) or 'nothing'}, and the logits the softmax reads.", "",
        f"For onnxruntime minimal and mobile builds: {ort_files} (ORT format: the ONNX files' outputs exactly as onnxruntime "
        f"computes them without the NCHWc layout it uses on x86; {on_exporting_machine}), and "
        f"`{export_report['ort_format']['operators_config']}` for a build reduced to the operators these models use.", "",
        "## Data", "",
        CITATIONS.get(options["task"], options["task"]), "",
    ]
    card = run_dir / "MODEL_CARD.md"
    write_text_atomic(card, "\n".join(lines))
    return card
