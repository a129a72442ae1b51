"""What one call costs each engine when the model does almost nothing: onnxruntime against LiteRT.

The model casts a 32x32 RGB uint8 image to float and averages it: two operations, so the time is the
engine's own cost per call (input in, run, output out) rather than arithmetic. It is built once in Keras
and converted as edgesight converts its models (tf2onnx; the TFLite converter), and both engines run it
as edgesight runs them: onnxruntime through a bound input and output, as the runtime's classifier does;
LiteRT through the bench's own LiteRT engine. One thread each. Interleaved, batch 1.

    python benchmarks/engine_call_cost.py --out benchmarks/results/DATE-engine-call-cost
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnxruntime as ort
from edgesight.export.convert import keras_to_onnx, save_model
from edgesight.export.peers import LiteRtEngine
from edgesight.runtime.bench import interleaved_latency, machine_description
from edgesight.runtime.files import write_bytes_atomic, write_json_atomic, write_text_atomic
from edgesight.runtime.preprocess import PreprocessSpec
from edgesight.runtime.sessions import bound_run, session_options


def cast_and_mean_model():
    import keras

    image = keras.Input((32, 32, 3), batch_size=1, dtype="uint8")
    mean = keras.layers.GlobalAveragePooling2D()(keras.ops.cast(image, "float32"))
    return keras.Model(image, mean)


def call_timers(workdir: Path) -> dict:
    import tensorflow as tf

    model = cast_and_mean_model()
    onnx_path, litert_path = workdir / "model.onnx", workdir / "model.tflite"
    save_model(keras_to_onnx(model), onnx_path)
    write_bytes_atomic(litert_path, tf.lite.TFLiteConverter.from_keras_model(model).convert())
    image = np.random.default_rng(0).integers(0, 256, (1, 32, 32, 3), dtype=np.uint8)

    session = ort.InferenceSession(str(onnx_path), session_options(1), providers=["CPUExecutionProvider"])
    output = np.empty((1, 3), np.float32)
    binding = session.io_binding()
    binding.bind_cpu_input(session.get_inputs()[0].name, image)
    binding.bind_output(session.get_outputs()[0].name, "cpu", 0, np.float32, list(output.shape), output.ctypes.data)

    litert = LiteRtEngine(litert_path, PreprocessSpec(height=32, width=32), threads=1, label="litert")
    return {"onnxruntime": bound_run(session, binding), "litert": lambda: litert.predict(image)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20000, help="timed calls per engine")
    parser.add_argument("--out", type=Path, help="folder for call_cost.md and call_cost.json")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as workdir:
        results = interleaved_latency(call_timers(Path(workdir)), args.repeats, warmup=2000)
    ratio = results["onnxruntime"]["median_us"] / results["litert"]["median_us"]
    lines = ["# Engine cost per call (cast and mean of a 32x32 image)", "", f"Machine: {machine_description()}. Batch 1, "
             f"one thread, {args.repeats} interleaved calls per engine.", "", "| engine | median µs | p99 µs |", "|---|---|---|"]
    lines += [f"| {engine} | {figures['median_us']:.2f} | {figures['p99_us']:.2f} |" for engine, figures in results.items()]
    lines += ["", f"onnxruntime takes {ratio:.2f}x LiteRT's time per call."]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        write_text_atomic(args.out / "call_cost.md", text)
        write_json_atomic(args.out / "call_cost.json", {"machine": machine_description(), "calls": results,
                                                        "onnxruntime_over_litert": round(ratio, 3)})
    return 0


if __name__ == "__main__":
    sys.exit(main())
