"""--roi and --search-width: the locators search a region of the frame only, or wide frames shrunk; boxes stay in frame
pixels and are read from the whole frame."""
import json

import cv2
import numpy as np
import pytest
from edgesight.runtime.learned_locate import open_locator
from edgesight.runtime.locate import ColourLocator, ShrunkFrame, iou
from edgesight.runtime.roi import ALIGN, NarrowedLocator, RegionLocator, RegionOfInterest, as_searched
from fakes import road_scene


def test_a_region_is_four_fractions_and_its_corner_lines_up_with_the_locators_cells():
    region = RegionOfInterest.parse("0,0.1,1,0.8")
    assert region == RegionOfInterest(0.0, 0.1, 1.0, 0.8)
    assert region.pixels((800, 1360, 3)) == (0, 80, 1360, 640)
    x1, y1, x2, y2 = RegionOfInterest.parse("0.33,0.27,0.9,1").pixels((200, 320, 3))
    assert (x1 % ALIGN, y1 % ALIGN) == (0, 0) and x1 <= 0.33 * 320 and y1 <= 0.27 * 200  # moved out, never in
    assert (x2, y2) == (288, 200)
    assert region.holds((0, 80, 1359, 639), (800, 1360, 3)) and not region.holds((0, 79, 10, 100), (800, 1360, 3))
    assert not region.holds((0, 600, 10, 640), (800, 1360, 3))  # row 640 is the first one below it


@pytest.mark.parametrize("text", ["0,0.1,1", "0,0.1,1,0.8,1", "a,0,1,1", "0,0.8,1,0.1", "0.5,0,0.5,1", "0,0,1,1.2", "-0.1,0,1,1",
                                  "nan,0,1,1", ""])
def test_a_malformed_region_is_refused_naming_the_form_expected(text):
    with pytest.raises(ValueError, match=r"roi must be LEFT,TOP,RIGHT,BOTTOM.*Received: roi="):
        RegionOfInterest.parse(text)


def test_a_region_too_small_for_the_frame_is_refused_with_its_size_in_pixels():
    with pytest.raises(ValueError, match=r"is 32x200 pixels of a 320x200 frame; expected at least 64"):
        RegionOfInterest.parse("0,0,0.1,1").pixels((200, 320, 3))


def test_the_region_locator_finds_inside_what_the_whole_frame_gives_and_nothing_outside():
    image = road_scene(3, [(80, 30, 18), (200, 110, 20), (60, 175, 14)])  # above, inside and below rows 48-160
    region = RegionOfInterest.parse("0,0.3,1,0.8")
    assert region.pixels(image.shape) == (0, 48, 320, 160)
    whole = ColourLocator().propose(image)
    inside = RegionLocator(ColourLocator(), region).propose(ShrunkFrame(image))
    assert len(whole) == 3 and inside == [box for box in whole if box[1] >= 48 and box[3] < 160]
    assert len(inside) == 1 and iou(inside[0], (180, 90, 220, 130)) >= 0.5  # the middle ring, in frame pixels


def test_the_default_locators_in_a_region_propose_only_there():
    from edgesight.runtime.stream import DEFAULT_LOCATORS

    image = road_scene(4, [(80, 30, 18), (200, 110, 20)])
    region = RegionOfInterest.parse("0,0.3,1,0.8")
    boxes = RegionLocator(open_locator(list(DEFAULT_LOCATORS)), region).propose(image)
    assert boxes and all(0 <= x1 and 48 <= y1 and x2 < 320 and y2 < 160 for x1, y1, x2, y2 in boxes)


def test_demo_with_a_region_writes_only_the_signs_found_there(tmp_path):
    from edgesight.camera_demo.loop import DemoConfig, run_demo

    folder = tmp_path / "scenes"
    folder.mkdir()
    cv2.imwrite(str(folder / "scene.png"), road_scene(0, [(80, 30, 18), (200, 110, 20)]))  # above and inside rows 48-160
    boxes = {}
    for name, roi in (("whole", None), ("region", "0,0.3,1,0.8")):
        jsonl = tmp_path / f"{name}.jsonl"
        run_demo(DemoConfig(model="gtsrb-tiny", source=str(folder), locate="signs", no_window=True, jsonl=str(jsonl), roi=roi,
                            save_video=str(tmp_path / f"{name}.mp4")))
        boxes[name] = [found["box"] for found in json.loads(jsonl.read_text().splitlines()[0])["detections"]]
    top_ring, middle_ring = (60, 10, 100, 50), (178, 88, 222, 132)  # outer edges of the rings
    assert [max(iou(ring, box) for box in boxes["whole"]) >= 0.5 for ring in (top_ring, middle_ring)] == [True, True]
    assert len(boxes["region"]) == 1 and iou(boxes["region"][0], middle_ring) >= 0.5  # found, and in frame pixels


def test_the_region_is_drawn_on_the_annotated_frame():
    from edgesight.camera_demo.overlay import Speed, draw_signs

    frame = np.zeros((200, 320, 3), np.uint8)
    drawn = draw_signs(frame, [], Speed(10.0, 5.0, 6.0), region=(0, 48, 320, 160))
    assert drawn[48, 100].tolist() == [255, 255, 255] and drawn[159, 100].tolist() == [255, 255, 255]
    assert drawn[100, 100].tolist() == [0, 0, 0] and not draw_signs(frame, [], Speed(10.0, 5.0, 6.0))[159, 100].any()


