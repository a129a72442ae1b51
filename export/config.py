"""Export options: the one home of their defaults, types and help (the CLI reads them from here)."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ExportConfig:
    run_dir: str = field(metadata={"help": "a finished training run folder (holds model.keras and config.json)"})
    data: str | None = field(default=None, metadata={"help": "dataset folder; default: the one the run was trained on"})
    calibration_images: int = field(default=512, metadata={"help": "training-split images used to calibrate int8 ranges"})
    gate_pp: float = field(default=0.3, metadata={"help": "fail if int8 test accuracy falls more than this many percentage points below fp32"})
    opset: int = field(default=17, metadata={"help": "ONNX opset"})
    seed: int = field(default=0, metadata={"help": "seed for choosing calibration images"})
