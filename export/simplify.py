"""Graph rewrites of the tf2onnx output that leave its arithmetic alone but cut its node count.

At 32×32 a node costs onnxruntime about as much as the arithmetic of a small conv (≈0.45 µs each,
TOOLCHAIN_NOTES.md), and tf2onnx spells two simple things with many nodes:

- per-image standardization (Keras `LayerNormalization` over H, W, C after the 1/255 `Rescaling`)
  becomes a dozen elementwise nodes; ONNX has one `LayerNormalization` op for it;
- `Flatten` reshapes to a shape computed at run time from the batch size (Shape, Gather, Slice,
  Concat, Cast…), although everything but the batch is known;
- for the sign locator, whose input is a whole frame, the 1/255 `Rescaling` before the first
  convolution becomes float passes and a float layout transpose over every pixel
  (`fold_input_scaling`), and the transpose left after that can go too: the stem can read the
  image as it comes (`stem_on_interleaved_columns`).

Each rewrite checks its pattern and leaves the graph untouched when it does not match; the export's
Keras-vs-ONNX parity check then proves the rewritten graph computes the same function.
"""
from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper, shape_inference

from .graph_edit import attributes, consumers, drop_unused_initializers


def _layer_of(node: onnx.NodeProto) -> set[str]:
    """Keras layer names in a tf2onnx node name, e.g. {"cnn_tiny_1", "standardize_1", ...} without suffixes."""
    return {part.rsplit("_", 1)[0] if part.rsplit("_", 1)[-1].isdigit() else part for part in node.name.split("/")}


def fuse_standardization(model: onnx.ModelProto, epsilon: float, input_scale: float) -> bool:
    """Replace the nodes of the `scale` and `standardize` layers by one ONNX LayerNormalization.

    Standardization ignores a constant scale a and offset b except through epsilon:
    LN(a·x + b, eps) = LN(x, eps / a²). Returns whether the graph changed.
    """
    graph = model.graph
    region = [node for node in graph.node if _layer_of(node) & {"scale", "standardize"}]
    if not any("standardize" in _layer_of(node) for node in region):
        return False
    produced_inside = {output for node in region for output in node.output}
    constants = {initializer.name for initializer in graph.initializer}
    constants |= {output for node in graph.node if node.op_type == "Constant" for output in node.output}
    inputs = {name for node in region for name in node.input if name not in produced_inside and name not in constants}
    outside = [node for node in graph.node if node not in region]
    outputs = {name for node in outside for name in node.input if name in produced_inside}
    outputs |= {output.name for output in graph.output if output.name in produced_inside}
    shape = _static_shapes(model).get(next(iter(inputs))) if len(inputs) == 1 else None
    if len(outputs) != 1 or shape is None:
        return False
    (source,), (result,) = inputs, outputs
    ones = numpy_helper.from_array(np.ones(shape[1:], np.float32), name="standardize/unit_scale")
    fused = helper.make_node("LayerNormalization", [source, ones.name], [result], name="standardize/LayerNormalization",
                             axis=1, epsilon=float(epsilon / input_scale**2))
    position = min(list(graph.node).index(node) for node in region)
    kept = [node for node in graph.node if node not in region]
    del graph.node[:]
    graph.node.extend(kept[:position] + [fused] + kept[position:])
    graph.initializer.append(ones)
    _drop_dead_nodes(graph)
    return True


def static_flatten(model: onnx.ModelProto) -> int:
    """Give Reshape nodes to rank 2 whose input has static non-batch dims a constant [-1, n] shape.

    Returns how many were rewritten; the run-time shape computation feeding them is then dropped.
    """
    graph = model.graph
    initializers = {initializer.name for initializer in graph.initializer}
    shapes = _static_shapes(model)  # rewriting a Reshape's shape input changes no tensor's shape
    rewritten = 0
    for node in graph.node:
        if node.op_type != "Reshape" or node.input[1] in initializers:
            continue
        shape, target = shapes.get(node.input[0]), shapes.get(node.output[0])
        if shape is None or target is None or len(target) != 2 or any(d is None for d in shape[1:]):
            continue
        constant = numpy_helper.from_array(np.array([-1, int(np.prod(shape[1:]))], np.int64), name=f"{node.name}/static_shape")
        graph.initializer.append(constant)
        node.input[1] = constant.name
        rewritten += 1
    if rewritten:
        _drop_dead_nodes(graph)
    return rewritten


