"""The graph rewrites keep the Keras model's function and remove the nodes they promise to."""
import numpy as np
import pytest
from fakes import image_stem_graph

pytest.importorskip("tf2onnx", reason="needs the [export] extra")


@pytest.mark.parametrize("architecture, expected", [
    ("cnn-tiny", ["standardization fused into one LayerNormalization node", "1 flatten reshape(s) given a static shape"]),
    ("cnn-small", ["1 flatten reshape(s) given a static shape"]),  # no standardization layer: left alone
])
def test_simplified_graph_computes_what_keras_computes_at_any_batch(architecture, expected):
    import onnxruntime as ort
    from edgesight.export.convert import keras_to_onnx
    from edgesight.export.simplify import simplify
    from edgesight.train.models import build_model

    model = build_model(architecture, 32, 32, 43)
    images = np.random.default_rng(0).integers(0, 256, (7, 32, 32, 3), dtype=np.uint8)
    images[0] = 0
    images[0, 0, 0, 0] = 1  # almost flat: its variance is far below epsilon, so a wrongly scaled epsilon would show
    proto = keras_to_onnx(model)
    before = len(proto.graph.node)
    assert simplify(proto, model) == expected
    assert len(proto.graph.node) < before
    operators = [node.op_type for node in proto.graph.node]
    assert "Shape" not in operators and ("LayerNormalization" in operators) == (architecture == "cnn-tiny")
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    for batch in (images[:1], images):
        np.testing.assert_allclose(session.run(None, {"image": batch})[0], model.predict(batch, verbose=0), atol=1e-5)


def test_a_stem_reads_the_nhwc_image_as_interleaved_columns_with_the_same_outputs_and_back():
    import copy

    import onnxruntime as ort
    from edgesight.export.simplify import stem_on_channels, stem_on_interleaved_columns

    def run(model, image):
        return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"image": image})[0]

    original = image_stem_graph()
    rewritten = copy.deepcopy(original)
    assert stem_on_interleaved_columns(rewritten)
    assert [node.op_type for node in rewritten.graph.node] == ["Reshape", "Unsqueeze", "Cast", "Conv", "Relu"]
    assert [init.dims for init in rewritten.graph.initializer if init.name == "kernel"] == [[16, 1, 3, 9]]  # kept its name
    rng = np.random.default_rng(5)
    for image in (rng.integers(0, 256, (1, 40, 64, 3), np.uint8), rng.integers(0, 256, (2, 30, 50, 3), np.uint8)):
        expected = run(original, image)
        np.testing.assert_allclose(run(rewritten, image), expected, rtol=0, atol=1e-5 * np.abs(expected).max())
    # Undone, the graph is the original again, value for value: the kernel is only laid out anew.
    assert stem_on_channels(rewritten) and [node.op_type for node in rewritten.graph.node] == ["Transpose", "Cast", "Conv", "Relu"]
    np.testing.assert_array_equal(run(rewritten, image), expected)
    assert not stem_on_channels(rewritten)
    # Patterns it does not take are left as they were: a dilated stem, and Unsqueeze's axes as an attribute (opset 12).
    for untouched in (image_stem_graph(dilations=(2, 2), pads=(2, 2, 2, 2)), image_stem_graph(opset=12)):
        before = untouched.SerializeToString()
        assert not stem_on_interleaved_columns(untouched) and untouched.SerializeToString() == before
