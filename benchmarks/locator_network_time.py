"""How long sign-locator networks take per frame, side by side: untrained architectures and locator files.

An architecture's speed does not depend on its weights, so a candidate can be timed before it is trained. Each
architecture is built as `edgesight train-locator` builds it and converted as `edgesight export` converts it (traced
at the frame's size, dims opened, input scaling folded, stem without a transpose, upsampling as one Resize, box head
at the peaks); its onnxruntime output is checked against Keras. Every network then runs on the same shrunk frame, one
thread, interleaved, and the medians are printed.

    python benchmarks/locator_network_time.py plain:48 hourglass:64 hourglass:64:48 --int8 --file sign-locator sign-locator-fp32
"""
from __future__ import annotations

import argparse

import numpy as np
import onnx
import onnxruntime as ort
from edgesight.export.locator import locator_graph
from edgesight.export.locator_int8 import quantize_locator
from edgesight.export.peak_boxes import box_head_at_peaks
from edgesight.runtime.bench import interleaved_latency, machine_description
from edgesight.runtime.learned_locate import difference_from_grid
from edgesight.runtime.sessions import open_session, session_options
from edgesight.runtime.shipped import resolve_model
from edgesight.train.locator import build_locator

CONTEXT_STRIDES = {"plain": None, "hourglass": 8}


def architecture_graph(spec: str, height: int, width: int, image: np.ndarray) -> onnx.ModelProto:
    """The graph of the architecture named 'plain:WIDTH' or 'hourglass:WIDTH[:FINE_WIDTH]', with random weights, as export
    writes it."""
    kind, *widths = spec.split(":")
    if kind not in CONTEXT_STRIDES or not 1 <= len(widths) <= (2 if kind == "hourglass" else 1) or not all(w.isdigit() for w in widths):
        raise SystemExit(f"an architecture is plain:WIDTH or hourglass:WIDTH[:FINE_WIDTH]. Received: {spec!r}")
    fine_width = int(widths[1]) if len(widths) == 2 else None
    model = build_locator(int(widths[0]), 4, context_stride=CONTEXT_STRIDES[kind], fine_width=fine_width)
    proto, _ = locator_graph(model, 17, (height, width))
    box_head_at_peaks(proto)
    session = _session(proto)
    difference = difference_from_grid(session.run(None, {"image": image}), model(image).numpy())
    if difference > 1e-3:
        raise SystemExit(f"{spec}: the converted network differs from Keras by {difference:.1e}")
    return proto


def _session(proto: onnx.ModelProto) -> ort.InferenceSession:
    return ort.InferenceSession(proto.SerializeToString(), session_options(1), providers=["CPUExecutionProvider"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("architectures", nargs="*", help="plain:WIDTH or hourglass:WIDTH[:FINE_WIDTH] (random weights)")
    parser.add_argument("--file", nargs="*", default=[], help="locator files or the shipped name sign-locator")
    parser.add_argument("--frame", default="1360x800", help="frame size WxH before the locators' halving (default 1360x800)")
    parser.add_argument("--rounds", type=int, default=60, help="timed runs per network")
    parser.add_argument("--int8", action="store_true", help="time each architecture's int8 twin too, as export makes it "
                                                            "(calibrated on the timed input: kernels' time does not "
                                                            "depend on values)")
    arguments = parser.parse_args()
    width, height = (int(side) // 2 for side in arguments.frame.split("x"))
    height, width = height // 8 * 8, width // 8 * 8  # as network_input cuts it for the deepest stride of both kinds
    image = np.random.default_rng(0).integers(0, 256, (1, height, width, 3), np.uint8)
    sessions = {}
    for spec in arguments.architectures:
        proto = architecture_graph(spec, height, width, image)
        sessions[spec] = _session(proto)
        if arguments.int8:
            sessions[f"{spec} int8"] = _session(quantize_locator(proto, [image])[0])
    for name in arguments.file:
        sessions[name] = open_session(resolve_model(name), 1, "no such locator file.")
    timers = {name: (lambda session=session: session.run(None, {session.get_inputs()[0].name: image}))
              for name, session in sessions.items()}
    results = interleaved_latency(timers, arguments.rounds, warmup=5, block=3)
    print(f"{machine_description()}; network only, {width}x{height} input (a {arguments.frame} frame halved), 1 thread")
    for name, figures in results.items():
        print(f"{name:24s} {figures['median_us'] / 1000:6.2f} ms median")


if __name__ == "__main__":
    main()
