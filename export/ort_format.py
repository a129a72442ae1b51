"""ORT-format copies of the exported models, for onnxruntime's minimal and mobile builds.

Minimal builds read only the ORT format, and are built with just the operators a model needs:
`required_operators.config` lists them (pass it to onnxruntime's build with `--include_ops_by_config`).
onnxruntime's own converter does the work; the graph is optimized for any CPU (its converter leaves
out the x86-only NCHWc layout), and the edgesight metadata travels with it.
"""
from __future__ import annotations

import contextlib
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
from edgesight.runtime.classifier import Classifier
from edgesight.runtime.errors import EdgesightError
from edgesight.runtime.files import write_bytes_atomic, write_text_atomic

OPERATORS_CONFIG = "required_operators.config"
# The ORT file leaves out the x86-only NCHWc layout the ONNX file gets at load time here, so fp32
# convolutions add up in another order: probabilities differ by about 1e-6 (seen: 1.2e-6), no more.
SAME_OUTPUT_TOLERANCE = 1e-5


class OrtFormatError(EdgesightError, RuntimeError):
    """An ORT-format file does not give the outputs of the ONNX file it came from."""


def write_ort_models(onnx_paths: list[Path], check_nhwc: np.ndarray) -> dict:
    """Write `<name>.ort` beside each ONNX file, and one operators config, checking each on `check_nhwc`.

    Returns the report entries: per file its size and largest output difference from its ONNX file.
    Raises:
        OrtFormatError: a converted file gives other outputs than its source.
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
            difference = float(np.max(np.abs(Classifier(ort_file, max_batch=512).probabilities(check_nhwc)
                                              - Classifier(path, max_batch=512).probabilities(check_nhwc))))
            if difference > SAME_OUTPUT_TOLERANCE:
                raise OrtFormatError(f"{ort_file.name}: gives outputs {difference:.2e} away from {path} "
                                     f"(> {SAME_OUTPUT_TOLERANCE}); not written.")
            write_bytes_atomic(folder / ort_file.name, ort_file.read_bytes())
            entries[ort_file.name] = {"bytes": ort_file.stat().st_size, "max_abs_difference_from_onnx": difference}
        # The generated config names the scratch folder in a comment; name the files as shipped instead.
        write_text_atomic(folder / OPERATORS_CONFIG, (converted / OPERATORS_CONFIG).read_text().replace(f"{converted}/", ""))
    return {"files": entries, "operators_config": OPERATORS_CONFIG, "checked_images": int(len(check_nhwc))}
