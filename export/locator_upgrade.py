"""Float sign-locator files exported before export's later graph rewrites, brought up to what export writes now.

Export writes every new locator file with its box head run only at the grid's peaks (export/peak_boxes.py, since
2026-12-07) and its stem reading the uint8 image as it comes, without a transpose (`simplify.stem_on_interleaved_columns`,
since the evening of 2026-12-07). A file exported before gets whichever it lacks, in place:

    python -m edgesight.export.locator_upgrade locators/NAME/locator.onnx

once random frames show it gives the centre logits and the peaks' boxes it gave before, within float rounding; ORT-format
copies beside it are made again (export/ort_format.py). An int8 twin is refused: make it again from the upgraded float
file (`edgesight export FILE --data SCENES`), which gives it both rewrites after calibration (export/locator_int8.py).
"""
from __future__ import annotations

import argparse
import copy
import json
import sys
from pathlib import Path

import google.protobuf.message
import numpy as np
import onnx
import onnxruntime as ort
from edgesight.runtime.errors import EdgesightError
from edgesight.runtime.learned_locate import LOCATOR_KEY, difference_from_grid

from .convert import save_model
from .locator_int8 import int8_path
from .ort_format import locator_check_inputs, write_ort_files
from .peak_boxes import PeakBoxesError, box_head_at_peaks, box_head_everywhere
from .simplify import stem_on_interleaved_columns

CHECKED_FRAMES = 8  # random frames an upgraded file must match its original on
CHECKED_SIZE = (400, 680)  # a 1360x800 frame as the shipped locator takes it
# The stem's sums in another order change the centre logits by float rounding: 1.6e-5 at most for the shipped locator
# over the 200 GTSDB scenes; the box head at the peaks changes nothing.
MAX_DIFFERENCE = 1e-4


class LocatorUpgradeError(EdgesightError, ValueError):
    """A file this upgrade cannot or need not rewrite, named with the reason."""


def upgrade_locator_file(path: Path) -> list[str]:
    """Rewrite a float locator file in place with the rewrites it lacks (module docstring); returns what was done."""
    try:
        model = onnx.load(path)
    except google.protobuf.message.DecodeError as error:
        raise LocatorUpgradeError(f"{path}: not a readable ONNX file ({error})") from None
    props = {entry.key: json.loads(entry.value) for entry in model.metadata_props}
    if LOCATOR_KEY not in props:
        raise LocatorUpgradeError(f"{path}: not a sign-locator file (its metadata lacks {LOCATOR_KEY})")
    if "quantization" in props.get("edgesight.provenance", {}):
        raise LocatorUpgradeError(f"{path}: an int8 file; upgrade its float original, then make the twin again from it "
                                  "with `edgesight export FLOAT_FILE --data SCENES`")
    dense = copy.deepcopy(model)
    box_head_everywhere(dense)  # the grid the rewritten outputs are checked against, whichever form the file has
    done = []
    if "max_peaks" not in props[LOCATOR_KEY]:
        box_head_at_peaks(model)
        done.append("box head at the peaks")
    if stem_on_interleaved_columns(model):
        done.append("stem on interleaved columns")
    if not done:
        raise LocatorUpgradeError(f"{path}: nothing to rewrite; it is as export writes locator files now")
    before, after = (ort.InferenceSession(graph.SerializeToString(), providers=["CPUExecutionProvider"]) for graph in (dense, model))
    frames = np.random.default_rng(0).integers(0, 256, (CHECKED_FRAMES, 1, *CHECKED_SIZE, 3), np.uint8)
    difference = max(difference_from_grid(after.run(None, {"image": frame}), before.run(None, {"image": frame})[0])
                     for frame in frames)
    if difference > MAX_DIFFERENCE:
        raise LocatorUpgradeError(f"{path}: the rewritten graph differs from the original by {difference:.1e} "
                                  f"(> {MAX_DIFFERENCE:.0e}); left as it was")
    save_model(model, path)
    # ORT-format copies beside it would hold the old graph: made again, with the operators config for all of them.
    with_copies = [file for file in (path, int8_path(path)) if file.with_suffix(".ort").is_file()]
    if with_copies:
        write_ort_files(with_copies, locator_check_inputs(path))
        done.append("ORT-format copies made again")
    return done


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Bring float sign-locator files exported before export's later rewrites "
                                                 "(box head at the peaks, stem without a transpose) up to what export "
                                                 "writes now, in place: the same outputs within float rounding, in less time.")
    parser.add_argument("files", nargs="+", type=Path, help="locator.onnx files (float)")
    arguments = parser.parse_args(argv)
    try:
        for path in arguments.files:
            done = upgrade_locator_file(path)
            print(f"{path}: {', '.join(done)}; same outputs on {CHECKED_FRAMES} random frames")
    except (OSError, LocatorUpgradeError, PeakBoxesError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
