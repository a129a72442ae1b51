"""A locator run started from a locator file (train/locator_init.py): the file rebuilt in Keras, narrowed, refused."""
import json

import numpy as np
import pytest
from edgesight.runtime.shipped import resolve_model
from fakes import write_gtsrb_archives, write_road_scenes

pytest.importorskip("tensorflow", reason="rebuilding a locator in Keras needs the [train] extra")

SHIPPED_SCENES = "gtsdb-scenes-000-099.zip"  # the name of the data the shipped locator's options record


def _crops(count: int, seed: int) -> np.ndarray:
    """Smooth random 64x64 images: blobs of colour, as a road scene has, rather than pixel noise."""
    import cv2

    rng = np.random.default_rng(seed)
    return np.stack([cv2.resize(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8), (64, 64)) for _ in range(count)])


def _config(data, **changes):
    from edgesight.train.config import LocatorTrainConfig

    return LocatorTrainConfig(**({"data": str(data), "init_from": "sign-locator-fp32"} | changes))


@pytest.mark.parametrize("form", ["peaks", "dense"])
def test_the_shipped_float_locator_rebuilds_in_keras_with_the_files_outputs(tmp_path, form):
    import onnxruntime as ort
    from edgesight.train.locator import build_locator
    from edgesight.train.locator_init import locator_from_file

    source = resolve_model("sign-locator-fp32")
    if form == "dense":
        pytest.importorskip("onnx", reason="the dense form is written by the [export] extra")
        from edgesight.export.peak_boxes import main as peak_boxes

        assert peak_boxes(["--dense", str(source), str(tmp_path / "dense.onnx")]) == 0
        source = tmp_path / "dense.onnx"
    model = locator_from_file(_config(SHIPPED_SCENES, init_from=str(source)), _crops(64, 0), lambda width: build_locator(width, 4))
    assert model.get_layer("down_pw").filters == 48
    session = ort.InferenceSession(str(source), providers=["CPUExecutionProvider"])
    image = _crops(1, 1)
    expected = session.run(None, {"image": image})[0]  # every cell's centre logit, or the dense grid
    np.testing.assert_allclose(model(image, training=False).numpy()[..., : expected.shape[-1]], expected, atol=1e-3)


def test_narrowing_keeps_the_channels_the_next_layers_read_and_so_the_outputs():
    """In a width-12 locator whose every layer passes 4 channels to weights of zero, the width-8 cut is the same function."""
    import keras
    from edgesight.train.locator import build_locator
    from edgesight.train.locator_init import narrowed

    keras.utils.set_random_seed(4)
    wide = build_locator(12, 4)
    rng = np.random.default_rng(4)
    for layer in wide.layers:
        if isinstance(layer, keras.layers.BatchNormalization):  # positive shifts: every live channel carries something
            gamma, _, mean, variance = layer.get_weights()
            layer.set_weights([gamma, rng.uniform(0.2, 1.0, gamma.shape), mean, variance])
    for layer in wide.layers:  # every reader of a 12-wide layer ignores 4 of its channels, other ones in each layer
        if isinstance(layer, keras.layers.Conv2D) and layer.kernel_size == (1, 1) and layer.input.shape[-1] == 12:
            kernel, *rest = layer.get_weights()
            kernel[:, :, rng.choice(12, 4, replace=False) if layer.name not in ("centre_head_pw", "box_head_pw") else [1, 5, 7, 10]] = 0.0
            layer.set_weights([kernel, *rest])
    narrow = narrowed(wide, build_locator(8, 4), _crops(32, 5))
    images = _crops(4, 6)
    np.testing.assert_allclose(narrow(images, training=False).numpy(), wide(images, training=False).numpy(), atol=1e-5)
    assert narrow.count_params() < wide.count_params()


def test_a_run_starts_from_the_shipped_locator_narrowed_and_records_it(tmp_path):
    from edgesight.train.locator import build_locator, train_locator

    scenes = write_road_scenes(tmp_path / SHIPPED_SCENES)  # the split options are the shipped file's: seed 0, 0.2
    signs = write_gtsrb_archives(tmp_path / "gtsrb")
    run_dir = tmp_path / "narrow"
    report = train_locator(_config(scenes, signs=str(signs), run_dir=str(run_dir), width=32, crops=32, crop_size=64,
                                   epochs=1, batch_size=16))
    assert report["parameters"] == build_locator(32, 4).count_params()
    assert json.loads((run_dir / "config.json").read_text())["train"]["init_from"] == "sign-locator-fp32"


@pytest.mark.parametrize("changes, message", [
    (dict(init_from="sign-locator"), r"locator\.int8\.onnx: an int8 locator; --init-from needs the float file"),
    (dict(init_from="gtsrb-locate-fp32"), r"not an edgesight sign locator"),
    (dict(width=64), r"--width may be the file's \(48\) or, for the plain design, smaller.*width=64"),
    (dict(stride=8), r"these differ \(file, this run\): stride 4, 8"),
    (dict(pointwise_heads=True), r"pointwise_heads False, True"),
    (dict(seed=3), r"seed 0 and val_fraction 0\.2; --init-from needs the same --data, --seed and --val-fraction"),
    (dict(data="other-scenes.zip"), r"Received: other-scenes\.zip, seed 0"),
])
def test_a_start_the_file_cannot_give_is_refused_before_any_work(tmp_path, changes, message):
    from edgesight.runtime.errors import EdgesightError
    from edgesight.train.locator import train_locator

    missing = str(tmp_path / SHIPPED_SCENES)  # refused before the scenes are read, or this would be the error
    options = {"data": missing, "signs": missing, "run_dir": str(tmp_path / "run")} | changes
    with pytest.raises(EdgesightError, match=message):
        train_locator(_config(**options))
