"""Probe (not shipped): onnxruntime's CPU memory arena on and off, for each kind of session edgesight opens.

The per-region classifier (bound, batch 1), the classifier and the screen at a road scene's ~22 proposals, the cnn-base
classifier at batch 1 and the sign locator on a region-sized input; interleaved, one thread, rounds of 1,500 runs.

    python benchmarks/results/2026-12-07-lean-path-probes-intel-xeon-207/memory_arena.py
"""
import numpy as np
import onnxruntime as ort
from edgesight.runtime.bench import interleaved_latency
from edgesight.runtime.sessions import bound_run, session_options

CASES = {  # file, batch, bound buffers
    "gtsrb-tiny int8, 1 bound": ("models/gtsrb-tiny/model.int8.onnx", 1, True),
    "gtsrb-tiny int8, 22": ("models/gtsrb-tiny/model.int8.onnx", 22, False),
    "gtsrb-screen int8, 22": ("models/gtsrb-screen/model.int8.onnx", 22, False),
    "gtsrb (cnn-base) int8, 1 bound": ("models/gtsrb/model.int8.onnx", 1, True),
    "sign-locator int8, 280x680": ("locators/sign-locator/locator.int8.onnx", 1, False),
}


def timer(path: str, batch: int, bound: bool, arena: bool, rng: np.random.Generator):
    options = session_options(1)
    options.enable_cpu_mem_arena = arena
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    source = session.get_inputs()[0]
    shape = [batch, *(dim if isinstance(dim, int) else 0 for dim in source.shape[1:])]
    if 0 in shape:  # the locator takes any size: a region of a 1360x800 frame, halved
        shape = [1, 280, 680, 3]
    image = rng.integers(0, 256, shape, dtype=np.uint8)
    if not bound:
        return lambda: session.run(None, {source.name: image})
    scores = np.empty([batch, session.get_outputs()[0].shape[1]], np.float32)
    binding = session.io_binding()
    binding.bind_cpu_input(source.name, image)
    binding.bind_output(session.get_outputs()[0].name, "cpu", 0, np.float32, list(scores.shape), scores.ctypes.data)
    return bound_run(session, binding)


def main() -> None:
    rng = np.random.default_rng(0)
    timers = {(name, arena): timer(*case, arena, rng) for name, case in CASES.items() for arena in (True, False)}
    for round_index in range(3):
        results = interleaved_latency(timers, 1500, warmup=100, block=10)
        print(f"round {round_index}: " + " | ".join(
            f"{name}: {results[(name, True)]['median_us']:.1f} -> {results[(name, False)]['median_us']:.1f} µs" for name in CASES))


if __name__ == "__main__":
    main()
