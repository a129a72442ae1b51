"""Probe (timing only, untrained change): gtsrb-tiny without its per-image standardization, in both engines.

The variant feeds the Rescaling(1/255) output straight to the stem (the standardize layer dropped; the other weights
as shipped, so its predictions mean nothing). In the int8 ONNX file the pixels then enter the stem with no float work
at all: the input's Cast, scaling and QuantizeLinear are replaced by one DequantizeLinear of the uint8 input with
scale 1/255 and zero point 0, which is exactly Rescaling(1/255), and onnxruntime fuses it into the stem's QLinearConv.
LiteRT int8 gets the same Keras variant through the TFLite converter. All four per-region paths (crop, resize,
inference, top-1) run interleaved, batch 1, one thread, in rounds.

    python no_standardization.py RUN_OF_gtsrb-tiny OUT_FOLDER
"""
import json
import sys
from pathlib import Path

import keras
import numpy as np
import onnx
from edgesight.export import quantize as q
from edgesight.export.convert import keras_to_onnx
from edgesight.export.graph_edit import drop_unused_initializers
from edgesight.export.peers import LiteRtEngine, convert_to_litert
from edgesight.export.pipeline import calibration_images
from edgesight.export.simplify import simplify
from edgesight.export.stem_blocks import stem_on_column_blocks
from edgesight.runtime.bench import OnnxRuntimeEngine, bench_frame, interleaved_latency, machine_description, region_timer
from edgesight.runtime.classifier import Classifier
from edgesight.runtime.tasks import task_of_run
from onnx import helper, numpy_helper

RUN, OUT = Path(sys.argv[1]), Path(sys.argv[2])
OUT.mkdir(parents=True, exist_ok=True)

shipped = keras.models.load_model(RUN / "model.keras")
image = keras.Input((32, 32, 3), dtype="uint8", name="image")
x = shipped.get_layer("scale")(image)
names = [layer.name for layer in shipped.layers]
for name in names[names.index("standardize") + 1 :]:
    x = shipped.get_layer(name)(x)
variant = keras.Model(image, x)
variant.save(OUT / "variant.keras")

calibration = np.load(OUT / "calibration.npy") if (OUT / "calibration.npy").exists() else None
if calibration is None:
    run_config = json.loads((RUN / "config.json").read_text())
    task = task_of_run(run_config["train"], run_config["train"]["data"])
    calibration = calibration_images(run_config, task, run_config["train"]["data"], 512, 0)
    np.save(OUT / "calibration.npy", calibration)

fp32 = keras_to_onnx(variant)
print("simplifications:", simplify(fp32, variant))
real_blocks = q.stem_on_column_blocks
q.stem_on_column_blocks = lambda model, width_multiple: False
int8, _ = q.quantize_int8(fp32, calibration, q.QuantizationSettings())
q.stem_on_column_blocks = real_blocks

# Pixels straight into the stem: graph input -> Transpose -> DequantizeLinear(1/255, 0) -> Conv.
graph = int8.graph
producers = {output: node for node in graph.node for output in node.output}
stem = next(node for node in graph.node if node.op_type == "Conv")
stem_dq = producers[stem.input[0]]
assert stem_dq.op_type == "DequantizeLinear", stem_dq.op_type
chain, node = [], producers[stem_dq.input[0]]
while node is not None:
    chain.append(node)
    node = producers.get(node.input[0])
print("replaced:", [n.op_type for n in reversed(chain)])
transpose = next(n for n in chain if n.op_type == "Transpose")
graph.initializer.extend([numpy_helper.from_array(np.array(1 / 255, np.float32), "pixel_scale"),
                          numpy_helper.from_array(np.array(0, np.uint8), "pixel_zero_point")])
new_transpose = helper.make_node("Transpose", [graph.input[0].name], ["pixels_nchw"], perm=list(transpose.attribute[0].ints), name="pixels_nchw")
stem_dq.input[:] = ["pixels_nchw", "pixel_scale", "pixel_zero_point"]
for n in chain:
    graph.node.remove(n)
graph.node.insert(0, new_transpose)
assert stem_on_column_blocks(int8, 32)
drop_unused_initializers(graph)
del int8.metadata_props[:]
int8.metadata_props.extend(onnx.load(RUN / "model.int8.onnx").metadata_props)  # the Classifier's contract
onnx.checker.check_model(int8, full_check=True)
onnx.save(int8, OUT / "variant.int8.onnx")
print([n.op_type for n in int8.graph.node][:12])

litert = convert_to_litert(OUT / "variant.keras", calibration[:256], OUT)

# Same outputs in Keras and the int8 ONNX file (up to int8 rounding) for a few images: the file computes the variant.
classifier = Classifier(OUT / "variant.int8.onnx", threads=1)
agree = float(np.mean(classifier.probabilities(calibration[:256]).argmax(1) == variant.predict(calibration[:256], verbose=0).argmax(1)))
print(f"variant int8 ONNX agrees with variant Keras on {agree:.3f} of 256 calibration images' top-1")

frame, box = bench_frame()
spec = classifier.spec
engines = {
    "onnxruntime int8, shipped": OnnxRuntimeEngine(RUN / "model.int8.onnx", 1),
    "litert int8, shipped": LiteRtEngine(RUN / "litert" / "model.int8.tflite", spec, 1, "litert int8"),
    "onnxruntime int8, no standardization": OnnxRuntimeEngine(OUT / "variant.int8.onnx", 1),
    "litert int8, no standardization": LiteRtEngine(litert["litert int8"], spec, 1, "litert int8"),
}
timers = {label: region_timer(engine, frame, box) for label, engine in engines.items()}
lines = [f"Machine: {machine_description()}. Per-region path, batch 1, one thread, medians of 4000 interleaved calls.", ""]
for round_ in range(3):
    results = {label: figures["median_us"] for label, figures in interleaved_latency(timers, 4000, warmup=300).items()}
    shipped_ratio = results["litert int8, shipped"] / results["onnxruntime int8, shipped"]
    variant_ratio = results["litert int8, no standardization"] / results["onnxruntime int8, no standardization"]
    lines.append(f"round {round_ + 1}: " + "; ".join(f"{k} {v:.1f} µs" for k, v in results.items())
                 + f"; ratio shipped {shipped_ratio:.2f}×, without standardization {variant_ratio:.2f}×")
print("\n".join(lines))
(OUT / "timing.md").write_text("\n".join(lines) + "\n")
