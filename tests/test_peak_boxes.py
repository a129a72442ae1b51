"""The locator's box head at the peaks only: the same values as the dense head in float and in int8, read by the runtime
like a dense file, undone for calibration, and applied in place to files exported before it."""
import copy
import json
import shutil

import numpy as np
import pytest
from edgesight.runtime.errors import ModelFileError
from edgesight.runtime.learned_locate import PEAK_OUTPUTS, LearnedLocator, LocatorOutput, difference_from_grid
from edgesight.runtime.shipped import resolve_model

onnx = pytest.importorskip("onnx", reason="export needs the [export] extra")
ort = pytest.importorskip("onnxruntime")


def _run(model, image):
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"image": image})


def _frames():
    """Noise at two sizes, batch 2: peaks everywhere, edges included; on the small one, fewer peaks than the file keeps,
    so cells past the peaks get boxes too."""
    rng = np.random.default_rng(1)
    return [rng.integers(0, 256, (2, 48, 80, 3), np.uint8), rng.integers(0, 256, (2, 120, 200, 3), np.uint8)]


def _dense_shipped():
    from edgesight.export.peak_boxes import box_head_everywhere

    model = onnx.load(resolve_model("sign-locator-fp32"))
    assert box_head_everywhere(model)
    return model


def test_the_rewrite_and_its_undoing_keep_every_value_of_the_float_locator():
    from edgesight.export.peak_boxes import box_head_at_peaks, box_head_everywhere

    shipped = onnx.load(resolve_model("sign-locator-fp32"))
    dense = _dense_shipped()
    assert [output.name for output in dense.graph.output] == ["grid"]
    assert "max_peaks" not in json.loads({entry.key: entry.value for entry in dense.metadata_props}["edgesight.locator"])
    again = copy.deepcopy(dense)
    box_head_at_peaks(again)
    assert [output.name for output in again.graph.output] == list(PEAK_OUTPUTS)
    for image in _frames():
        grid = _run(dense, image)[0]
        assert difference_from_grid(_run(shipped, image), grid) == 0.0
        assert difference_from_grid(_run(again, image), grid) == 0.0
        cells = _run(shipped, image)[2]
        assert len(np.unique(cells[0])) == cells.shape[1]  # distinct cells, best first
    assert not box_head_everywhere(copy.deepcopy(dense))  # nothing to undo


def test_the_int8_rewrite_gives_the_dense_int8_graphs_values_exactly():
    from edgesight.export.locator_int8 import LOCATOR_QUANTIZATION
    from edgesight.export.peak_boxes import PeakBoxesError, box_head_at_peaks, box_head_everywhere
    from edgesight.export.quantize import quantize_int8

    calibration = np.random.default_rng(2).integers(0, 256, (4, 120, 200, 3), np.uint8)
    dense_int8, _ = quantize_int8(_dense_shipped(), calibration, LOCATOR_QUANTIZATION, width_multiple=4)
    rewritten = copy.deepcopy(dense_int8)
    box_head_at_peaks(rewritten)
    assert "QuantizeLinear" in {node.op_type for node in rewritten.graph.node}
    for image in _frames():
        assert difference_from_grid(_run(rewritten, image), _run(dense_int8, image)[0]) == 0.0
    with pytest.raises(PeakBoxesError, match="an int8 graph"):
        box_head_everywhere(rewritten)
    with pytest.raises(PeakBoxesError, match="expected one output, the dense grid"):
        box_head_at_peaks(rewritten)
    with pytest.raises(PeakBoxesError, match="not the NHWC Transpose of a two-input channel Concat"):
        box_head_at_peaks(onnx.load(resolve_model("gtsrb-tiny-fp32")))


def test_onnxruntime_finds_the_int8_twins_peaks_in_float(tmp_path):
    """Its QDQ propagation would move the centre's DequantizeLinear past the peak test's MaxPool and run that on uint8,
    17 times as slow for one channel (export/peak_boxes.py)."""
    from edgesight.runtime.sessions import session_options

    options = session_options(1)
    options.optimized_model_filepath = str(tmp_path / "optimized.onnx")
    ort.InferenceSession(str(resolve_model("sign-locator")), options, providers=["CPUExecutionProvider"])
    optimized = onnx.load(tmp_path / "optimized.onnx")
    producers = {output: node for node in optimized.graph.node for output in node.output}
    (pool,) = [node for node in optimized.graph.node if node.op_type == "MaxPool"]
    source = producers.get(pool.input[0])
    while source is not None and source.op_type in ("Reshape", "Transpose", "Squeeze", "Unsqueeze", "Identity"):
        source = producers.get(source.input[0])
    assert source is not None and source.op_type not in ("QuantizeLinear", "DequantizeLinear") and not source.op_type.startswith("QLinear")


