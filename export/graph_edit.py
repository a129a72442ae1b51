"""Small helpers the ONNX graph rewrites share (stem_blocks, peak_boxes, simplify, locator_int8, quantize)."""
from __future__ import annotations

import onnx
from onnx import helper


def attributes(node: onnx.NodeProto) -> dict:
    """A node's attributes by name, as Python values."""
    return {attribute.name: helper.get_attribute_value(attribute) for attribute in node.attribute}


def consumers(graph: onnx.GraphProto, name: str) -> list[onnx.NodeProto]:
    """The nodes that read the tensor `name`."""
    return [node for node in graph.node if name in node.input]


def drop_unused_initializers(graph: onnx.GraphProto) -> None:
    """Remove the initializers no node reads any more, in place."""
    used = {name for node in graph.node for name in node.input}
    kept = [initializer for initializer in graph.initializer if initializer.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept)
