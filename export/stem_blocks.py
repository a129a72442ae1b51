"""An exact rewrite of an int8 graph's stem convolution for onnxruntime: run it on blocks of image columns.

A stem convolution reads the 3 image channels. onnxruntime's int8 convolution gathers its input tap by tap, a few
bytes at a time, and MLAS's fast int8 kernels want input channels in fours, so a 3-channel stem takes the slow generic
path: 1.8 ms of the sign locator's 6.6 ms on an AMD EPYC with AVX-512 VNNI (2026-12-06), and 9.7 of `gtsrb-tiny`'s
48.7 µs per region, for 6% of its multiply-adds.

Reshaping the NHWC tensor from [N, H, W, C] to [N, H, W/B, B*C] moves nothing, and makes each tap B*C bytes. A
convolution striding s across columns has B/s output pixels per block of B columns; it becomes a convolution
striding 1 across blocks, with B/s times the output channels (the first C_out for the block's first pixel, and so
on), whose weights are the original ones placed at the columns each output pixel reads and zero elsewhere. A Reshape
from [N, H', W/B, (B/s)*C_out] to [N, H', W/s, C_out] moves nothing either and gives back one pixel per column.
Padding blocks hold the input's zero point, as the padding columns did. Weight scales and zero points per output
channel repeat with the channels, so every sum and every rounding is the one the original graph made: the
probabilities are the same to the last bit.

Files exported before the rewrite joined quantize_int8 (2026-12-06) get it in place with
`python -m edgesight.export.stem_blocks models/NAME/model.int8.onnx ...`. The sign locator's int8 twin had it too until
2026-12-07; it now keeps its stem float (export/locator_int8.py), and a float stem is left as it is.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper

from .graph_edit import attributes, consumers

STEM_COLUMN_BLOCK = 4  # image columns per block: 12 channels from an RGB image, which MLAS's fast kernels take

# Between the NHWC tensor's Transpose to NCHW and the stem convolution, only elementwise ops on a whole tensor, which a
# reshape of that tensor commutes with (the activation Quantize/Dequantize pairs are per tensor).
_ELEMENTWISE = ("Cast", "QuantizeLinear", "DequantizeLinear")


def _is_per_tensor(node: onnx.NodeProto, arrays: dict[str, np.ndarray]) -> bool:
    return node.op_type == "Cast" or (node.input[1] in arrays and arrays[node.input[1]].size == 1)


def _dequantizes_a_constant(node: onnx.NodeProto | None, graph: onnx.GraphProto, arrays: dict[str, np.ndarray]) -> bool:
    """Whether `node` is a DequantizeLinear of constants (values, scale, zero point) read by one node alone: the stem's
    weights or bias, which the rewrite may replace."""
    return (node is not None and node.op_type == "DequantizeLinear" and all(name in arrays for name in node.input[:3])
            and len(consumers(graph, node.output[0])) == 1)


def stem_on_column_blocks(model: onnx.ModelProto, width_multiple: int, block: int = STEM_COLUMN_BLOCK) -> bool:
    """Rewrite the first convolution of a QDQ int8 graph, in place, to run on blocks of `block` columns (module
    docstring); False (model untouched) unless that convolution is quantized (constant int8 weights), reads fewer than 4
    channels of an NHWC tensor through a Transpose to NCHW, and pads like Keras's 'same' (output width = input width /
    column stride), and the input width, a multiple of `width_multiple` at run time, is a multiple of `block`. Nothing
    changes but the time.
    """
    graph = model.graph
    producers = {output: node for node in graph.node for output in node.output}
    arrays = {initializer.name: numpy_helper.to_array(initializer) for initializer in graph.initializer}

    stem = next((node for node in graph.node if node.op_type == "Conv"), None)
    if stem is None or width_multiple % block:
        return False
    node = producers.get(stem.input[0])
    while node is not None and node.op_type in _ELEMENTWISE and _is_per_tensor(node, arrays) and len(consumers(graph, node.output[0])) == 1:
        node = producers.get(node.input[0])
    transpose = node
    if transpose is None or transpose.op_type != "Transpose" or attributes(transpose).get("perm") != [0, 3, 1, 2] \
            or len(consumers(graph, transpose.output[0])) != 1:
        return False

    stem_attributes = attributes(stem)
    kernel_height, kernel_width = stem_attributes.get("kernel_shape", [0, 0])
    row_stride, column_stride = stem_attributes.get("strides", [1, 1])
    top, left, bottom, right = stem_attributes.get("pads", [0, 0, 0, 0])
    if (stem_attributes.get("group", 1) != 1 or stem_attributes.get("dilations", [1, 1]) != [1, 1]
            or stem_attributes.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET")
            or block % column_stride or left + right != kernel_width - column_stride):
        return False
    # The weights: constant int8 ones dequantized, per channel along axis 0 or per tensor. A float stem is left as it is:
    # onnxruntime's float path runs a 3-channel stem well, and on blocks it took longer (the float sign locator's network
    # 13.28 against 10.22 ms on an AVX2-only AMD EPYC, 2026-12-07).
    weights_dequantize = producers.get(stem.input[1])
    if not _dequantizes_a_constant(weights_dequantize, graph, arrays):
        return False
    weights, weight_scale, weight_zero = (arrays[name] for name in weights_dequantize.input[:3])
    per_channel = weight_scale.size > 1
    if weights.ndim != 4 or (per_channel and attributes(weights_dequantize).get("axis", 1) != 0):
        return False
    has_bias = len(stem.input) > 2 and bool(stem.input[2])
    bias_dequantize = producers.get(stem.input[2]) if has_bias else None
    if has_bias and not _dequantizes_a_constant(bias_dequantize, graph, arrays):
        return False
    # Where the output goes back to one pixel per column: after the Relu and the QuantizeLinear that follow the stem, if
    # any, so that onnxruntime still fuses them with it; a QuantizeLinear there must be per tensor.
    last = stem
    for follower in ("Relu", "QuantizeLinear"):
        after = consumers(graph, last.output[0])
        if len(after) == 1 and after[0].op_type == follower and (follower == "Relu" or _is_per_tensor(after[0], arrays)):
            last = after[0]

    out_channels, in_channels = weights.shape[:2]
    if in_channels >= 4:  # not an image's channels (and not a stem rewritten already): MLAS's fast kernels take it as it is
        return False
    pixels = block // column_stride
    offsets = [column_stride * pixel - left + tap for pixel in range(pixels) for tap in range(kernel_width)]
    first_block, last_block = min(offsets) // block, max(offsets) // block
    # Weights no output pixel reads are the zero point of their channel: 0 once dequantized.
    zero = np.broadcast_to(weight_zero.reshape(-1, 1, 1, 1) if per_channel else weight_zero, (out_channels, 1, 1, 1))
    blocked = np.empty((pixels * out_channels, block * in_channels, kernel_height, last_block - first_block + 1), weights.dtype)
    blocked[:] = np.tile(zero, (pixels, 1, 1, 1))
    for pixel in range(pixels):
        for tap in range(kernel_width):
            block_index, column = divmod(column_stride * pixel - left + tap, block)
            blocked[pixel * out_channels : (pixel + 1) * out_channels, column * in_channels : (column + 1) * in_channels, :,
                    block_index - first_block] = weights[:, :, :, tap]

    prefix = f"{stem.name or stem.output[0]}_column_blocks"
    new_arrays, replaced = {}, set()

    def replace(node: onnx.NodeProto, index: int, array: np.ndarray, role: str) -> None:
        name = f"{prefix}_{role}"
        new_arrays[name] = array
        replaced.add(node.input[index])
        node.input[index] = name

    replace(weights_dequantize, 0, blocked, "weights")
    if per_channel:
        replace(weights_dequantize, 1, np.tile(weight_scale, pixels), "weight_scale")
        replace(weights_dequantize, 2, np.tile(weight_zero, pixels), "weight_zero_point")
    if bias_dequantize is not None:
        for index, role in enumerate(("bias", "bias_scale", "bias_zero_point")):
            value = arrays[bias_dequantize.input[index]]
            if index == 0 or value.size > 1:
                replace(bias_dequantize, index, np.tile(value, pixels), role)
    new_arrays[f"{prefix}_blocks_shape"] = np.array([0, 0, -1, block * in_channels], np.int64)
    new_arrays[f"{prefix}_pixels_shape"] = np.array([0, 0, -1, out_channels], np.int64)
    graph.initializer.extend(numpy_helper.from_array(array, name) for name, array in new_arrays.items())

    nhwc = transpose.input[0]
    graph.node.insert(list(graph.node).index(transpose),
                      helper.make_node("Reshape", [nhwc, f"{prefix}_blocks_shape"], [f"{prefix}_input"], name=f"{prefix}_input"))
    transpose.input[0] = f"{prefix}_input"
    del stem.attribute[:]
    stem.attribute.extend([helper.make_attribute("kernel_shape", [kernel_height, last_block - first_block + 1]),
                           helper.make_attribute("strides", [row_stride, 1]),
                           helper.make_attribute("pads", [top, -first_block, bottom, last_block])])
    # Back to one pixel per column: NCHW -> NHWC, reshape, -> NCHW (onnxruntime cancels the transposes against its own
    # NHWC layout).
    blocked_output = last.output[0]
    readers = consumers(graph, blocked_output)
    back = [helper.make_node("Transpose", [blocked_output], [f"{prefix}_nhwc"], perm=[0, 2, 3, 1], name=f"{prefix}_nhwc"),
            helper.make_node("Reshape", [f"{prefix}_nhwc", f"{prefix}_pixels_shape"], [f"{prefix}_pixels"], name=f"{prefix}_pixels"),
            helper.make_node("Transpose", [f"{prefix}_pixels"], [f"{prefix}_output"], perm=[0, 3, 1, 2], name=f"{prefix}_output")]
    for reader in readers:
        reader.input[:] = [f"{prefix}_output" if name == blocked_output else name for name in reader.input]
    position = list(graph.node).index(last)
    for offset, node in enumerate(back, start=1):
        graph.node.insert(position + offset, node)
    used = {name for node in graph.node for name in node.input}
    for initializer in [initializer for initializer in graph.initializer if initializer.name in replaced - used]:
        graph.initializer.remove(initializer)
    del graph.value_info[:]  # the shapes inferred around the stem no longer hold
    return True


QUANTIZATION_KEY = "edgesight.quantization"
CHECK_IMAGES = 256


def upgrade_int8_file(path: Path) -> bool:
    """Rewrite the stem of an int8 model file with 7-bit weights exported before quantize_int8 did it, in place; False if
    there is nothing to rewrite. The new file must give the old one's probabilities exactly on random images of its input size, or it is
    not written. Its `edgesight.quantization` gains "stem_on_column_blocks": true, and ORT-format copies beside it
    (`model.ort`, `model.int8.ort`) are made again."""
    from edgesight.runtime.classifier import Classifier
    from edgesight.runtime.files import write_bytes_atomic

    from .ort_format import write_ort_models

    model = onnx.load(path)
    props = {entry.key: entry.value for entry in model.metadata_props}
    if QUANTIZATION_KEY not in props:
        raise ValueError(f"{path}: not an int8 edgesight model file: metadata lacks {QUANTIZATION_KEY}.")
    if json.loads(props[QUANTIZATION_KEY]).get("weight_bits") != 7:
        # CPUs without int8 dot products add pairs of products in 16 bits, which full-range weights can saturate, and
        # the blocks pair other products: the file's figures measured on such CPUs might not hold. 7-bit weights cannot.
        raise ValueError(f"{path}: has 8-bit weights, which CPUs without int8 dot products may sum differently once the "
                         "stem is rewritten; export it again (export measures the rewritten file) instead.")
    height, width = (dim.dim_value for dim in model.graph.input[0].type.tensor_type.shape.dim[1:3])
    if not width or not stem_on_column_blocks(model, width):  # no fixed width: nothing to go by
        return False
    quantization = json.loads(props[QUANTIZATION_KEY]) | {"stem_on_column_blocks": True}
    next(entry for entry in model.metadata_props if entry.key == QUANTIZATION_KEY).value = json.dumps(quantization)
    onnx.checker.check_model(model, full_check=True)
    images = np.random.default_rng(0).integers(0, 256, (CHECK_IMAGES, height, width, 3), np.uint8)
    with tempfile.TemporaryDirectory(prefix="edgesight-stem-") as scratch:
        candidate = Path(scratch) / path.name
        onnx.save(model, candidate)
        before, after = (Classifier(file, max_batch=CHECK_IMAGES).probabilities(images) for file in (path, candidate))
        if not np.array_equal(before, after):
            raise ValueError(f"{path}: the rewritten stem changed the probabilities by up to "
                             f"{np.max(np.abs(before - after)):.2e}; file left as it was.")
    write_bytes_atomic(path, model.SerializeToString())
    ort_sources = [file for file in (path.with_name("model.onnx"), path) if file.with_suffix(".ort").exists()]
    if ort_sources:
        write_ort_models(ort_sources, images)
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Rewrite the stem of int8 model files exported before edgesight did it "
                                                 "at export (same probabilities, less time), in place.")
    parser.add_argument("files", nargs="+", type=Path, help="model.int8.onnx files")
    arguments = parser.parse_args(argv)
    for path in arguments.files:
        try:
            done = upgrade_int8_file(path)
        except (OSError, ValueError, onnx.checker.ValidationError) as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        print(f"{path}: {'stem rewritten, same probabilities' if done else 'nothing to rewrite'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
