"""Probe: what one bound onnxruntime run of a model costs by the way it is called from Python (onnxruntime 1.32).

The public `run_with_iobinding` with and without RunOptions, and the pybind method it wraps, with None or with
RunOptions made once; interleaved, batch 1, one thread.

    python benchmarks/results/2026-12-07-lean-path-probes-intel-xeon-207/run_call.py RUN/model.int8.onnx
"""
import sys

import numpy as np
import onnxruntime as ort
from edgesight.runtime.bench import interleaved_latency
from edgesight.runtime.sessions import session_options


def main() -> None:
    session = ort.InferenceSession(sys.argv[1], session_options(1), providers=["CPUExecutionProvider"])
    image = np.random.default_rng(0).integers(0, 256, (1, *session.get_inputs()[0].shape[1:]), dtype=np.uint8)
    scores = np.empty((1, session.get_outputs()[0].shape[1]), np.float32)
    binding = session.io_binding()
    binding.bind_cpu_input(session.get_inputs()[0].name, image)
    binding.bind_output(session.get_outputs()[0].name, "cpu", 0, np.float32, list(scores.shape), scores.ctypes.data)
    run_options = ort.RunOptions()
    timers = {
        "public, no RunOptions": lambda: session.run_with_iobinding(binding),
        "public, RunOptions": lambda: session.run_with_iobinding(binding, run_options),
        "pybind, None": lambda: session._sess.run_with_iobinding(binding._iobinding, None),
        "pybind, RunOptions made once": lambda: session._sess.run_with_iobinding(binding._iobinding, run_options),
    }
    for round_index in range(3):
        results = interleaved_latency(timers, 6000, warmup=300)
        print(f"round {round_index}: " + " | ".join(f"{name} {value['median_us']:.2f} µs" for name, value in results.items()))


if __name__ == "__main__":
    main()
