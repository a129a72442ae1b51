"""The learned sign locator: its grid targets and decoding agree, training resumes, export and the runtime read the file."""
import json

import numpy as np
import pytest
from edgesight.runtime.errors import ModelFileError
from edgesight.runtime.learned_locate import LocatorGeometry, LocatorOutput, decode, read_locator_metadata
from edgesight.runtime.shipped import resolve_model
from fakes import interrupt_after_first_epoch, write_gtsrb_archives, write_road_scenes

GEOMETRY = LocatorGeometry(downscale=2, stride=4)


def _logit(probability):
    return np.log(probability / (1 - probability))


def test_decoding_the_training_targets_gives_back_the_signs_boxes():
    pytest.importorskip("tensorflow", reason="the targets live in the [train] extra")
    from edgesight.train.locator_data import grid_targets

    frame_boxes = [(40, 24, 87, 71), (200, 100, 225, 127)]  # inclusive frame pixels: 48 and 26 px signs
    crop_boxes = [(x1 / 2, y1 / 2, (x2 + 1) / 2, (y2 + 1) / 2) for x1, y1, x2, y2 in frame_boxes]
    targets = grid_targets([crop_boxes], 128, GEOMETRY)[0]
    assert targets[..., 5].sum() == 2 and targets[..., 0].max() == 1.0
    grid = np.concatenate([_logit(np.clip(targets[..., :1] * 0.98, 1e-3, None)), targets[..., 1:5]], axis=-1)
    output = LocatorOutput.of_grid(grid)
    decoded = decode(output, GEOMETRY, (256, 256, 3), min_score=0.5, max_boxes=10)
    assert sorted(box for box, _ in decoded) == sorted(frame_boxes)
    assert decode(output, GEOMETRY, (256, 256, 3), min_score=0.99, max_boxes=10) == []
    assert len(decode(output, GEOMETRY, (256, 256, 3), min_score=0.5, max_boxes=1)) == 1


def test_locator_metadata_is_checked_and_named():
    good = {"edgesight.locator": json.dumps(GEOMETRY.to_json())}
    assert read_locator_metadata(good, "loc.onnx") == GEOMETRY
    with pytest.raises(ModelFileError, match="loc.onnx: not an edgesight sign locator"):
        read_locator_metadata({}, "loc.onnx")
    with pytest.raises(ModelFileError, match="loc.onnx: metadata field edgesight.locator must be JSON"):
        read_locator_metadata({"edgesight.locator": "{downscale: 2"}, "loc.onnx")
    with pytest.raises(ModelFileError, match="must declare outputs"):
        read_locator_metadata({"edgesight.locator": json.dumps({"downscale": 2, "stride": 4, "outputs": ["x"]})}, "loc.onnx")
    hourglass = LocatorGeometry(downscale=2, stride=4, input_multiple=8)
    assert read_locator_metadata({"edgesight.locator": json.dumps(hourglass.to_json())}, "loc.onnx") == hourglass
    assert "input_multiple" not in GEOMETRY.to_json()  # files of the plain network keep the metadata they had
    with pytest.raises(ModelFileError, match="an input_multiple \\(if any\\) that is a multiple of the stride"):
        read_locator_metadata({"edgesight.locator": json.dumps(hourglass.to_json() | {"input_multiple": 6})}, "loc.onnx")


def test_a_missing_or_unreadable_locator_file_is_named(tmp_path):
    from edgesight.runtime.learned_locate import LearnedLocator, open_locator

    with pytest.raises(ModelFileError, match=r"absent\.onnx: no such locator file"):
        LearnedLocator(tmp_path / "absent.onnx")
    with pytest.raises(ModelFileError, match=r"diamond: no such locator file; expected colour, diamonds, the shipped sign-locator"):
        open_locator(["colour", "diamond"])  # a misspelt name is answered with the names there are
    (tmp_path / "broken.onnx").write_bytes(b"not a model")
    with pytest.raises(ModelFileError, match=r"broken\.onnx: not a loadable ONNX model for onnxruntime"):
        LearnedLocator(tmp_path / "broken.onnx")


