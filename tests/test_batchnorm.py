import json

import numpy as np
import pytest
from edgesight.train.config import TrainConfig
from edgesight.train.trainer import TrainError

pytest.importorskip("tensorflow", reason="training tests need the [train] extra")


def _small_model():
    import keras
    from keras import layers

    inputs = keras.Input((8, 8, 3), dtype="uint8")
    x = layers.Rescaling(1 / 255)(inputs)
    features = layers.Conv2D(4, 3, padding="same", use_bias=False, name="conv")(x)
    x = layers.BatchNormalization(name="bn")(features)
    x = layers.GlobalAveragePooling2D()(layers.ReLU()(x))
    return keras.Model(inputs, layers.Dense(3, activation="softmax")(x)), keras.Model(inputs, features)


def test_refit_sets_the_statistics_to_the_mean_of_the_batches_statistics():
    from edgesight.train.batchnorm import REFIT_BATCH_SIZE, refit_batchnorm_statistics

    model, features = _small_model()
    norm = model.get_layer("bn")
    norm.moving_mean.assign(np.full(4, 7.0, np.float32))  # statistics that fit no image
    norm.moving_variance.assign(np.full(4, 50.0, np.float32))
    images = np.random.default_rng(0).integers(0, 256, (3 * REFIT_BATCH_SIZE, 8, 8, 3), dtype=np.uint8)

    assert refit_batchnorm_statistics(model, images, seed=1) == len(images)
    chosen = np.random.default_rng(1).permutation(len(images))
    batches = [features(images[np.sort(chosen[start : start + REFIT_BATCH_SIZE])]).numpy().reshape(-1, 4)
               for start in range(0, len(images), REFIT_BATCH_SIZE)]
    np.testing.assert_allclose(norm.moving_mean.numpy(), np.mean([b.mean(0) for b in batches], axis=0), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(norm.moving_variance.numpy(), np.mean([b.var(0) for b in batches], axis=0), rtol=1e-3)
    assert norm.momentum == pytest.approx(0.99)  # training's momentum is back


def test_statistics_that_lower_validation_accuracy_are_not_kept(monkeypatch):
    from edgesight.train import batchnorm

    model, _ = _small_model()
    before = [weights.copy() for weights in model.get_layer("bn").get_weights()]
    scores = iter([0.9, 0.6])
    monkeypatch.setattr(batchnorm, "accuracy", lambda *_: next(scores))
    images = np.random.default_rng(0).integers(0, 256, (64, 8, 8, 3), dtype=np.uint8)
    record = batchnorm.refit_if_better(model, images, images[:8], np.zeros(8, int), seed=0)
    assert record == {"images": 64, "validation_accuracy_before": 0.9, "validation_accuracy_after": 0.6, "kept": False}
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_layer("bn").get_weights()))


def test_training_refits_the_statistics_unless_told_to_keep_them(tiny_gtsrb, tmp_path):
    import keras
    from edgesight.train.trainer import train

    options = dict(data=str(tiny_gtsrb), epochs=1, batch_size=16, val_fraction=0.34, seed=3, model="cnn-tiny")
    report = train(TrainConfig(run_dir=str(tmp_path / "refit"), **options))
    record = report["batchnorm_statistics"]
    assert record["images"] == json.loads((tmp_path / "refit" / "config.json").read_text())["split"]["train_images"]
    assert report["final_validation_accuracy"] == (record["validation_accuracy_after"] if record["kept"]
                                                   else record["validation_accuracy_before"])
    kept = train(TrainConfig(run_dir=str(tmp_path / "kept"), bn_statistics="keep", **options))
    assert kept["batchnorm_statistics"] is None
    # --epochs 0 holds the source's weights as they are, statistics included.
    copy = train(TrainConfig(run_dir=str(tmp_path / "copy"), init_from=str(tmp_path / "refit"), **(options | {"epochs": 0})))
    assert copy["batchnorm_statistics"] is None
    source, copied = (keras.models.load_model(tmp_path / name / "model.keras").get_weights() for name in ("refit", "copy"))
    assert all(np.array_equal(a, b) for a, b in zip(source, copied))
    with pytest.raises(TrainError, match="bn_statistics must be one of refit, keep. Received: bn_statistics='fresh'"):
        train(TrainConfig(run_dir=str(tmp_path / "bad"), bn_statistics="fresh", **options))


def test_the_reproduce_command_says_how_the_statistics_were_settled():
    from edgesight.export.card import training_command

    options = dict(task="cifar10", data="d", run_dir="r", model="resnet20", epochs=30, batch_size=128, learning_rate=0.1,
                   weight_decay=5e-3, val_fraction=0.05, seed=0)
    assert "--bn-statistics" not in training_command(options | {"bn_statistics": None})
    assert training_command(options | {"bn_statistics": "refit", "epochs": 0}).endswith("--bn-statistics refit")
    # A run made before the refit existed kept what training left; running its command again must do the same.
    assert training_command(options).endswith("--bn-statistics keep")
    assert "--bn-statistics" not in training_command(options | {"epochs": 0})
