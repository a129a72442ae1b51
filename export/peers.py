"""The peers `edgesight bench` compares against, built from the same trained weights.

- Keras: the trained `model.keras` itself, called through a compiled `tf.function`.
- LiteRT float and int8: the TFLite converter on the same Keras model; int8 is full-integer with a
  uint8 input, calibrated on the same training-split images as the ONNX int8 model, run by the
  `ai-edge-litert` interpreter (XNNPACK).
TensorFlow and LiteRT are imported only when an engine is built.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from edgesight.runtime.errors import EdgesightError
from edgesight.runtime.files import write_bytes_atomic
from edgesight.runtime.preprocess import PreprocessSpec

LITERT_FILES = {"litert float": "model.float.tflite", "litert int8": "model.int8.tflite"}


def convert_to_litert(keras_path: Path, calibration_nhwc: np.ndarray, folder: Path) -> dict[str, Path]:
    """Write the float and full-int8 TFLite models of a Keras file; returns label -> path."""
    import keras
    import tensorflow as tf

    model = keras.models.load_model(keras_path)
    paths = {label: folder / name for label, name in LITERT_FILES.items()}
    write_bytes_atomic(paths["litert float"], tf.lite.TFLiteConverter.from_keras_model(model).convert())

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([image[None]] for image in calibration_nhwc)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.uint8  # camera pixels go in as they are, as with the ONNX model
    write_bytes_atomic(paths["litert int8"], converter.convert())
    return paths


class KerasEngine:
    """The trained Keras model, as a training-framework user would deploy it."""

    def __init__(self, path: Path, spec: PreprocessSpec, threads: int, label: str = "keras fp32"):
        import tensorflow as tf

        try:  # only possible before TensorFlow runs its first op; bench gives each thread setting its own process
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(1 if threads == 1 else 0)
        except RuntimeError as error:
            raise EdgesightError(f"keras: cannot set {threads} threads after TensorFlow started ({error})") from None
        import keras

        self.path, self.spec, self.label = Path(path), spec, label
        model = keras.models.load_model(path)
        self._call = tf.function(lambda batch: model(batch, training=False), reduce_retracing=True)

    def predict(self, batch_nhwc: np.ndarray) -> np.ndarray:
        return self._call(batch_nhwc).numpy()


class LiteRtEngine:
    """A .tflite file in the ai-edge-litert interpreter; one interpreter per batch size used."""

    def __init__(self, path: Path, spec: PreprocessSpec, threads: int, label: str):
        from ai_edge_litert.interpreter import Interpreter

        self.path, self.spec, self.label = Path(path), spec, label
        self._make = lambda: Interpreter(model_path=str(path), num_threads=threads or os.cpu_count())
        self._by_batch: dict[int, tuple] = {}
        self.predict(np.zeros((1, spec.height, spec.width, 3), np.uint8))

    def _interpreter(self, batch: int) -> tuple:
        if batch not in self._by_batch:
            interpreter = self._make()
            input_index = interpreter.get_input_details()[0]["index"]
            if batch != 1:
                interpreter.resize_tensor_input(input_index, [batch, self.spec.height, self.spec.width, 3])
            interpreter.allocate_tensors()
            self._by_batch[batch] = (interpreter, input_index, interpreter.get_output_details()[0]["index"])
        return self._by_batch[batch]

    def predict(self, batch_nhwc: np.ndarray) -> np.ndarray:
        interpreter, input_index, output_index = self._interpreter(len(batch_nhwc))
        interpreter.set_tensor(input_index, batch_nhwc)
        interpreter.invoke()
        return interpreter.get_tensor(output_index)
