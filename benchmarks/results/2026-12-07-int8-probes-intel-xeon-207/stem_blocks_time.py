"""Probe: the int8 stem on column blocks of 2/4/8/16/32 against the plain stem, on this host (timing only:
random calibration, the kernels' time does not depend on the values)."""
import copy

import numpy as np
import onnx
import onnxruntime as ort
from edgesight.export import quantize as q
from edgesight.export.stem_blocks import stem_on_column_blocks
from edgesight.runtime.bench import interleaved_latency
from edgesight.runtime.sessions import session_options

fp32 = onnx.load("/root/edgesight-runs/gtsrb-tiny-restored/model.onnx")
q.stem_on_column_blocks = lambda model, width_multiple: False
calibration = np.random.default_rng(0).integers(0, 256, (64, 32, 32, 3), np.uint8)
plain, _ = q.quantize_int8(fp32, calibration, q.QuantizationSettings())
variants = {"plain": plain}
for block in (2, 4, 8, 16, 32):
    m = copy.deepcopy(plain)
    assert stem_on_column_blocks(m, 32, block)
    variants[f"blocks of {block}"] = m
image = calibration[:1]
timers, outs = {}, {}
for name, m in variants.items():
    s = ort.InferenceSession(m.SerializeToString(), session_options(1), providers=["CPUExecutionProvider"])
    outs[name] = s.run(None, {s.get_inputs()[0].name: calibration[:8]})[0]
    b = s.io_binding()
    b.bind_cpu_input(s.get_inputs()[0].name, image)
    b.bind_output(s.get_outputs()[0].name)
    timers[name] = lambda s=s, b=b: s.run_with_iobinding(b)
for name in outs:
    print(name, "same outputs as plain:", np.array_equal(outs[name], outs["plain"]))
for round_ in range(2):
    for k, v in interleaved_latency(timers, 6000, warmup=500).items():
        print(round_, f"{k:14s} {v['median_us']:.2f}")
