"""A sign locator's box head run only where the runtime reads it: at the grid's best local maxima, inside the graph.

The locator's network ends in two heads over the same features: the centre score, needed at every cell to find the
peaks, and the box (offset, log width and height), which the runtime reads only at the peaks it keeps, at most
`MAX_BOXES` a frame of the 17,000 cells of a 1360x800 frame. Run densely, the box head costs as much as a context layer.

This rewrite keeps the dense centre head and replaces the dense box head with the same layers applied to the features
under each of the best `max_peaks` local maxima of the centre logits:

    centre [N, 1, H, W] -> MaxPool 3x3 == centre (the 3x3 peak test decode used) -> TopK over the cells, best first
    features [N, C, H, W] -> Gather of each peak's k x k taps (zero past the edges, as the 'same' padding gave)
        -> the box head's own nodes on [N * peaks, C, k, k] patches, its first convolution unpadded -> [N, peaks, 4]

Outputs (the locator contract in runtime/learned_locate.py): `centre_logit` [N, H, W, 1] (NCHW with one channel is
NHWC already), `peak_logit` and `peak_cell` [N, peaks] (best first; cells past the frame's peaks score NOT_A_PEAK) and
`peak_box` [N, peaks, 4]. The same sums as the dense head, so the same values in float; on an int8 graph (see
`box_head_at_peaks`) the same values too. The new nodes are named under `PEAK_NODES/`, the copies of the head's own
under `HEAD_COPIES`, from which `box_head_everywhere` puts the dense head back.

The sign locator's network on a 680x400 input (a 1360x800 frame halved), one thread, side by side
(`benchmarks/locator_network_time.py`, AMD EPYC, AVX2 only, 2026-12-07, two runs on hours of different speed): int8
13.09 against 14.37 ms and 9.71 against 10.57 ms, float 12.19 against 13.27 ms and 9.51 against 10.64 ms (0.89-0.92x).
The first tries cost more than they saved: gathering taps from NCHW features one value at a time (0.57 ms), the layout
change and full DequantizeLinear that reading the int8 features' shape brought (0.55 ms), and a MaxPool after the
centre's DequantizeLinear, which onnxruntime runs on uint8 (0.40-0.49 ms for one channel, against 0.02-0.04 ms in
float). An identity Reshape between them, meant to stop that, did not (onnxruntime moves the DequantizeLinear past
Reshapes too); a Max with NOT_A_PEAK does (2026-12-07, evening).
Calibrating the int8 twin with the head at the peaks was tried first and rejected: its ranges then came from the peaks
alone and its centre logits were no longer rounded with the box channels, and it let through more false detections
(benchmarks/results/2026-12-07-box-head-at-peaks/RULE.txt). Twins are calibrated on the dense graph, and rewritten
after (export/locator_int8.py).

Float locator files exported before the rewrite joined export get it in place with
`python -m edgesight.export.locator_upgrade locators/NAME/locator.onnx`; their int8 twins are then made again from them.
`python -m edgesight.export.peak_boxes --dense FILE OUT` writes a float file's dense form, for a distillation teacher,
which needs every cell's box.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import google.protobuf.message
import numpy as np
import onnx
from edgesight.runtime.learned_locate import (
    LOCATOR_KEY,
    LOCATOR_OUTPUTS,
    MAX_BOXES,
    NOT_A_PEAK,
    PEAK_OUTPUTS,
)
from onnx import TensorProto, helper, numpy_helper

from .convert import save_model
from .graph_edit import attributes, consumers, drop_unused_initializers

PEAK_NODES = "peaks"  # name prefix of the nodes this rewrite adds
HEAD_COPIES = f"{PEAK_NODES}/head/"  # name prefix of its copies of the box head's nodes: the rest of the name is the original's
_HEAD_OPS = ("Conv", "Mul", "Add", "Relu", "QuantizeLinear", "DequantizeLinear")
_QUANTIZATION_OPS = ("QuantizeLinear", "DequantizeLinear")


class PeakBoxesError(ValueError):
    """The graph does not end in the dense centre and box heads this rewrite expects."""


def _constant_arrays(graph: onnx.GraphProto) -> dict[str, np.ndarray]:
    """Initializers, and the DequantizeLinear outputs of initializers (an int8 graph's weights), by tensor name."""
    arrays = {initializer.name: numpy_helper.to_array(initializer) for initializer in graph.initializer}
    for node in graph.node:
        if node.op_type == "DequantizeLinear" and all(name in arrays for name in node.input if name):
            arrays[node.output[0]] = arrays[node.input[0]]  # the shape is what is read here, not the values
    return arrays


def _per_tensor(node: onnx.NodeProto, arrays: dict[str, np.ndarray]) -> bool:
    return node.op_type not in _QUANTIZATION_OPS or arrays[node.input[1]].size == 1


def _box_head(graph: onnx.GraphProto, box_output: str, arrays: dict[str, np.ndarray]) -> tuple[list[onnx.NodeProto], str]:
    """The box head's nodes in order, from the shared features to `box_output`, and the features' tensor name.

    Walks back through convolutions, Mul, Add, Relu and per-tensor (De)QuantizeLinear nodes whose other inputs are
    constants, while each tensor feeds only the next node; the first tensor read by something else too (the centre
    head) is the shared features.
    """
    producers = {output: node for node in graph.node for output in node.output}
    chain: list[onnx.NodeProto] = []
    tensor = box_output
    while True:
        node = producers.get(tensor)
        if (node is None or node.op_type not in _HEAD_OPS or any(name not in arrays for name in node.input[1:] if name)
                or not _per_tensor(node, arrays)):
            raise PeakBoxesError(f"the box head reaches {node.op_type if node else 'the graph input'} {tensor!r}, not only "
                                 f"{', '.join(_HEAD_OPS)} with constant weights and per-tensor quantization")
        chain.insert(0, node)
        tensor = node.input[0]
        if len(consumers(graph, tensor)) > 1:
            return chain, tensor


def _check_spatial(chain: list[onnx.NodeProto]) -> tuple[int, int]:
    """(kernel side, dilation) of the head's first node, a convolution padded 'same'; every later convolution is 1x1."""
    first = attributes(chain[0])
    if chain[0].op_type != "Conv":
        raise PeakBoxesError(f"the box head starts with {chain[0].op_type}, not a convolution")
    side, other = first.get("kernel_shape", [1, 1])
    dilation = first.get("dilations", [1, 1])
    reach = dilation[0] * (side - 1) // 2
    if (side != other or side % 2 == 0 or dilation[0] != dilation[1] or first.get("strides", [1, 1]) != [1, 1]
            or first.get("pads", [0, 0, 0, 0]) != [reach] * 4 or first.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET")):
        raise PeakBoxesError(f"the box head's first convolution is not square, odd, unit-stride and padded 'same': {first}")
    for node in chain[1:]:
        later = attributes(node)
        if node.op_type == "Conv" and (later.get("kernel_shape") != [1, 1] or later.get("strides", [1, 1]) != [1, 1]):
            raise PeakBoxesError(f"a later convolution of the box head is not 1x1: {node.name or node.output[0]}")
    return side, dilation[0]


def _grid_ending(graph: onnx.GraphProto, arrays: dict[str, np.ndarray]) -> tuple[onnx.NodeProto, list[onnx.NodeProto]]:
    """The Concat of the centre and box channels, and the nodes from it to the NHWC grid output: one Transpose and, in an
    int8 graph, per-tensor Quantize/Dequantize pairs."""
    if len(graph.output) != 1:
        raise PeakBoxesError(f"expected one output, the dense grid; found {[output.name for output in graph.output]}")
    producers = {output: node for node in graph.node for output in node.output}
    ending: list[onnx.NodeProto] = []
    node = producers.get(graph.output[0].name)
    while node is not None and node.op_type in ("Transpose", *_QUANTIZATION_OPS) and _per_tensor(node, arrays):
        ending.insert(0, node)
        node = producers.get(node.input[0])
    transposes = [step for step in ending if step.op_type == "Transpose"]
    if (node is None or node.op_type != "Concat" or attributes(node).get("axis") not in (1, -3) or len(node.input) != 2
            or len(transposes) != 1 or attributes(transposes[0]).get("perm") != [0, 2, 3, 1]):
        raise PeakBoxesError("the output is not the NHWC Transpose of a two-input channel Concat (centre, box)")
    return node, ending


def box_head_at_peaks(model: onnx.ModelProto, max_peaks: int = MAX_BOXES) -> None:
    """Rewrite a float or QDQ int8 locator graph in place (module docstring), and stamp `max_peaks` in its locator
    metadata if it has any. Its one output must be the NHWC grid: a Transpose of the Concat of the centre head's one
    channel and the box head's four (in an int8 graph, with Quantize/Dequantize pairs between).

    In an int8 graph the taps are gathered as uint8, before the features' DequantizeLinear (a copy of which follows the
    gather), padded with its zero point, and the Quantize/Dequantize pairs after the Concat are applied to the centre
    and to the box channels alike: every value is the one the dense graph gave.

    Raises:
        PeakBoxesError: the graph is not shaped so, named with what was found.
    """
    graph = model.graph
    arrays = _constant_arrays(graph)
    producers = {output: node for node in graph.node for output in node.output}
    concat, ending = _grid_ending(graph, arrays)
    centre, box = concat.input
    chain, features = _box_head(graph, box, arrays)
    side, dilation = _check_spatial(chain)
    channels = int(arrays[chain[0].input[1]].shape[0])
    dequantize = producers.get(features)
    if dequantize is None or dequantize.op_type != "DequantizeLinear" or not _per_tensor(dequantize, arrays):
        dequantize = None

    nodes: list[onnx.NodeProto] = []
    constants: list[onnx.TensorProto] = []

    def name(part: str) -> str:
        return f"{PEAK_NODES}/{part}"

    def constant(part: str, value) -> str:
        constants.append(numpy_helper.from_array(np.asarray(value), name(part)))
        return name(part)

    def node(op: str, inputs: list[str], part: str, **attributes) -> str:
        nodes.append(helper.make_node(op, inputs, [name(part)], name=name(part), **attributes))
        return name(part)

    def copied(original: onnx.NodeProto, source: str, prefix: str) -> str:
        """A copy of `original` reading `source`, named and writing under `prefix`."""
        copy = onnx.NodeProto()
        copy.CopyFrom(original)
        copy.name = f"{prefix}{original.name or original.output[0]}"
        copy.input[0] = source
        copy.output[0] = f"{prefix}{original.output[0]}"
        nodes.append(copy)
        return copy.output[0]

    def as_output(tensor: str, part: str) -> str:
        """The tensor as the dense graph rounded it into the grid: in an int8 graph, through a Concat of it alone and the
        Quantize/Dequantize pairs after the Concat (onnxruntime fuses them into a QLinearConcat, whose requantization
        rounds a few values otherwise than a Dequantize and Quantize pair)."""
        if any(step.op_type in _QUANTIZATION_OPS for step in ending):
            tensor = copied(concat, tensor, name(f"{part}/"))
            del nodes[-1].input[1:]
            for step in ending:
                if step.op_type != "Transpose":
                    tensor = copied(step, tensor, name(f"{part}/"))
        return tensor

    # The peaks: local maxima of the centre logits (ties with a neighbour count, as cv2.dilate's test did), best first.
    centre = as_output(centre, "centre")
    shape = node("Shape", [centre], "shape")  # the centre's, not the features': reading those would make an int8 graph move them
    # In an int8 graph onnxruntime moves a DequantizeLinear past the Reshapes, Transposes and MaxPools after it (its QDQ
    # propagation) and runs such a MaxPool on uint8, which for one channel took 402 us against 24 in float (AMD EPYC,
    # AVX2). A Max with NOT_A_PEAK, below every logit, changes no value and stops that move.
    not_peak = constant("not_peak", np.float32(NOT_A_PEAK))
    scores = node("Max", [centre, not_peak], "scores")
    pooled = node("MaxPool", [scores], "pooled", kernel_shape=[3, 3], strides=[1, 1], pads=[1, 1, 1, 1])
    masked = node("Where", [node("Equal", [scores, pooled], "is_peak"), scores, not_peak], "masked")
    flat = node("Reshape", [masked, constant("batch_by_cells", np.array([0, -1], np.int64))], "flat")
    zero, one, two, three, four = (constant(f"axis_{axis}", np.array([axis], np.int64)) for axis in range(5))
    batch, height, width = (node("Slice", [shape, start, end], part) for start, end, part in
                            ((zero, one, "batch"), (two, three, "height"), (three, four, "width")))
    cells = node("Mul", [height, width], "cells")
    count = node("Min", [cells, constant("max_peaks", np.array([max_peaks], np.int64))], "count")
    nodes.append(helper.make_node("TopK", [flat, count], ["peak_logit", "peak_cell"], name=name("top"), axis=1))

    # Each peak's taps: rows and columns offset by the head's reach, clamped to the grid, padding where they left it.
    offsets = (np.arange(side) - side // 2) * dilation
    row_offsets, column_offsets = (constant(part, values.reshape(1, 1, -1).astype(np.int64)) for part, values in
                                   (("row_offsets", np.repeat(offsets, side)), ("column_offsets", np.tile(offsets, side))))
    peak_cell = node("Unsqueeze", ["peak_cell", constant("last_axis", np.array([-1], np.int64))], "peak_cell_3d")
    rows = node("Add", [node("Div", [peak_cell, width], "row"), row_offsets], "tap_rows")
    columns = node("Add", [node("Mod", [peak_cell, width], "column"), column_offsets], "tap_columns")
    inside = node("And", [
        node("And", [node("GreaterOrEqual", [rows, zero], "rows_from_top"), node("Less", [rows, height], "rows_to_bottom")], "rows_inside"),
        node("And", [node("GreaterOrEqual", [columns, zero], "columns_from_left"), node("Less", [columns, width], "columns_to_right")], "columns_inside"),
    ], "inside")
    clamped_rows = node("Min", [node("Max", [rows, zero], "rows_above_0"), node("Sub", [height, one], "last_row")], "clamped_rows")
    clamped_columns = node("Min", [node("Max", [columns, zero], "columns_above_0"), node("Sub", [width, one], "last_column")], "clamped_columns")
    tap_cells = node("Add", [node("Mul", [clamped_rows, width], "row_starts"), clamped_columns], "tap_cells")  # [N, peaks, taps]

    # Gather each tap's channels from the features as [N * H * W, C] rows (index = image * cells + cell): a Transpose to
    # NHWC that onnxruntime cancels against its own layout of an int8 graph's features, then one row copied per tap.
    images = node("Range", [constant("zero_scalar", np.int64(0)), node("Squeeze", [batch], "batch_scalar"),
                            constant("one_scalar", np.int64(1))], "images")
    image_starts = node("Mul", [node("Unsqueeze", [images, one], "images_2d"), cells], "image_starts")
    index = node("Add", [image_starts, node("Reshape", [tap_cells, constant("batch_rest", np.array([0, -1], np.int64))], "flat_taps")], "index")
    source = dequantize.input[0] if dequantize else features
    pixel_rows = node("Reshape", [node("Transpose", [source], "features_nhwc", perm=[0, 2, 3, 1]),
                                  constant("by_channels", np.array([-1, channels], np.int64))], "pixel_rows")
    taps = node("Gather", [pixel_rows, index], "taps", axis=0)  # [N, peaks * taps, C]
    # Zero past the grid's edges, as the 'same' padding gave: in an int8 graph, the features' zero point.
    padding = dequantize.input[2] if dequantize and len(dequantize.input) > 2 else constant("padding", np.float32(0.0))
    padded = node("Where", [node("Reshape", [inside, constant("mask_shape", np.array([0, -1, 1], np.int64))], "inside_rows"),
                            taps, padding], "padded_taps")
    patches = node("Transpose", [node("Reshape", [padded, constant("patch_nhwc", np.array([-1, side, side, channels], np.int64))],
                                      "patches_nhwc")], "patches", perm=[0, 3, 1, 2])
    if dequantize:
        patches = copied(dequantize, patches, HEAD_COPIES)

    # The box head's own nodes on the patches; the first convolution now reads exactly its taps, unpadded (its dense
    # padding and dilation kept in its doc string, for `box_head_everywhere`).
    head = patches
    for original in chain:
        head = copied(original, head, HEAD_COPIES)
        if original is chain[0]:
            first = nodes[-1]
            dense = attributes(original)
            first.doc_string = json.dumps({"dense_pads": dense.get("pads", [0] * 4), "dense_dilations": dense.get("dilations", [1, 1])})
            for attribute in first.attribute:
                if attribute.name in ("pads", "dilations"):
                    attribute.ints[:] = [0] * 4 if attribute.name == "pads" else [1, 1]
    box_shape = node("Concat", [batch, constant("rest", np.array([-1, 4], np.int64))], "box_shape", axis=0)
    nodes.append(helper.make_node("Reshape", [as_output(head, "box"), box_shape], ["peak_box"], name=name("peak_box")))
    nodes.append(helper.make_node("Reshape", [centre, node("Concat", [batch, height, width, one], "centre_shape", axis=0)],
                                  ["centre_logit"], name=name("centre_logit")))

    for removed in chain + [concat] + ending:
        graph.node.remove(removed)
    if dequantize is not None and not consumers(graph, dequantize.output[0]):
        graph.node.remove(dequantize)
    graph.node.extend(nodes)
    graph.initializer.extend(constants)
    drop_unused_initializers(graph)
    del graph.output[:]
    shapes = {"centre_logit": (TensorProto.FLOAT, ["batch", "rows", "columns", 1]), "peak_logit": (TensorProto.FLOAT, ["batch", "peaks"]),
              "peak_cell": (TensorProto.INT64, ["batch", "peaks"]), "peak_box": (TensorProto.FLOAT, ["batch", "peaks", 4])}
    graph.output.extend(helper.make_tensor_value_info(output, *shapes[output]) for output in PEAK_OUTPUTS)
    del graph.value_info[:]
    _stamp_max_peaks(model, max_peaks)
    onnx.checker.check_model(model, full_check=True)


def box_head_everywhere(model: onnx.ModelProto) -> bool:
    """Undo `box_head_at_peaks` on a float graph, in place: the dense grid output again, for calibrating an int8 twin on
    the same tensors as the graph the twin's rewrite is exact against. False (model untouched) if it has no head copies."""
    graph = model.graph
    head = [node for node in graph.node if node.name.startswith(HEAD_COPIES)]
    if not head:
        return False
    if any(node.op_type in _QUANTIZATION_OPS for node in graph.node):
        raise PeakBoxesError("an int8 graph: its dense form is the twin made again from its float file")
    named = {node.name: node for node in graph.node}
    features = named[f"{PEAK_NODES}/features_nhwc"].input[0]
    centre = named[f"{PEAK_NODES}/shape"].input[0]
    restored = []
    for copy in head:
        node = onnx.NodeProto()
        node.CopyFrom(copy)
        node.name, node.output[0] = (text.removeprefix(HEAD_COPIES) for text in (copy.name, copy.output[0]))
        node.input[0] = restored[-1].output[0] if restored else features
        if node.doc_string:
            dense = json.loads(node.doc_string)
            for attribute in node.attribute:
                if attribute.name in ("pads", "dilations"):
                    attribute.ints[:] = dense[f"dense_{attribute.name}"]
            node.doc_string = ""
        restored.append(node)
    grid = helper.make_node("Concat", [centre, restored[-1].output[0]], ["grid_nchw"], name="grid_concat", axis=1)
    transpose = helper.make_node("Transpose", ["grid_nchw"], ["grid"], name="grid_transpose", perm=[0, 2, 3, 1])
    for node in [node for node in graph.node if node.name.startswith(f"{PEAK_NODES}/")]:
        graph.node.remove(node)
    graph.node.extend(restored + [grid, transpose])
    drop_unused_initializers(graph)
    del graph.output[:]
    graph.output.append(helper.make_tensor_value_info("grid", TensorProto.FLOAT, ["batch", "rows", "columns", len(LOCATOR_OUTPUTS)]))
    for entry in model.metadata_props:
        if entry.key == LOCATOR_KEY:
            entry.value = json.dumps({key: value for key, value in json.loads(entry.value).items() if key != "max_peaks"})
    onnx.checker.check_model(model, full_check=True)
    return True


def _stamp_max_peaks(model: onnx.ModelProto, max_peaks: int) -> None:
    for entry in model.metadata_props:
        if entry.key == LOCATOR_KEY:
            entry.value = json.dumps(json.loads(entry.value) | {"max_peaks": max_peaks})


def write_dense_copy(path: Path, out: Path) -> None:
    """Write the dense form of a float locator file (every cell's box channels, as files exported before the rewrite),
    for what needs the whole grid: a teacher for `train-locator --teacher`."""
    try:
        model = onnx.load(path)
    except google.protobuf.message.DecodeError as error:
        raise PeakBoxesError(f"{path}: not a readable ONNX file ({error})") from None
    if not box_head_everywhere(model):
        raise PeakBoxesError(f"{path}: its box head runs at every cell already")
    save_model(model, out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write the dense form of a float sign-locator file (every cell's box "
                                                 "channels): a teacher for train-locator --teacher needs it.")
    parser.add_argument("--dense", nargs=2, type=Path, metavar=("FILE", "OUT"),
                        help="the float locator file and where to write its dense form")
    parser.add_argument("files", nargs="*", help=argparse.SUPPRESS)  # the in-place rewrite this command did until 2026-12-07
    arguments = parser.parse_args(argv)
    if arguments.files or not arguments.dense:
        parser.error("--dense FILE OUT writes a float locator file's dense form; an older float file gets the box head "
                     "at the peaks in place with `python -m edgesight.export.locator_upgrade FILE` (since 2026-12-07)")
    try:
        write_dense_copy(*arguments.dense)
    except (OSError, PeakBoxesError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"{arguments.dense[1]}: the dense form of {arguments.dense[0]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
