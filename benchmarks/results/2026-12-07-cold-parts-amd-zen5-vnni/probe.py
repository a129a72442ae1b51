"""The probe behind cold-parts.txt (2026-12-07): each part of the per-region path, timed cold (right after a copy that
flushes the CPU caches, `cold_latency`), for onnxruntime int8 and LiteRT int8 on one restored `gtsrb-tiny` run.

    python benchmarks/results/2026-12-07-cold-parts-amd-zen5-vnni/probe.py /root/edgesight-runs/gtsrb-tiny-restored
"""
import sys

import cv2
import onnx
import onnxruntime as ort
from edgesight.export.peers import LiteRtEngine
from edgesight.runtime.bench import OnnxRuntimeEngine, bench_frame, cold_latency, region_timer
from edgesight.runtime.preprocess import crop_region
from edgesight.runtime.sessions import session_options


def identity_run(image):
    """A session whose graph only copies its input: what any onnxruntime run costs."""
    tensor = onnx.helper.make_tensor_value_info
    graph = onnx.helper.make_graph([onnx.helper.make_node("Identity", ["image"], ["copy"])], "identity",
                                   [tensor("image", onnx.TensorProto.UINT8, list(image.shape))],
                                   [tensor("copy", onnx.TensorProto.UINT8, list(image.shape))])
    model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 17)])
    session = ort.InferenceSession(model.SerializeToString(), session_options(1), providers=["CPUExecutionProvider"])
    binding = session.io_binding()
    binding.bind_cpu_input("image", image)
    binding.bind_output("copy")
    return lambda: session.run_with_iobinding(binding)


def main(run: str) -> None:
    cv2.setNumThreads(1)
    ours = OnnxRuntimeEngine(f"{run}/model.int8.onnx", 1)
    classifier = ours.classifier
    litert = LiteRtEngine(f"{run}/litert/model.int8.tflite", ours.spec, 1, "litert int8")
    frame, box = bench_frame()
    image = crop_region(frame, classifier.spec, box)[None]
    interpreter, input_index, output_index = litert._interpreter(1)

    def litert_inference():
        interpreter.set_tensor(input_index, image)
        interpreter.invoke()
        return interpreter.get_tensor(output_index)

    timers = {"ort whole path": region_timer(ours, frame, box), "litert whole path": region_timer(litert, frame, box),
              "crop_region": lambda: crop_region(frame, classifier.spec, box),
              "ort run only": lambda: classifier.session.run_with_iobinding(classifier._single_binding),
              "litert set/invoke/get": litert_inference, "ort identity run": identity_run(image),
              "top-1": lambda: classifier.top_k(classifier._single_output, 1)}
    for name, figures in cold_latency(timers, 60).items():
        print(f"{name:24s} cold p50 {figures['median_us']:7.1f}  p90 {figures['p90_us']:7.1f}")


if __name__ == "__main__":
    main(sys.argv[1])
