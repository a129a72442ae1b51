"""The int8 stem on blocks of image columns: the same values, and files made before it get it in place."""
import json
import shutil

import numpy as np
import pytest
from edgesight.runtime.shipped import resolve_model
from fakes import image_stem_graph

onnx = pytest.importorskip("onnx", reason="export needs the [export] extra")
ort = pytest.importorskip("onnxruntime")


def _outputs(model, images):
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: images})[0]


def test_the_stem_on_column_blocks_gives_the_same_values_and_is_left_alone_where_it_would_not_hold():
    from edgesight.export.quantize import QuantizationSettings, quantize_int8
    from edgesight.export.stem_blocks import stem_on_column_blocks

    rng = np.random.default_rng(0)
    # A quantized 3x3 stride-2 stem padded at the bottom and right, as the sign locator's was before it kept its stem float.
    settings = QuantizationSettings(calibration_method="MinMax", keep_float_ops=(), keep_float_layers=(), symbolic_shapes=False)
    original, _ = quantize_int8(image_stem_graph(), rng.integers(0, 256, (2, 96, 160, 3), np.uint8), settings, width_multiple=1)
    blocked = onnx.ModelProto()
    blocked.CopyFrom(original)
    assert stem_on_column_blocks(blocked, width_multiple=4)
    ops = [node.op_type for node in blocked.graph.node]
    assert ops.index("Reshape") < ops.index("Transpose") < ops.index("Conv")  # the image reshaped into column blocks first
    for height, width in ((96, 160), (400, 680)):  # any size the runtime gives it: multiples of the stride
        image = rng.integers(0, 256, (1, height, width, 3), np.uint8)
        np.testing.assert_array_equal(_outputs(blocked, image), _outputs(original, image))
    before = blocked.SerializeToString()
    assert not stem_on_column_blocks(blocked, width_multiple=4) and blocked.SerializeToString() == before  # once only
    assert not stem_on_column_blocks(original, width_multiple=2)  # a width of 6 would not reshape
    padded_all_round = onnx.ModelProto()
    padded_all_round.CopyFrom(original)
    stem = next(node for node in padded_all_round.graph.node if node.op_type == "Conv")
    next(attribute for attribute in stem.attribute if attribute.name == "pads").ints[:] = [1, 1, 1, 1]
    before = padded_all_round.SerializeToString()
    assert not stem_on_column_blocks(padded_all_round, width_multiple=4) and padded_all_round.SerializeToString() == before
    float_stem = onnx.load(resolve_model("sign-locator-fp32"))  # a float stem is left alone: onnxruntime runs it well
    before = float_stem.SerializeToString()
    assert not stem_on_column_blocks(float_stem, width_multiple=4) and float_stem.SerializeToString() == before

    # After calibration (as quantize_int8 does for classifiers), the int8 file gives the same values to the last bit.
    classifier = onnx.load(resolve_model("gtsrb-tiny-fp32"))  # a 4x4 stride-2 stem padded on all sides
    images = rng.integers(0, 256, (8, 32, 32, 3), np.uint8)
    settings = QuantizationSettings(calibration_method="MinMax", symbolic_shapes=False)
    blocked, description = quantize_int8(classifier, images, settings)  # by the input's fixed width, 32
    plain, plain_description = quantize_int8(classifier, images, settings, width_multiple=1)
    assert description["stem_on_column_blocks"] and not plain_description["stem_on_column_blocks"]
    np.testing.assert_array_equal(_outputs(blocked, images), _outputs(plain, images))


def test_an_int8_file_made_before_the_rewrite_gets_it_in_place_with_the_same_probabilities(tmp_path, capsys):
    from edgesight.export.quantize import QuantizationSettings, quantize_int8
    from edgesight.export.stem_blocks import main
    from edgesight.runtime.classifier import Classifier

    folder = tmp_path / "gtsrb-tiny"
    shutil.copytree(resolve_model("gtsrb-tiny").parent, folder)
    shipped = onnx.load(folder / "model.int8.onnx")
    images = np.random.default_rng(1).integers(0, 256, (16, 32, 32, 3), np.uint8)
    old, _ = quantize_int8(onnx.load(resolve_model("gtsrb-tiny-fp32")), images, QuantizationSettings(symbolic_shapes=False),
                           width_multiple=1)  # as export made int8 files before 2026-12-06
    del old.metadata_props[:]
    old.metadata_props.extend(shipped.metadata_props)
    entry = next(entry for entry in old.metadata_props if entry.key == "edgesight.quantization")
    entry.value = json.dumps({key: value for key, value in json.loads(entry.value).items() if key != "stem_on_column_blocks"})
    onnx.save(old, folder / "model.int8.onnx")
    before = Classifier(folder / "model.int8.onnx").probabilities(images)
    ort_before = (folder / "model.int8.ort").read_bytes()

    assert main([str(folder / "model.int8.onnx")]) == 0
    assert "stem rewritten, same probabilities" in capsys.readouterr().out
    upgraded = onnx.load(folder / "model.int8.onnx")
    ops = [node.op_type for node in upgraded.graph.node]
    assert "Reshape" in ops[: ops.index("Conv")]
    quantization = json.loads(next(entry.value for entry in upgraded.metadata_props if entry.key == "edgesight.quantization"))
    assert quantization["stem_on_column_blocks"] is True
    np.testing.assert_array_equal(Classifier(folder / "model.int8.onnx").probabilities(images), before)
    assert (folder / "model.int8.ort").read_bytes() != ort_before  # made again from the upgraded file

    assert main([str(folder / "model.int8.onnx")]) == 0
    assert "nothing to rewrite" in capsys.readouterr().out
    assert main([str(folder / "model.onnx")]) == 2
    assert "model.onnx: not an int8 edgesight model file" in capsys.readouterr().err
    full_range = tmp_path / "model.int8.onnx"
    shutil.copyfile(resolve_model("gtsrb"), full_range)  # 8-bit weights, measured on a CPU without int8 dot products
    assert main([str(full_range)]) == 2
    assert "has 8-bit weights" in capsys.readouterr().err and full_range.read_bytes() == resolve_model("gtsrb").read_bytes()
