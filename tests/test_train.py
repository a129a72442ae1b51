import json

import numpy as np
import pytest
from edgesight.train.config import TrainConfig
from edgesight.train.trainer import TrainError, split_by_group

pytest.importorskip("tensorflow", reason="training tests need the [train] extra")


def test_split_by_group_never_puts_a_track_on_both_sides():
    labels = np.repeat(np.arange(4), 30)
    groups = [f"{label}/{index // 10}" for label, index in zip(labels, np.tile(np.arange(30), 4))]
    train_index, val_index = split_by_group(groups, labels, 0.34, seed=1)
    train_groups, val_groups = {groups[i] for i in train_index}, {groups[i] for i in val_index}
    assert not train_groups & val_groups
    assert len(train_index) + len(val_index) == 120
    assert sorted({g.split("/")[0] for g in val_groups}) == ["0", "1", "2", "3"]  # each class is validated
    assert np.array_equal(split_by_group(groups, labels, 0.34, seed=1)[1], val_index)


def _config(data, run_dir, **changes):
    options = dict(data=str(data), run_dir=str(run_dir), epochs=2, batch_size=16, val_fraction=0.34, seed=3)
    return TrainConfig(**(options | changes))


def test_training_resumes_after_an_interruption(tiny_gtsrb, tmp_path, monkeypatch):
    from edgesight.train.trainer import train
    from fakes import interrupt_after_first_epoch

    run_dir = tmp_path / "run"
    undo = interrupt_after_first_epoch(monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        train(_config(tiny_gtsrb, run_dir))
    state = json.loads((run_dir / "state.json").read_text())
    assert state["epochs_done"] == 1 and (run_dir / state["checkpoint"]).is_file()
    assert not (run_dir / "model.keras").exists()
    with pytest.raises(TrainError, match="pass --resume"):
        train(_config(tiny_gtsrb, run_dir))

    undo()
    report = train(_config(tiny_gtsrb, run_dir, resume=True))
    train(_config(tiny_gtsrb, tmp_path / "uninterrupted"))
    import keras

    resumed, uninterrupted = (keras.models.load_model(folder / "model.keras").get_weights()
                              for folder in (run_dir, tmp_path / "uninterrupted"))
    assert all(np.array_equal(a, b) for a, b in zip(resumed, uninterrupted))  # resuming changes nothing
    history = json.loads((run_dir / "history.json").read_text())
    assert len(history["loss"]) == len(history["val_accuracy"]) == 2
    assert history["loss"][0] == state["history"]["loss"][0]  # the first epoch was not redone
    assert report["test_images"] == 24 and 0.0 <= report["test_accuracy"] <= 1.0
    for name in ("model.keras", "report.json", "training_curves.png", "confusion_matrix.png", "per_class_accuracy.csv"):
        assert (run_dir / name).is_file(), name
    assert not (run_dir / "checkpoints").exists()


def test_same_seed_gives_the_same_model_and_the_run_keeps_its_data_path_absolute(tiny_gtsrb, tmp_path, monkeypatch):
    import keras
    from edgesight.train.trainer import train

    weights = []
    for name in ("first", "second"):
        if name == "second":  # the data named relative to the working folder, as typed in a shell
            monkeypatch.chdir(tiny_gtsrb.parent)
        train(_config(tiny_gtsrb.name if name == "second" else tiny_gtsrb, tmp_path / name, epochs=1))
        weights.append(keras.models.load_model(tmp_path / name / "model.keras").get_weights())
    assert all(np.array_equal(a, b) for a, b in zip(*weights))
    # export and bench read the data again from config.json, often from another folder
    assert json.loads((tmp_path / "second" / "config.json").read_text())["train"]["data"] == str(tiny_gtsrb.resolve())


def test_resume_without_a_run_is_refused(tiny_gtsrb, tmp_path):
    from edgesight.train.trainer import train

    with pytest.raises(TrainError, match="nothing to resume"):
        train(_config(tiny_gtsrb, tmp_path / "empty", resume=True))


def test_list_models_reports_parameters_and_macs_at_the_input_size(capsys):
    from edgesight.train.trainer import train

    train(TrainConfig(list_models=True, input_size=48))
    table = capsys.readouterr().out
    assert "MACs at 48x48" in table
    assert "| cnn-base | 486,539 | 87.12 M |" in table  # a flatten head grows with the input area
    assert "| resnet20 | 276,187 | 91.83 M |" in table  # global pooling keeps the parameters as at 32x32


@pytest.mark.parametrize("name", ["cnn-tiny", "cnn-tiny-ms", "cnn-tiny-sep"])
def test_tiny_models_fit_the_gtsrb_edge_budget(name):
    """Issue 3's budget for the small sign model: at most 150 k parameters and 5 M MACs at 32x32, 43 classes."""
    from edgesight.train.models import build_model, count_macs

    model = build_model(name, 32, 32, 43)
    assert model.count_params() <= 150_000
    assert count_macs(model) <= 5_000_000


def test_resize_option_reaches_the_run_and_is_checked(tmp_path):
    from edgesight.runtime.tasks import TASKS
    from edgesight.train.trainer import input_spec

    assert input_spec(TASKS["gtsrb"], TrainConfig(resize="linear")).resize == "linear"
    assert input_spec(TASKS["gtsrb"], TrainConfig()).resize == TASKS["gtsrb"].preprocess.resize
    with pytest.raises(TrainError, match="resize must be one of area, linear, cubic. Received: resize='nearest'"):
        input_spec(TASKS["gtsrb"], TrainConfig(resize="nearest"))


def test_box_margin_option_sets_the_crop_and_is_checked():
    from edgesight.runtime.tasks import TASKS
    from edgesight.train.trainer import input_spec

    assert input_spec(TASKS["gtsrb"], TrainConfig(box_margin=0.0)).box_margin == 0.0
    assert input_spec(TASKS["gtsrb"], TrainConfig()).box_margin == TASKS["gtsrb"].preprocess.box_margin == 0.1
    with pytest.raises(TrainError, match="box_margin must be in \\[0, 0.5\\]. Received: box_margin=0.7"):
        input_spec(TASKS["gtsrb"], TrainConfig(box_margin=0.7))


def test_a_run_can_start_from_another_runs_weights(tiny_gtsrb, tmp_path):
    import keras
    from edgesight.train.trainer import train

    first = train(_config(tiny_gtsrb, tmp_path / "first", epochs=1, model="cnn-tiny", resize="linear", box_margin=0.05))
    second = train(_config(tiny_gtsrb, tmp_path / "second", epochs=1, init_from=str(tmp_path / "first"), learning_rate=1e-3,
                           seed=7, val_fraction=0.3))
    saved, source = (json.loads((tmp_path / name / "config.json").read_text()) for name in ("second", "first"))
    assert saved["train"]["model"] == "cnn-tiny" and saved["preprocess"]["resize"] == "linear"  # taken from the source run
    assert saved["preprocess"]["box_margin"] == source["preprocess"]["box_margin"] == 0.05
    reframed = train(_config(tiny_gtsrb, tmp_path / "reframed", epochs=1, init_from=str(tmp_path / "first"), box_margin=0.0))
    assert json.loads((tmp_path / "reframed" / "config.json").read_text())["preprocess"]["box_margin"] == 0.0
    assert reframed["init_from"] == str(tmp_path / "first")  # a new framing, learnt from the same weights
    # Another seed and fraction would split afresh and validate on tracks the source run trained on.
    assert saved["split"] == source["split"] and saved["train"]["val_fraction"] == source["train"]["val_fraction"]
    assert second["init_from"] == str(tmp_path / "first")
    assert second["train_seconds_total"] == pytest.approx(first["train_seconds_total"] + second["train_seconds"], abs=0.2)
    # It really started from the first run's weights: one gentle epoch stays near them.
    start, end = (keras.models.load_model(tmp_path / name / "model.keras").get_weights() for name in ("first", "second"))
    fresh = keras.models.clone_model(keras.models.load_model(tmp_path / "first" / "model.keras")).get_weights()
    distance = sum(float(np.abs(a - b).sum()) for a, b in zip(start, end))
    assert distance < sum(float(np.abs(a - b).sum()) for a, b in zip(start, fresh))
    with pytest.raises(TrainError, match="was trained at 32x32 with resize linear"):
        train(_config(tiny_gtsrb, tmp_path / "third", init_from=str(tmp_path / "first"), resize="area"))
    with pytest.raises(TrainError, match="needs a finished run folder"):
        train(_config(tiny_gtsrb, tmp_path / "fourth", init_from=str(tmp_path / "nowhere")))


def test_sgd_trains_and_an_unknown_optimizer_is_refused(tiny_gtsrb, tmp_path):
    import keras
    from edgesight.train.trainer import train

    report = train(_config(tiny_gtsrb, tmp_path / "sgd", epochs=1, optimizer="sgd", learning_rate=0.05, weight_decay=5e-4))
    assert 0.0 <= report["test_accuracy"] <= 1.0
    optimizer = keras.models.load_model(tmp_path / "sgd" / "model.keras").optimizer
    assert isinstance(optimizer, keras.optimizers.SGD) and optimizer.nesterov
    with pytest.raises(TrainError, match="optimizer must be adamw or sgd. Received: optimizer='adam'"):
        train(_config(tiny_gtsrb, tmp_path / "other", optimizer="adam"))
    with pytest.raises(TrainError, match="learning_rate must be > 0 and weight_decay >= 0. Received: learning_rate=-0.1"):
        train(_config(tiny_gtsrb, tmp_path / "negative", learning_rate=-0.1))


def test_a_weight_average_is_what_the_run_ends_with_and_survives_an_interruption(tiny_gtsrb, tmp_path, monkeypatch):
    import keras
    from edgesight.export.card import training_command
    from edgesight.train.trainer import train
    from fakes import interrupt_after_first_epoch

    train(_config(tiny_gtsrb, tmp_path / "source", epochs=1, model="cnn-tiny"))
    options = dict(init_from=str(tmp_path / "source"), learning_rate=0.02, bn_statistics="keep")
    train(_config(tiny_gtsrb, tmp_path / "plain", **options))
    # Momentum this close to 1 keeps the average at the first step's weights: the run must end near where it started.
    train(_config(tiny_gtsrb, tmp_path / "averaged", weight_ema=0.99999, **options))
    kernels = {name: [w.numpy() for w in keras.models.load_model(tmp_path / name / "model.keras").trainable_weights]
               for name in ("source", "plain", "averaged")}
    moved = {name: sum(float(np.abs(a - b).sum()) for a, b in zip(kernels["source"], kernels[name])) for name in ("plain", "averaged")}
    assert moved["averaged"] < 0.1 * moved["plain"]

    undo = interrupt_after_first_epoch(monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        train(_config(tiny_gtsrb, tmp_path / "resumed", weight_ema=0.99999, **options))
    undo()
    train(_config(tiny_gtsrb, tmp_path / "resumed", weight_ema=0.99999, resume=True, **options))
    resumed, uninterrupted = (keras.models.load_model(tmp_path / name / "model.keras").get_weights()
                              for name in ("resumed", "averaged"))
    assert all(np.array_equal(a, b) for a, b in zip(resumed, uninterrupted))  # the checkpoint carried the average
    saved = json.loads((tmp_path / "resumed" / "config.json").read_text())["train"]
    assert "--weight-ema 0.99999" in training_command(saved)
    with pytest.raises(TrainError, match=r"weight_ema must be in \[0, 1\) \(0: off\). Received: weight_ema=1.0"):
        train(_config(tiny_gtsrb, tmp_path / "bad", weight_ema=1.0))


def test_an_augmentation_profile_can_be_chosen_but_never_mirrors_signs(tiny_gtsrb, tmp_path):
    import keras
    from edgesight.train.augment import CameraConditions, build_augmenter
    from edgesight.train.trainer import train

    light = [type(layer) for layer in build_augmenter("objects-light", seed=0).layers]
    assert light == [keras.layers.RandomFlip, keras.layers.RandomTranslation]
    cameras, signs = ([type(layer) for layer in build_augmenter(name, seed=0).layers] for name in ("signs-cameras", "signs"))
    assert cameras == signs + [CameraConditions] and keras.layers.RandomFlip not in cameras  # the camera last, no mirror
    with pytest.raises(TrainError, match="augmentation 'objects-light' mirrors images, which changes the class of a gtsrb sign"):
        train(_config(tiny_gtsrb, tmp_path / "mirrored", augmentation="objects-light"))
    with pytest.raises(TrainError, match="augmentation must be one of signs, signs-cameras, objects, objects-light, objects-sharp. "
                                         "Received: augmentation='heavy'"):
        train(_config(tiny_gtsrb, tmp_path / "unknown", augmentation="heavy"))


def _is_whole_pixel_shift(augmented: np.ndarray, original: np.ndarray) -> bool:
    """Whether the image's inside is the original moved by whole pixels (at most 4 each way)."""
    return any(np.array_equal(augmented[6:-6, 6:-6], np.roll(original, (dy, dx), axis=(0, 1))[6:-6, 6:-6])
               for dy in range(-4, 5) for dx in range(-4, 5))


def test_the_sharp_objects_profile_shifts_by_whole_pixels_and_the_light_one_resamples():
    from edgesight.train.augment import build_augmenter

    images = np.random.default_rng(0).integers(0, 256, (32, 32, 32, 3)).astype(np.float32)
    for name, whole in (("objects-sharp", 32), ("objects-light", 0)):
        shifted = build_augmenter(name, seed=0).layers[-1](images, training=True).numpy()  # the translation alone
        assert sum(_is_whole_pixel_shift(a, b) for a, b in zip(shifted, images)) == pytest.approx(whole, abs=3), name


def test_random_shadow_darkens_one_side_of_a_straight_edge_and_only_in_training():
    import tensorflow as tf
    from edgesight.train.augment import RandomShadow

    images = tf.constant(np.full((64, 32, 32, 3), 200.0, np.float32))
    shadowed = RandomShadow(1.0, darkest=0.3, seed=1)(images, training=True).numpy()
    assert shadowed.max() == 200.0 and shadowed.min() >= 0.3 * 200.0 - 1e-3
    darkened = shadowed < 199.0
    assert 0.2 < darkened.mean() < 0.8  # about half of each image on average
    for image in darkened[..., 0]:  # a half-plane: every row's shadow is one run of columns touching an edge
        for row in image:
            runs = np.flatnonzero(np.diff(np.concatenate([[0], row.astype(int), [0]])))
            assert len(runs) in (0, 2) and (not len(runs) or runs[0] == 0 or runs[1] == 32)
    np.testing.assert_array_equal(RandomShadow(0.0, seed=1)(images, training=True).numpy(), images.numpy())
    np.testing.assert_array_equal(RandomShadow(1.0, seed=1)(images, training=False).numpy(), images.numpy())


def test_camera_conditions_darken_brighten_blur_add_noise_and_compress_each_by_its_chance_and_only_in_training():
    import cv2
    import tensorflow as tf
    from edgesight.train.augment import CameraConditions

    # A smooth gradient with one sharp square: blur and JPEG show on the square's edges, noise on the flat parts.
    gradient = np.tile(np.round(np.linspace(40, 200, 64, dtype=np.float32))[None, :, None], (64, 1, 3))
    gradient[20:44, 20:44] = 250.0
    images = tf.constant(np.repeat(gradient[None], 200, 0))
    changed = CameraConditions(0.35, seed=4)(images, training=True).numpy()
    assert changed.min() >= 0.0 and changed.max() <= 255.0
    ratio = changed[:, 30:34, 2:6].mean(axis=(1, 2, 3)) / gradient[30:34, 2:6].mean()  # the dark side's light, per image
    assert 0.15 < (ratio < 0.9).mean() < 0.4 and (ratio > 1.1).mean() > 0.05  # darkened or brightened by about its chance
    assert (changed[:, 30:34, 50:60] == 255.0).any()  # over-exposed values saturate
    untouched = np.all(changed == gradient, axis=(1, 2, 3)).mean()
    assert 0.05 < untouched < 0.35  # about 0.65 ** 4 of the images have no condition at all
    for seed in (1, 2):  # each condition alone, by its own chance
        alone = CameraConditions(1.0, darkest=1.0, brightest=1.0, noise_sigma=0.0, seed=seed)(images[:4], training=True).numpy()
        assert not np.array_equal(alone, images[:4].numpy())
    blurred_only = CameraConditions(1.0, darkest=1.0, brightest=1.0, noise_sigma=0.0, jpeg_quality=(100, 101), seed=1)(
        images[:8], training=True).numpy()
    edge = blurred_only[:, 32, 18:22, 0]  # softened across the square's left edge, never sharpened
    assert (edge[:, 0] <= edge[:, -1]).all() and (np.abs(np.diff(edge, axis=1)).max(axis=1) < 250 - gradient[32, 19, 0]).any()
    compressed = cv2.imdecode(cv2.imencode(".jpg", gradient.astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, 20])[1], 1)
    assert not np.array_equal(compressed, gradient.astype(np.uint8))  # the test image is one JPEG changes
    np.testing.assert_array_equal(CameraConditions(0.0, seed=1)(images, training=True).numpy(), images.numpy())
    np.testing.assert_array_equal(CameraConditions(1.0, seed=1)(images, training=False).numpy(), images.numpy())


def test_sign_augmentation_fades_colours_without_mirroring():
    import keras
    from edgesight.train.augment import AUGMENTATIONS, build_augmenter

    assert not AUGMENTATIONS["signs"].mirror
    only_colour = keras.Sequential([layer for layer in build_augmenter("signs", seed=2).layers
                                    if isinstance(layer, keras.layers.RandomSaturation)])
    red = np.zeros((256, 8, 8, 3), np.float32)
    red[..., 0] = 200.0
    faded = np.clip(keras.ops.convert_to_numpy(only_colour(red, training=True))[:, 0, 0], 0, 255)  # as training clips
    saturation = 1.0 - faded.min(axis=1) / faded.max(axis=1)
    assert (faded[:, 0] >= faded[:, 1]).all() and np.allclose(faded[:, 1], faded[:, 2])  # still a red hue, only paler
    assert (saturation < 0.5).mean() > 0.15  # about a quarter sun-faded to half their saturation or less
    assert (saturation > 0.99).mean() > 0.2  # and some kept fully red


def test_the_model_card_command_repeats_a_chosen_augmentation():
    from edgesight.export.card import training_command

    options = {"task": "cifar10", "data": "d", "run_dir": "r", "model": "resnet20", "epochs": 1, "batch_size": 8,
               "learning_rate": 0.1, "weight_decay": 0.0, "val_fraction": 0.1, "seed": 0, "augmentation": "objects-light"}
    assert "--augmentation objects-light" in training_command(options)
    assert "--augmentation" not in training_command(options | {"augmentation": None})