def _static_shapes(model: onnx.ModelProto, data_prop: bool = False) -> dict[str, list[int | None]]:
    """Tensor shapes from one ONNX shape inference; None for the batch (or any symbolic) dim.

    `data_prop` also follows shapes computed in the graph (Shape, Slice, Concat into a Reshape).
    """
    inferred = shape_inference.infer_shapes(model, data_prop=data_prop)
    return {value.name: [d.dim_value if d.HasField("dim_value") else None for d in value.type.tensor_type.shape.dim]
            for value in list(inferred.graph.value_info) + list(inferred.graph.input) + list(inferred.graph.output)
            if value.type.tensor_type.HasField("shape")}


def _drop_dead_nodes(graph: onnx.GraphProto) -> None:
    needed = {output.name for output in graph.output}
    alive = []
    for node in reversed(graph.node):
        if any(output in needed for output in node.output):
            alive.append(node)
            needed.update(node.input)
    alive.reverse()
    del graph.node[:]
    graph.node.extend(alive)
    drop_unused_initializers(graph)


def fold_input_scaling(model_proto: onnx.ModelProto) -> bool:
    """Move a uint8 image's scaling into the first convolution's weights, and transpose it while still uint8.

    tf2onnx turns Keras' Rescaling before the first convolution into Cast -> Mul(s) -> Add(0) ->
    Transpose(NHWC to NCHW) on float values: two passes over the whole frame and a transpose of
    four times the bytes. Rewritten as Transpose (uint8) -> Cast -> Conv with its weights times s,
    the locator's 680x400 input costs 0.7 ms less (of 6.8). Exact up to float rounding: with no
    offset, scaling commutes with the convolution's zero padding. Returns whether the pattern was
    found; the graph is left alone otherwise.
    """
    graph = model_proto.graph
    initializers = {tensor.name: tensor for tensor in graph.initializer}
    consumers: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)

    def only_consumer(name: str, op_type: str):
        users = consumers.get(name, [])
        return users[0] if len(users) == 1 and users[0].op_type == op_type else None

    def scalar(name: str) -> float | None:
        tensor = initializers.get(name)
        values = numpy_helper.to_array(tensor) if tensor is not None else None
        return float(values.reshape(-1)[0]) if values is not None and values.size == 1 else None

    cast = only_consumer(graph.input[0].name, "Cast")
    mul = cast and only_consumer(cast.output[0], "Mul")
    scale = mul and scalar(mul.input[1])
    add = mul and only_consumer(mul.output[0], "Add")
    after_scaling = add.output[0] if add is not None and scalar(add.input[1]) == 0.0 else mul and mul.output[0]
    transpose = after_scaling and only_consumer(after_scaling, "Transpose")
    conv = transpose and only_consumer(transpose.output[0], "Conv")
    permutation = next((list(attribute.ints) for attribute in transpose.attribute if attribute.name == "perm"), None) if transpose else None
    if not conv or scale is None or permutation != [0, 3, 1, 2] or conv.input[1] not in initializers:
        return False
    weights = initializers[conv.input[1]]
    weights.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(weights) * scale, weights.name))
    transpose.input[0] = graph.input[0].name
    cast.input[0] = transpose.output[0]
    conv.input[0] = cast.output[0]
    scaling = [mul] if after_scaling == mul.output[0] else [mul, add]
    rest = [node for node in graph.node if all(node is not moved for moved in (transpose, cast, *scaling))]
    del graph.node[:]
    graph.node.extend([transpose, cast, *rest])
    stale = {transpose.output[0], cast.output[0]}  # their element types changed
    kept_info = [info for info in graph.value_info if info.name not in stale]
    del graph.value_info[:]
    graph.value_info.extend(kept_info)
    drop_unused_initializers(graph)
    onnx.checker.check_model(model_proto, full_check=True)
    return True


