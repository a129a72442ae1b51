"""Keras models rebuilt from exported fp32 ONNX files (edgesight.train.from_onnx), on the shipped files."""
import numpy as np
import pytest

pytest.importorskip("tensorflow", reason="rebuilding a model in Keras needs the [train] extra")


@pytest.mark.parametrize("name", ["gtsrb-fp32", "gtsrb-tiny-fp32", "gtsrb-locate-fp32", "cifar10-fp32"])
def test_every_shipped_model_rebuilds_in_keras_with_the_files_outputs(name):
    from edgesight.runtime import Classifier
    from edgesight.train.from_onnx import keras_model_from_onnx, read_source_model

    source = read_source_model(name)
    spec = source.metadata.preprocess
    rng = np.random.default_rng(0)
    statistics_images, other_images = (rng.integers(0, 256, (count, spec.height, spec.width, 3), dtype=np.uint8)
                                       for count in (200, 64))
    model = keras_model_from_onnx(source, statistics_images)
    expected = Classifier(source.path).probabilities(other_images)
    np.testing.assert_allclose(model.predict(other_images, verbose=0), expected, atol=1e-4)


def test_the_rebuilt_normalizations_start_at_the_statistics_training_will_see():
    """In training mode on the images its statistics came from, the rebuilt ResNet gives what it gives in inference."""
    from edgesight.train.from_onnx import keras_model_from_onnx, read_source_model

    images = np.random.default_rng(1).integers(0, 256, (128, 32, 32, 3), dtype=np.uint8)
    model = keras_model_from_onnx(read_source_model("cifar10-fp32"), images)  # no dropout: training mode only renormalizes
    np.testing.assert_allclose(model(images, training=True).numpy(), model(images, training=False).numpy(), atol=2e-3)


def test_files_training_cannot_start_from_are_refused_by_name(tiny_model):
    from edgesight.train.from_onnx import read_source_model
    from edgesight.train.trainer import TrainError

    with pytest.raises(TrainError, match=r"model.int8.onnx: an int8 file; --init-from and --teacher need the fp32 file .* ending in -fp32"):
        read_source_model("cifar10")
    with pytest.raises(TrainError, match=r"tiny.onnx: its metadata does not record the options it was trained with"):
        read_source_model(str(tiny_model))


def test_a_separable_architecture_rebuilds_from_its_converted_file(tmp_path):
    """cnn-small's depthwise kernels sit in ONNX as (channels, 1, h, w) and in Keras as (h, w, channels, 1)."""
    pytest.importorskip("tf2onnx", reason="converting a model needs the [export] extra")
    import keras
    from edgesight.export.convert import keras_to_onnx, save_model, stamp_metadata
    from edgesight.export.simplify import simplify
    from edgesight.runtime.metadata import ModelMetadata
    from edgesight.runtime.preprocess import PreprocessSpec
    from edgesight.train.from_onnx import keras_model_from_onnx, read_source_model
    from edgesight.train.models import build_model

    keras.utils.set_random_seed(2)
    trained = build_model("cnn-small", 32, 32, 5)
    rng = np.random.default_rng(2)
    for layer in trained.layers:  # statistics and scales away from their initial values, as after training
        if isinstance(layer, keras.layers.BatchNormalization):
            gamma, beta, mean, variance = layer.get_weights()
            layer.set_weights([rng.uniform(0.5, 2, gamma.shape), rng.normal(0, 0.3, beta.shape), rng.normal(0, 0.3, mean.shape),
                               rng.uniform(0.2, 3, variance.shape)])
    proto = keras_to_onnx(trained)
    simplify(proto, trained)
    metadata = ModelMetadata(task="shapes", labels=tuple("abcde"), input_name="image",
                             preprocess=PreprocessSpec(height=32, width=32, crop="full", box_margin=0.0, resize="area"),
                             provenance={"train_options": {"model": "cnn-small", "val_fraction": 0.1, "seed": 0}})
    save_model(stamp_metadata(proto, metadata), tmp_path / "small.onnx")

    images = rng.integers(0, 256, (96, 32, 32, 3), dtype=np.uint8)
    rebuilt = keras_model_from_onnx(read_source_model(str(tmp_path / "small.onnx")), images)
    np.testing.assert_allclose(rebuilt.predict(images, verbose=0), trained.predict(images, verbose=0), atol=1e-4)


def test_the_card_says_when_the_model_file_a_run_started_from_does_not_record_its_training_time():
    from edgesight.export.card import _wall_time

    # Files exported before train_seconds_total joined their provenance (the shipped cifar10 among them) lack it.
    assert _wall_time({"train_seconds": 1500, "train_seconds_total": None, "init_from": "cifar10-fp32"}) == (
        "25 min for this run, after the training of `cifar10-fp32`, which its file does not record,")
    assert _wall_time({"train_seconds": 1500, "train_seconds_total": 3900, "init_from": "runs/a"}) == (
        "65 min (this run and the run it started from)")
    assert _wall_time({"train_seconds": 1500, "train_seconds_total": 1500, "init_from": None}) == "25 min"
