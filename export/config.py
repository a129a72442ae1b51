"""Export options: the one home of their defaults, types and help (the CLI reads them from here)."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ExportConfig:
    run_dir: str = field(metadata={"help": "a finished training run folder (holds model.keras and config.json), or a float "
                                           "sign-locator file, to write its int8 twin beside it"})
    data: str | None = field(default=None, metadata={"help": "dataset folder; default: the one the run was trained on"})
    calibration_images: int = field(default=512, metadata={"help": "training-split images used to calibrate int8 ranges"})
    gate_pp: float = field(default=0.3, metadata={"help": "fail if int8 test accuracy falls more than this many percentage points below fp32"})
    opset: int = field(default=17, metadata={"help": "ONNX opset: 17 or 18"})
    seed: int = field(default=0, metadata={"help": "seed for choosing calibration images"})
    # Defaults chosen by measurement on the shipped models: benchmarks/quantization_choices.py, table in the README.
    calibration_method: str = field(default="Percentile", metadata={"help": "how activation ranges are set: Percentile (99.999%% of "
                                                                           "values, outliers clipped), MinMax or Entropy"})
    calibration_balance: str = field(default="balanced", metadata={"help": "calibration images: balanced (as many of each class) or random"})
    quant_format: str = field(default="QDQ", metadata={"help": "QDQ (Quantize/Dequantize pairs around float ops) or QOperator (QLinear ops)"})
    int8_types: str = field(default="U8S8", metadata={"help": "activation/weight types: U8S8 (uint8 activations, int8 weights) or S8S8"})
    max_float_nodes: int = field(default=4, metadata={"help": "accuracy-aware quantization: when int8 fails the gate, keep up to "
                                                              "this many of the most quantization-sensitive nodes in float, one "
                                                              "at a time, until it passes (0: off)"})
    locator_min_score: float | None = field(default=None, metadata={
        "help": "locator runs only: the centre score stamped in the file, instead of the one training chose on its few "
                "validation scenes (a lower score proposes more boxes, each one the classifier must read)"})
    weight_bits: int = field(default=7, metadata={
        "help": "int8 weight range: 7 (-64..64, exact on every CPU) or 8 (-128..127: onnxruntime's int8 kernels on x86 "
                "CPUs without VNNI, such as AVX2-only ones, saturate with it; a ResNet-20 lost 1.6 points there)"})
    card_latency_runs: int = field(default=2000, metadata={"help": "timed batch-1 runs per file and thread setting behind the model "
                                                                     "card's latency table (at least 50; fewer make a rougher table sooner)"})
    per_tensor: bool = field(default=False, metadata={"help": "one weight scale per tensor instead of one per output channel"})
