"""ORT-format copies of exported model and locator files, for onnxruntime's minimal and mobile builds.

Minimal builds read only the ORT format, and are built with just the operators a file needs:
`required_operators.config` lists them (pass it to onnxruntime's build with `--include_ops_by_config`).
onnxruntime's own converter does the work, and the edgesight metadata travels with it. The converter optimizes the
graph for any CPU: it leaves out the NCHWc layout (`NchwcTransformer`) that onnxruntime gives the ONNX file at load time
on x86. So an ORT file must give exactly the outputs of its ONNX file opened without that layout; that is checked before
a copy is written. How far the layout moves the ONNX file's outputs is a property of that file, reported beside: float
sums added in another order (about 1e-6 in probabilities), and for the sign locator's int8 twin a float stem rounded
across a step of its first QuantizeLinear on a few frames (docs/EXPERIMENTS.md).

    python -m edgesight.export.ort_format locators/sign-locator/locator.onnx locators/sign-locator/locator.int8.onnx
"""
from __future__ import annotations

import argparse
import contextlib
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnxruntime as ort
from edgesight.runtime.errors import EdgesightError, ModelFileError
from edgesight.runtime.files import write_bytes_atomic, write_text_atomic
from edgesight.runtime.sessions import open_session, session_options

OPERATORS_CONFIG = "required_operators.config"
X86_LAYOUT_OPTIMIZER = "NchwcTransformer"
CHECK_BATCH = 512  # check images per run: the test set of an export runs in chunks
LOCATOR_CHECK_FRAME = (800, 1360, 3)  # a GTSDB road scene's size: the locator's input for it is checked


class OrtFormatError(EdgesightError, RuntimeError):
    """An ORT-format file does not give the outputs of the ONNX file it came from."""


def _outputs(session: ort.InferenceSession, inputs: list[np.ndarray]) -> list[list[np.ndarray]]:
    """Every output of each run, as float64 so integer outputs subtract without wrapping."""
    name = session.get_inputs()[0].name
    return [[output.astype(np.float64) for output in session.run(None, {name: array})] for array in inputs]


def _comparison(first: list[list[np.ndarray]], second: list[list[np.ndarray]], outputs: list) -> dict:
    """The largest difference of each output over the runs; how many runs differed at all, and in an integer output
    (a locator's peak cells: float rounding alone never changes a float output by much, but can reorder peaks)."""
    largest = {output.name: max(float(np.max(np.abs(a[index] - b[index]))) if a[index].size else 0.0
                                for a, b in zip(first, second)) for index, output in enumerate(outputs)}
    integer = [index for index, output in enumerate(outputs) if "int" in output.type]
    return {"by_output": largest,
            "runs_differing": sum(any(not np.array_equal(x, y) for x, y in zip(a, b)) for a, b in zip(first, second)),
            "runs_with_other_integer_outputs": sum(any(not np.array_equal(a[i], b[i]) for i in integer) for a, b in zip(first, second))}


def write_ort_files(onnx_paths: list[Path], check_inputs: list[np.ndarray]) -> dict:
    """Write `<name>.ort` beside each ONNX file (all in one folder), and one operators config for them, each file
    checked on `check_inputs` (arrays each file's one input takes). Returns the report entries: per file its size and
    its largest output difference from the ONNX file as onnxruntime runs it here (its NCHWc layout included, where it applies).
    Raises:
        OrtFormatError: a converted file's outputs differ at all from its ONNX file's without the NCHWc layout.
    """
    from onnxruntime.tools.convert_onnx_models_to_ort import OptimizationStyle, convert_onnx_models_to_ort

    folder = onnx_paths[0].parent
    entries = {}
    with tempfile.TemporaryDirectory(prefix="edgesight-ort-") as scratch:
        sources = Path(scratch) / "onnx"
        sources.mkdir()
        for path in onnx_paths:
            shutil.copyfile(path, sources / path.name)
        converted = Path(scratch) / "ort"
        with contextlib.redirect_stdout(sys.stderr):  # the converter narrates on stdout, which is for results
            convert_onnx_models_to_ort(sources, output_dir=converted, optimization_styles=[OptimizationStyle.Fixed])
        for path in onnx_paths:
            ort_file = converted / Path(path.name).with_suffix(".ort")
            onnx_session = open_session(path, 1, "not found.")  # first: names the file if onnxruntime cannot load it
            without_layout = ort.InferenceSession(str(path), session_options(1), providers=["CPUExecutionProvider"],
                                                  disabled_optimizers=[X86_LAYOUT_OPTIMIZER])
            outputs = without_layout.get_outputs()
            copy, reference, as_run_here = (_outputs(session, check_inputs) for session in (
                open_session(ort_file, 1, "not written by the converter."), without_layout, onnx_session))
            against_reference = _comparison(copy, reference, outputs)
            if against_reference["runs_differing"]:
                raise OrtFormatError(f"{ort_file.name}: gives other outputs than {path} opened without onnxruntime's "
                                     f"{X86_LAYOUT_OPTIMIZER} (they must be equal; largest differences "
                                     f"{against_reference['by_output']}); not written.")
            here = _comparison(copy, as_run_here, outputs)
            entries[ort_file.name] = {"bytes": ort_file.stat().st_size,
                                      # the first output: a classifier's probabilities, a locator's centre logits
                                      "max_abs_difference_from_onnx": here["by_output"][outputs[0].name],
                                      "differences_from_onnx_by_output": here["by_output"],
                                      "runs_with_other_integer_outputs_than_onnx": here["runs_with_other_integer_outputs"]}
        for name in entries:  # only once every copy passed: never some files new and some old
            write_bytes_atomic(folder / name, (converted / name).read_bytes())
        # The generated config names the scratch folder in a comment; name the files as shipped instead.
        write_text_atomic(folder / OPERATORS_CONFIG, (converted / OPERATORS_CONFIG).read_text().replace(f"{converted}/", ""))
    return {"files": entries, "operators_config": OPERATORS_CONFIG, "checked_runs": len(check_inputs)}


