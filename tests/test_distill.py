import dataclasses
import json

import numpy as np
import pytest
from edgesight.train.config import TrainConfig

pytest.importorskip("tensorflow", reason="training tests need the [train] extra")


def _config(data, run_dir, **changes):
    options = dict(data=str(data), run_dir=str(run_dir), epochs=2, batch_size=16, val_fraction=0.34, seed=3,
                   model="cnn-tiny", resize="linear")
    return TrainConfig(**(options | changes))


def run_labels(run_dir):
    return tuple(json.loads((run_dir / "config.json").read_text())["labels"])


def test_distillation_loss_is_cross_entropy_plus_the_softened_gap_to_the_teacher():
    import keras
    from edgesight.train.distill import DistillationLoss

    student = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]], np.float32)
    labels = np.array([[0.0], [2.0]], np.float32)
    cross_entropy = -np.log([0.7, 0.8]).mean()

    def loss(teacher_probabilities, **options):
        targets = np.concatenate([labels, np.log(teacher_probabilities)], axis=1)
        return float(keras.ops.convert_to_numpy(DistillationLoss(**options)(targets, student)))

    assert loss(student, weight=0.0) == pytest.approx(cross_entropy, rel=1e-5)
    assert loss(student, weight=1.0) == pytest.approx(0.0, abs=1e-5)  # nothing to learn from an identical teacher
    teacher = np.array([[0.4, 0.5, 0.1], [0.1, 0.3, 0.6]], np.float32)
    # The gap to the teacher is measured on outputs softened at T and scaled by T^2 (Hinton et al.).
    softened = lambda p, t: np.exp(np.log(p) / t) / np.exp(np.log(p) / t).sum(1, keepdims=True)  # noqa: E731
    kl = (softened(teacher, 4) * np.log(softened(teacher, 4) / softened(student, 4))).sum(1).mean() * 16
    assert loss(teacher, weight=0.7, temperature=4.0) == pytest.approx(0.3 * cross_entropy + 0.7 * kl, rel=1e-4)


