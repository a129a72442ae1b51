"""Names of the models shipped inside the package, resolved to their files."""
from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

SHIPPED_MODELS = {
    "gtsrb": ("gtsrb", "model.int8.onnx"),
    "gtsrb-fp32": ("gtsrb", "model.onnx"),
    "gtsrb-tiny": ("gtsrb-tiny", "model.int8.onnx"),
    "gtsrb-tiny-fp32": ("gtsrb-tiny", "model.onnx"),
    "gtsrb-locate": ("gtsrb-locate", "model.int8.onnx"),  # cnn-tiny with a "not a sign" class, for --locate signs
    "gtsrb-locate-fp32": ("gtsrb-locate", "model.onnx"),
    "gtsrb-screen": ("gtsrb-screen", "model.int8.onnx"),  # cnn-tiny at 16x16, reads every located box before gtsrb-locate
    "gtsrb-screen-fp32": ("gtsrb-screen", "model.onnx"),
    "cifar10": ("cifar10", "model.int8.onnx"),
    "cifar10-fp32": ("cifar10", "model.onnx"),
}
# For help texts: the int8 names, whose float files are the same with -fp32.
SHIPPED_MODEL_NAMES = ", ".join(name for name in SHIPPED_MODELS if not name.endswith("-fp32")) + "; -fp32 for float"
# Not classifiers (so not under models/, whose files all follow the model-file contract): for --locator.
# The int8 twin is the default since 2026-12-06: 0.77x the float file's time a frame on an AVX-512 VNNI CPU (about
# even with it on an AVX2-only one, 2026-12-07), and on the held-out road scenes the finder with it found the float
# one's signs and one more (docs/ROAD_SCENES.md, "The learned locator in int8").
SHIPPED_LOCATORS = {"sign-locator": ("sign-locator", "locator.int8.onnx"), "sign-locator-fp32": ("sign-locator", "locator.onnx")}


def shipped_model_path(name: str) -> Path | None:
    """The file of a shipped model or locator name, or None if `name` is not one (or the package lacks it)."""
    package = "edgesight.models" if name in SHIPPED_MODELS else "edgesight.locators"
    shipped = SHIPPED_MODELS.get(name) or SHIPPED_LOCATORS.get(name)
    if shipped is None:
        return None
    folder, file_name = shipped
    try:
        path = Path(str(resources.files(package) / folder / file_name))
    except ModuleNotFoundError:
        return None
    return path if path.is_file() else None


def resolve_model(model: str | os.PathLike) -> Path:
    """A model file path as given, or the file of a shipped model name ("gtsrb", "cifar10-fp32", ...)."""
    path = Path(model)
    if path.exists():
        return path
    return shipped_model_path(str(model)) or path


def is_model_file(model: str | os.PathLike) -> bool:
    """Whether `model` names an ONNX model file (or a shipped model's name) rather than, say, a run folder."""
    path = resolve_model(model)
    return path.is_file() and path.suffix == ".onnx"
