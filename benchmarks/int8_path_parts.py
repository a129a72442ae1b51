"""Where the time of one region goes on the int8 runtime path: preprocessing steps and each graph node.

The per-region path is crop and resize into the bound input, one onnxruntime run, top-1. This times
each preprocessing step alone, and the graph node by node without onnxruntime's profiler (whose own
cost per node is as large as the small nodes): the graph as onnxruntime optimizes it is cut after
each node, and every prefix is timed as a model of its own. A prefix's time less the one before it
is that node's cost. All timers run interleaved, batch 1, one thread. With `--litert FILE` (the run folder's
`litert/model.int8.tflite`, which `edgesight bench` converts) it also times LiteRT's whole path and its set, invoke and
get alone, beside onnxruntime's run: the whole-path ratio cannot exceed the ratio of those two.

    python benchmarks/int8_path_parts.py gtsrb-tiny --out benchmarks/results/DATE-int8-path
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np
import onnx
import onnxruntime as ort
from edgesight.runtime.bench import bench_frame, interleaved_latency, machine_description, region_timer
from edgesight.runtime.classifier import Classifier
from edgesight.runtime.files import write_json_atomic, write_text_atomic
from edgesight.runtime.preprocess import RESIZE_MODES, crop_region, expand_box, region_box
from edgesight.runtime.sessions import session_options


def preprocessing_timers(classifier: Classifier, frame_bgr: np.ndarray, box) -> dict:
    spec = classifier.spec
    x1, y1, x2, y2 = expand_box(region_box(frame_bgr.shape, spec, box), spec.box_margin, frame_bgr.shape)
    crop_bgr = frame_bgr[y1 : y2 + 1, x1 : x2 + 1]
    resized_bgr = np.empty((spec.height, spec.width, 3), np.uint8)
    buffers = classifier._region_buffers()
    bound_input = buffers.image
    return {
        "whole path (classify_boxes)": lambda: classifier.classify_boxes(frame_bgr, [box]),
        "preprocessing (crop_region)": lambda: crop_region(frame_bgr, spec, box, out=bound_input),
        "  box arithmetic": lambda: expand_box(region_box(frame_bgr.shape, spec, box), spec.box_margin, frame_bgr.shape),
        "  resize": lambda: cv2.resize(crop_bgr, (spec.width, spec.height), dst=resized_bgr,
                                       interpolation=RESIZE_MODES[spec.resize]),
        "  BGR to RGB": lambda: cv2.cvtColor(resized_bgr, cv2.COLOR_BGR2RGB, dst=bound_input),
        "onnxruntime run": buffers.run,
        "top-1": lambda: classifier._best(buffers.scores),
    }


def litert_timers(litert_path: Path, classifier: Classifier, frame_bgr: np.ndarray, box) -> dict:
    """LiteRT on the same region: the path `edgesight bench` times, and its inference alone (set, invoke, get)."""
    from edgesight.export.peers import LiteRtEngine

    engine = LiteRtEngine(litert_path, classifier.spec, 1, "litert int8")
    interpreter, input_index, output_index = engine._interpreter(1)
    image = crop_region(frame_bgr, classifier.spec, box)[None]

    def inference():
        interpreter.set_tensor(input_index, image)
        interpreter.invoke()
        return interpreter.get_tensor(output_index)

    return {"LiteRT whole path (as bench times it)": region_timer(engine, frame_bgr, box), "LiteRT set, invoke, get": inference}


def graph_prefix_timers(model_path: Path, image: np.ndarray, workdir: Path) -> dict:
    """One timer per node of the optimized graph: a session running the graph up to and including it."""
    optimized_path = workdir / "optimized.onnx"
    options = session_options(1)
    options.optimized_model_filepath = str(optimized_path)
    ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
    optimized = onnx.load(str(optimized_path))
    input_name = optimized.graph.input[0].name
    timers = {}
    for index, node in enumerate(optimized.graph.node):
        prefix = onnx.ModelProto()
        prefix.CopyFrom(optimized)
        del prefix.graph.node[index + 1 :]
        del prefix.graph.output[:]
        prefix.graph.output.append(onnx.helper.make_empty_tensor_value_info(node.output[0]))
        prefix_path = workdir / f"prefix-{index:02d}.onnx"
        onnx.save(prefix, str(prefix_path))
        prefix_options = session_options(1)
        prefix_options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # already optimized
        session = ort.InferenceSession(str(prefix_path), prefix_options, providers=["CPUExecutionProvider"])
        binding = session.io_binding()
        binding.bind_cpu_input(input_name, image)
        binding.bind_output(node.output[0])
        timers[f"{index:02d} {node.op_type}"] = lambda session=session, binding=binding: session.run_with_iobinding(binding)
    # The floor: a session that only copies its input, i.e. the cost of a run call itself.
    identity = onnx.helper.make_model(
        onnx.helper.make_graph([onnx.helper.make_node("Identity", [input_name], ["copy"])], "identity",
                               [optimized.graph.input[0]], [onnx.helper.make_empty_tensor_value_info("copy")]),
        opset_imports=optimized.opset_import)
    session = ort.InferenceSession(identity.SerializeToString(), session_options(1), providers=["CPUExecutionProvider"])
    binding = session.io_binding()
    binding.bind_cpu_input(input_name, image)
    binding.bind_output("copy")
    timers["-- a run call (Identity graph)"] = lambda: session.run_with_iobinding(binding)
    return timers


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="an int8 model file, or a shipped model's name (its int8 file)")
    parser.add_argument("--repeats", type=int, default=3000, help="timed calls per part")
    parser.add_argument("--out", type=Path, help="folder for parts.md and parts.json")
    parser.add_argument("--litert", type=Path, help="the same model's LiteRT int8 file, timed beside it")
    args = parser.parse_args(argv)
    cv2.setNumThreads(1)  # as eval-frames and the live loop hold OpenCV
    classifier = Classifier(args.model, threads=1)
    frame_bgr, box = bench_frame()
    with tempfile.TemporaryDirectory() as workdir:
        image = crop_region(frame_bgr, classifier.spec, box)[None]
        timers = preprocessing_timers(classifier, frame_bgr, box)
        if args.litert:
            timers |= litert_timers(args.litert, classifier, frame_bgr, box)
        node_timers = graph_prefix_timers(classifier.path, image, Path(workdir))
        results = interleaved_latency({**timers, **node_timers}, args.repeats, warmup=300)
    lines = [f"# int8 path parts: {args.model}", "", f"Machine: {machine_description()}. Batch 1, one thread, "
             f"medians of {args.repeats} interleaved calls.", "", "| part | µs | node's own µs |", "|---|---|---|"]
    previous = 0.0
    for key, figures in results.items():
        median = figures["median_us"]
        own = ""
        if key[:2].isdigit():
            own = f"{median - previous:.1f}"
            previous = median
        lines.append(f"| {key} | {median:.1f} | {own} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        write_text_atomic(args.out / "parts.md", text)
        write_json_atomic(args.out / "parts.json", {"model": args.model, "machine": machine_description(), "parts": results})
    return 0


if __name__ == "__main__":
    sys.exit(main())
