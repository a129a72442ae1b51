import json
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from edgesight.camera_demo.loop import DemoConfig, run_demo
from edgesight.runtime.errors import OutputError, SourceError
from edgesight.runtime.preprocess import center_box

CONTRACT_KEYS = {"frame", "source", "t", "latency_ms", "detections"}
DETECTION_KEYS = {"box", "label", "class_id", "score"}


def test_demo_on_video_writes_one_json_line_per_frame_and_a_video(tiny_model, tiny_video, tmp_path):
    jsonl, video = tmp_path / "out" / "frames.jsonl", tmp_path / "out" / "annotated.mp4"
    summary = run_demo(DemoConfig(model=str(tiny_model), source=str(tiny_video), no_window=True,
                                  save_video=str(video), jsonl=str(jsonl), box_fraction=0.5))
    records = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert summary.frames == len(records) == 30 and summary.ended_by == "end of input"
    assert [r["frame"] for r in records] == list(range(30))
    assert all(set(r) == CONTRACT_KEYS and len(r["detections"]) == 1 for r in records)
    detection = records[0]["detections"][0]
    assert set(detection) == DETECTION_KEYS
    assert detection["box"] == list(center_box((120, 160, 3), 0.5))
    assert 0.0 <= detection["score"] <= 1.0 and isinstance(detection["class_id"], int)
    capture = cv2.VideoCapture(str(video))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 30
    ok, first = capture.read()
    assert ok and first.shape == (120, 160, 3)
    assert not list(video.parent.glob(".annotated*"))  # no temporary left behind


def test_full_frame_mode_and_max_frames(tiny_model, tiny_video, tmp_path):
    jsonl = tmp_path / "frames.jsonl"
    summary = run_demo(DemoConfig(model=str(tiny_model), source=str(tiny_video), region="full", no_window=True,
                                  jsonl=str(jsonl), max_frames=5))
    records = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert summary.frames == 5 and summary.ended_by == "max_frames"
    assert records[0]["detections"][0]["box"] == [0, 0, 159, 119]


def test_image_folder_records_carry_each_path(tiny_model, tmp_path):
    folder = tmp_path / "frames with spaces"
    folder.mkdir()
    for index in range(3):
        cv2.imwrite(str(folder / f"{index}.png"), np.full((40, 50, 3), index * 80, np.uint8))
    jsonl = tmp_path / "frames.jsonl"
    run_demo(DemoConfig(model=str(tiny_model), source=str(folder), no_window=True, jsonl=str(jsonl)))
    sources = [json.loads(line)["source"] for line in jsonl.read_text().splitlines()]
    assert sources == [str(folder / f"{i}.png") for i in range(3)]


def test_an_image_folder_with_unreadable_files_stops_at_the_first_unless_told_to_skip_them(tiny_model, tmp_path, capsys):
    folder = tmp_path / "shots"
    folder.mkdir()
    for index in range(3):
        cv2.imwrite(str(folder / f"{index}.png"), np.full((40, 50, 3), index * 80, np.uint8))
    (folder / "1b.png").write_bytes(b"cut short")
    with pytest.raises(SourceError, match="1b.png: not a readable image. Pass --skip-bad-images"):
        run_demo(DemoConfig(model=str(tiny_model), source=str(folder), no_window=True))
    jsonl = tmp_path / "frames.jsonl"
    summary = run_demo(DemoConfig(model=str(tiny_model), source=str(folder), no_window=True, jsonl=str(jsonl), skip_bad_images=True))
    records = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert [(r["frame"], r["source"]) for r in records] == [(i, str(folder / f"{i}.png")) for i in range(3)]
    assert summary.frames == 3 and summary.skipped_images == 1
    assert "1 unreadable image skipped (named above)" in summary.describe()
    assert f"edgesight: skipped {folder / '1b.png'}: not a readable image." in capsys.readouterr().err


def test_a_video_path_without_a_container_suffix_is_refused_before_the_camera_is_opened(tiny_model, tmp_path):
    with pytest.raises(ValueError, match=r"save_video must name a video file ending in .mp4, .m4v, .mov, .mkv, .avi. "
                                         r"Received: save_video='.*annotated'"):
        run_demo(DemoConfig(model=str(tiny_model), source="97", no_window=True, save_video=str(tmp_path / "annotated")))


