import json

import numpy as np
import pytest
from edgesight.export.parity import parity, parity_markdown


def _one_hot(classes, num_classes=3, confidence=0.9):
    rest = (1 - confidence) / (num_classes - 1)
    probabilities = np.full((len(classes), num_classes), rest, np.float32)
    probabilities[np.arange(len(classes)), classes] = confidence
    return probabilities


def test_parity_names_the_class_int8_costs_and_measures_output_differences():
    truth = np.array([0, 0, 1, 1, 1, 1, 2, 2])
    fp32 = _one_hot([0, 0, 1, 1, 1, 1, 2, 1])
    int8 = _one_hot([0, 0, 1, 0, 0, 1, 2, 2])  # loses two of four class-1 images, wins one class-2 image
    section = json.loads(json.dumps(parity(("a", "b", "c"), truth, fp32.copy(), fp32, int8)))  # JSON-ready

    assert section["top1"] == pytest.approx({"keras": 7 / 8, "onnx_fp32": 7 / 8, "onnx_int8": 6 / 8})
    assert section["argmax_agreement"]["onnx_fp32_int8"] == pytest.approx(5 / 8)
    deltas = {entry["label"]: entry["delta_pp"] for entry in section["per_class"]}
    assert deltas == {"a": 0.0, "b": -50.0, "c": 50.0}
    assert section["classes_losing_most"] == [{"class": 1, "label": "b", "images": 4, "delta_pp": -50.0}]
    difference = section["output_difference"]["onnx_fp32_int8"]
    assert difference["max_abs"] == pytest.approx(0.85)
    assert difference["mean_abs"] == pytest.approx(0.85 * 2 * 3 / 24)
    assert section["output_difference"]["keras_onnx_fp32"]["max_abs"] == 0.0
    assert "b (-50.00 pp of 4 images)" in "\n".join(parity_markdown(section))


def test_parity_skips_classes_absent_from_the_test_images():
    truth = np.array([0, 0])
    probabilities = _one_hot([0, 0])
    section = parity(("a", "b", "c"), truth, probabilities, probabilities, probabilities)
    assert [entry["label"] for entry in section["per_class"]] == ["a"]
    assert section["classes_losing_most"] == []
    assert "none loses accuracy" in "\n".join(parity_markdown(section))