def test_a_region_without_locating_signs_is_refused():
    from edgesight.runtime.stream import StreamOptions

    with pytest.raises(ValueError, match="roi limits where signs are located.*region='center'"):
        StreamOptions(locate=False, roi="0,0.1,1,0.8").check()
    with pytest.raises(ValueError, match="roi must be LEFT,TOP,RIGHT,BOTTOM"):
        StreamOptions(locate=True, roi="0,0.1").check()


def test_eval_frames_with_a_region_misses_the_signs_outside_it_and_says_which_region_it_searched(tmp_path):
    from edgesight.runtime.frame_eval import EvalFramesConfig, evaluate_frames
    from fakes import write_road_scenes

    scenes_zip = write_road_scenes(tmp_path / "scenes.zip")
    whole = evaluate_frames(EvalFramesConfig(model="gtsrb-tiny", data=str(scenes_zip), out=str(tmp_path / "whole"), min_score=0.0, examples=0))
    lower = evaluate_frames(EvalFramesConfig(model="gtsrb-tiny", data=str(scenes_zip), out=str(tmp_path / "lower"), min_score=0.0, examples=0,
                                             roi="0,0.5,1,1"))  # rows 96-199: the first scene's sign (rows 40-80) lies above
    assert lower["config"]["roi"] == "0,0.5,1,1" and whole["config"]["roi"] is None
    # Rows 96-199 of 200 hold the second scene's lower sign (rows 136-164) wholly, the others (40-80, 90-150) not.
    assert lower["signs_24px_and_more_outside_roi"] == 2 and whole["signs_24px_and_more_outside_roi"] is None
    def boxed_first_sign(report):  # read as any class: the generated rings are no real sign
        return any(iou(found["box"], (60, 40, 100, 80)) >= 0.5 for found in report["per_frame"][0]["detections"])

    assert boxed_first_sign(whole) and not boxed_first_sign(lower)
    assert all(found["box"][1] >= 96 for frame in lower["per_frame"] for found in frame["detections"])


class _Spy:
    """A locator that records the frame it is given and proposes one box there."""

    def __init__(self):
        self.shapes = []

    def propose(self, frame):
        self.shapes.append(frame.shape)
        return [(10, 20, 29, 39)]


def test_a_wide_frame_is_searched_at_the_search_width_and_its_boxes_come_back_in_frame_pixels():
    rings = [(80, 30, 18), (200, 110, 20), (60, 175, 14)]
    image = road_scene(3, rings)
    wide = cv2.resize(image, (640, 400), interpolation=cv2.INTER_LINEAR)  # a camera of twice the pixels each way
    spy = _Spy()
    assert NarrowedLocator(spy, 320).propose(wide) == [(20, 40, 59, 79)] and spy.shapes == [(200, 320, 3)]
    assert NarrowedLocator(spy, 320).propose(image) == [(10, 20, 29, 39)]  # a frame no wider is searched as it comes
    found = NarrowedLocator(ColourLocator(), 320).propose(wide)
    assert all(max(iou((2 * (x - r), 2 * (y - r), 2 * (x + r) - 1, 2 * (y + r) - 1), box) for box in found) >= 0.5
               for x, y, r in rings)
    # With a region too, its fractions are of the shrunk frame: rows 96-199 of 200, so the spy's box moves down 96 there.
    spy = _Spy()
    assert as_searched(spy, "0,0.5,1,1", 320).propose(wide) == [(20, 232, 59, 271)] and spy.shapes == [(104, 320, 3)]


def test_a_search_width_is_refused_below_its_floor_or_without_locating_signs():
    from edgesight.runtime.stream import StreamOptions

    with pytest.raises(ValueError, match="search_width must be at least 320 pixels or left out. Received: search_width=200"):
        as_searched(ColourLocator(), None, 200)
    with pytest.raises(ValueError, match="search_width sets the size signs are located at.*region='center'"):
        StreamOptions(locate=False, search_width=1360).check()


def test_demo_with_a_search_width_writes_the_signs_in_frame_pixels(tmp_path):
    from edgesight.camera_demo.loop import DemoConfig, run_demo

    folder = tmp_path / "scenes"
    folder.mkdir()
    cv2.imwrite(str(folder / "scene.png"), cv2.resize(road_scene(0, [(200, 110, 20)]), (640, 400), interpolation=cv2.INTER_LINEAR))
    jsonl = tmp_path / "signs.jsonl"
    run_demo(DemoConfig(model="gtsrb-tiny", source=str(folder), locate="signs", no_window=True, jsonl=str(jsonl), search_width=320))
    boxes = [found["box"] for found in json.loads(jsonl.read_text().splitlines()[0])["detections"]]
    assert any(iou((356, 176, 444, 264), box) >= 0.5 for box in boxes)  # the ring's outer edges, twice (178, 88, 222, 132)


def test_frames_over_twice_the_learnt_width_searched_whole_get_the_search_width_named_once(tmp_path, tiny_model, capsys):
    from edgesight.camera_demo.loop import DemoConfig, run_demo
    from edgesight.runtime.roi import search_width_hint

    assert search_width_hint((2160, 3840, 3), None, 96.0).startswith("3840x2160 frames are searched for signs whole (96 ms")
    assert "--search-width 1360" in search_width_hint((2160, 3840, 3), None, 96.0)
    assert search_width_hint((2160, 3840, 3), 1360, 96.0) is None and search_width_hint((1080, 1920, 3), None, 40.0) is None
    for name in ("a.png", "b.png", "c.png"):
        cv2.imwrite(str(tmp_path / name), np.zeros((64, 2760, 3), np.uint8))
    run_demo(DemoConfig(model=str(tiny_model), source=str(tmp_path), no_window=True, locate="signs", locator=["colour"]))
    assert capsys.readouterr().err.count("2760x64 frames are searched for signs whole") == 1
