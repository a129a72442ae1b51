"""Probe: LiteRT int8 converted with float fallback (the converter's default) against integer-only, same weights.

    python litert_fallback.py RUN_OF_gtsrb-tiny OUT_FOLDER OUT_OF_no_standardization/calibration.npy
"""
import sys
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter
from edgesight.export.peers import LiteRtEngine
from edgesight.runtime.bench import OnnxRuntimeEngine, bench_frame, interleaved_latency, region_timer

RUN, OUT = Path(sys.argv[1]), Path(sys.argv[2])
calibration = np.load(sys.argv[3])[:256]
model = keras.models.load_model(RUN / "model.keras")
variants = {}
for name, ops, input_type in [("fallback, uint8 input", [tf.lite.OpsSet.TFLITE_BUILTINS_INT8, tf.lite.OpsSet.TFLITE_BUILTINS], tf.uint8),
                              ("fallback, float input", None, None)]:
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([image[None].astype(np.uint8)] for image in calibration)
    if ops:
        converter.target_spec.supported_ops = ops
    if input_type is not None:
        converter.inference_input_type = input_type
    path = OUT / (name.replace(", ", "-").replace(" ", "_") + ".tflite")
    path.write_bytes(converter.convert())
    variants[name] = path
for name, path in variants.items():
    interpreter = Interpreter(model_path=str(path))
    interpreter.allocate_tensors()
    print(name, interpreter.get_input_details()[0]["dtype"], [op["op_name"] for op in interpreter._get_ops_details()])
frame, box = bench_frame()
ort_engine = OnnxRuntimeEngine(RUN / "model.int8.onnx", 1)
spec = ort_engine.spec
engines = {"onnxruntime int8": ort_engine,
           "litert int8 (integer only, as bench)": LiteRtEngine(RUN / "litert" / "model.int8.tflite", spec, 1, "a")}
for name, path in variants.items():
    engines[f"litert int8 ({name})"] = LiteRtEngine(path, spec, 1, name)
timers = {k: region_timer(e, frame, box) for k, e in engines.items()}
for r in range(3):
    res = interleaved_latency(timers, 3000, warmup=300)
    print(f"round {r+1}: " + "; ".join(f"{k} {v['median_us']:.1f}" for k, v in res.items()))
