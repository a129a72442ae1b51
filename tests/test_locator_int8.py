"""The int8 twin of a sign-locator file: its float prefix, and export writes, compares and describes it."""
import json
import shutil

import numpy as np
import pytest
from edgesight.runtime.shipped import resolve_model
from fakes import write_road_scenes

onnx = pytest.importorskip("onnx", reason="export needs the [export] extra")
ort = pytest.importorskip("onnxruntime")


def _grid(model, image):
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: image})[0]


def test_the_twin_keeps_everything_before_the_first_pointwise_convolution_float():
    from edgesight.export.locator_int8 import float_prefix, quantize_locator
    from edgesight.export.simplify import stem_on_channels

    fp32 = onnx.load(resolve_model("sign-locator-fp32"))
    prefix = float_prefix(fp32)
    assert [node.op_type for node in fp32.graph.node if node.name in prefix] == [
        "Reshape", "Unsqueeze", "Cast", "Conv", "Relu", "Conv", "Mul", "Add", "Relu"]  # the stem, then the stride-2 depthwise one
    image = np.random.default_rng(0).integers(0, 256, (1, 96, 160, 3), np.uint8)
    twin, description = quantize_locator(fp32, [image])
    # Calibrated with the image's Transpose before the stem, as tf2onnx wrote it, and rewritten after.
    calibrated = onnx.load(resolve_model("sign-locator-fp32"))
    assert stem_on_channels(calibrated)
    assert set(description["keep_float_nodes"]) == set(float_prefix(calibrated)) and not description["stem_on_column_blocks"]
    assert description["stem_on_interleaved_columns"] and [node.op_type for node in twin.graph.node
                                                            if node.op_type != "DequantizeLinear"][:3] == ["Reshape", "Unsqueeze", "Cast"]
    producers = {output: node for node in twin.graph.node for output in node.output}
    convolutions = [node for node in twin.graph.node if node.op_type == "Conv"]
    quantized = [producers[node.input[0]].op_type == "DequantizeLinear" for node in convolutions]
    assert quantized[:2] == [False, False] and all(quantized[2:])  # the stem and the depthwise one read float, the rest int8
    with pytest.raises(ValueError, match="without a pointwise convolution"):
        float_prefix(onnx.helper.make_model(onnx.helper.make_graph([], "empty", [], [])))


def test_a_locator_file_gets_its_int8_twin_compared_and_described_and_bad_input_is_named(tmp_path, capsys):
    from edgesight.cli.main import main
    from edgesight.export.config import ExportConfig
    from edgesight.export.locator import LocatorExportError
    from edgesight.export.pipeline import ExportError, export_run
    from edgesight.runtime.learned_locate import LearnedLocator

    folder = tmp_path / "sign-locator"
    shutil.copytree(resolve_model("sign-locator-fp32").parent, folder)
    (folder / "locator.int8.onnx").unlink()
    scenes = write_road_scenes(tmp_path / "scenes.zip")
    report = export_run(ExportConfig(run_dir=str(folder / "locator.onnx"), data=str(scenes)))
    twin = LearnedLocator(folder / "locator.int8.onnx")
    assert twin.min_score == LearnedLocator(folder / "locator.onnx").min_score == report["min_score"]
    assert report["calibration_scenes"] == 2 and report["measured_scenes"] == 1  # scenes 0 and 2 calibrate, 1 is measured
    assert report["quantization"]["keep_float_nodes"] and not report["quantization"]["stem_on_column_blocks"]
    assert {node.op_type for node in onnx.load(folder / "locator.int8.onnx").graph.node} >= {"Cast", "QuantizeLinear"}
    props = {entry.key: json.loads(entry.value) for entry in onnx.load(folder / "locator.int8.onnx").metadata_props}
    assert props["edgesight.provenance"]["calibration_data"] == str(scenes)
    assert 0 <= report["max_centre_score_difference"] < 0.5
    assert [row["min_score"] for row in report["proposal_recall"]["int8"]] == [0.05, 0.1, 0.2, 0.3, 0.5]
    assert set(report["ms_per_frame_1_thread"]) == {"fp32", "int8"}
    frame = np.zeros((200, 320, 3), np.uint8)
    assert isinstance(twin.propose(frame), list)

    export_run(ExportConfig(run_dir=str(folder / "locator.onnx"), data=str(scenes)))  # made again: one section, replaced
    card = (folder / "MODEL_CARD.md").read_text()
    assert card.count("## int8 twin") == 1 and card.index("## int8 twin") < card.index("## Reproduce")
    assert card.count("## ORT format") == 1 and {"locator.ort", "locator.int8.ort"} == {path.name for path in folder.glob("*.ort")}
    assert f"edgesight export locator.onnx --data {scenes}" in card

    with pytest.raises(LocatorExportError, match=r"locator\.int8\.onnx: already an int8 locator"):
        export_run(ExportConfig(run_dir=str(folder / "locator.int8.onnx"), data=str(scenes)))
    with pytest.raises(ExportError, match=r"--locator-min-score is for locator runs.*Received: 0.3"):
        export_run(ExportConfig(run_dir=str(folder / "locator.onnx"), locator_min_score=0.3))
    capsys.readouterr()
    assert main(["export", str(resolve_model("gtsrb-tiny")), "--data", str(scenes)]) == 2
    assert "model.int8.onnx: not an edgesight sign locator" in capsys.readouterr().err