def test_a_video_the_encoder_cannot_open_leaves_no_file_behind(tmp_path, monkeypatch):
    from edgesight.camera_demo.video import VideoSink

    monkeypatch.setattr(cv2, "VideoWriter_fourcc", lambda *code: cv2.VideoWriter.fourcc(*"ZZZZ"))  # no such encoder
    with pytest.raises(SourceError, match="annotated.mp4: cannot write video"):
        with VideoSink(tmp_path / "annotated.mp4", 15.0) as sink:
            sink.write(np.zeros((48, 64, 3), np.uint8))
    assert list(tmp_path.iterdir()) == []


def test_a_video_cut_short_by_a_full_disk_is_an_error_naming_it_and_leaves_no_broken_file(tmp_path):
    # A file-size limit fails the writes as a full disk does; OpenCV's writer reports neither, only playback shows it.
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent(f"""
        import resource, signal
        import numpy as np
        from edgesight.camera_demo.video import VideoSink
        from edgesight.runtime.errors import OutputError
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        frames = np.random.default_rng(0).integers(0, 256, (30, 200, 320, 3), dtype=np.uint8)
        resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, resource.RLIM_INFINITY))
        try:
            with VideoSink({str(tmp_path / "annotated.mp4")!r}, 15.0) as sink:
                for frame in frames:
                    sink.write(frame)
        except OutputError as error:
            print(error)
    """)
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert "annotated.mp4: the video was not written whole: the finished file played back none of the 30 frames " \
           "written, so none is left" in run.stdout, run.stderr[-2000:]
    assert list(tmp_path.iterdir()) == []


def test_unavailable_camera_is_a_clear_error(tiny_model):
    with pytest.raises(SourceError, match="camera 97: cannot be opened"):
        run_demo(DemoConfig(model=str(tiny_model), source="97", no_window=True))


def test_bad_region_is_refused(tiny_model, tiny_video):
    with pytest.raises(ValueError, match="region must be one of"):
        run_demo(DemoConfig(model=str(tiny_model), source=str(tiny_video), region="left"))
    with pytest.raises(ValueError, match="max_frames must be >= 1 or left out. Received: max_frames=0"):
        run_demo(DemoConfig(model=str(tiny_model), source=str(tiny_video), max_frames=0))
    with pytest.raises(ValueError, match="camera_size must be WIDTHxHEIGHT in pixels, such as 1280x720. Received: camera_size='720p'"):
        run_demo(DemoConfig(model=str(tiny_model), source="97", camera_size="720p"))  # before the camera is opened
    with pytest.raises(ValueError, match="camera_size, camera_fps and camera_format are asked of a camera"):
        run_demo(DemoConfig(model=str(tiny_model), source=str(tiny_video), camera_fps=30.0, no_window=True))


def test_locating_signs_for_an_object_model_is_refused(tiny_video):
    with pytest.raises(ValueError, match="locate='signs' finds traffic signs for a sign model, .* is a 'cifar10' model"):
        run_demo(DemoConfig(model="cifar10", source=str(tiny_video), locate="signs", no_window=True))


@pytest.mark.parametrize("option", ["jsonl", "save_video"])
def test_an_output_that_cannot_be_written_is_named(tiny_model, tiny_video, tmp_path, option):
    (tmp_path / "taken").write_text("a file where a folder is asked for")
    target = tmp_path / "taken" / ("frames.jsonl" if option == "jsonl" else "annotated.mp4")
    with pytest.raises(OutputError, match=f"{target}: cannot create the folder .*taken: .*taken is a file, not a folder"):
        run_demo(DemoConfig(model=str(tiny_model), source=str(tiny_video), no_window=True, max_frames=2,
                            **{option: str(target)}))


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="/dev/full, a device every write to fails as a full disk, is Linux's")
def test_a_disk_that_fills_up_under_the_json_lines_is_named(tiny_model, tiny_video):
    with pytest.raises(OutputError, match="/dev/full: cannot write it .No space left on device"):
        run_demo(DemoConfig(model=str(tiny_model), source=str(tiny_video), no_window=True, jsonl="/dev/full"))


