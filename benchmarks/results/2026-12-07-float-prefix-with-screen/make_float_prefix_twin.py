"""Candidate B' (RULE.txt): the shipped locator's int8 twin with its stem and stride-2 depthwise convolution kept float.

Export's own path (`edgesight export locator.onnx --data gtsdb-scenes-000-099.zip`) with two changes patched in: no
column-block stem rewrite, and the float prefix excluded from quantization.

    python make_float_prefix_twin.py COPY_OF/locator.onnx /root/edgesight-data/gtsdb-scenes-000-099.zip
"""
import dataclasses
import sys
from pathlib import Path

from edgesight.export import locator, locator_int8, quantize

FLOAT_PREFIX_NODES = ("Conv__95",)  # the stem convolution (tf2onnx names it so; its ReLU follows it)
FLOAT_PREFIX_LAYERS = ("stem_relu", "down_dw", "down_dw_bn", "down_dw_relu")


def no_column_blocks(model, side_multiple):
    return False


locator_int8.stem_on_column_blocks = no_column_blocks
quantize.stem_on_column_blocks = no_column_blocks
locator_int8.LOCATOR_QUANTIZATION = dataclasses.replace(locator_int8.LOCATOR_QUANTIZATION, keep_float_nodes=FLOAT_PREFIX_NODES,
                                                        keep_float_layers=FLOAT_PREFIX_LAYERS)
report = locator.export_locator_file(Path(sys.argv[1]), sys.argv[2])
print(report["quantization"]["excluded_nodes"], report["ms_per_frame_1_thread"], report["operating_point"])
