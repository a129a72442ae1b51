"""The shipped GTSRB models follow the contract, do what their cards say, and read the shipped clip right."""
import json
from collections import Counter
from pathlib import Path

import pytest
from conftest import require_shared_dataset
from edgesight.camera_demo.loop import DemoConfig, run_demo
from edgesight.runtime import Classifier
from edgesight.runtime.datasets import GTSRB_CLASS_NAMES

REPOSITORY = Path(__file__).resolve().parents[1]
MODELS = REPOSITORY / "models" / "gtsrb"
CLIP = REPOSITORY / "samples" / "gtsdb_drive.mp4"


@pytest.mark.parametrize("name", ["model.onnx", "model.int8.onnx"])
def test_shipped_model_follows_the_contract(name):
    classifier = Classifier(MODELS / name)
    metadata = classifier.metadata
    assert metadata.task == "gtsrb" and metadata.labels == GTSRB_CLASS_NAMES
    assert metadata.metrics["dataset"] == "gtsrb official test, 12630 images"
    assert metadata.metrics["test_accuracy"] >= 0.99
    assert {"keras", "tensorflow", "tf2onnx", "onnx", "onnxruntime", "source_sha256"} <= set(metadata.provenance)
    assert (metadata.quantization is not None) == (name == "model.int8.onnx")
    assert name in (MODELS / "MODEL_CARD.md").read_text()


def test_int8_model_reads_the_signs_held_in_the_centre_box_of_the_sample_clip(tmp_path):
    truth = json.loads(CLIP.with_suffix(".json").read_text())
    jsonl = tmp_path / "clip.jsonl"
    run_demo(DemoConfig(model=str(MODELS / "model.int8.onnx"), source=str(CLIP), no_window=True, jsonl=str(jsonl),
                        box_fraction=truth["centre_box_fraction"]))
    predicted = [json.loads(line)["detections"][0]["class_id"] for line in jsonl.read_text().splitlines()]
    assert len(predicted) == truth["frames"]
    read_right = []
    for segment in truth["segments"]:
        held = predicted[segment["hold_first_frame"] : segment["last_frame"] + 1]
        label, count = Counter(held).most_common(1)[0]
        read_right.append(label == segment["class_id"] and count >= 0.8 * len(held))
    # Two of the eight are hard real frames: a backlit "snow" triangle whose flake looks like the priority
    # cross at 32 px (the shipped model misreads it), and an over-exposed "restriction ends (overtaking)"
    # (read right by the shipped model, not by every model we trained); the rest must be right.
    assert sum(read_right) >= 6, read_right


@pytest.mark.slow
def test_shipped_int8_accuracy_reproduces_on_the_official_test_set():
    from edgesight.runtime.evaluate import EvalConfig, evaluate

    data = require_shared_dataset("gtsrb")
    result = evaluate(EvalConfig(model=str(MODELS / "model.int8.onnx"), data=str(data)))
    stamped = Classifier(MODELS / "model.int8.onnx").metadata.metrics["test_accuracy"]
    assert result.images == 12630
    assert result.accuracy == pytest.approx(stamped, abs=1e-9) and result.accuracy >= 0.99


def test_shipped_models_are_found_by_name_from_the_installed_package():
    assert Classifier("gtsrb").path.samefile(MODELS / "model.int8.onnx")
    assert Classifier("gtsrb-fp32").path.samefile(MODELS / "model.onnx")
