"""The shipped models follow the contract, do what their cards say, and the sign models read the shipped clip right."""
import json
from collections import Counter
from pathlib import Path

import pytest
from conftest import require_shared_dataset
from edgesight.camera_demo.loop import DemoConfig, run_demo
from edgesight.runtime import Classifier
from edgesight.runtime.shipped import SHIPPED_MODELS
from edgesight.runtime.tasks import NOT_A_SIGN, TASKS

REPOSITORY = Path(__file__).resolve().parents[1]
CLIP = REPOSITORY / "samples" / "gtsdb_drive.mp4"
# folder -> (task, the test set stamped in the files, the least test accuracy the card may claim)
FOLDERS = {
    "gtsrb": ("gtsrb", "gtsrb official test, 12630 images", 0.99),
    "gtsrb-tiny": ("gtsrb", "gtsrb official test, 12630 images", 0.98),
    "gtsrb-locate": ("gtsrb", "gtsrb official test, 12630 images", 0.98),
    "gtsrb-screen": ("gtsrb", "gtsrb official test, 12630 images", 0.90),  # 16x16: it screens boxes, gtsrb-locate reads them
    "cifar10": ("cifar10", "cifar10 official test, 10000 images (lossy JPEG copy: scores run below published CIFAR-10 figures)", 0.80),
}


@pytest.mark.parametrize("folder", FOLDERS)
@pytest.mark.parametrize("name", ["model.onnx", "model.int8.onnx"])
def test_shipped_model_follows_the_contract(folder, name):
    task, dataset, least_accuracy = FOLDERS[folder]
    path = REPOSITORY / "models" / folder / name
    metadata = Classifier(path).metadata
    extra = (NOT_A_SIGN,) if folder in ("gtsrb-locate", "gtsrb-screen") else ()  # the sign finder's models reject what is no sign
    assert metadata.task == task and metadata.labels == TASKS[task].labels + extra
    assert metadata.metrics["dataset"] == dataset
    assert metadata.metrics["test_accuracy"] >= least_accuracy
    assert {"keras", "tensorflow", "tf2onnx", "onnx", "onnxruntime", "source_sha256"} <= set(metadata.provenance)
    assert (metadata.quantization is not None) == (name == "model.int8.onnx")
    card = (path.parent / "MODEL_CARD.md").read_text()
    assert name in card and f"{metadata.metrics['test_accuracy'] * 100:.2f}%" in card and "training wall time" in card


SHIPPED_FILES = sorted(path.relative_to(REPOSITORY).as_posix() for pattern in ("models/*/*.onnx", "models/*/*.ort", "locators/*/*.onnx", "locators/*/*.ort")
                       for path in REPOSITORY.glob(pattern))


@pytest.mark.parametrize("name", SHIPPED_FILES)
def test_every_metadata_value_of_every_shipped_file_is_json(name):
    import onnxruntime as ort

    props = ort.InferenceSession(str(REPOSITORY / name), providers=["CPUExecutionProvider"]).get_modelmeta().custom_metadata_map
    assert props.get("edgesight.format") == "1"
    not_json = []
    for key, value in props.items():
        try:
            json.loads(value)
        except json.JSONDecodeError:
            not_json.append(key)
    assert not not_json, f"{name}: values of {not_json} are not JSON"


@pytest.mark.parametrize("folder, least_read_right", [("gtsrb", 8), ("gtsrb-tiny", 6)])
def test_int8_sign_model_reads_the_signs_held_in_the_centre_box_of_the_sample_clip(folder, least_read_right, tmp_path):
    truth = json.loads(CLIP.with_suffix(".json").read_text())
    jsonl = tmp_path / "clip.jsonl"
    run_demo(DemoConfig(model=str(REPOSITORY / "models" / folder / "model.int8.onnx"), source=str(CLIP), no_window=True,
                        jsonl=str(jsonl), locate="none", box_fraction=truth["centre_box_fraction"]))
    predicted = [json.loads(line)["detections"][0]["class_id"] for line in jsonl.read_text().splitlines()]
    assert len(predicted) == truth["frames"]
    read_right = []
    for segment in truth["segments"]:
        held = predicted[segment["hold_first_frame"] : segment["last_frame"] + 1]
        label, count = Counter(held).most_common(1)[0]
        read_right.append(label == segment["class_id"] and count >= 0.8 * len(held))
    # Two of the eight are hard real frames: a backlit "snow" triangle whose flake looks like the priority
    # cross at 32 px, and an over-exposed, washed-out "restriction ends (overtaking)". The base model trained
    # with faded colours reads both; the tiny model misreads both.
    assert sum(read_right) >= least_read_right, read_right


@pytest.mark.slow
@pytest.mark.parametrize("folder", FOLDERS)
def test_shipped_int8_accuracy_reproduces_on_the_official_test_set(folder):
    from edgesight.runtime.evaluate import EvalConfig, evaluate

    task, _, least_accuracy = FOLDERS[folder]
    path = REPOSITORY / "models" / folder / "model.int8.onnx"
    result = evaluate(EvalConfig(model=str(path), data=str(require_shared_dataset(task))))
    # The stamped figure came from the exporting CPU's int8 kernels. Another CPU may round a few images the
    # other way (4 of 12,630 for gtsrb-tiny's 8-bit weights on AVX2), but not lose the 1.6 points that
    # saturating 8-bit weights cost the earlier ResNet-20 on a CPU without VNNI.
    assert result.accuracy == pytest.approx(Classifier(path).metadata.metrics["test_accuracy"], abs=5e-4)
    assert result.accuracy >= least_accuracy


