"""Probe (not shipped): the shipped gtsrb-tiny int8 file with its standardization as InstanceNormalization.

The LayerNormalization over the whole image becomes Reshape to one channel of H*W*3 values, InstanceNormalization
(unit scale, no bias, the same epsilon), Reshape back. Times the two files' runs interleaved (batch 1, one thread) and
compares their probabilities on the whole GTSRB test set.

    python benchmarks/results/2026-12-07-lean-path-probes-intel-xeon-207/instance_norm_file.py GTSRB_DIR OUT.onnx
"""
import sys

import numpy as np
import onnx
import onnxruntime as ort
from edgesight.runtime.bench import interleaved_latency
from edgesight.runtime.classifier import Classifier
from edgesight.runtime.datasets import load_gtsrb, preprocess_regions
from edgesight.runtime.sessions import bound_run, session_options
from onnx import helper, numpy_helper

SHIPPED = "models/gtsrb-tiny/model.int8.onnx"


def as_instance_norm(path: str, out: str) -> None:
    model = onnx.load(path)
    graph = model.graph
    layer_norm = next(node for node in graph.node if node.op_type == "LayerNormalization")
    epsilon = next(attribute.f for attribute in layer_norm.attribute if attribute.name == "epsilon")
    height, width, channels = (dim.dim_value for dim in graph.input[0].type.tensor_type.shape.dim[1:])
    flat, normed = layer_norm.input[0] + "/flat", layer_norm.output[0] + "/flat"
    nodes = [
        helper.make_node("Reshape", [layer_norm.input[0], "standardize/flat_shape"], [flat], name="standardize/flatten"),
        helper.make_node("InstanceNormalization", [flat, "standardize/one", "standardize/zero"], [normed],
                         name="standardize/InstanceNormalization", epsilon=epsilon),
        helper.make_node("Reshape", [normed, "standardize/image_shape"], [layer_norm.output[0]], name="standardize/unflatten"),
    ]
    index = list(graph.node).index(layer_norm)
    graph.node.remove(layer_norm)
    for offset, node in enumerate(nodes):
        graph.node.insert(index + offset, node)
    graph.initializer.extend([
        numpy_helper.from_array(np.array([-1, 1, height * width * channels], np.int64), "standardize/flat_shape"),
        numpy_helper.from_array(np.array([-1, height, width, channels], np.int64), "standardize/image_shape"),
        numpy_helper.from_array(np.ones(1, np.float32), "standardize/one"),
        numpy_helper.from_array(np.zeros(1, np.float32), "standardize/zero"),
    ])
    onnx.checker.check_model(model)
    onnx.save(model, out)


def main() -> None:
    gtsrb, rewritten = sys.argv[1], sys.argv[2]
    as_instance_norm(SHIPPED, rewritten)
    image = np.random.default_rng(0).integers(0, 256, (1, 32, 32, 3), dtype=np.uint8)
    timers = {}
    for name, file in (("LayerNormalization (shipped)", SHIPPED), ("InstanceNormalization", rewritten)):
        session = ort.InferenceSession(file, session_options(1), providers=["CPUExecutionProvider"])
        binding = session.io_binding()
        binding.bind_cpu_input("image", image)
        scores = np.empty((1, 43), np.float32)
        binding.bind_output(session.get_outputs()[0].name, "cpu", 0, np.float32, [1, 43], scores.ctypes.data)
        timers[name] = bound_run(session, binding)
    for round_index in range(3):
        results = interleaved_latency(timers, 6000, warmup=300)
        print(f"round {round_index}: " + " | ".join(f"{name} {value['median_us']:.2f} µs" for name, value in results.items()))
    regions = load_gtsrb(gtsrb, "test")
    images = preprocess_regions(regions, Classifier(SHIPPED).spec)
    shipped, candidate = (np.concatenate([Classifier(file, threads=1).probabilities(images[start : start + 256])
                                          for start in range(0, len(images), 256)]) for file in (SHIPPED, rewritten))
    print(f"test accuracy: shipped {np.mean(shipped.argmax(1) == regions.labels):.4%}, "
          f"InstanceNormalization {np.mean(candidate.argmax(1) == regions.labels):.4%} of {len(images)}; top-1 differs on "
          f"{int(np.sum(shipped.argmax(1) != candidate.argmax(1)))}; probabilities differ on "
          f"{int(np.sum((shipped != candidate).any(1)))} images, by {np.abs(shipped - candidate).max():.1e} at most")


if __name__ == "__main__":
    main()