def test_the_runtime_reads_a_file_with_peak_outputs_as_it_reads_a_dense_one(tmp_path):
    from edgesight.export.convert import save_model

    save_model(_dense_shipped(), tmp_path / "dense.onnx")
    dense, peaks = LearnedLocator(tmp_path / "dense.onnx", min_score=0.05), LearnedLocator("sign-locator-fp32", min_score=0.05)
    assert dense.max_peaks is None and peaks.max_peaks == 40
    frame = np.random.default_rng(3).integers(0, 256, (200, 320, 3), np.uint8)
    assert peaks.scored_proposals(frame) == dense.scored_proposals(frame) and len(peaks.propose(frame)) > 5
    output = peaks.frame_output(frame)
    assert isinstance(output, LocatorOutput) and output.centre_logits.shape == (25, 40)
    np.testing.assert_array_equal(output.centre_logits, dense.frame_output(frame).centre_logits)
    with pytest.raises(ValueError, match=r"locator\.onnx: the file gives its best 40 peaks a frame. Received: max_boxes=41"):
        LearnedLocator("sign-locator-fp32", max_boxes=41)
    model = onnx.load(tmp_path / "dense.onnx")
    for entry in model.metadata_props:
        if entry.key == "edgesight.locator":
            entry.value = json.dumps(json.loads(entry.value) | {"max_peaks": 40})  # claims peak outputs it lacks
    save_model(model, tmp_path / "claims.onnx")
    with pytest.raises(ModelFileError, match=r"claims\.onnx: edgesight\.locator max_peaks 40 needs outputs"):
        LearnedLocator(tmp_path / "claims.onnx")


def test_the_dense_form_of_a_float_file_is_written_for_a_teacher_and_other_files_are_refused(tmp_path, capsys):
    from edgesight.export.peak_boxes import main

    shutil.copy(resolve_model("sign-locator-fp32"), tmp_path / "locator.onnx")
    assert main(["--dense", str(tmp_path / "locator.onnx"), str(tmp_path / "dense.onnx")]) == 0
    assert LearnedLocator(tmp_path / "dense.onnx").max_peaks is None
    image = _frames()[0]
    np.testing.assert_array_equal(_run(onnx.load(tmp_path / "dense.onnx"), image)[0], _run(_dense_shipped(), image)[0])
    assert main(["--dense", str(tmp_path / "dense.onnx"), str(tmp_path / "again.onnx")]) == 2
    assert "dense.onnx: its box head runs at every cell already" in capsys.readouterr().err
    assert main(["--dense", str(resolve_model("sign-locator")), str(tmp_path / "int8.onnx")]) == 2
    assert "an int8 graph" in capsys.readouterr().err
    (tmp_path / "broken.onnx").write_bytes(b"not a model")
    assert main(["--dense", str(tmp_path / "broken.onnx"), str(tmp_path / "out.onnx")]) == 2
    assert "broken.onnx: not a readable ONNX file" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # the in-place rewrite it did before has a command of its own now
        main([str(tmp_path / "locator.onnx")])
    assert "python -m edgesight.export.locator_upgrade FILE" in capsys.readouterr().err


def test_heads_of_a_pointwise_convolution_and_an_hourglass_are_rewritten_too():
    pytest.importorskip("tensorflow", reason="the networks are built by the [train] extra")
    pytest.importorskip("tf2onnx", reason="export needs the [export] extra")
    from edgesight.export.locator import locator_graph
    from edgesight.export.locator_int8 import LOCATOR_QUANTIZATION
    from edgesight.export.peak_boxes import box_head_at_peaks, box_head_everywhere
    from edgesight.export.quantize import quantize_int8
    from edgesight.train.locator import build_locator

    image = np.random.default_rng(5).integers(0, 256, (1, 64, 96, 3), np.uint8)
    for network in (build_locator(8, 4, pointwise_heads=True), build_locator(16, 4, context_stride=8)):
        dense, _ = locator_graph(network, 17, (64, 96))
        rewritten = copy.deepcopy(dense)
        box_head_at_peaks(rewritten)
        assert difference_from_grid(_run(rewritten, image), network(image).numpy()) < 1e-5
        undone = copy.deepcopy(rewritten)
        assert box_head_everywhere(undone)
        np.testing.assert_array_equal(_run(undone, image)[0], _run(dense, image)[0])
        dense_int8, _ = quantize_int8(dense, image, LOCATOR_QUANTIZATION, width_multiple=8)
        rewritten_int8 = copy.deepcopy(dense_int8)
        box_head_at_peaks(rewritten_int8)
        assert difference_from_grid(_run(rewritten_int8, image), _run(dense_int8, image)[0]) == 0.0