def write_ort_models(onnx_paths: list[Path], check_nhwc: np.ndarray) -> dict:
    """`write_ort_files` for classifier files, checked on a batch of their input images (run in chunks)."""
    chunks = [check_nhwc[start : start + CHECK_BATCH] for start in range(0, len(check_nhwc), CHECK_BATCH)]
    return write_ort_files(onnx_paths, chunks) | {"checked_images": int(len(check_nhwc))}


def locator_check_inputs(locator_path: Path, count: int = 4) -> list[np.ndarray]:
    """Inputs a sign locator file takes: its network input for `count` random road-scene-sized frames."""
    from edgesight.runtime.learned_locate import LearnedLocator, network_input

    geometry = LearnedLocator(locator_path).geometry
    rng = np.random.default_rng(0)
    return [network_input(rng.integers(0, 256, LOCATOR_CHECK_FRAME, dtype=np.uint8), geometry) for _ in range(count)]


def _is_locator(path: Path) -> bool:
    from edgesight.runtime.learned_locate import LOCATOR_KEY

    return LOCATOR_KEY in open_session(path, 1, "not found.").get_modelmeta().custom_metadata_map


def _check_inputs(path: Path) -> list[np.ndarray]:
    """Random inputs for an edgesight file: a locator's for road-scene frames, a classifier's at its input size."""
    from edgesight.runtime.classifier import Classifier

    if _is_locator(path):
        return locator_check_inputs(path)
    spec = Classifier(path).spec
    return [np.random.default_rng(0).integers(0, 256, (64, spec.height, spec.width, 3), dtype=np.uint8)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write checked ORT-format copies of edgesight ONNX files (model or "
                                     "locator files of one folder) and the operators config for a reduced build.")
    parser.add_argument("files", nargs="+", type=Path, help="ONNX files of one folder, such as a model's float and int8 files")
    args = parser.parse_args(argv)
    files = [path.resolve() for path in args.files]
    problems = [f"{path}: not an .onnx file" for path in files if path.suffix != ".onnx"]
    problems += [f"{path}: not in {files[0].parent}, the first file's folder" for path in files if path.parent != files[0].parent]
    if problems:
        parser.error("; ".join(problems))
    try:
        inputs = [_check_inputs(path) for path in files]
        if any(len(a) != len(b) or any(x.shape != y.shape for x, y in zip(a, b)) for a, b in zip(inputs, inputs[1:])):
            parser.error("the files take different inputs: give the float and int8 files of one model or locator")
        report = write_ort_files(files, inputs[0])
    except (ModelFileError, OrtFormatError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    card = files[0].with_name("MODEL_CARD.md")
    locator = files[0].stem.removesuffix(".int8")
    if card.is_file() and _is_locator(files[0]):  # a model's card names its ORT files in its export's words already
        from .locator import card_with_section, ort_card_section

        write_text_atomic(card, card_with_section(card.read_text(encoding="utf-8"), ort_card_section(report, f"{locator}.onnx")))
        print(f"updated {card}")
    for name, entry in report["files"].items():
        print(f"wrote {files[0].parent / name} ({entry['bytes'] / 1024:.0f} KiB; its outputs equal its ONNX file's without "
              f"the NCHWc layout; here, with it, the ONNX file's first output lay within {entry['max_abs_difference_from_onnx']:.1e} "
              f"of them, its integer outputs other on {entry['runs_with_other_integer_outputs_than_onnx']} of "
              f"{report['checked_runs']} runs)")
    print(f"wrote {files[0].parent / report['operators_config']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