def test_shipped_models_are_found_by_name_from_the_installed_package():
    for name, (folder, file_name) in SHIPPED_MODELS.items():
        assert Classifier(name).path.samefile(REPOSITORY / "models" / folder / file_name), name


def test_every_command_that_takes_a_model_names_every_shipped_model_in_its_help():
    from dataclasses import fields

    from edgesight.runtime.evaluate import EvalConfig
    from edgesight.runtime.frame_eval import EvalFramesConfig
    from edgesight.runtime.predict import PredictConfig

    for config in (DemoConfig, EvalConfig, EvalFramesConfig, PredictConfig):
        model_help = next(field.metadata["help"] for field in fields(config) if field.name == "model")
        assert all(name in model_help for name in SHIPPED_MODELS if not name.endswith("-fp32")), config.__name__


# Issue 4's goals: the most top-1 (percentage points) int8 may lose against fp32 on the official test set. The screen
# reads no sign for the user (gtsrb-locate does); what it is for, dropping boxes that are no sign, was measured with its
# int8 file in the finder (benchmarks/results/2026-12-07-screen/), and its card states the 0.12 points it loses.
INT8_DROP_GOAL_PP = {"gtsrb": 0.1, "gtsrb-tiny": 0.1, "gtsrb-locate": 0.1, "gtsrb-screen": 0.15, "cifar10": 0.3}
# The stated tolerance of int8 probabilities (README, "Quantization"): for 99% of test images no class's
# probability moves by more than this from fp32's, and every row still sums to 1.
INT8_PROBABILITY_TOLERANCE = 0.15


@pytest.mark.slow
@pytest.mark.parametrize("folder", FOLDERS)
def test_shipped_int8_stays_within_its_goals_of_fp32_on_the_official_test_set(folder):
    from edgesight.export.parity import parity
    from edgesight.runtime.datasets import preprocess_regions
    from edgesight.runtime.tasks import get_task

    task_name = FOLDERS[folder][0]
    fp32, int8 = (Classifier(REPOSITORY / "models" / folder / name, max_batch=512) for name in ("model.onnx", "model.int8.onnx"))
    data = str(require_shared_dataset(task_name))
    regions = get_task(task_name, data).load(data, "test")
    images = preprocess_regions(regions, fp32.spec)
    section = parity(fp32.labels, regions.labels, fp32.probabilities(images), fp32.probabilities(images), int8.probabilities(images))
    assert (section["top1"]["onnx_fp32"] - section["top1"]["onnx_int8"]) * 100 <= INT8_DROP_GOAL_PP[folder]
    difference = section["output_difference"]["onnx_fp32_int8"]
    assert difference["p99_image_max_abs"] <= INT8_PROBABILITY_TOLERANCE, difference
    assert difference["row_sum_max_deviation"] <= 1e-5


def test_the_default_demo_on_the_sample_clip_finds_and_reads_the_held_signs(tmp_path):
    """Out of the box the demo locates signs (gtsrb-locate; colour, diamond and learned locators) instead of reading one box."""
    truth = json.loads(CLIP.with_suffix(".json").read_text())
    jsonl = tmp_path / "clip.jsonl"
    run_demo(DemoConfig(source=str(CLIP), no_window=True, jsonl=str(jsonl)))
    shown = [{d["class_id"] for d in json.loads(line)["detections"]} for line in jsonl.read_text().splitlines()]
    assert len(shown) == truth["frames"]
    read_right = []
    for segment in truth["segments"]:
        held = shown[segment["hold_first_frame"] : segment["last_frame"] + 1]
        read_right.append(sum(segment["class_id"] in classes for classes in held) >= 0.8 * len(held))
    # As for the centre box: the backlit "snow" triangle is misread, and the grey "restriction ends (overtaking)" is
    # read by the base model only (this mode uses the tiny gtsrb-locate). "No overtaking" is shown in 3 of its 14
    # hold frames (measured 2026-11-26 with the shipped locator: 5 of 8, each of the five in all 14 of its hold frames).
    assert sum(read_right) >= 5, read_right
    assert sum(map(len, shown)) <= 2 * truth["frames"]  # not a box on every leaf: about one sign per frame is there


def test_the_shipped_locator_follows_its_metadata_and_proposes_on_a_road_scene():
    from edgesight.runtime.learned_locate import LearnedLocator

    locator = LearnedLocator("sign-locator")
    assert locator.path.samefile(REPOSITORY / "locators" / "sign-locator" / "locator.int8.onnx")
    original = LearnedLocator("sign-locator-fp32")
    assert original.path.samefile(REPOSITORY / "locators" / "sign-locator" / "locator.onnx")
    assert (locator.geometry, locator.min_score) == (original.geometry, original.min_score)
    assert (locator.geometry.downscale, locator.geometry.stride) == (2, 4)
    card = (locator.path.parent / "MODEL_CARD.md").read_text()
    assert "training wall time" in card and "Proposal recall" in card and "## int8 twin" in card
