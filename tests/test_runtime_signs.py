"""Road scenes: reading the GTSDB layout, locating signs, matching detections to truth, the eval-frames report."""
import json

import cv2
import numpy as np
import pytest
from edgesight.runtime.classifier import Prediction
from edgesight.runtime.errors import DatasetError
from edgesight.runtime.frame_eval import EvalFramesConfig, evaluate_frames, match
from edgesight.runtime.learned_locate import open_locator
from edgesight.runtime.locate import ColourLocator, DiamondLocator, ShrunkFrame, blobs_of, iou
from edgesight.runtime.scenes import TrueSign, read_scenes, scene_names
from edgesight.runtime.signs import FoundSign
from fakes import road_scene, write_road_scenes


@pytest.fixture
def scenes_zip(tmp_path):
    return write_road_scenes(tmp_path / "scenes.zip")


def test_scenes_are_read_with_their_signs_including_scenes_without_any(scenes_zip):
    scenes = list(read_scenes(scenes_zip))
    assert [scene.name for scene in scenes] == ["00000.jpg", "00001.jpg", "00002.jpg"]
    assert scenes[0].signs == (TrueSign((60, 40, 100, 80), 2),) and scenes[1].signs == ()
    assert scenes[2].image_bgr.shape == (200, 320, 3) and [sign.size for sign in scenes[2].signs] == [61, 29]
    assert scene_names(scenes_zip) == [scene.name for scene in scenes]  # without decoding
    assert [scene.name for scene in read_scenes(scenes_zip, only={"00002.jpg", "00000.jpg"})] == ["00000.jpg", "00002.jpg"]


def test_bad_ground_truth_is_named_with_what_was_expected(tmp_path):
    (tmp_path / "gt.txt").write_text("00000.jpg;1;2;3;x;5\n")
    cv2.imwrite(str(tmp_path / "00000.jpg"), road_scene(0, []))
    with pytest.raises(DatasetError, match=r"gt.txt line 1: expected file;x1;y1;x2;y2;ClassId"):
        list(read_scenes(tmp_path))
    (tmp_path / "gt.txt").write_text("00009.jpg;1;2;3;4;5\n")
    with pytest.raises(DatasetError, match="names images that are not there: 00009.jpg"):
        list(read_scenes(tmp_path))
    (tmp_path / "gt.txt").write_text("00000.jpg;300;150;319;199;5\n00000.jpg;300;150;320;199;5\n")  # 320x200: x2 <= 319
    with pytest.raises(DatasetError, match=r"00000.jpg: ground-truth box \[300, 150, 320, 199\] reaches outside the 320x200 "
                                           r"image; expected inclusive corners with x2 <= 319 and y2 <= 199"):
        list(read_scenes(tmp_path))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no gt.txt found"):
        list(read_scenes(tmp_path / "empty"))


def test_colour_locator_proposes_a_box_on_each_red_ring(scenes_zip):
    scene = list(read_scenes(scenes_zip))[2]
    boxes = ColourLocator().propose(scene.image_bgr)
    for true in scene.signs:
        assert max(iou(true.box, box) for box in boxes) >= 0.5, (true, boxes)


def test_blobs_from_outlines_are_the_labelled_components_of_at_least_the_size_asked_for():
    rng = np.random.default_rng(7)
    mask = np.where(rng.random((120, 200)) < 0.08, 255, 0).astype(np.uint8)  # specks of every shape
    cv2.circle(mask, (50, 50), 20, 255, 3)  # a ring, with a blob inside its hole and a bar across its edge
    cv2.circle(mask, (50, 50), 5, 255, -1)
    cv2.line(mask, (60, 20), (100, 30), 255, 1)
    cv2.line(mask, (120, 100), (180, 40), 255, 1)  # a diagonal line: a thin outline spanning a large box
    cv2.rectangle(mask, (130, 90), (199, 119), 255, -1)  # touching the image's edge
    for min_side in (1, 3, 8):
        count, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
        labelled = sorted(tuple(row) for row in stats[1:count].tolist() if min(row[2], row[3]) >= min_side)
        blobs = blobs_of(mask, min_side)
        assert sorted((b.x, b.y, b.width, b.height, b.area) for b in blobs) == labelled, min_side
        assert [(b.y, b.x) for b in blobs] == sorted((b.y, b.x) for b in blobs)
    assert blobs_of(np.zeros((10, 10), np.uint8), 1) == []