def test_pasted_crops_hold_every_sign_they_were_given(tmp_path):
    pytest.importorskip("tensorflow", reason="the crops live in the [train] extra")
    from edgesight.runtime.datasets import load_gtsrb
    from edgesight.runtime.scenes import read_scenes
    from edgesight.train.locator_data import build_crops

    scenes = list(read_scenes(write_road_scenes(tmp_path / "scenes.zip")))
    signs = load_gtsrb(write_gtsrb_archives(tmp_path / "gtsrb"), "train")
    crops = build_crops(scenes, signs, 20, 0.5, 64, GEOMETRY, seed=0)
    assert crops.images.shape == (20, 64, 64, 3) and crops.images.dtype == np.uint8
    assert sum(map(len, crops.boxes[:10])) >= 10  # each pasted crop got at least one sign
    for boxes in crops.boxes:
        for x1, y1, x2, y2 in boxes:
            assert 0 <= (x1 + x2) / 2 < 64 and 0 <= (y1 + y2) / 2 < 64 and x2 > x1 and y2 > y1
    again = build_crops(scenes, signs, 20, 0.5, 64, GEOMETRY, seed=0)
    assert np.array_equal(again.images, crops.images) and again.boxes == crops.boxes


def test_shaped_pastes_draw_the_same_crops_and_change_only_the_pasted_squares(tmp_path):
    pytest.importorskip("tensorflow", reason="the crops live in the [train] extra")
    from edgesight.runtime.datasets import load_gtsrb
    from edgesight.runtime.scenes import read_scenes
    from edgesight.train.locator_data import build_crops

    scenes = list(read_scenes(write_road_scenes(tmp_path / "scenes.zip")))
    signs = load_gtsrb(write_gtsrb_archives(tmp_path / "gtsrb"), "train")
    square = build_crops(scenes, signs, 20, 0.5, 64, GEOMETRY, seed=0)
    shaped = build_crops(scenes, signs, 20, 0.5, 64, GEOMETRY, seed=0, paste_shapes=True)
    assert shaped.boxes == square.boxes  # no random draw more: the same signs land in the same places
    outside = np.ones((20, 64, 64), bool)
    for index, boxes in enumerate(square.boxes[:10]):  # the pasted crops come first
        for x1, y1, x2, y2 in boxes:
            outside[index, int(y1):int(np.ceil(y2)), int(x1):int(np.ceil(x2))] = False
    assert np.array_equal(shaped.images[outside], square.images[outside])
    assert not np.array_equal(shaped.images[~outside], square.images[~outside])


@pytest.mark.parametrize(("class_id", "inside", "outside", "area"), [
    (12, [(0.5, 0.5), (0.5, 0.1), (0.9, 0.5)], [(0.05, 0.05), (0.95, 0.95), (0.2, 0.8)], 0.5),        # priority road: diamond
    (27, [(0.5, 0.2), (0.1, 0.95), (0.9, 0.95)], [(0.05, 0.05), (0.95, 0.05), (0.2, 0.3)], 0.5),      # pedestrians: triangle
    (13, [(0.5, 0.8), (0.1, 0.05), (0.9, 0.05)], [(0.05, 0.95), (0.95, 0.95), (0.2, 0.7)], 0.5),      # give way: upside down
    (14, [(0.5, 0.02), (0.02, 0.5), (0.8, 0.8)], [(0.03, 0.03), (0.97, 0.97), (0.03, 0.97)], 0.828),  # stop: octagon
    (1, [(0.5, 0.5), (0.5, 0.05), (0.05, 0.5)], [(0.1, 0.1), (0.9, 0.9), (0.1, 0.9)], np.pi / 4),     # speed limit: round
])
def test_each_sign_is_pasted_inside_its_own_outline(class_id, inside, outside, area):
    pytest.importorskip("tensorflow", reason="the crops live in the [train] extra")
    from edgesight.train.locator_data import outline_alpha

    side = 100
    alpha = outline_alpha(class_id, side)[..., 0]
    assert alpha.shape == (side, side) and 0 <= alpha.min() and alpha.max() <= 1
    assert all(alpha[int(y * side), int(x * side)] > 0.9 for x, y in inside)
    assert all(alpha[int(y * side), int(x * side)] < 0.1 for x, y in outside)
    assert alpha.mean() == pytest.approx(area, abs=0.03)


