"""int8 accuracy as exact integer arithmetic gives it, beside what this CPU's onnxruntime kernels give.

onnxruntime fuses each Quantize/Dequantize pair around an op into an int8 kernel whose arithmetic depends
on the CPU. With VNNI the products are summed in 32 bits, exactly. AVX2-only x86 CPUs (older Intel, AMD
before Zen 4) add pairs of uint8 x int8 products in 16 bits first, which saturates when weights use the
full 8-bit range (see QuantizationSettings.weight_bits). Run without graph optimizations, the same file
computes every quantized op in float from the dequantized values: the exact int8 result on any CPU.
Exporting on an AVX2 CPU, the two figures differ when saturation costs accuracy; on a VNNI CPU they agree.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
from edgesight.runtime.sessions import session_options


def exact_int8_probabilities(path: Path, images_nhwc: np.ndarray, batch: int = 512) -> np.ndarray:
    """The int8 file's outputs computed from its dequantized values (no fused int8 kernels)."""
    options = session_options(None)
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
    input_name, output_name = session.get_inputs()[0].name, session.get_outputs()[0].name
    return np.concatenate([session.run([output_name], {input_name: images_nhwc[start : start + batch]})[0]
                           for start in range(0, len(images_nhwc), batch)])


def int8_accuracy_text(int8_section: dict) -> str:
    """The int8 test accuracy on this CPU and with exact arithmetic, for reports and model cards."""
    here = f"{int8_section['test_accuracy'] * 100:.2f}%"
    exact = int8_section.get("exact_arithmetic")
    if exact is None:  # reports written before the exact figure was measured
        return here
    dot_product = exact["this_cpu"]["dot_product"]
    kind = {True: "with int8 dot products", False: "without int8 dot products", None: "int8 instructions unknown"}[dot_product]
    return (f"{here} on the exporting CPU ({kind}); {exact['test_accuracy'] * 100:.2f}% with exact int8 arithmetic, "
            "which CPUs with int8 dot products (VNNI) match up to rounding")
