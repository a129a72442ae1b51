"""Export of a sign-locator run (`edgesight train-locator`) to self-describing ONNX files: float, and its int8 twin.

The float file computes its box head only at the grid's best peaks (export/peak_boxes.py). Its parity with Keras is
checked on the run's own validation scenes, and the file is timed on a full frame. The int8 twin
(export/locator_int8.py) is calibrated on training scenes and compared with the float file on the validation scenes.
A locator file whose run is gone gets its int8 twin from `export_locator_file`.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from edgesight.runtime.bench import machine_description
from edgesight.runtime.errors import EdgesightError
from edgesight.runtime.files import write_json_atomic, write_text_atomic
from edgesight.runtime.learned_locate import (
    LOCATOR_KEY,
    LOCATOR_TASK,
    MAX_BOXES,
    LearnedLocator,
    LocatorGeometry,
    difference_from_grid,
    network_input,
)
from edgesight.runtime.scenes import read_scenes, scene_names

from .convert import keras_to_onnx, relax_spatial_dims, save_model
from .locator_int8 import calibration_picks, int8_card_section, int8_path, write_int8_twin
from .ort_format import locator_check_inputs, write_ort_files
from .peak_boxes import box_head_at_peaks
from .simplify import fold_input_scaling, nearest_upsampling_as_resize, stem_on_interleaved_columns

# Logits of Keras and onnxruntime may differ by float rounding, not more.
MAX_GRID_DIFFERENCE = 1e-3
TIMED_RUNS = 30


class LocatorExportError(EdgesightError, RuntimeError):
    """The locator file differs from the Keras model it was converted from."""


def _split_scenes(run_config: dict) -> tuple[list[str], list[str]]:
    """Names of the scenes int8 calibrates on (every k-th training scene) and of the run's validation scenes (the first
    5 training scenes if it kept none), which parity and the int8 comparison are measured on."""
    training, validation = run_config["split"]["training_scenes"], run_config["split"]["validation_scenes"]
    measured, rest = (validation, training) if validation else (training[:5], training[5:])
    return [rest[index] for index in calibration_picks(len(rest))], measured


def locator_graph(model, opset: int, traced_size: tuple[int, int]) -> tuple[onnx.ModelProto, bool]:
    """The locator's ONNX graph for any frame size, and whether its input scaling was folded into the first convolution.

    Traced at one size (dilated convolutions then get explicit pads), its upsampling made one Resize while the traced
    dims are still known (an hourglass locator's graph then takes any size), then its dims opened; its stem then reads
    the uint8 image as it comes, its scaling in its weights and no transpose before it.
    """
    proto = keras_to_onnx(model, opset, traced_size=traced_size)
    nearest_upsampling_as_resize(proto)
    proto = relax_spatial_dims(proto)
    scaling_folded = fold_input_scaling(proto)
    stem_on_interleaved_columns(proto)
    return proto, scaling_folded


def export_locator(run_dir: Path, run_config: dict, train_report: dict, data: str | None, opset: int, provenance: dict,
                   min_score: float | None = None) -> dict:
    """Write `locator.onnx` and `export_report.json` into the run folder; returns the report.

    `min_score`: the centre score to stamp in the file; None stamps the one training chose (if any).
    """
    import keras

    saved = run_config["geometry"]
    geometry = LocatorGeometry(saved["downscale"], saved["stride"], saved.get("input_multiple"))
    data = data or run_config["train"]["data"]
    print(f"converting {run_dir / 'model.keras'} (sign locator) to ONNX (opset {opset})", file=sys.stderr)
    model = keras.models.load_model(run_dir / "model.keras", compile=False)
    calibration_names, measured_names = _split_scenes(run_config)
    frames = [network_input(scene.image_bgr, geometry) for scene in read_scenes(data, set(measured_names))]
    proto, scaling_folded = locator_graph(model, opset, frames[0].shape[1:3])
    props = {
        "edgesight.format": 1, "edgesight.task": LOCATOR_TASK,
        LOCATOR_KEY: geometry.to_json() | ({"min_score": stamped} if (stamped := min_score or train_report.get("operating_min_score")) else {}),
        "edgesight.input": {"name": "image", "height": None, "width": None, "channels": 3, "layout": "NHWC", "color": "RGB", "dtype": "uint8"},
        "edgesight.metrics": {"validation_proposal_recall": train_report.get("validation_proposal_recall"),
                              "validation_scenes": train_report.get("validation_scenes")},
        "edgesight.provenance": provenance | {"train_options": run_config["train"]},
    }
    for key, value in props.items():
        proto.metadata_props.add(key=key, value=json.dumps(value))
    box_head_at_peaks(proto)  # stamps max_peaks in the locator metadata
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    # Each frame at its own size and at three quarters of it: the opened dims must hold for any size.
    checked = frames + [frame[:, : geometry.cut(frame.shape[1] * 3 // 4), : geometry.cut(frame.shape[2] * 3 // 4)]
                        for frame in frames[:2]]
    difference = max(difference_from_grid(session.run(None, {"image": frame}), model(frame, training=False).numpy())
                     for frame in checked)
    if difference > MAX_GRID_DIFFERENCE:
        raise LocatorExportError(f"{run_dir}: the ONNX locator differs from Keras by {difference:.2e} "
                                 f"(> {MAX_GRID_DIFFERENCE}) on the validation scenes.")
    path = run_dir / "locator.onnx"
    save_model(proto, path)

    locator = LearnedLocator(path, threads=1)
    frame = next(read_scenes(data, set(measured_names))).image_bgr
    for _ in range(3):
        locator.propose(frame)
    timings = []
    for _ in range(TIMED_RUNS):
        started = time.perf_counter()
        locator.propose(frame)
        timings.append((time.perf_counter() - started) * 1000)
    report = {
        "locator": str(path), "bytes": path.stat().st_size, "max_grid_difference_keras_onnx": difference,
        "parity_frames": len(checked), "input_scaling_folded": scaling_folded, "ms_per_frame_1_thread": round(float(np.median(timings)), 2),
        "frame_size": [frame.shape[1], frame.shape[0]], "parameters": train_report.get("parameters"),
        "macs_per_frame": train_report.get("macs_per_frame"), "min_score": stamped, "min_score_chosen_at_export": min_score is not None,
    }
    if calibration_names:
        report["int8"] = write_int8_twin(path, data, calibration_names, measured_names, " (the run's validation scenes)")
    else:
        print(f"no int8 twin: every scene of {data} went to validation, none is left to calibrate on", file=sys.stderr)
    report["ort_format"] = write_locator_ort_files(path)
    write_json_atomic(run_dir / "export_report.json", report)
    write_text_atomic(run_dir / "MODEL_CARD.md", _card(report, run_config, train_report))
    print(f"wrote {path} ({report['bytes'] / 1024:.0f} KiB); ONNX matches Keras within {difference:.1e}; "
          f"{report['ms_per_frame_1_thread']} ms per {frame.shape[1]}x{frame.shape[0]} frame (1 thread, median, "
          f"including the downscale and decoding)")
    return report


def export_locator_file(path: Path, data: str | None) -> dict:
    """Write the int8 twin of a float locator file whose training run is gone (or was never here): calibrated on every
    k-th scene of `data` (default: the scenes it learnt from, named in its provenance) and compared with it on the others.
    Its model card beside it, if any, gets the twin's section. Returns the comparison.
    """
    LearnedLocator(path, threads=1)  # refuses anything but a locator file, naming it and what is wrong
    props = {entry.key: json.loads(entry.value) for entry in onnx.load(path).metadata_props}
    provenance = props.get("edgesight.provenance", {})
    if "quantization" in provenance:
        raise LocatorExportError(f"{path}: already an int8 locator; its twin is made from the float file.")
    trained_on = provenance.get("train_options", {}).get("data")
    data = data or trained_on
    if not data:
        raise LocatorExportError(f"{path}: its provenance names no training scenes; give road scenes to calibrate on with --data.")
    names = scene_names(data)
    picks = set(calibration_picks(len(names)))
    note = " (the locator learnt from some of them, so recall here flatters both files)" if data == trained_on else ""
    report = write_int8_twin(path, data, [name for index, name in enumerate(names) if index in picks],
                             [name for index, name in enumerate(names) if index not in picks], note)
    report["ort_format"] = write_locator_ort_files(path)
    card = path.with_name("MODEL_CARD.md")
    if card.is_file():
        text = card_with_section(card.read_text(encoding="utf-8"), int8_card_section(report))
        write_text_atomic(card, card_with_section(text, ort_card_section(report["ort_format"], path.name)))
    return report


def write_locator_ort_files(fp32_path: Path) -> dict:
    """ORT-format copies of a float locator file and of its int8 twin if there is one, with their operators config."""
    files = [fp32_path] + ([int8_path(fp32_path)] if int8_path(fp32_path).is_file() else [])
    print(f"writing ORT-format copies of {', '.join(file.name for file in files)} for onnxruntime minimal builds", file=sys.stderr)
    return write_ort_files(files, locator_check_inputs(fp32_path))


def ort_card_section(ort_report: dict, fp32_name: str) -> str:
    """The model card's section on the ORT-format copies."""
    files = ", ".join(f"`{name}` ({entry['bytes'] / 1024:.0f} KiB)" for name, entry in ort_report["files"].items())
    differences = "; ".join(f"`{name.replace('.ort', '.onnx')}` centre logits within {entry['max_abs_difference_from_onnx']:.1e}, "
                            f"other peak cells on {entry['runs_with_other_integer_outputs_than_onnx']} of {ort_report['checked_runs']} frames"
                            for name, entry in ort_report["files"].items())
    onnx_names = " ".join(name.replace(".ort", ".onnx") for name in ort_report["files"])
    return f"""## ORT format

For onnxruntime minimal and mobile builds: {files}, and `{ort_report['operators_config']}` for a build reduced to the
operators these files use; `--locator` takes an `.ort` file as it takes an `.onnx` one. Each gives exactly the outputs of
its ONNX file as onnxruntime computes them without the NCHWc layout it uses on x86 (checked on the network inputs
of {ort_report['checked_runs']} random frames of 1360×800 at export). On the exporting machine, with that layout: {differences}.
The float sums add up in another order there; the int8 twin's float stem can round across a step of its first
QuantizeLinear, which moves a centre logit by a step and at times a peak. Made by
`python -m edgesight.export.ort_format {onnx_names}` (export of `{fp32_name}` makes them too).
"""


def card_with_section(card: str, section: str) -> str:
    """The card with `section` in place of its section of the same heading, or else before "## Reproduce" (or at the end)."""
    heading = section.split("\n", 1)[0]
    start = card.find(heading + "\n")
    if start >= 0:
        end = card.find("\n## ", start + len(heading))
        return card[:start] + section + ("\n" + card[end + 1 :] if end >= 0 else "")
    reproduce = card.find("## Reproduce")
    return card[:reproduce] + section + "\n" + card[reproduce:] if reproduce >= 0 else card.rstrip("\n") + "\n\n" + section


def _flag(key: str, value) -> str:
    """One training option as `train-locator` takes it: a switch alone, a list as its items."""
    name = f"--{key.replace('_', '-')}"
    if value is True:
        return name
    return f"{name} {' '.join(map(str, value)) if isinstance(value, list) else value}"


def _card(report: dict, run_config: dict, train_report: dict) -> str:
    options = run_config["train"]
    flags = " ".join(_flag(key, value) for key, value in options.items()
                     if key not in ("resume", "run_dir") and value not in (None, []) and value is not False)  # 0.0 == False
    if report["min_score_chosen_at_export"]:
        operating_point = (f"The runtime uses min centre score {report['min_score']}, chosen at export "
                           f"(`--locator-min-score`); training's choice, the strictest within a point of the best recall, "
                           f"was {train_report.get('operating_min_score')}")
        export_flags = f" --locator-min-score {report['min_score']}"
    else:
        operating_point = (f"The runtime uses min centre score {report['min_score']}, the strictest within a point of the "
                           "best recall")
        export_flags = ""
    sweep = "\n".join(f"| {row['min_score']} | {row['recall_24px_and_more']} | {row['proposals_per_frame']} |"
                      for row in train_report.get("validation_proposal_recall", []))
    width, height = report["frame_size"]
    geometry = run_config["geometry"]
    multiple = geometry.get("input_multiple") or geometry["stride"]
    downscale, cell = geometry["downscale"], geometry["downscale"] * geometry["stride"]
    return f"""# Model card: sign locator

Finds where traffic signs are in a road scene, for the classifier to read them (`--locate signs --locator ...`).
A CenterNet-style network of separable convolutions on the frame shrunk by {downscale}; per {cell}×{cell} frame pixels: the
chance that a sign's centre lies there, its offset, log width and height. Input: RGB uint8 NHWC of any size (cut to a
multiple of {multiple} pixels after downscaling); output: every cell's centre logit, and the
box channels at the best {MAX_BOXES} peaks (see `edgesight.runtime.learned_locate`).

| | |
|---|---|
| parameters | {report['parameters']:,} |
| multiply-accumulates per {width}×{height} frame | {report['macs_per_frame'] / 1e6:.0f} M |
| file | `locator.onnx`, {report['bytes'] / 1024:.0f} KiB, float32 (parity with Keras within {report['max_grid_difference_keras_onnx']:.1e}) |
| time per {width}×{height} frame | {report['ms_per_frame_1_thread']} ms, 1 thread, downscale and decoding included ({machine_description()}) |
| training wall time | {train_report.get('train_seconds', 0) / 60:.0f} min on that machine (2 cores, no GPU), with other work sharing it |

Learnt from the road scenes `{options['data']}` ({len(run_config['split']['training_scenes'])} for training,
{len(run_config['split']['validation_scenes'])} held out) and GTSRB training signs pasted into them
(`{options['signs']}`). Measure it on scenes it never saw with `edgesight eval-frames`.

Proposal recall on its validation scenes, the held-out part of the scenes above (signs of 24 px or more covered by a
proposal at IoU ≥ 0.5). {operating_point}:

| min centre score | recall | proposals per frame |
|---|---|---|
{sweep}

{int8_card_section(report["int8"]) if "int8" in report else ""}
{ort_card_section(report["ort_format"], "locator.onnx")}
## Reproduce

```
edgesight train-locator {flags}
edgesight export RUN_DIR{export_flags}
```

## Data

S. Houben, J. Stallkamp, J. Salmen, M. Schlipsing, C. Igel, "Detection of traffic signs in real-world images: The German
Traffic Sign Detection Benchmark", IJCNN 2013. J. Stallkamp, M. Schlipsing, J. Salmen, C. Igel, "Man vs. computer:
Benchmarking machine learning algorithms for traffic sign recognition", Neural Networks 32, 2012.
"""