def _image_stem(graph: onnx.GraphProto, layout_ops: tuple[str, ...]):
    """The nodes from the graph's input through `layout_ops`, a Cast and a Conv, each the only reader of the one before,
    and the Conv's constant kernel if no other node reads it and the Conv has no groups, dilations or auto_pad; None if
    the graph does not start so."""
    nodes, tensor = [], graph.input[0].name
    for op_type in (*layout_ops, "Cast", "Conv"):
        readers = consumers(graph, tensor)
        if len(readers) != 1 or readers[0].op_type != op_type:
            return None
        nodes.append(readers[0])
        tensor = readers[0].output[0]
    conv_attributes = attributes(nodes[-1])
    weights = next((tensor for tensor in graph.initializer if tensor.name == nodes[-1].input[1]), None)
    if (weights is None or len(weights.dims) != 4 or len(consumers(graph, weights.name)) != 1
            or conv_attributes.get("group", 1) != 1 or conv_attributes.get("dilations", [1, 1]) != [1, 1]
            or conv_attributes.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET")):
        return None
    return nodes, weights


def _restem(graph: onnx.GraphProto, stem: list[onnx.NodeProto], new_layout: list[onnx.NodeProto], weights: onnx.TensorProto,
            kernel: np.ndarray, strides: list[int], pads: list[int]) -> None:
    """Put `new_layout` in place of the layout nodes of `stem` (as `_image_stem` gives it) before its Cast, and give its
    Conv `kernel` (under its weights' name), `strides` and `pads`."""
    *layout_nodes, cast, conv = stem
    position = list(graph.node).index(layout_nodes[0])
    for node in layout_nodes:
        graph.node.remove(node)
    for offset, node in enumerate(new_layout):
        graph.node.insert(position + offset, node)
    cast.input[0] = new_layout[-1].output[0]
    weights.CopyFrom(numpy_helper.from_array(np.ascontiguousarray(kernel), weights.name))
    del conv.attribute[:]
    conv.attribute.extend([helper.make_attribute("kernel_shape", list(kernel.shape[2:])),
                           helper.make_attribute("strides", strides), helper.make_attribute("pads", pads)])
    stale = {layout_nodes[-1].output[0], cast.output[0]}  # their shapes changed
    kept_info = [info for info in graph.value_info if info.name not in stale]
    del graph.value_info[:]
    graph.value_info.extend(kept_info)
    drop_unused_initializers(graph)


def stem_on_interleaved_columns(model_proto: onnx.ModelProto) -> bool:
    """Let the first convolution read the NHWC uint8 image as it comes, without its Transpose to NCHW, in place.

    The image's bytes [N, H, W, C] are also an NCHW tensor of one channel, [N, 1, H, W*C], whose columns interleave the
    C channels (a Reshape and an Unsqueeze, which move nothing). A convolution over the C channels with a kh x kw kernel
    is then one over that plane with a kh x (kw*C) kernel, laid out as [O, 1, kh, kw*C] with entry (row, C*dx + c) the
    original (c, row, dx), its column stride and column pads times C. The same products, summed in another order, so
    equal up to float rounding (1.6e-5 in the shipped sign locator's centre logits over the 200 GTSDB scenes). The
    transpose took 167 us of a 680x280 input's 5.74 ms in onnxruntime; without it the stem itself ran faster too
    (534 against 586 us), and the sign locator's network took 7.67 against 8.04 ms (int8 twin) and 7.79 against 8.07 ms
    (float) on a 680x400 input (AMD EPYC, AVX2 only, one thread, 2026-12-07; benchmarks/results/2026-12-07-interleaved-stem/).

    The pattern: the graph's input -> Transpose [0, 3, 1, 2] -> Cast -> Conv with constant weights read by it alone, no
    groups or dilations, in opset 13 or later (Unsqueeze takes its axes as an input), as `fold_input_scaling` leaves a
    locator. The weights keep their name, so that what rebuilds a model from the file finds them (train/from_onnx.py
    lays them out as [O, C, kh, kw] again). Returns whether the graph changed; it is left alone otherwise.
    `stem_on_channels` undoes it.
    """
    graph = model_proto.graph
    opset = next((entry.version for entry in model_proto.opset_import if entry.domain in ("", "ai.onnx")), 0)
    found = _image_stem(graph, ("Transpose",))
    if found is None or opset < 13 or attributes(found[0][0]).get("perm") != [0, 3, 1, 2]:
        return False
    stem, weights = found
    conv = stem[-1]
    kernel = numpy_helper.to_array(weights)
    out_channels, channels, kernel_height, kernel_width = kernel.shape
    row_stride, column_stride = attributes(conv).get("strides", [1, 1])
    top, left, bottom, right = attributes(conv).get("pads", [0, 0, 0, 0])
    prefix = f"{conv.name or conv.output[0]}_interleaved"
    graph.initializer.extend([numpy_helper.from_array(np.array([0, 0, -1], np.int64), f"{prefix}_rows_shape"),
                              numpy_helper.from_array(np.array([1], np.int64), f"{prefix}_plane_axis")])
    layout = [helper.make_node("Reshape", [graph.input[0].name, f"{prefix}_rows_shape"], [f"{prefix}_rows"], name=f"{prefix}_rows"),
              helper.make_node("Unsqueeze", [f"{prefix}_rows", f"{prefix}_plane_axis"], [f"{prefix}_plane"], name=f"{prefix}_plane")]
    _restem(graph, stem, layout, weights,
            kernel.transpose(0, 2, 3, 1).reshape(out_channels, 1, kernel_height, kernel_width * channels),
            [row_stride, column_stride * channels], [top, left * channels, bottom, right * channels])
    return True


def stem_on_channels(model_proto: onnx.ModelProto) -> bool:
    """Undo `stem_on_interleaved_columns` in place: the image's Transpose to NCHW before the stem again, its kernel over
    the image's C channels. For what should see the graph as tf2onnx wrote it: the locator's int8 twin is calibrated so
    (export/locator_int8.py). False (graph untouched) unless the graph starts as that rewrite leaves it, with a fixed
    channel count in its input."""
    graph = model_proto.graph
    found = _image_stem(graph, ("Reshape", "Unsqueeze"))
    dims = graph.input[0].type.tensor_type.shape.dim
    if found is None or len(dims) != 4 or dims[3].dim_value < 1:
        return False
    stem, weights = found
    reshape, unsqueeze, _, conv = stem
    arrays = {tensor.name: numpy_helper.to_array(tensor) for tensor in graph.initializer}
    channels, kernel = dims[3].dim_value, numpy_helper.to_array(weights)
    row_stride, column_stride = attributes(conv).get("strides", [1, 1])
    top, left, bottom, right = attributes(conv).get("pads", [0, 0, 0, 0])
    if (arrays.get(reshape.input[1], np.array([])).tolist() != [0, 0, -1] or arrays.get(unsqueeze.input[1], np.array([])).tolist() != [1]
            or kernel.shape[1] != 1 or any(value % channels for value in (kernel.shape[3], column_stride, left, right))):
        return False
    out_channels, _, kernel_height, columns = kernel.shape
    transpose = helper.make_node("Transpose", [graph.input[0].name], [f"{conv.name or conv.output[0]}_nchw"],
                                 name=f"{conv.name or conv.output[0]}_nchw", perm=[0, 3, 1, 2])
    _restem(graph, stem, [transpose], weights,
            kernel.reshape(out_channels, kernel_height, columns // channels, channels).transpose(0, 3, 1, 2),
            [row_stride, column_stride // channels], [top, left // channels, bottom, right // channels])
    return True


def nearest_upsampling_as_resize(model_proto: onnx.ModelProto, layer: str = "up") -> bool:
    """Rewrite a Keras UpSampling2D(2) layer (nearest) as one ONNX Resize, before the graph's dims are opened.

    tf2onnx spells it with Repeat's Unsqueeze, Tile and Reshape nodes, and freezes the repeated dims at the traced
    size, so the graph would take only that size; a Resize with scales 1, 1, 2, 2 takes any size, and onnxruntime runs
    it in its blocked channel layout. The layer's input and its output (after tf2onnx's transposes back to NCHW) must
    have the traced shapes [N, C, H, W] and [N, C, 2H, 2W]. Returns whether the graph changed.
    """
    graph = model_proto.graph
    region = [node for node in graph.node if layer in _layer_of(node)]
    if not region:
        return False
    outside = [node for node in graph.node if all(node is not member for member in region)]
    # The layer runs from its first node's input to its last node's output (tf2onnx writes nodes in order, and puts
    # shape and layout nodes named otherwise in between); the shapes below prove what the two are.
    source, result = region[0].input[0], region[-1].output[0]
    while (users := [node for node in outside if result in node.input]) and len(users) == 1 and users[0].op_type == "Transpose":
        result = users[0].output[0]  # tf2onnx's layout transposes after the layer
    shapes = _static_shapes(model_proto, data_prop=True)
    before, after = shapes.get(source), shapes.get(result)
    if not before or not after or len(before) != 4 or None in before[1:] or after != [before[0], before[1], before[2] * 2, before[3] * 2]:
        return False
    producer = next(node for node in graph.node if result in node.output)
    scales = numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), f"{layer}/resize_scales")
    resize = helper.make_node("Resize", [source, "", scales.name], [result], name=f"{layer}/Resize", mode="nearest",
                              coordinate_transformation_mode="asymmetric", nearest_mode="floor")
    position = list(graph.node).index(producer)
    graph.node.remove(producer)
    graph.node.insert(position, resize)
    graph.initializer.append(scales)
    _drop_dead_nodes(graph)
    return True


def simplify(model: onnx.ModelProto, keras_model) -> list[str]:
    """Apply the rewrites that match this model; returns what was done, for the export report."""
    done = []
    layers = {layer.name: layer for layer in keras_model.layers}
    standardize, scale = layers.get("standardize"), layers.get("scale")
    # A scalar offset drops out of standardization; a per-channel scale would not.
    if standardize is not None and scale is not None and np.ndim(scale.scale) == 0 and np.ndim(scale.offset) == 0:
        if fuse_standardization(model, standardize.epsilon, float(scale.scale)):
            done.append("standardization fused into one LayerNormalization node")
    flattened = static_flatten(model)
    if flattened:
        done.append(f"{flattened} flatten reshape(s) given a static shape")
    onnx.checker.check_model(model, full_check=True)
    return done