def test_a_distilled_run_resumes_exactly_and_names_its_teacher(tiny_gtsrb, tmp_path, monkeypatch):
    import keras
    from edgesight.export.card import training_commands
    from edgesight.train.trainer import train
    from fakes import interrupt_after_first_epoch

    train(_config(tiny_gtsrb, tmp_path / "teacher", epochs=1, model="cnn-base", resize=None))
    student = tmp_path / "student"
    undo = interrupt_after_first_epoch(monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        train(_config(tiny_gtsrb, student, teacher=[str(tmp_path / "teacher")]))
    undo()
    report = train(_config(tiny_gtsrb, student, resume=True))
    train(_config(tiny_gtsrb, tmp_path / "uninterrupted", teacher=[str(tmp_path / "teacher")]))
    resumed, uninterrupted = (keras.models.load_model(folder / "model.keras") for folder in (student, tmp_path / "uninterrupted"))
    assert all(np.array_equal(a, b) for a, b in zip(resumed.get_weights(), uninterrupted.get_weights()))
    assert report["teacher"] == [str(tmp_path / "teacher")] and 0.0 <= report["test_accuracy"] <= 1.0
    assert len(json.loads((student / "history.json").read_text())["val_accuracy"]) == 2
    assert resumed.loss == "sparse_categorical_crossentropy"  # the finished file needs no edgesight code to load

    # The distilled student differs from one trained on the labels alone.
    plain = train(_config(tiny_gtsrb, tmp_path / "plain"))
    assert plain["teacher"] == []
    plain_weights = keras.models.load_model(tmp_path / "plain" / "model.keras").get_weights()
    assert not all(np.array_equal(a, b) for a, b in zip(plain_weights, resumed.get_weights()))

    from edgesight.runtime.tasks import TASKS
    from edgesight.train.distill import load_teacher

    spec = TASKS["gtsrb"].preprocess
    images = np.random.default_rng(0).integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
    alone = load_teacher([str(tmp_path / "teacher")], run_labels(student), spec, images).predict(images, verbose=0)
    pair = load_teacher([str(tmp_path / "teacher"), str(tmp_path / "plain")], run_labels(student), spec, images)
    plain_alone = keras.models.load_model(tmp_path / "plain" / "model.keras").predict(images, verbose=0)
    np.testing.assert_allclose(pair.predict(images, verbose=0), (alone + plain_alone) / 2, atol=1e-6)  # several: averaged
    twice = load_teacher([str(tmp_path / "teacher")] * 2, run_labels(student), spec, images)  # one architecture twice
    np.testing.assert_allclose(twice.predict(images, verbose=0), alone, atol=1e-6)

    commands = training_commands(json.loads((student / "config.json").read_text()))
    assert len(commands) == 2 and "--model cnn-base" in commands[0]
    assert f"--teacher {tmp_path / 'teacher'} --distill-temperature 4.0 --distill-weight 0.7" in commands[1]


def test_a_teacher_that_cannot_teach_is_refused(tiny_gtsrb, tmp_path):
    from edgesight.train.distill import DistillError
    from edgesight.train.trainer import TrainError, train

    with pytest.raises(DistillError, match="needs a finished run folder"):
        train(_config(tiny_gtsrb, tmp_path / "a", teacher=[str(tmp_path / "nowhere")]))
    # A teacher that learnt signs framed otherwise would grade a zoomed view it never saw.
    with pytest.raises(DistillError, match="cropped with box margin 0.1, the student with 0.0"):
        train(_config(tiny_gtsrb, tmp_path / "b0", teacher=["gtsrb-fp32"], box_margin=0.0))
    with pytest.raises(TrainError, match="distill_weight in \\[0, 1\\]. Received: distill_temperature=4.0, distill_weight=1.5"):
        train(_config(tiny_gtsrb, tmp_path / "c", teacher=["gtsrb-fp32"], distill_weight=1.5))


def test_a_teacher_of_another_input_size_reads_the_batch_rescaled_to_its_own(tiny_gtsrb, tmp_path):
    import keras
    import onnxruntime as ort
    import tensorflow as tf
    from edgesight.runtime.preprocess import PreprocessSpec
    from edgesight.runtime.shipped import resolve_model
    from edgesight.train.distill import load_teacher
    from edgesight.train.trainer import train

    teacher_run = tmp_path / "teacher48"
    train(_config(tiny_gtsrb, teacher_run, epochs=1, input_size=48))
    images = np.random.default_rng(0).integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
    teacher = load_teacher([str(teacher_run)], run_labels(teacher_run), PreprocessSpec(32, 32, box_margin=0.1), images)
    assert teacher.input_shape == (None, 32, 32, 3)
    scaled_up = tf.image.resize(images.astype(np.float32), (48, 48)).numpy()
    own_size = keras.models.load_model(teacher_run / "model.keras").predict(scaled_up, verbose=0)
    np.testing.assert_allclose(teacher.predict(images, verbose=0), own_size, atol=1e-6)

    # A model file rebuilt in Keras at its own size (32x32) teaches a 24x24 student alike.
    student = train(_config(tiny_gtsrb, tmp_path / "student24", epochs=1, input_size=24, teacher=["gtsrb-fp32"]))
    assert student["teacher"] == ["gtsrb-fp32"]
    small = np.random.default_rng(1).integers(0, 256, (4, 24, 24, 3), dtype=np.uint8)
    teacher = load_teacher(["gtsrb-fp32"], run_labels(tmp_path / "student24"), PreprocessSpec(24, 24, box_margin=0.1), small)
    session = ort.InferenceSession(str(resolve_model("gtsrb-fp32")), providers=["CPUExecutionProvider"])
    scaled_up = np.round(tf.image.resize(small.astype(np.float32), (32, 32)).numpy()).astype(np.uint8)
    reference = session.run(None, {session.get_inputs()[0].name: scaled_up})[0]
    # The file reads the scaled-up batch rounded to uint8, the wrapped teacher unrounded: close, not equal.
    np.testing.assert_allclose(teacher.predict(small, verbose=0), reference, atol=0.05)
    assert (teacher.predict(small, verbose=0).argmax(1) == reference.argmax(1)).all()


def test_a_second_cycle_with_the_same_teacher_lists_the_teacher_once(tmp_path):
    from edgesight.export.card import training_commands

    def run(name, **options):
        config = {"train": dataclasses.asdict(TrainConfig(data="gtsrb", run_dir=str(tmp_path / name), **options))}
        (tmp_path / name).mkdir()
        (tmp_path / name / "config.json").write_text(json.dumps(config))
        return config

    run("teacher", model="cnn-base")
    run("first", model="cnn-tiny", teacher=[str(tmp_path / "teacher")])
    second = run("second", model="cnn-tiny", teacher=[str(tmp_path / "teacher")], init_from=str(tmp_path / "first"))
    commands = training_commands(second)
    assert [command.split("--run-dir ")[1].split()[0] for command in commands] == [
        str(tmp_path / name) for name in ("teacher", "first", "second")]


def test_a_teacher_of_the_signs_alone_teaches_a_student_that_also_learns_not_a_sign(tiny_gtsrb, tmp_path):
    import keras
    import tensorflow as tf
    from edgesight.runtime.tasks import TASKS
    from edgesight.train.distill import DistillError, load_teacher, with_teacher_targets
    from edgesight.train.trainer import train
    from fakes import write_road_scenes

    # Its soft targets: the teacher's output on signs, with no share for "not a sign"; the label on background.
    image = keras.Input((2, 2, 3), dtype="uint8")
    constant = keras.layers.Dense(3, activation="softmax", kernel_initializer="zeros",
                                  bias_initializer=keras.initializers.Constant(np.log([0.2, 0.3, 0.5])))
    teacher = keras.Model(image, constant(keras.layers.Flatten()(keras.ops.cast(image, "float32"))))
    batch = tf.data.Dataset.from_tensors((np.zeros((2, 2, 2, 3), np.uint8), np.array([1, 3])))
    targets = next(iter(with_teacher_targets(batch, teacher, classes=4)))[1].numpy()
    np.testing.assert_array_equal(targets[:, 0], [1, 3])
    np.testing.assert_allclose(np.exp(targets[:, 1:]), [[0.2, 0.3, 0.5, 0.0], [0.0, 0.0, 0.0, 1.0]], atol=1e-6)

    # A whole run: a sign-only teacher, a student with road-scene background.
    train(_config(tiny_gtsrb, tmp_path / "teacher", epochs=1))
    scenes = write_road_scenes(tmp_path / "scenes.zip")
    report = train(_config(tiny_gtsrb, tmp_path / "student", epochs=1, background=str(scenes),
                           teacher=[str(tmp_path / "teacher")]))
    assert run_labels(tmp_path / "student")[-1] == "not a sign" and report["teacher"] == [str(tmp_path / "teacher")]
    from edgesight.export.card import _teacher_note

    card_note = _teacher_note(json.loads((tmp_path / "student" / "config.json").read_text())["train"])[0]
    assert "the label stands in for the teacher's output" in card_note
    # Averaged teachers must agree on their classes.
    with pytest.raises(DistillError, match="know different classes"):
        load_teacher([str(tmp_path / "teacher"), str(tmp_path / "student")], run_labels(tmp_path / "student"),
                     TASKS["gtsrb"].preprocess, None)

    # A model file teaches as its run would: the shipped GTSRB model, which knows the signs alone.
    from edgesight.export.card import training_commands

    train(_config(tiny_gtsrb, tmp_path / "from file", epochs=1, background=str(scenes), teacher=["gtsrb-fp32"]))
    options = json.loads((tmp_path / "from file" / "config.json").read_text())["train"]
    card_note = _teacher_note(options)[0]
    assert "`gtsrb-fp32` (cnn-base, test accuracy 99.58%" in card_note and "the label stands in" in card_note
    assert "--model cnn-base" in training_commands({"train": options})[0]  # the command that made the file comes first


def test_mixup_blends_each_image_with_another_of_its_batch():
    import tensorflow as tf
    from edgesight.train.augment import build_augmenter

    # Flat colours stay flat under shifts and mirror images, so each output is w*own + (1-w)*other colour.
    colours = np.array([[250, 10, 10], [10, 250, 10], [10, 10, 250], [130, 130, 10]], np.float32)
    images = np.broadcast_to(colours[:, None, None, :], (4, 8, 8, 3)).copy()
    augmenter = build_augmenter("objects-light", seed=1, mixup=0.4)
    for index, layer in enumerate(augmenter.layers):
        layer.generator.state.assign(tf.cast([index, 5], layer.generator.state.dtype))
    blended = augmenter(images, training=True).numpy()
    assert np.ptp(blended, axis=(1, 2)).max() < 1e-3
    blended = blended[:, 0, 0, :]

    def blend_of(own, result):
        for other in colours:
            share = np.dot(result - other, own - other) / max(np.dot(own - other, own - other), 1e-9)
            if -1e-4 <= share <= 1 + 1e-4 and np.allclose(share * own + (1 - share) * other, result, atol=1e-2):
                return True
        return False

    assert all(blend_of(own, result) for own, result in zip(colours, blended))
    assert np.abs(blended - colours).max() > 1.0  # some image was blended
    assert type(build_augmenter("objects-light", seed=1).layers[-1]).__name__ != "MixUp"  # off by default


def test_mixup_trains_a_student_on_the_teacher_alone_and_the_card_says_so(tiny_gtsrb, tmp_path):
    import keras
    from edgesight.export.card import _teacher_note, training_commands
    from edgesight.train.trainer import TrainError, train

    train(_config(tiny_gtsrb, tmp_path / "teacher", epochs=1))
    teacher = [str(tmp_path / "teacher")]
    for wrong, message in [(dict(mixup=0.4), "needs --teacher and --distill-weight 1"),
                           (dict(mixup=0.4, teacher=teacher), "Received: mixup=0.4, teacher=.*distill_weight=0.7"),
                           (dict(mixup=-1.0, teacher=teacher, distill_weight=1.0), "mixup must be >= 0")]:
        with pytest.raises(TrainError, match=message):
            train(_config(tiny_gtsrb, tmp_path / "refused", **wrong))
    report = train(_config(tiny_gtsrb, tmp_path / "mixed", teacher=teacher, distill_weight=1.0, mixup=0.4))
    train(_config(tiny_gtsrb, tmp_path / "unmixed", teacher=teacher, distill_weight=1.0))
    assert 0.0 <= report["test_accuracy"] <= 1.0
    mixed, unmixed = (keras.models.load_model(tmp_path / name / "model.keras").get_weights() for name in ("mixed", "unmixed"))
    assert not all(np.array_equal(a, b) for a, b in zip(mixed, unmixed))
    options = json.loads((tmp_path / "mixed" / "config.json").read_text())["train"]
    assert training_commands({"train": options})[-1].endswith("--distill-weight 1.0 --mixup 0.4")
    assert "blended in pairs (MixUp, shares from Beta(0.4, 0.4))" in _teacher_note(options)[0]


def test_the_card_names_a_teacher_that_started_from_a_model_file(tmp_path):
    from edgesight.export.card import _teacher_note

    # Such a teacher's report knows its own minutes, but not what the file it started from cost.
    (tmp_path / "teacher").mkdir()
    (tmp_path / "teacher" / "report.json").write_text(json.dumps({
        "model": "cnn-base", "test_accuracy": 0.9963, "train_seconds": 2007.0, "train_seconds_total": None,
        "init_from": "gtsrb-fp32"}))
    note = _teacher_note({"teacher": [str(tmp_path / "teacher")], "distill_weight": 0.7, "distill_temperature": 4.0})[0]
    assert ("(cnn-base, test accuracy 99.63%, trained in 33 min for this run, after the training of `gtsrb-fp32`, which "
            "its file does not record, not counted above)") in note