def test_boosted_classes_are_pasted_that_many_times_as_often():
    pytest.importorskip("tensorflow", reason="the crops live in the [train] extra")
    from edgesight.train.locator_data import paste_probabilities

    labels = np.array([12, 12, 3, 3, 3, 3, 7, 7])
    assert paste_probabilities(labels, [], 3.0) is None  # unboosted runs draw as before, so old runs rebuild their crops
    probabilities = paste_probabilities(labels, [12], 3.0)
    assert probabilities.sum() == pytest.approx(1.0)
    assert probabilities[0] == pytest.approx(3 * probabilities[2])  # per image: a 12 three times as likely as a 3
    assert probabilities[labels == 12].sum() == pytest.approx(6 / 12)


def test_a_paste_boost_for_an_unknown_class_is_refused_before_any_work(tmp_path):
    pytest.importorskip("tensorflow", reason="training lives in the [train] extra")
    from edgesight.train.config import LocatorTrainConfig
    from edgesight.train.locator import train_locator
    from edgesight.train.trainer import TrainError

    config = LocatorTrainConfig(data=str(tmp_path / "missing.zip"), run_dir=str(tmp_path / "run"), paste_boost_classes=[43])
    with pytest.raises(TrainError, match=r"paste_boost_classes GTSRB class ids \(0-42\).*paste_boost_classes=\[43\]"):
        train_locator(config)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(("paste_max_side", "crop_size", "expected"), [
    (5, 256, "paste_max_side=5"),
    (600, 256, r"at most the crop in frame pixels \(crop_size 256 x downscale 2 = 512\)"),
    # A crop the network cannot take is named first, not the default paste size it is too small for.
    (128, 30, "crop_size must be >= 32 and a multiple of 4"),
])
def test_a_paste_size_outside_the_crop_is_refused_before_any_work(tmp_path, paste_max_side, crop_size, expected):
    pytest.importorskip("tensorflow", reason="training lives in the [train] extra")
    from edgesight.train.config import LocatorTrainConfig
    from edgesight.train.locator import train_locator
    from edgesight.train.trainer import TrainError

    config = LocatorTrainConfig(data=str(tmp_path / "missing.zip"), run_dir=str(tmp_path / "run"), paste_max_side=paste_max_side,
                                crop_size=crop_size)
    with pytest.raises(TrainError, match=expected):
        train_locator(config)
    assert not (tmp_path / "run").exists()


def test_a_learning_rate_or_camera_chance_out_of_range_is_refused_before_any_work(tmp_path):
    pytest.importorskip("tensorflow", reason="training lives in the [train] extra")
    from edgesight.train.config import LocatorTrainConfig
    from edgesight.train.locator import train_locator
    from edgesight.train.trainer import TrainError

    config = LocatorTrainConfig(data=str(tmp_path / "missing.zip"), run_dir=str(tmp_path / "run"), learning_rate=0.0)
    with pytest.raises(TrainError, match="learning_rate and size_weight must be > 0. Received: learning_rate=0.0"):
        train_locator(config)
    assert not (tmp_path / "run").exists()
    config = LocatorTrainConfig(data=str(tmp_path / "missing.zip"), run_dir=str(tmp_path / "run"), camera_conditions=1.5)
    with pytest.raises(TrainError, match=r"camera_conditions must be in \[0, 1\]. Received: camera_conditions=1.5"):
        train_locator(config)
    assert not (tmp_path / "run").exists()


def test_paste_max_side_sets_the_largest_pasted_sign(tmp_path):
    pytest.importorskip("tensorflow", reason="the crops live in the [train] extra")
    from edgesight.runtime.datasets import load_gtsrb
    from edgesight.runtime.scenes import read_scenes
    from edgesight.train.locator_data import build_crops

    scenes = list(read_scenes(write_road_scenes(tmp_path / "scenes.zip")))
    signs = load_gtsrb(write_gtsrb_archives(tmp_path / "gtsrb"), "train")

    def sides(max_pasted_side: int) -> list[float]:  # in downscaled pixels; the scenes' own signs are at most 30 there
        crops = build_crops(scenes, signs, 60, 1.0, 128, GEOMETRY, seed=0, max_pasted_side=max_pasted_side)
        return [x2 - x1 for boxes in crops.boxes for x1, y1, x2, y2 in boxes]

    default, wide = sides(128), sides(240)
    assert max(default) <= 64 < max(wide) <= 120


