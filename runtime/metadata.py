"""The model-file metadata contract (ARCHITECTURE.md, "Contract: the model file"), format 1.

Every value in `metadata_props` is JSON. This module encodes it for the export stage and parses
and validates it for the runtime; it never falls back to defaults for missing keys.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from .errors import ModelFileError
from .preprocess import CROP_MODES, RESIZE_MODES, PreprocessSpec

FORMAT_VERSION = 1
KEY_PREFIX = "edgesight."
REQUIRED_KEYS = ("format", "task", "labels", "input", "preprocess")
OPTIONAL_KEYS = ("metrics", "quantization", "provenance")


@dataclass(frozen=True)
class ModelMetadata:
    """What a model file says about itself."""

    task: str
    labels: tuple[str, ...]
    input_name: str
    preprocess: PreprocessSpec
    metrics: dict[str, Any] = field(default_factory=dict)
    quantization: dict[str, Any] | None = None
    provenance: dict[str, Any] = field(default_factory=dict)

    def to_props(self) -> dict[str, str]:
        """The `metadata_props` entries, each value JSON-encoded."""
        values: dict[str, Any] = {
            "format": FORMAT_VERSION,
            "task": self.task,
            "labels": list(self.labels),
            "input": {
                "name": self.input_name,
                "height": self.preprocess.height,
                "width": self.preprocess.width,
                "channels": 3,
                "layout": "NHWC",
                "color": "RGB",
                "dtype": "uint8",
            },
            "preprocess": self.preprocess.preprocess_json(),
            "metrics": self.metrics,
            "provenance": self.provenance,
        }
        if self.quantization is not None:
            values["quantization"] = self.quantization
        return {KEY_PREFIX + key: json.dumps(value) for key, value in values.items()}


def _field(values: dict[str, Any], key: str, expected_type: type | tuple[type, ...], source: str) -> Any:
    value = values[key]
    if not isinstance(value, expected_type) or isinstance(value, bool) and expected_type is not bool:
        raise ModelFileError(
            f"{source}: metadata field {KEY_PREFIX}{key} has the wrong type. Received: {value!r}"
        )
    return value


def parse_metadata(props: dict[str, str], source: str) -> ModelMetadata:
    """Validate and decode the edgesight entries of a model's metadata_props.

    Args:
        props: the raw key -> string map (onnxruntime's `custom_metadata_map`).
        source: the model's path, named in errors.
    Raises:
        ModelFileError: a key is missing, not JSON, or not what the contract says.
    """
    missing = [KEY_PREFIX + key for key in REQUIRED_KEYS if KEY_PREFIX + key not in props]
    if missing and KEY_PREFIX + "locator" in props:
        raise ModelFileError(f"{source}: a sign locator file, not a classifier; it goes to --locator, beside a sign model.")
    if missing:
        raise ModelFileError(
            f"{source}: not an edgesight model file: metadata lacks {', '.join(missing)} "
            "(see the model-file contract in ARCHITECTURE.md)."
        )
    values: dict[str, Any] = {}
    for key in REQUIRED_KEYS + OPTIONAL_KEYS:
        raw = props.get(KEY_PREFIX + key)
        if raw is None:
            continue
        try:
            values[key] = json.loads(raw)
        except json.JSONDecodeError as error:
            raise ModelFileError(
                f"{source}: metadata field {KEY_PREFIX}{key} is not valid JSON ({error}). Received: {raw[:80]!r}"
            ) from None
    if values["format"] != FORMAT_VERSION:
        raise ModelFileError(
            f"{source}: metadata format {values['format']!r} is not supported; "
            f"this edgesight reads format {FORMAT_VERSION}."
        )
    labels = _field(values, "labels", list, source)
    if not labels or not all(isinstance(label, str) for label in labels):
        raise ModelFileError(f"{source}: {KEY_PREFIX}labels must be a non-empty list of strings.")
    input_spec = _field(values, "input", dict, source)
    expected_input = {"channels": 3, "layout": "NHWC", "color": "RGB", "dtype": "uint8"}
    for key, expected in expected_input.items():
        if input_spec.get(key) != expected:
            raise ModelFileError(
                f"{source}: {KEY_PREFIX}input.{key} must be {expected!r}. Received: {input_spec.get(key)!r}"
            )
    preprocess = _field(values, "preprocess", dict, source)
    try:
        spec = PreprocessSpec(
            height=int(input_spec["height"]),
            width=int(input_spec["width"]),
            crop=preprocess["crop"],
            box_margin=float(preprocess["box_margin"]),
            resize=preprocess["resize"],
        )
    except KeyError as error:
        raise ModelFileError(f"{source}: metadata lacks the field {error.args[0]!r} "
                             f"(crop modes {CROP_MODES}, resize modes {tuple(RESIZE_MODES)}).") from None
    except (TypeError, ValueError) as error:
        raise ModelFileError(f"{source}: bad preprocessing metadata: {error}") from None
    return ModelMetadata(
        task=str(_field(values, "task", str, source)),
        labels=tuple(labels),
        input_name=str(input_spec.get("name", "")),
        preprocess=spec,
        metrics=values.get("metrics") or {},
        quantization=values.get("quantization"),
        provenance=values.get("provenance") or {},
    )
