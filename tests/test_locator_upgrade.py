"""A float locator file exported before export's later rewrites gets the ones it lacks, in place (export/locator_upgrade.py)."""
import json
import shutil

import numpy as np
import pytest
from edgesight.runtime.learned_locate import LOCATOR_KEY, LearnedLocator, difference_from_grid
from edgesight.runtime.shipped import resolve_model

onnx = pytest.importorskip("onnx", reason="export needs the [export] extra")
ort = pytest.importorskip("onnxruntime")
pytest.importorskip("tf2onnx", reason="export needs the [export] extra")
pytest.importorskip("tensorflow", reason="the network is built by the [train] extra")


def _exported_before_the_rewrites(path):
    """A small locator as export wrote locator files before 2026-12-07: every cell's box channels, a transpose before the
    stem; with the shipped file's metadata (without max_peaks). Returns its Keras network."""
    from edgesight.export.convert import keras_to_onnx, relax_spatial_dims, save_model
    from edgesight.export.simplify import fold_input_scaling
    from edgesight.train.locator import build_locator

    network = build_locator(8, 4)
    proto = relax_spatial_dims(keras_to_onnx(network, 17, traced_size=(64, 96)))
    assert fold_input_scaling(proto)
    for entry in onnx.load(resolve_model("sign-locator-fp32")).metadata_props:
        value = json.loads(entry.value)
        if entry.key == LOCATOR_KEY:
            value = {key: item for key, item in value.items() if key != "max_peaks"}
        proto.metadata_props.add(key=entry.key, value=json.dumps(value))
    save_model(proto, path)
    return network


def test_an_older_file_gets_the_rewrites_it_lacks_with_the_same_outputs_and_other_files_are_refused(tmp_path, capsys):
    from edgesight.export.locator_upgrade import main
    from edgesight.export.ort_format import locator_check_inputs, write_ort_files

    path = tmp_path / "locator.onnx"
    network = _exported_before_the_rewrites(path)
    assert [node.op_type for node in onnx.load(path).graph.node[:2]] == ["Transpose", "Cast"]
    write_ort_files([path], locator_check_inputs(path))  # a copy of the old graph, which must not outlive it
    old_copy = (tmp_path / "locator.ort").read_bytes()
    assert main([str(path)]) == 0
    assert "box head at the peaks, stem on interleaved columns, ORT-format copies made again; same outputs" in capsys.readouterr().out
    assert (tmp_path / "locator.ort").read_bytes() != old_copy
    upgraded = onnx.load(path)
    assert [node.op_type for node in upgraded.graph.node[:4]] == ["Reshape", "Unsqueeze", "Cast", "Conv"]
    assert LearnedLocator(path).max_peaks == 40
    image = np.random.default_rng(3).integers(0, 256, (1, 48, 80, 3), np.uint8)
    outputs = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"image": image})
    assert difference_from_grid(outputs, network(image).numpy()) < 1e-4

    assert main([str(path)]) == 2
    assert "nothing to rewrite; it is as export writes locator files now" in capsys.readouterr().err
    shutil.copy(resolve_model("sign-locator"), tmp_path / "locator.int8.onnx")
    assert main([str(tmp_path / "locator.int8.onnx")]) == 2
    assert "locator.int8.onnx: an int8 file; upgrade its float original" in capsys.readouterr().err
    (tmp_path / "broken.onnx").write_bytes(b"not a model")
    assert main([str(tmp_path / "broken.onnx")]) == 2
    assert "broken.onnx: not a readable ONNX file" in capsys.readouterr().err
    assert main([str(resolve_model("gtsrb-locate"))]) == 2
    assert "not a sign-locator file" in capsys.readouterr().err