def test_the_locator_network_gives_one_cell_per_stride():
    pytest.importorskip("tensorflow", reason="the network lives in the [train] extra")
    from edgesight.train.locator import build_locator
    from edgesight.train.trainer import TrainError

    frame = np.zeros((1, 64, 96, 3), np.uint8)
    for stride in (4, 8):
        assert build_locator(8, stride)(frame).shape == (1, 64 // stride, 96 // stride, 5)
    with pytest.raises(TrainError, match="stride must be 4 or 8. Received: stride=16"):
        build_locator(8, 16)
    # The hourglass steps down to stride 8 for its context and back up to its stride-4 grid.
    assert build_locator(8, 4, context_stride=8)(frame).shape == (1, 16, 24, 5)
    with pytest.raises(TrainError, match="context_stride must be the stride or, with stride 4, 8"):
        build_locator(8, 8, context_stride=16)
    # Its stride-4 layer and heads are half the width unless told otherwise.
    assert build_locator(16, 4, context_stride=8).get_layer("centre_head_pw").filters == 8
    pointwise = build_locator(8, 4, pointwise_heads=True)
    assert pointwise(frame).shape == (1, 16, 24, 5)
    assert not any(layer.name.endswith("head_dw") for layer in pointwise.layers)
    assert any(layer.name == "centre_head_dw" for layer in build_locator(8, 4).layers)
    wide = build_locator(16, 4, context_stride=8, fine_width=12)
    assert [wide.get_layer(name).filters for name in ("down_pw", "narrow", "centre_head_pw", "box_head_pw")] == [12] * 4
    assert wide(frame).shape == (1, 16, 24, 5)
    with pytest.raises(TrainError, match="fine_width is the stride-4 width of an hourglass"):
        build_locator(16, 4, fine_width=12)


def test_an_hourglass_locator_declares_its_input_multiple_and_the_runtime_cuts_frames_to_it(tmp_path):
    pytest.importorskip("tensorflow", reason="training needs the [train] extra")
    pytest.importorskip("tf2onnx", reason="export needs the [export] extra")
    from edgesight.export.config import ExportConfig
    from edgesight.export.pipeline import export_run
    from edgesight.runtime.learned_locate import LearnedLocator, network_input
    from edgesight.runtime.scenes import read_scenes
    from edgesight.train.locator import train_locator
    from edgesight.train.trainer import TrainError

    scenes, signs = write_road_scenes(tmp_path / "scenes.zip"), write_gtsrb_archives(tmp_path / "gtsrb")
    with pytest.raises(TrainError, match="crop_size must be >= 32 and a multiple of 8"):
        train_locator(_locator_config(scenes, signs, tmp_path / "bad", context_stride=8, crop_size=68))
    run_dir = tmp_path / "hourglass"
    train_locator(_locator_config(scenes, signs, run_dir, context_stride=8, epochs=1))
    exported = export_run(ExportConfig(run_dir=str(run_dir)))  # checks Keras parity at two sizes, multiples of 8
    assert exported["max_grid_difference_keras_onnx"] < 1e-3
    import onnx

    assert "Resize" in {node.op_type for node in onnx.load(run_dir / "locator.onnx").graph.node}  # its upsampling, as one node
    locator = LearnedLocator(run_dir / "locator.onnx", min_score=0.01)
    assert locator.geometry.input_multiple == 8
    frame = next(read_scenes(scenes)).image_bgr  # 320x200: 160x100 shrunk, cut to 160x96
    assert network_input(frame, locator.geometry).shape == (1, 96, 160, 3)
    for box in locator.propose(frame):
        assert 0 <= box[0] < box[2] < 320 and 0 <= box[1] < box[3] < 200
    assert "--context-stride 8" in (run_dir / "MODEL_CARD.md").read_text()


def test_a_locator_trained_at_downscale_3_declares_it_and_its_boxes_land_in_frame_pixels(tmp_path):
    pytest.importorskip("tensorflow", reason="training needs the [train] extra")
    pytest.importorskip("tf2onnx", reason="export needs the [export] extra")
    from edgesight.export.config import ExportConfig
    from edgesight.export.pipeline import export_run
    from edgesight.runtime.learned_locate import LearnedLocator, network_input
    from edgesight.runtime.scenes import read_scenes
    from edgesight.train.locator import build_locator, train_locator
    from edgesight.train.models import count_macs
    from edgesight.train.trainer import TrainError

    scenes, signs = write_road_scenes(tmp_path / "scenes.zip"), write_gtsrb_archives(tmp_path / "gtsrb")
    with pytest.raises(TrainError, match="downscale must be 1, 2, 3 or 4. Received: downscale=5"):
        train_locator(_locator_config(scenes, signs, tmp_path / "bad", downscale=5))
    # The largest pasted sign must fit the crop in frame pixels, which the downscale sets: 64 x 3.
    with pytest.raises(TrainError, match=r"at most the crop in frame pixels \(crop_size 64 x downscale 3 = 192\)"):
        train_locator(_locator_config(scenes, signs, tmp_path / "bad", downscale=3, paste_max_side=200))
    run_dir = tmp_path / "third"
    report = train_locator(_locator_config(scenes, signs, run_dir, downscale=3, epochs=1))
    third_macs = report["macs_per_frame"]
    half_macs = count_macs(build_locator(8, 4, 100, 160))  # the same network on the half frame, sized as the report sizes it
    assert 0.3 < third_macs / half_macs < 0.6  # a third of the frame's sides: under half the cells
    export_run(ExportConfig(run_dir=str(run_dir)))
    locator = LearnedLocator(run_dir / "locator.onnx", min_score=0.01)
    assert locator.geometry.downscale == 3
    frame = next(read_scenes(scenes)).image_bgr  # 320x200: 106x66 at a third, cut to 104x64
    assert network_input(frame, locator.geometry).shape == (1, 64, 104, 3)
    boxes = locator.propose(frame)
    assert boxes and all(0 <= box[0] < box[2] < 320 and 0 <= box[1] < box[3] < 200 for box in boxes)
    card = (run_dir / "MODEL_CARD.md").read_text()
    assert "--downscale 3" in card and "the frame shrunk by 3; per 12×12 frame pixels" in card


def test_the_distillation_loss_follows_the_teacher_by_its_share_and_its_boxes_only_where_it_sees_a_centre():
    pytest.importorskip("tensorflow", reason="the loss lives in the [train] extra")
    from edgesight.train.locator import LocatorLoss
    from edgesight.train.locator_data import grid_targets

    truth = grid_targets([[(8.0, 8.0, 24.0, 24.0)]], 64, GEOMETRY)  # one sign; a 16x16 grid of cells
    teacher = np.zeros((1, 16, 16, 5), np.float32)
    teacher[..., 0] = 0.02  # a trained locator's background
    teacher[0, 4, 4] = [0.9, 0.5, 0.5, np.log(16), np.log(16)]  # it sees the sign's centre
    teacher[0, 10, 12, 0] = 0.3  # and something else, without a box worth learning
    targets = np.concatenate([truth, teacher], axis=-1)
    as_teacher = np.concatenate([_logit(teacher[..., :1]), teacher[..., 1:]], axis=-1)
    followers, learners = LocatorLoss(2.0, distill_weight=1.0), LocatorLoss(2.0)
    assert float(followers(targets, as_teacher)) < 1e-4  # saying what the teacher says costs nothing
    assert float(learners(targets, as_teacher)) > 0.1  # though it is not the truth
    other_truth = np.concatenate([grid_targets([[(40.0, 40.0, 56.0, 56.0)]], 64, GEOMETRY), teacher], axis=-1)
    assert float(followers(other_truth, as_teacher)) < 1e-4  # at share 1 the true boxes do not count
    half = float(LocatorLoss(2.0, distill_weight=0.5)(targets, as_teacher + 0.5))
    assert half == pytest.approx(0.5 * float(followers(targets, as_teacher + 0.5)) + 0.5 * float(learners(targets, as_teacher + 0.5)))
    off_centre, on_centre = as_teacher.copy(), as_teacher.copy()
    off_centre[0, 0, 0, 1:] += 3.0  # a background cell's box: as arbitrary in the teacher as in the student
    on_centre[0, 4, 4, 1:] += 3.0
    assert float(followers(targets, off_centre)) < 1e-4 < float(followers(targets, on_centre))


def test_a_teacher_whose_grid_is_not_the_students_is_refused_before_any_work(tmp_path):
    pytest.importorskip("tensorflow", reason="training needs the [train] extra")
    import onnx
    from edgesight.runtime.shipped import resolve_model
    from edgesight.train.locator import train_locator
    from edgesight.train.trainer import TrainError

    third = onnx.load(resolve_model("sign-locator"))
    for prop in third.metadata_props:
        if prop.key == "edgesight.locator":
            prop.value = json.dumps(json.loads(prop.value) | {"downscale": 3})
    onnx.save(third, tmp_path / "third.onnx")
    missing = tmp_path / "missing.zip"  # refused before the scenes are read, or this would be the error
    with pytest.raises(TrainError, match=r"third\.onnx: a teacher's grid must be the student's cell for cell: downscale 2"):
        train_locator(_locator_config(missing, missing, tmp_path / "run", teacher=str(tmp_path / "third.onnx")))
    with pytest.raises(ModelFileError, match=r"absent\.onnx: --teacher needs a locator file"):
        train_locator(_locator_config(missing, missing, tmp_path / "run", teacher=str(tmp_path / "absent.onnx")))
    with pytest.raises(TrainError, match="distill_weight must be in \\(0, 1\\]. Received: distill_weight=0"):
        train_locator(_locator_config(missing, missing, tmp_path / "run", teacher="sign-locator", distill_weight=0.0))
    with pytest.raises(TrainError, match=r"locator\.int8\.onnx: a teacher must give its box channels at every cell.*--dense"):
        train_locator(_locator_config(missing, missing, tmp_path / "run", teacher="sign-locator"))


def test_a_locator_learns_from_a_teacher_and_its_run_says_which(tmp_path):
    pytest.importorskip("tensorflow", reason="training needs the [train] extra")
    from edgesight.train.locator import train_locator

    pytest.importorskip("onnx", reason="a dense teacher is written by the [export] extra")
    from edgesight.export.peak_boxes import main as peak_boxes

    scenes, signs = write_road_scenes(tmp_path / "scenes.zip"), write_gtsrb_archives(tmp_path / "gtsrb")
    teacher = tmp_path / "teacher.onnx"
    assert peak_boxes(["--dense", str(resolve_model("sign-locator-fp32")), str(teacher)]) == 0
    run_dir = tmp_path / "student"
    report = train_locator(_locator_config(scenes, signs, run_dir, teacher=str(teacher), epochs=1))
    assert np.isfinite(report["final_validation_loss"])  # the validation crops carry the teacher's grid too
    options = json.loads((run_dir / "config.json").read_text())["train"]
    assert options["teacher"] == str(teacher) and options["distill_weight"] == 0.5


def test_jittered_scenes_keep_each_box_on_its_sign():
    pytest.importorskip("tensorflow", reason="the crops live in the [train] extra")
    from edgesight.train.locator_data import _jittered

    scene = np.zeros((100, 160, 3), np.uint8)
    scene[20:40, 30:60] = 255  # a sign at x 30-59, y 20-39: (x1, y1, x2, y2) with x2, y2 exclusive
    rng = np.random.default_rng(3)
    for _ in range(20):
        image, (box,) = _jittered(scene, [(30.0, 20.0, 60.0, 40.0)], 0.5, rng)
        rows, columns = np.nonzero(image[..., 0] > 127)
        assert abs(box[0] - columns.min()) <= 1 and abs(box[2] - (columns.max() + 1)) <= 1
        assert abs(box[1] - rows.min()) <= 1 and abs(box[3] - (rows.max() + 1)) <= 1
        assert 100 / 1.5 - 1 <= image.shape[0] <= 100 * 1.5 + 1


def test_scenes_too_few_to_hold_one_out_for_validation_are_said_to_train_without_it(capsys):
    pytest.importorskip("tensorflow", reason="the split lives in the [train] extra")
    from edgesight.train.locator import split_scenes

    training, validation = split_scenes(["a", "b"], 0.2, seed=0)
    assert (sorted(training), validation) == (["a", "b"], [])
    assert "--val-fraction 0.2 of 2 scene(s) holds out none; training without validation" in capsys.readouterr().err
    split_scenes(["a", "b"], 0.0, seed=0)  # asked for none: nothing to say
    split_scenes(["a", "b", "c"], 0.34, seed=0)
    assert capsys.readouterr().err == ""


def _locator_config(data, signs, run_dir, **changes):
    from edgesight.train.config import LocatorTrainConfig

    options = dict(data=str(data), signs=str(signs), run_dir=str(run_dir), crops=32, crop_size=64, width=8, epochs=2,
                   batch_size=16, val_fraction=0.34, seed=1)
    return LocatorTrainConfig(**(options | changes))


def test_locator_training_resumes_then_exports_a_file_the_runtime_and_eval_frames_use(tmp_path, monkeypatch, capsys):
    pytest.importorskip("tensorflow", reason="training needs the [train] extra")
    pytest.importorskip("tf2onnx", reason="export needs the [export] extra")
    import keras
    from edgesight.cli.main import main
    from edgesight.export.config import ExportConfig
    from edgesight.export.pipeline import ExportError, export_run
    from edgesight.runtime.learned_locate import LearnedLocator, open_locator
    from edgesight.runtime.scenes import read_scenes
    from edgesight.train.locator import train_locator

    scenes, signs = write_road_scenes(tmp_path / "scenes.zip"), write_gtsrb_archives(tmp_path / "gtsrb")
    run_dir = tmp_path / "locator"
    undo = interrupt_after_first_epoch(monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        train_locator(_locator_config(scenes, signs, run_dir, paste_boost_classes=[1], paste_shapes=True, camera_conditions=0.5))
    assert json.loads((run_dir / "state.json").read_text())["epochs_done"] == 1
    undo()
    report = train_locator(_locator_config(scenes, signs, run_dir, resume=True))
    train_locator(_locator_config(scenes, signs, tmp_path / "uninterrupted", paste_boost_classes=[1], paste_shapes=True,
                                  camera_conditions=0.5))
    resumed, uninterrupted = (keras.models.load_model(folder / "model.keras").get_weights() for folder in (run_dir, tmp_path / "uninterrupted"))
    assert all(np.array_equal(a, b) for a, b in zip(resumed, uninterrupted))
    assert report["validation_scenes"] == 1 and [row["min_score"] for row in report["validation_proposal_recall"]][:2] == [0.05, 0.1]
    assert report["macs_per_frame"] > 0 and report["frame_size"] == [320, 200]

    exported = export_run(ExportConfig(run_dir=str(run_dir)))
    assert exported["max_grid_difference_keras_onnx"] < 1e-3 and (run_dir / "locator.onnx").is_file()
    assert exported["input_scaling_folded"]  # the parity above holds for the rewritten graph
    # Its int8 twin: calibrated on a training scene, compared on the validation scene.
    assert exported["int8"]["calibration_scenes"] == 1 and exported["int8"]["measured_scenes"] == 1
    assert LearnedLocator(run_dir / "locator.int8.onnx").min_score == LearnedLocator(run_dir / "locator.onnx").min_score
    assert "## int8 twin" in (run_dir / "MODEL_CARD.md").read_text() and "## ORT format" in (run_dir / "MODEL_CARD.md").read_text()
    assert set(exported["ort_format"]["files"]) == {"locator.ort", "locator.int8.ort"} and (run_dir / "locator.int8.ort").is_file()
    locator = LearnedLocator(run_dir / "locator.onnx", min_score=0.01)
    scene = next(read_scenes(scenes))
    for box in locator.propose(scene.image_bgr):
        assert 0 <= box[0] < box[2] < 320 and 0 <= box[1] < box[3] < 200

    tiny_sign_model = tmp_path / "tiny.onnx"
    from fakes import write_tiny_model

    write_tiny_model(tiny_sign_model)
    out = tmp_path / "frames"
    assert main(["eval-frames", str(tiny_sign_model), "--data", str(scenes), "--out", str(out),
                 "--locator", "colour", str(run_dir / "locator.onnx")]) == 0
    assert json.loads((out / "eval_frames.json").read_text())["config"]["locator"] == ["colour", str(run_dir / "locator.onnx")]

    # An operating point chosen at export replaces training's, and the card says how to make the file again.
    export_run(ExportConfig(run_dir=str(run_dir), locator_min_score=0.35))
    assert LearnedLocator(run_dir / "locator.onnx").min_score == 0.35
    assert open_locator(["colour", str(run_dir / "locator.onnx")], min_score=0.5).locators[1].min_score == 0.5  # a comparison's own
    card = (run_dir / "MODEL_CARD.md").read_text()
    assert "edgesight export RUN_DIR --locator-min-score 0.35" in card
    assert "--paste-boost-classes 1 --paste-boost 3.0 --paste-shapes --paste-max-side 128 --scene-jitter 0.0" in card  # a switch is given bare
    with pytest.raises(ExportError, match=r"--locator-min-score must be in \(0, 1\).*Received: 1.5"):
        export_run(ExportConfig(run_dir=str(run_dir), locator_min_score=1.5))
    capsys.readouterr()
    assert main(["eval-frames", str(run_dir / "locator.onnx"), "--data", str(scenes), "--out", str(out)]) == 2
    assert "a sign locator file, not a classifier; it goes to --locator" in capsys.readouterr().err