def test_ctrl_c_ends_the_loop_cleanly_and_keeps_the_outputs(tiny_model, tiny_video, tmp_path, monkeypatch):
    from edgesight.runtime.classifier import Classifier

    original, calls = Classifier.classify_boxes, []

    def interrupted_on_the_sixth_frame(self, *arguments, **options):
        calls.append(1)
        if len(calls) == 6:
            raise KeyboardInterrupt
        return original(self, *arguments, **options)

    monkeypatch.setattr(Classifier, "classify_boxes", interrupted_on_the_sixth_frame)
    jsonl, video = tmp_path / "frames.jsonl", tmp_path / "annotated.mp4"
    summary = run_demo(DemoConfig(model=str(tiny_model), source=str(tiny_video), no_window=True,
                                  jsonl=str(jsonl), save_video=str(video)))
    assert summary.ended_by == "Ctrl-C" and summary.frames == 5
    assert len(jsonl.read_text().splitlines()) == 5
    assert int(cv2.VideoCapture(str(video)).get(cv2.CAP_PROP_FRAME_COUNT)) == 5


def test_sigterm_ends_the_loop_cleanly_and_keeps_the_outputs(tiny_model, tiny_video, tmp_path, monkeypatch):
    import os
    import signal

    from edgesight.runtime.classifier import Classifier

    original, calls = Classifier.classify_boxes, []

    def terminated_on_the_sixth_frame(self, *arguments, **options):
        calls.append(1)
        if len(calls) == 6:
            os.kill(os.getpid(), signal.SIGTERM)  # as a supervisor stopping the robot's process does
        return original(self, *arguments, **options)

    monkeypatch.setattr(Classifier, "classify_boxes", terminated_on_the_sixth_frame)
    handler_before = signal.getsignal(signal.SIGTERM)
    jsonl, video = tmp_path / "frames.jsonl", tmp_path / "annotated.mp4"
    summary = run_demo(DemoConfig(model=str(tiny_model), source=str(tiny_video), no_window=True,
                                  jsonl=str(jsonl), save_video=str(video)))
    assert summary.ended_by == "SIGTERM" and summary.frames == 5
    assert len(jsonl.read_text().splitlines()) == summary.frames
    assert int(cv2.VideoCapture(str(video)).get(cv2.CAP_PROP_FRAME_COUNT)) == summary.frames
    assert signal.getsignal(signal.SIGTERM) is handler_before  # the caller's handler is back


def test_demo_on_a_stream_that_is_gone_ends_with_a_clear_error_naming_it(tmp_path, capsys):
    from edgesight.cli.main import main
    from fakes import MjpegServer, write_tiny_model

    server = MjpegServer().start()
    model = write_tiny_model(tmp_path / "tiny.onnx")
    stopper = threading.Timer(1.0, server.stop)
    stopper.start()
    started = time.monotonic()
    assert main(["demo", "--model", str(model), "--source", server.url, "--no-window", "--lost-after", "1",
                 "--jsonl", str(tmp_path / "out.jsonl")]) == 2
    assert time.monotonic() - started < 15
    assert f"{server.url}: lost: no frame for more than 1 s" in capsys.readouterr().err
    assert (tmp_path / "out.jsonl").read_text().count("\n") >= 5  # the frames before the drop were all recorded


def test_sign_overlay_tags_each_box_and_keeps_the_status_line_readable_on_a_bright_frame():
    from edgesight.camera_demo.overlay import GREEN, Speed, draw_signs
    from edgesight.runtime.classifier import Prediction

    sky = np.full((480, 640, 3), 235, np.uint8)
    below, at_top = (300, 200, 379, 279), (500, 0, 579, 79)
    canvas = draw_signs(sky, [(below, Prediction("stop", 14, 0.99)), (at_top, Prediction("give way", 13, 0.97))],
                        Speed(30.0, 12.0, 15.0))
    assert canvas[4, 4].max() < 120  # the status line sits on a shaded strip, not on the bright sky
    assert np.array_equal(canvas[below[1] - 3, below[0] + 1], GREEN)  # the label's tag sits just above the box
    assert np.array_equal(canvas[at_top[1] + 4, at_top[0] + 1], GREEN)  # and inside it when the box touches the top
    assert np.array_equal(sky, np.full_like(sky, 235))  # drawn on a copy
