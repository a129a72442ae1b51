"""The int8 twin of a sign-locator file: the graph rewrites change no sum, and export writes, compares and describes it."""
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


def test_the_image_skips_its_quantization_only_when_that_is_the_identity():
    from edgesight.export.locator_int8 import feed_image_unquantized
    from onnx import TensorProto, helper, numpy_helper

    def graph(scale):
        nodes = [helper.make_node("Cast", ["image"], ["float"], to=TensorProto.FLOAT),
                 helper.make_node("QuantizeLinear", ["float", "scale", "zero"], ["quantized"]),
                 helper.make_node("DequantizeLinear", ["quantized", "scale", "zero"], ["out"])]
        initializers = [numpy_helper.from_array(np.array(scale, np.float32), "scale"),
                        numpy_helper.from_array(np.array(0, np.uint8), "zero")]
        return helper.make_model(helper.make_graph(
            nodes, "g", [helper.make_tensor_value_info("image", TensorProto.UINT8, [1, 4])],
            [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 4])], initializers), opset_imports=[helper.make_opsetid("", 17)])

    image = np.array([[0, 1, 128, 255]], np.uint8)
    identity = graph(1.0)
    assert feed_image_unquantized(identity)
    assert [node.op_type for node in identity.graph.node] == ["DequantizeLinear"]
    np.testing.assert_array_equal(_grid(identity, image), image.astype(np.float32))
    halving = graph(2.0)
    assert not feed_image_unquantized(halving) and len(halving.graph.node) == 3


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
    assert report["quantization"]["stem_on_column_blocks"] and report["quantization"]["image_fed_unquantized"]
    assert {node.op_type for node in onnx.load(folder / "locator.int8.onnx").graph.node} >= {"Reshape", "QuantizeLinear"}
    assert "Cast" not in {node.op_type for node in onnx.load(folder / "locator.int8.onnx").graph.node}
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
    assert f"edgesight export locator.onnx --data {scenes}" in card

    with pytest.raises(LocatorExportError, match=r"locator\.int8\.onnx: already an int8 locator"):
        export_run(ExportConfig(run_dir=str(folder / "locator.int8.onnx"), data=str(scenes)))
    with pytest.raises(ExportError, match=r"--locator-min-score is for locator runs.*Received: 0.3"):
        export_run(ExportConfig(run_dir=str(folder / "locator.onnx"), locator_min_score=0.3))
    capsys.readouterr()
    assert main(["export", str(resolve_model("gtsrb-tiny")), "--data", str(scenes)]) == 2
    assert "model.int8.onnx: not an edgesight sign locator" in capsys.readouterr().err
