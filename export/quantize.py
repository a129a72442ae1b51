"""Static int8 quantization with onnxruntime, every setting explicit (its defaults change between releases)."""
from __future__ import annotations

import contextlib
import re
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import onnx
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quantize_static,
)
from onnxruntime.quantization.shape_inference import quant_pre_process

from .graph_edit import drop_unused_initializers
from .stem_blocks import stem_on_column_blocks


@dataclass(frozen=True)
class QuantizationSettings:
    # QDQ with uint8 activations and int8 weights: on VNNI CPUs U8S8 ran ~1.8x faster than fp32,
    # while S8S8 ran slower than fp32 (TOOLCHAIN_NOTES.md).
    format: str = "QDQ"
    activation_type: str = "QUInt8"
    weight_type: str = "QInt8"
    per_channel: bool = True
    # 7-bit weights (-64..64, onnxruntime's reduce_range) keep int8 exact on every x86 CPU. Without
    # VNNI, onnxruntime's U8S8 kernels add pairs of uint8 x int8 products in 16 bits (AVX2's
    # vpmaddubsw), which saturate with full-range weights: the shipped ResNet-20 scored 89.96% with
    # exact int8 arithmetic but 88.34% on an AMD EPYC with AVX2; with 7-bit weights, 90.04% and 90.05%.
    weight_bits: int = 7
    calibration_method: str = "Percentile"  # lost no accuracy on the shipped models, where MinMax lost up to 0.18 pp
    # The softmax stays float, and so do the logits it reads, so probabilities keep full resolution
    # and rows sum to 1.
    keep_float_ops: tuple[str, ...] = ("Softmax",)
    # Keras layers kept float by name: the input scaling and per-image standardization. Quantized,
    # standardization becomes a dozen QLinear nodes that cost more than the first conv and round
    # away the contrast of dark images; in float it is a few cheap passes over 3k values.
    keep_float_layers: tuple[str, ...] = ("scale", "standardize")
    # ONNX nodes kept float by name: those the accuracy-aware search found most sensitive.
    keep_float_nodes: tuple[str, ...] = ()
    # onnxruntime's symbolic shape inference before quantizing; it fails on graphs of open frame size with a Resize
    # (an hourglass locator's), where ONNX's own inference is enough.
    symbolic_shapes: bool = True


CALIBRATION_METHODS = ("MinMax", "Entropy", "Percentile")
QUANT_FORMATS = ("QDQ", "QOperator")
INT8_TYPES = {"U8S8": ("QUInt8", "QInt8"), "S8S8": ("QInt8", "QInt8")}  # activations, weights
WEIGHT_BITS = (7, 8)


def settings_from_choices(calibration_method: str, quant_format: str, int8_types: str, per_tensor: bool,
                          weight_bits: int) -> QuantizationSettings:
    """Settings from the export options, each checked against what onnxruntime offers.

    Raises:
        ValueError: an option outside its choices, named with what was expected.
    """
    for option, value, choices in (("calibration-method", calibration_method, CALIBRATION_METHODS),
                                   ("quant-format", quant_format, QUANT_FORMATS), ("int8-types", int8_types, tuple(INT8_TYPES))):
        if value not in choices:
            raise ValueError(f"--{option} must be one of {', '.join(choices)}. Received: {value!r}")
    if weight_bits not in WEIGHT_BITS:
        raise ValueError(f"--weight-bits must be 7 or 8. Received: {weight_bits!r}")
    activations, weights = INT8_TYPES[int8_types]
    return QuantizationSettings(format=quant_format, activation_type=activations, weight_type=weights,
                                per_channel=not per_tensor, calibration_method=calibration_method, weight_bits=weight_bits)


def weights_text(description: dict) -> str:
    """How the weights were quantized, for reports and model cards (files made before weight_bits existed had 8)."""
    bits = description.get("weight_bits", 8)
    return f"{description['weight_type']} in {bits} bits" + ("" if bits == 7 else " (exact only on CPUs with int8 dot products)")


class _ArrayReader(CalibrationDataReader):
    def __init__(self, input_name: str, images_nhwc: np.ndarray, most_per_batch: int = 32):
        # Equal batches: the Entropy and Percentile collectors stack every batch's activations into one
        # array and fail on a short last batch.
        size = next(size for size in range(min(most_per_batch, len(images_nhwc)), 0, -1) if len(images_nhwc) % size == 0)
        self._batches = iter([{input_name: images_nhwc[i : i + size]} for i in range(0, len(images_nhwc), size)])

    def get_next(self):
        return next(self._batches, None)


