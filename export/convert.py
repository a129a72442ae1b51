"""Keras -> ONNX conversion and metadata stamping."""
from __future__ import annotations

from pathlib import Path

import onnx
from edgesight.runtime.files import write_bytes_atomic
from edgesight.runtime.metadata import ModelMetadata

OPSET = 17


def keras_to_onnx(model, opset: int = OPSET) -> onnx.ModelProto:
    """Convert a functional Keras model with one uint8 NHWC input; the batch dimension stays dynamic."""
    import tensorflow as tf
    import tf2onnx

    height, width, channels = model.inputs[0].shape[1:]
    signature = (tf.TensorSpec((None, height, width, channels), tf.uint8, name="image"),)
    model_proto, _ = tf2onnx.convert.from_keras(model, input_signature=signature, opset=opset)
    onnx.checker.check_model(model_proto, full_check=True)
    return model_proto


def stamp_metadata(model_proto: onnx.ModelProto, metadata: ModelMetadata) -> onnx.ModelProto:
    """Write the edgesight keys into metadata_props, keeping every other key already there.

    (onnx.helper.set_model_props would drop the keys onnxruntime's quantizer adds.)
    """
    props = {entry.key: entry.value for entry in model_proto.metadata_props}
    props.update(metadata.to_props())
    del model_proto.metadata_props[:]
    for key, value in props.items():
        model_proto.metadata_props.add(key=key, value=value)
    return model_proto


def save_model(model_proto: onnx.ModelProto, path: Path) -> None:
    write_bytes_atomic(path, model_proto.SerializeToString())