def _priority_road(image: np.ndarray, centre: tuple[int, int], half_diagonal: int) -> tuple[int, int, int, int]:
    """Paint a priority-road sign (a yellow diamond inside a white one, black edge); returns its inclusive box."""
    x, y = centre

    def diamond(half, colour):
        corners = np.array([(x, y - half), (x + half, y), (x, y + half), (x - half, y)], np.int32)
        cv2.fillConvexPoly(image, corners, colour, lineType=cv2.LINE_AA)

    diamond(half_diagonal, (20, 20, 20))
    diamond(half_diagonal - 2, (245, 245, 245))
    diamond(half_diagonal * 10 // 21, (0, 190, 245))  # BGR orange-yellow; the yellow is 1/2.1 of the sign, as in GTSRB
    return x - half_diagonal, y - half_diagonal, x + half_diagonal, y + half_diagonal


def test_diamond_locator_boxes_a_priority_road_sign_and_not_other_yellow_shapes():
    image = road_scene(3, [])
    signs = [_priority_road(image, (80, 70), 30), _priority_road(image, (250, 60), 14)]
    cv2.rectangle(image, (150, 140), (190, 180), (0, 190, 245), -1)  # an upright yellow plate: a square, not a diamond
    cv2.ellipse(image, (60, 160), (22, 14), 0, 0, 360, (0, 190, 245), -1)  # a yellow blob without corners
    boxes = DiamondLocator().propose(image)
    assert len(boxes) == 2
    for sign in signs:
        assert max(iou(sign, box) for box in boxes) >= 0.7, (sign, boxes)
    assert not any(iou(box, (150, 140, 190, 180)) > 0.1 or iou(box, (38, 146, 82, 174)) > 0.1 for box in boxes)
    assert ColourLocator().propose(image) == []  # no red or blue there


def test_the_default_locators_box_a_priority_road_sign_that_red_and_blue_masks_miss():
    from edgesight.runtime.stream import DEFAULT_LOCATORS

    image = road_scene(5, [(250, 60, 18)])
    sign = _priority_road(image, (90, 100), 26)
    default = open_locator(list(DEFAULT_LOCATORS))
    assert DiamondLocator in [type(locator) for locator in default.locators]
    assert max(iou(sign, box) for box in default.propose(image)) >= 0.7
    assert max((iou(sign, box) for box in ColourLocator().propose(image)), default=0.0) < 0.5


def test_locators_sharing_a_frame_test_its_hsv_planes_once_and_get_the_masks_of_whole_pixel_tests():
    from edgesight.runtime.locate import SIGN_COLOURS, YELLOW_DIAMOND

    rng = np.random.default_rng(4)
    frame = ShrunkFrame(rng.integers(0, 256, (200, 320, 3), np.uint8))  # every colour, every edge of every range
    hsv = cv2.cvtColor(frame.by(2), cv2.COLOR_BGR2HSV)
    for ranges in [*SIGN_COLOURS.values(), YELLOW_DIAMOND]:
        expected = np.max([cv2.inRange(hsv, np.array(low), np.array(high)) for low, high in ranges], axis=0)
        assert np.array_equal(frame.in_hsv_ranges(2, ranges), expected)
        assert 0 < np.count_nonzero(expected) < expected.size
    assert frame._planes(2) is frame._planes(2)
    assert frame._plane_test(2, 2, 41, 255) is frame._plane_test(2, 2, 41, 255)  # value >= 41, which every colour asks
    combined = open_locator(["colour", "diamonds"])
    assert [type(locator) for locator in combined.locators] == [ColourLocator, DiamondLocator]
    assert combined.propose(frame) == ColourLocator().propose(frame) + DiamondLocator().propose(frame)


def test_the_centre_score_under_a_box_is_the_best_cell_under_its_middle_half_and_edges_take_the_nearest_cell():
    from edgesight.runtime.learned_locate import LocatorGeometry, best_centre_score_within

    geometry = LocatorGeometry(downscale=2, stride=4)  # a cell is 8 frame pixels
    centre_logits = np.full((10, 20), -10.0, np.float32)
    centre_logits[3, 5] = 0.0  # score 0.5 for the cell of frame pixels x 40-47, y 24-31
    assert best_centre_score_within(centre_logits, geometry, (30, 14, 61, 45)) == pytest.approx(0.5)  # middle half 38-53, 22-37
    assert best_centre_score_within(centre_logits, geometry, (0, 0, 31, 31)) < 1e-4  # the peak is under its outer quarter only
    centre_logits[9, 19] = 2.0
    assert best_centre_score_within(centre_logits, geometry, (150, 70, 181, 101)) == pytest.approx(1 / (1 + np.exp(-2.0)))  # past the grid


def test_the_colour_gate_keeps_the_colour_boxes_the_learned_locator_scores_and_never_touches_the_others():
    image = road_scene(6, [(80, 60, 22), (250, 140, 16)])
    _priority_road(image, (200, 50), 26)
    frame = ShrunkFrame(image)
    ungated = open_locator(["colour", "diamonds", "sign-locator"], colour_gate=None)
    colour, diamonds, learned = (locator.propose(frame) for locator in ungated.locators)
    assert colour and ungated.propose(frame) == colour + diamonds + learned
    centre_logits = ungated.locators[2].frame_output(frame).centre_logits
    from edgesight.runtime.learned_locate import best_centre_score_within

    scores = [best_centre_score_within(centre_logits, ungated.locators[2].geometry, box) for box in colour]
    gate = float(np.median(scores))
    gated = open_locator(["colour", "diamonds", "sign-locator"], colour_gate=gate).propose(frame)
    kept = [box for box, score in zip(colour, scores) if score >= gate]
    assert 0 < len(kept) < len(colour) and gated == kept + diamonds + learned
    assert open_locator(["colour", "diamonds", "sign-locator"], colour_gate=0.999999).propose(frame) == diamonds + learned
    with pytest.raises(ValueError, match=r"colour_gate must be in \[0, 1\).*Received: colour_gate=1.5"):
        open_locator(["colour", "sign-locator"], colour_gate=1.5)


def test_with_several_threads_the_other_locators_run_beside_the_network_and_propose_the_same_boxes(monkeypatch):
    import threading

    image = road_scene(6, [(80, 60, 22), (250, 140, 16)])
    _priority_road(image, (200, 50), 26)
    threads_seen = []
    propose = ColourLocator.propose
    monkeypatch.setattr(ColourLocator, "propose", lambda self, frame: threads_seen.append(threading.current_thread().name)
                        or propose(self, frame))
    names = ["colour", "diamonds", "sign-locator"]
    assert open_locator(names, threads=1).worker is None and open_locator(names, threads=2, overlap=False).worker is None
    for gate in (None, 0.05):
        sequential = open_locator(names, threads=2, colour_gate=gate, overlap=False)
        overlapped = open_locator(names, threads=2, colour_gate=gate, overlap=True)
        boxes = overlapped.propose(ShrunkFrame(image))
        assert boxes and boxes == sequential.propose(ShrunkFrame(image))
    assert threads_seen[-2].startswith("edgesight-locators") and threads_seen[-1] == threading.current_thread().name
    monkeypatch.setattr(DiamondLocator, "propose", lambda self, frame: 1 / 0)
    with pytest.raises(ZeroDivisionError):  # a locator's error reaches the caller, not a lost thread
        overlapped.propose(image)


def _found(box, class_id, score):
    return FoundSign(box, Prediction(str(class_id), class_id, score))


def test_the_half_size_copy_equals_an_area_resize_whatever_the_interpolation_used():
    rng = np.random.default_rng(0)
    for height, width in ((800, 1360), (2, 2), (6, 10), (7, 11)):  # odd sides take INTER_AREA itself
        frame = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        expected = cv2.resize(frame, (width // 2, height // 2), interpolation=cv2.INTER_AREA)
        assert np.array_equal(ShrunkFrame(frame).by(2), expected)
    frame = rng.integers(0, 256, (800, 1360, 3), dtype=np.uint8)
    quarter = ShrunkFrame(frame).by(4).astype(int) - cv2.resize(frame, (340, 200), interpolation=cv2.INTER_AREA)
    assert quarter.shape == (200, 340, 3) and np.abs(quarter).max() <= 1  # other factors: INTER_AREA


def test_matching_needs_overlap_and_the_right_class_and_lets_each_sign_be_claimed_once():
    truth = (TrueSign((0, 0, 19, 19), 1), TrueSign((100, 100, 119, 119), 2))
    found = [_found((1, 1, 20, 20), 1, 0.9),       # right
             (_found((0, 0, 19, 19), 1, 0.8)),     # the same sign again: false
             _found((100, 100, 119, 119), 3, 0.95),  # wrong class: false, and the sign stays missed
             _found((50, 50, 69, 69), 1, 0.7)]     # nothing there: false
    correct, claimed = match(found, truth)
    assert correct == [True, False, False, False] and claimed == [True, False]
    assert iou((0, 0, 9, 9), (5, 0, 14, 9)) == pytest.approx(50 / 150)


def test_eval_frames_writes_the_report_and_annotated_examples(tiny_model, tmp_path):
    # Labelled as another class than painted, every sign is an error: both scenes with signs are examples.
    scenes_zip = write_road_scenes(tmp_path / "mislabelled.zip", truth_class=1)
    out = tmp_path / "report"
    report = evaluate_frames(EvalFramesConfig(model=str(tiny_model), data=str(scenes_zip), out=str(out), min_score=0.0, examples=2))
    assert report["frames"] == 3 and report["signs_24px_and_more"] == 3
    assert set(report["bands"]) == {"< 32 px", "32-64 px", "> 64 px"}
    assert sum(band["signs"] for band in report["bands"].values()) == 3
    written = json.loads((out / "eval_frames.json").read_text())
    assert [frame["source"] for frame in written["per_frame"]] == ["00000.jpg", "00001.jpg", "00002.jpg"]
    detections = sum(len(frame["detections"]) for frame in written["per_frame"])
    right = sum(d["correct"] for frame in written["per_frame"] for d in frame["detections"])
    assert written["false_detections_per_frame"] == pytest.approx((detections - right) / 3, abs=1e-4)
    assert right == 0 and sorted(written["examples"]) == ["00000.annotated.jpg", "00002.annotated.jpg"]
    assert written["missed_24px_and_more_by_class"] == {"speed limit 30": 3}  # gt.txt's class 1, read as anything else
    assert written["per_frame"][2]["missed_signs"] == [{"box": [170, 90, 230, 150], "class_id": 1, "label": "speed limit 30"},
                                                      {"box": [46, 136, 74, 164], "class_id": 1, "label": "speed limit 30"}]
    assert all((out / name).is_file() for name in written["examples"])
    assert written["ms_per_frame"]["median"] > 0


def test_the_tally_names_each_sign_of_goal_size_it_found(tmp_path):
    """Which signs were found, not only how many: side-by-side comparisons pair finders sign by sign."""
    from edgesight.runtime.frame_eval import score_scenes
    from edgesight.runtime.signs import SignFinder

    class ReadsEveryBoxAsSpeedLimit50:
        labels = ("speed limit 20", "speed limit 30", "speed limit 50")

        def classify_boxes(self, frame_bgr, boxes):
            return [[Prediction("speed limit 50", 2, 1.0)] for _ in boxes]

    scenes_zip = write_road_scenes(tmp_path / "scenes.zip")  # three red rings of class 2, in scenes 00000 and 00002
    finder = SignFinder(ReadsEveryBoxAsSpeedLimit50(), open_locator(["colour"]))
    tally = score_scenes(EvalFramesConfig(model="unused", data=str(scenes_zip), examples=0), finder.classifier, finder)
    assert tally.goal == {"signs": 3, "found": 3}
    assert tally.found_goal_signs == {("00000.jpg", 0), ("00002.jpg", 0), ("00002.jpg", 1)}


def test_eval_frames_on_a_folder_without_ground_truth_is_a_one_line_error(tiny_model, tmp_path, capsys):
    from edgesight.cli.main import main

    assert main(["eval-frames", str(tiny_model), "--data", str(tmp_path), "--out", str(tmp_path / "out")]) == 2
    error = capsys.readouterr().err
    assert "no gt.txt found; expected road scenes in the GTSDB layout" in error and "Traceback" not in error


def test_a_sign_is_confirmed_after_k_of_n_frames_and_keeps_its_track_while_it_moves():
    from edgesight.runtime.tracking import SignTracker

    tracker = SignTracker(confirm_hits=3, window=5)
    moving = [_found((100 + 2 * i, 50, 140 + 2 * i, 90), 14, 0.9) for i in range(4)]
    flicker = _found((300, 10, 330, 40), 1, 0.99)
    assert tracker.update([moving[0], flicker]) == []
    assert tracker.update([moving[1]]) == []
    confirmed = tracker.update([moving[2]])
    assert [(sign.box, sign.prediction.class_id) for _, sign in confirmed] == [(moving[2].box, 14)]
    track_id = confirmed[0][0]
    assert [tid for tid, _ in tracker.update([moving[3]])] == [track_id]  # the same sign, moved 6 px
    assert all(sign.prediction.class_id != 1 for _, sign in tracker.update([]))  # the one-frame flicker never shows


def test_a_confirmed_sign_survives_a_missed_frame_and_one_misread_then_fades():
    from edgesight.runtime.tracking import SignTracker

    tracker = SignTracker(confirm_hits=2, window=3)
    box = (10, 10, 49, 49)
    for class_id in (14, 14):
        tracker.update([_found(box, class_id, 0.8)])
    assert [sign.prediction.class_id for _, sign in tracker.update([_found(box, 17, 0.95)])] == [14]  # 2 votes to 1
    assert [sign.box for _, sign in tracker.update([])] == [box]  # missed once: still there
    assert tracker.update([]) == []  # one sighting in the last three frames: gone
    with pytest.raises(ValueError, match="confirm_hits <= window"):
        SignTracker(confirm_hits=4, window=3)


def test_demo_locate_signs_on_an_image_folder_writes_every_box_with_the_image_path(tmp_path):
    from edgesight.camera_demo.loop import DemoConfig, run_demo
    from edgesight.runtime.classifier import Classifier
    from edgesight.runtime.results import detection
    from edgesight.runtime.signs import SignFinder
    from edgesight.runtime.stream import DEFAULT_LOCATORS

    folder = tmp_path / "scenes"
    folder.mkdir()
    for index, rings in enumerate(([(80, 60, 20)], [], [(200, 120, 30), (60, 150, 14)])):
        cv2.imwrite(str(folder / f"scene{index}.png"), road_scene(index, rings))
    jsonl = tmp_path / "signs.jsonl"
    run_demo(DemoConfig(model="gtsrb-tiny", source=str(folder), locate="signs", no_window=True, jsonl=str(jsonl),
                        save_video=str(tmp_path / "signs.mp4")))
    records = [json.loads(line) for line in jsonl.read_text().splitlines()]
    finder = SignFinder(Classifier("gtsrb-tiny"), locator=open_locator(list(DEFAULT_LOCATORS)))  # the demo's locators
    assert [record["source"] for record in records] == [str(folder / f"scene{index}.png") for index in range(3)]
    for record in records:  # images of a folder are not confirmed over time: every sign found is written
        expected = [detection(sign.box, sign.prediction) for sign in finder.find(cv2.imread(record["source"]))]
        assert record["detections"] == expected
    assert sum(len(record["detections"]) for record in records) >= 1


@pytest.mark.parametrize("shape", [(1, 1), (3, 2000), (800, 5), (7, 7), (9, 13)])
def test_the_locators_take_frames_smaller_than_the_networks_stride_and_box_only_inside_them(shape):
    # A thumbnail or a thin strip in an image folder gave onnxruntime a network input narrower than its stride.
    from edgesight.runtime.learned_locate import LearnedLocator

    frame = np.zeros((*shape, 3), np.uint8)
    cv2.circle(frame, (shape[1] // 2, shape[0] // 2), max(1, min(shape) // 3), (0, 0, 220), -1)
    for locator in (open_locator(["colour", "diamonds", "sign-locator"]), LearnedLocator("sign-locator-fp32", min_score=0.01)):
        for x1, y1, x2, y2 in locator.propose(frame):
            assert 0 <= x1 <= x2 < shape[1] and 0 <= y1 <= y2 < shape[0]


def test_demo_rejects_an_unknown_locate_mode():
    from edgesight.camera_demo.loop import DemoConfig, run_demo

    with pytest.raises(ValueError, match="locate must be one of"):
        run_demo(DemoConfig(locate="faces", source="0"))


def test_eval_frames_sweeps_confidence_thresholds_consistently_with_its_operating_point(scenes_zip, tmp_path):
    report = evaluate_frames(EvalFramesConfig(model="gtsrb-tiny", data=str(scenes_zip), out=str(tmp_path), min_score=0.5, examples=0))
    sweep = report["score_sweep"]
    at_operating_point = next(entry for entry in sweep if entry["min_score"] == 0.5)
    assert at_operating_point["recall_24px_and_more"] == report["recall_24px_and_more"]
    assert at_operating_point["false_detections_per_frame"] == report["false_detections_per_frame"]
    false_per_frame = [entry["false_detections_per_frame"] for entry in sweep]
    assert false_per_frame == sorted(false_per_frame, reverse=True)  # a stricter threshold never adds detections


def test_scene_regions_give_each_sign_its_class_and_background_boxes_clear_of_signs(scenes_zip):
    from edgesight.runtime.scenes import BACKGROUND_MAX_IOU, scene_regions

    regions = scene_regions(scenes_zip, background_label=43, per_scene=8)
    signs = [(tuple(box), label) for box, label in zip(regions.boxes_xyxy.tolist(), regions.labels.tolist()) if label != 43]
    assert sorted(signs) == sorted([((60, 40, 100, 80), 2), ((170, 90, 230, 150), 2), ((46, 136, 74, 164), 2)])
    truth = {scene.name: scene.signs for scene in read_scenes(scenes_zip)}
    background = [(box, group) for box, label, group in zip(regions.boxes_xyxy.tolist(), regions.labels.tolist(), regions.groups)
                  if label == 43]
    assert background and all(iou(box, sign.box) < BACKGROUND_MAX_IOU
                              for box, group in background for sign in truth[group.removeprefix("scene:")])


def test_a_sign_task_with_background_scenes_gains_a_not_a_sign_class_for_training_only(scenes_zip, tiny_gtsrb):
    from edgesight.runtime.tasks import NOT_A_SIGN, get_task

    task = get_task("gtsrb", str(tiny_gtsrb), background=str(scenes_zip))
    assert task.labels[-1] == NOT_A_SIGN and len(task.labels) == 44
    plain_train, train = get_task("gtsrb").load(tiny_gtsrb, "train"), task.load(tiny_gtsrb, "train")
    assert len(train) > len(plain_train) and (train.labels == 43).sum() > 0
    assert len(task.load(tiny_gtsrb, "test")) == len(get_task("gtsrb").load(tiny_gtsrb, "test"))
    with pytest.raises(ValueError, match="not a sign task"):
        get_task("cifar10", background=str(scenes_zip))


def test_the_reject_class_learns_from_the_proposals_of_the_locators_asked_for(scenes_zip, tiny_gtsrb):
    from edgesight.runtime.tasks import task_of_run

    options = {"task": "gtsrb", "background": str(scenes_zip), "background_locator": ["colour", "sign-locator"]}
    both = task_of_run(options, str(tiny_gtsrb))
    assert "proposals of colour and sign-locator" in both.description
    assert (both.load(tiny_gtsrb, "train").labels == 43).sum() > 0
    earlier_run = {"task": "gtsrb", "background": str(scenes_zip)}  # config.json of a run from before the option
    assert "proposals of colour)" in task_of_run(earlier_run, str(tiny_gtsrb)).description


def test_the_finder_drops_boxes_read_as_not_a_sign():
    from edgesight.runtime.signs import SignFinder
    from edgesight.runtime.tasks import NOT_A_SIGN

    class Reader:  # reads the first box as a stop sign and every other as background
        def classify_boxes(self, frame, boxes, top_k=1):
            return [[Prediction("stop", 14, 0.99)]] + [[Prediction(NOT_A_SIGN, 43, 0.999)] for _ in boxes[1:]]

    frame = road_scene(0, [(80, 60, 20), (200, 120, 30)])
    found = SignFinder(Reader()).find(frame)
    assert [sign.prediction.label for sign in found] == ["stop"]


def test_eval_frames_refuses_a_model_that_is_not_a_sign_model(scenes_zip, tmp_path):
    from edgesight.runtime.errors import ModelFileError

    with pytest.raises(ModelFileError, match="a 'cifar10' model; eval-frames scores road scenes"):
        evaluate_frames(EvalFramesConfig(model="cifar10", data=str(scenes_zip), out=str(tmp_path)))
    (tmp_path / "scenes").mkdir()
    cv2.imwrite(str(tmp_path / "scenes" / "00000.jpg"), road_scene(0, []))
    (tmp_path / "scenes" / "gt.txt").write_text("00000.jpg;1;2;30;40;57\n")
    with pytest.raises(DatasetError, match=r"00000.jpg: ground-truth class id\(s\) \[57\] outside the model's 43 classes"):
        evaluate_frames(EvalFramesConfig(model="gtsrb-tiny", data=str(tmp_path / "scenes"), out=str(tmp_path / "out")))


def test_the_third_size_copy_is_the_half_copy_shrunk_and_keeps_shapes_where_an_area_resize_puts_them():
    frame = np.zeros((800, 1360, 3), np.uint8)
    frame[300:360, 600:660] = (40, 90, 200)  # a 60 px square: 20 px at a third, from x 200 and y 100
    shrunk = ShrunkFrame(frame)
    third = shrunk.by(3)
    assert third.shape == (266, 453, 3)
    assert np.array_equal(third, cv2.resize(shrunk.by(2), (453, 266), interpolation=cv2.INTER_LINEAR))
    columns = np.nonzero(third[110, :, 2] > 100)[0]
    assert abs(columns.min() - 200) <= 1 and abs(columns.max() - 219) <= 1
    assert tuple(third[110, 210]) == (40, 90, 200)
    area = cv2.resize(frame[:798, :1359], (453, 266), interpolation=cv2.INTER_AREA).astype(int)
    assert np.abs(third.astype(int) - area).mean() < 1.0
    assert ShrunkFrame(np.zeros((7, 11, 3), np.uint8)).by(3).shape == (2, 3, 3)  # odd sides too


def test_a_screen_drops_the_boxes_it_takes_for_background_before_the_classifier_reads_them():
    from edgesight.runtime.classifier import Classifier
    from edgesight.runtime.signs import SignFinder
    from edgesight.runtime.stream import DEFAULT_LOCATORS
    from edgesight.runtime.tasks import NOT_A_SIGN

    frame = road_scene(7, [(80, 60, 22), (250, 140, 16), (180, 90, 30)])
    model = Classifier("gtsrb-locate")
    everything = SignFinder(model, locator=open_locator(list(DEFAULT_LOCATORS))).candidates(frame)
    # The sign model as its own screen at 0.5: a box goes no further exactly when "not a sign" is its best class at 0.5
    # or more, and the classifier then reads the others as it did.
    screened = SignFinder(model, locator=open_locator(list(DEFAULT_LOCATORS)), screen=model, screen_threshold=0.5).candidates(frame)
    expected = [sign for sign in everything if not (sign.prediction.label == NOT_A_SIGN and sign.prediction.score >= 0.5)]
    assert screened == expected and 0 < len(screened) < len(everything)
    with pytest.raises(ValueError, match="a screen must have the sign model's classes, 'not a sign' among them"):
        SignFinder(model, screen=Classifier("gtsrb-tiny"))
    with pytest.raises(ValueError, match=r"screen_threshold must be in \(0, 1\]. Received: screen_threshold=0"):
        SignFinder(model, screen=model, screen_threshold=0)