def _kept_float(node: onnx.NodeProto, settings: QuantizationSettings) -> bool:
    # tf2onnx names nodes after the Keras layer path, e.g. "functional_1/standardize_1/moments/mean".
    layer_names = {re.sub(r"_\d+$", "", part) for part in node.name.split("/")}
    return (node.op_type in settings.keep_float_ops or node.name in settings.keep_float_nodes
            or bool(layer_names & set(settings.keep_float_layers)))


def _unround_inputs_of_float_ops(model: onnx.ModelProto, settings: QuantizationSettings) -> list[str]:
    """Feed each kept-float op (the softmax) its producer's float output, not a Quantize/Dequantize round trip.

    The quantizer rounds the logits to 8 bits before the float softmax: steps of about a quarter of a
    logit, which move probabilities by tens of percent near a confidence threshold. Without the round
    trip onnxruntime runs the last Gemm as an int8 QGemm with float output, at no measurable cost.
    Returns the tensors now kept float.
    """
    graph = model.graph
    producer = {output: node for node in graph.node for output in node.output}
    readers: dict[str, int] = {}
    for node in graph.node:
        for name in node.input:
            readers[name] = readers.get(name, 0) + 1
    kept = []
    for node in graph.node:
        if node.op_type not in settings.keep_float_ops:
            continue
        dequantize = producer.get(node.input[0])
        quantize = producer.get(dequantize.input[0]) if dequantize is not None and dequantize.op_type == "DequantizeLinear" else None
        if quantize is None or quantize.op_type != "QuantizeLinear" or readers[dequantize.output[0]] > 1 or readers[quantize.output[0]] > 1:
            continue
        node.input[0] = quantize.input[0]
        graph.node.remove(dequantize)
        graph.node.remove(quantize)
        kept.append(quantize.input[0])
    drop_unused_initializers(graph)
    return kept


def quantize_int8(fp32_model: onnx.ModelProto, calibration_nhwc: np.ndarray, settings: QuantizationSettings,
                  width_multiple: int | None = None) -> tuple[onnx.ModelProto, dict]:
    """Quantize a float model; returns the int8 model and a JSON-ready description of what was done.

    The stem convolution is then rewritten to run on blocks of image columns where it can be (`stem_on_column_blocks`,
    which changes no value): `width_multiple` says what the input's width is a multiple of at run time; None takes the
    model input's fixed width, and skips the rewrite if it has none.
    """
    with tempfile.TemporaryDirectory(prefix="edgesight-quant-") as folder:
        fp32_path, prepared_path, int8_path = (Path(folder) / name for name in ("fp32.onnx", "prepared.onnx", "int8.onnx"))
        onnx.save(fp32_model, fp32_path)
        quant_pre_process(str(fp32_path), str(prepared_path), skip_symbolic_shape=not settings.symbolic_shapes)
        prepared = onnx.load(prepared_path)
        excluded = [node.name for node in prepared.graph.node if _kept_float(node, settings)]
        with contextlib.redirect_stdout(sys.stderr):  # the histogram calibrators narrate on stdout, which is for results
            quantize_static(
                str(prepared_path),
                str(int8_path),
                _ArrayReader(prepared.graph.input[0].name, calibration_nhwc),
                quant_format=QuantFormat[settings.format],
                activation_type=QuantType[settings.activation_type],
                weight_type=QuantType[settings.weight_type],
                per_channel=settings.per_channel,
                reduce_range=settings.weight_bits == 7,
                calibrate_method=CalibrationMethod[settings.calibration_method],
                nodes_to_exclude=excluded,
            )
        int8_model = onnx.load(int8_path)
    unrounded = _unround_inputs_of_float_ops(int8_model, settings)
    if width_multiple is None:
        width = fp32_model.graph.input[0].type.tensor_type.shape.dim[2]
        width_multiple = width.dim_value if width.HasField("dim_value") else 1
    stem_on_blocks = stem_on_column_blocks(int8_model, width_multiple)
    onnx.checker.check_model(int8_model, full_check=True)
    description = asdict(settings) | {
        "keep_float_ops": list(settings.keep_float_ops),
        "keep_float_layers": list(settings.keep_float_layers),
        "keep_float_nodes": list(settings.keep_float_nodes),
        "excluded_nodes": excluded,
        "float_inputs_kept": unrounded,
        "calibration_images": int(len(calibration_nhwc)),
        "stem_on_column_blocks": stem_on_blocks,
    }
    return int8_model, description
