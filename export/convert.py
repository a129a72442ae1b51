"""Keras -> ONNX conversion and metadata stamping."""
from __future__ import annotations

import json
from pathlib import Path

import onnx
from edgesight.runtime.files import write_bytes_atomic
from edgesight.runtime.metadata import ModelMetadata

OPSET = 17
# The opsets an export has been run through end to end (conversion, rewrites, quantization, parity, ORT format);
# tf2onnx 1.17 writes none above 18.
SUPPORTED_OPSETS = (17, 18)


def keras_to_onnx(model, opset: int = OPSET, traced_size: tuple[int, int] | None = None) -> onnx.ModelProto:
    """Convert a functional Keras model with one uint8 NHWC input; the batch dimension stays dynamic.

    traced_size: (height, width) to trace a model whose input size is open at; see relax_spatial_dims.
    """
    import tensorflow as tf
    import tf2onnx

    height, width, channels = model.inputs[0].shape[1:]
    if traced_size is not None:
        height, width = traced_size
    signature = (tf.TensorSpec((None, height, width, channels), tf.uint8, name="image"),)
    model_proto, _ = tf2onnx.convert.from_keras(model, input_signature=signature, opset=opset)
    onnx.checker.check_model(model_proto, full_check=True)
    return model_proto


def stamp_metadata(model_proto: onnx.ModelProto, metadata: ModelMetadata) -> onnx.ModelProto:
    """Write the edgesight keys into metadata_props, keeping every other key already there whose value is JSON.

    The contract asks every value to be JSON, and outside tools parse them all. onnxruntime's quantization
    pre-processing marks its output with `onnx.infer` and `onnx.quant.pre_process`, both the plain text
    "onnxruntime.quant": they only tell its quantizer that the float graph was prepared, which
    `edgesight.quantization` records anyway, so they are dropped rather than re-encoded (its check compares
    the raw text, so a JSON-quoted copy would mean nothing to it either).
    """
    drop_non_json_metadata(model_proto)
    props = {entry.key: entry.value for entry in model_proto.metadata_props} | metadata.to_props()
    del model_proto.metadata_props[:]
    for key, value in props.items():
        model_proto.metadata_props.add(key=key, value=value)
    return model_proto


def drop_non_json_metadata(model_proto: onnx.ModelProto) -> None:
    """Drop the metadata_props whose value is not JSON (see stamp_metadata: quantization's pre-processing marks)."""
    kept = [(entry.key, entry.value) for entry in model_proto.metadata_props if _is_json(entry.value)]
    del model_proto.metadata_props[:]
    for key, value in kept:
        model_proto.metadata_props.add(key=key, value=value)


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except json.JSONDecodeError:
        return False
    return True


def save_model(model_proto: onnx.ModelProto, path: Path) -> None:
    write_bytes_atomic(path, model_proto.SerializeToString())


def relax_spatial_dims(model_proto: onnx.ModelProto) -> onnx.ModelProto:
    """Make a fully convolutional graph traced at one size take any height and width.

    tf2onnx turns a dilated convolution with unknown height and width into a chain of shape
    computations (SpaceToBatch): 5x more nodes and 3x slower in onnxruntime. Traced at a fixed size,
    every convolution gets explicit pads instead, and those pads are the same for any size that is a
    multiple of the network's total stride, so only the declared input and output dims need opening.
    """
    for value, names in ((model_proto.graph.input[0], ("height", "width")), (model_proto.graph.output[0], ("rows", "columns"))):
        dims = value.type.tensor_type.shape.dim
        for dim, name in zip(dims[1:3], names):
            dim.ClearField("dim_value")
            dim.dim_param = name
    del model_proto.graph.value_info[:]  # intermediate shapes inferred at the traced size no longer hold
    onnx.checker.check_model(model_proto, full_check=True)
    return model_proto
