import importlib.util
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from edgesight.runtime.errors import SourceError
from edgesight.runtime.sources import LiveSource, open_source
from fakes import MjpegServer, RtspServer, write_video

# The loopback cameras: HTTP MJPEG, and RTSP with H.264 (which needs PyAV to encode the frames).
NEEDS_PYAV = pytest.mark.skipif(importlib.util.find_spec("av") is None, reason="the RTSP camera needs PyAV (pip install av) to encode H.264")
LOOPBACK_CAMERAS = [MjpegServer, pytest.param(RtspServer, marks=NEEDS_PYAV)]


@NEEDS_PYAV
def test_an_rtsp_camera_gives_decoded_h264_frames_in_order():
    server = RtspServer(size=(160, 120), fps=10).start()
    try:
        with open_source(server.url, lost_after_s=5) as source:
            frames = [source.read() for _ in range(4)]
    finally:
        server.stop()
    greys = [float(frame.image_bgr.mean()) for frame in frames]
    assert all(frame.image_bgr.shape == (120, 160, 3) and frame.image_bgr.std() < 2 for frame in frames)  # decoded, not smeared
    assert greys == sorted(greys) and greys[-1] - greys[0] >= 16  # frame n is grey 8n: each read is a newer frame


def test_video_file_gives_every_frame_in_order(tiny_video):
    with open_source(tiny_video) as source:
        frames = list(source)
    assert [f.index for f in frames] == list(range(30))
    assert not source.live and source.fps == pytest.approx(15.0)


def test_image_folder_gives_paths_as_origin(tmp_path):
    for name in ("b.png", "a.jpg"):
        cv2.imwrite(str(tmp_path / name), np.zeros((10, 12, 3), np.uint8))
    (tmp_path / "notes.txt").write_text("not an image")
    with open_source(tmp_path) as source:
        origins = [f.origin for f in source]
    assert origins == [str(tmp_path / "a.jpg"), str(tmp_path / "b.png")]


def test_a_folder_of_numbered_frames_is_read_with_its_numbers_in_order(tmp_path):
    names = ["frame10.png", "frame9.png", "frame1.png", "frame2b.png", "frame2.png", "clip.png"]
    for name in names:
        cv2.imwrite(str(tmp_path / name), np.zeros((10, 12, 3), np.uint8))
    with open_source(tmp_path) as source:
        assert [Path(f.origin).name for f in source] == ["clip.png", "frame1.png", "frame2.png", "frame2b.png", "frame9.png", "frame10.png"]


def test_a_glob_pattern_gives_its_images_in_name_order(tmp_path):
    for name in ("shot2.png", "shot1.png", "other.png"):
        cv2.imwrite(str(tmp_path / name), np.zeros((10, 12, 3), np.uint8))
    with open_source(str(tmp_path / "shot*.png")) as source:
        assert [f.origin for f in source] == [str(tmp_path / "shot1.png"), str(tmp_path / "shot2.png")]
    with pytest.raises(SourceError, match=r"pattern .*nothing\*.png: matches no images"):
        open_source(str(tmp_path / "nothing*.png"))


def test_unreadable_image_in_folder_is_named(tmp_path):
    (tmp_path / "broken.png").write_bytes(b"not a png")
    with pytest.raises(SourceError, match="broken.png: not a readable image. Pass --skip-bad-images"):
        list(open_source(tmp_path))


def test_skipping_bad_images_names_each_and_delivers_the_rest_in_order(tmp_path, capsys):
    for name in ("a.png", "c.png"):
        cv2.imwrite(str(tmp_path / name), np.zeros((10, 12, 3), np.uint8))
    for name in ("b.png", "d.jpg"):
        (tmp_path / name).write_bytes(b"truncated")
    for source in (open_source(tmp_path, skip_bad_images=True), open_source(str(tmp_path / "*.*g"), skip_bad_images=True)):
        with source:
            frames = list(source)
        assert [(frame.index, frame.origin) for frame in frames] == [(0, str(tmp_path / "a.png")), (1, str(tmp_path / "c.png"))]
        assert source.skipped == 2
        reported = capsys.readouterr().err.splitlines()
        assert reported == [f"edgesight: skipped {tmp_path / name}: not a readable image." for name in ("b.png", "d.jpg")]


def test_skipping_bad_images_is_refused_for_video_files_and_cameras_before_opening_them(tiny_video):
    for source, kind in ((tiny_video, "video file"), ("97", "camera or stream"), ("rtsp://192.0.2.1/cam", "camera or stream")):
        with pytest.raises(ValueError, match=f"skip_bad_images skips unreadable files of an image folder or glob, and .* is a {kind}"):
            open_source(source, skip_bad_images=True)


def test_missing_sources_and_cameras_are_clear_errors(tmp_path, capfd):
    from edgesight.runtime.sources import _OPENCV_LOG  # OpenCV 5's cv2.utils.logging, or 4.x's cv2

    with pytest.raises(SourceError, match="no such file or folder"):
        open_source(tmp_path / "absent.mp4")
    level = _OPENCV_LOG.getLogLevel()
    with pytest.raises(SourceError, match="camera 97: cannot be opened"):
        open_source("97")
    assert "camera" not in capfd.readouterr().err.lower()  # OpenCV's own lines ("Camera index out of range") held back
    assert _OPENCV_LOG.getLogLevel() == level
    with pytest.raises(SourceError, match="/dev/video99: does not exist"):
        open_source("/dev/video99")


def test_live_reader_keeps_only_the_newest_frame(tmp_path):
    """A slow consumer of a fast source skips frames instead of falling behind, and never sees one twice."""
    clip = write_video(tmp_path / "fast.mp4", frames=120)
    delivered = []
    with LiveSource(str(clip), "test stream", lost_after_s=None) as source:
        for frame in source:
            delivered.append(frame)
            time.sleep(0.02)
    assert not source._thread.is_alive()  # close() stopped the capture thread and released the device
    assert len(delivered) < 120
    assert all(later > earlier for earlier, later in zip([f.captured for f in delivered], [f.captured for f in delivered[1:]]))
    # No frame delivered twice. Whole images, not one pixel: the codec's noise can make two frames' brightness match.
    assert len({f.image_bgr.tobytes() for f in delivered}) == len(delivered)


def test_truncated_video_is_an_error_not_an_empty_run(tiny_video, tmp_path):
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(tiny_video.read_bytes()[: tiny_video.stat().st_size // 3])
    with pytest.raises(SourceError, match="truncated.mp4"):
        list(open_source(truncated))


def _wait_for(condition, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


@pytest.mark.parametrize("camera", LOOPBACK_CAMERAS)
def test_a_dropped_stream_is_reconnected_without_stale_frames_and_may_change_size(camera):
    server = camera(size=(160, 120)).start()
    source = LiveSource(server.url, "loopback camera", lost_after_s=20)
    try:
        before = [source.read() for _ in range(5)]
        assert source.state == "connected" and before[-1].image_bgr.shape == (120, 160, 3)
        server.stop()
        assert _wait_for(lambda: source.state == "reconnecting", 8), source.state
        source.poll(0.0)  # a frame captured just before the drop may still be waiting; it is fresh, not stale
        assert source.poll(0.5) is None  # nothing old is handed out again while the stream is away
        server.start(size=(200, 100))
        after = source.read()
        assert source.state == "connected" and source.reconnects >= 1
        assert after.image_bgr.shape == (100, 200, 3) and after.captured > before[-1].captured
    finally:
        source.close()
        server.stop()


@pytest.mark.parametrize("camera", LOOPBACK_CAMERAS)
def test_a_stream_gone_for_longer_than_the_timeout_is_a_clear_error_not_a_hang(camera):
    server = camera().start()
    source = LiveSource(server.url, "loopback camera", lost_after_s=1.5)
    try:
        source.read()
        server.stop()
        started = time.monotonic()
        with pytest.raises(SourceError, match=r"loopback camera: lost: no frame for more than 1.5 s"):
            while True:
                source.read()
        assert time.monotonic() - started < 10
        assert source.state == "lost"
    finally:
        source.close()


def test_a_video_served_over_http_is_read_through_ffmpeg(tiny_video):
    import functools
    import http.server
    import threading

    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tiny_video.parent))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with open_source(f"http://127.0.0.1:{server.server_address[1]}/{tiny_video.name}", lost_after_s=2) as source:
            first = source.read()
        assert first is not None and first.image_bgr.shape == (120, 160, 3)
    finally:
        server.shutdown()
        server.server_close()


class FakeCamera:
    """A camera as OpenCV's capture shows it: it takes the nearest size and rate it supports, and can drop out."""

    SIZES, RATES, FORMATS = ((640, 480), (1280, 720)), (15.0, 30.0), ("YUYV", "MJPG")

    def __init__(self, frames_before_dropout: int | None = None):
        self.size, self.fps, self.format = self.SIZES[0], 30.0, "YUYV"
        self.asked: list[tuple[int, float]] = []
        self.frames_left = frames_before_dropout

    def isOpened(self):
        return True

    def set(self, prop, value):
        self.asked.append((prop, value))
        if prop == cv2.CAP_PROP_FRAME_WIDTH:
            self.size = max((size for size in self.SIZES if size[0] <= value), default=self.SIZES[0])
        elif prop == cv2.CAP_PROP_FPS:
            self.fps = min(self.RATES, key=lambda rate: abs(rate - value))
        elif prop == cv2.CAP_PROP_FOURCC:
            code = "".join(chr((int(value) >> shift) & 0xFF) for shift in (0, 8, 16, 24))
            self.format = code if code in self.FORMATS else self.format
        return True

    def get(self, prop):
        return {cv2.CAP_PROP_FRAME_WIDTH: self.size[0], cv2.CAP_PROP_FRAME_HEIGHT: self.size[1], cv2.CAP_PROP_FPS: self.fps,
                cv2.CAP_PROP_FOURCC: float(cv2.VideoWriter.fourcc(*self.format))}.get(prop, 0.0)

    def read(self):
        if self.frames_left == 0:
            return False, None
        if self.frames_left is not None:
            self.frames_left -= 1
        time.sleep(0.01)
        return True, np.zeros((self.size[1], self.size[0], 3), np.uint8)

    def release(self):
        pass


def test_a_camera_is_asked_for_its_size_and_rate_and_what_it_gives_instead_is_reported(monkeypatch, capsys, tiny_video):
    from edgesight.runtime import sources
    from edgesight.runtime.camera import CameraSettings

    cameras = []
    monkeypatch.setattr(sources, "_capture", lambda target: cameras.append(FakeCamera()) or cameras[-1])
    with open_source("0", camera=CameraSettings.parse("1280x720", 30, "MJPG")) as source:
        assert source.read().image_bgr.shape == (720, 1280, 3)
    assert (cv2.CAP_PROP_FRAME_WIDTH, 1280) in cameras[0].asked and (cv2.CAP_PROP_FPS, 30) in cameras[0].asked
    assert cameras[0].asked[0][0] == cv2.CAP_PROP_FOURCC and cameras[0].format == "MJPG"  # the format first
    assert capsys.readouterr().err == ""  # given as asked: nothing to say
    with open_source(tiny_video, camera=CameraSettings()):  # nothing asked: any source takes it
        pass
    with open_source("0", camera=CameraSettings.parse("1920x1080", 60, "H264")) as source:
        assert source.read().image_bgr.shape == (720, 1280, 3)
    assert capsys.readouterr().err == ("edgesight: camera 0 gives 'YUYV' pixels for the 'H264' asked and 1280x720 frames for the "
                                       "1920x1080 asked and 30 frames/s for the 60 asked\n")


def test_a_reopened_camera_is_asked_for_the_same_settings(monkeypatch):
    from edgesight.runtime import sources
    from edgesight.runtime.camera import CameraSettings

    cameras = []
    monkeypatch.setattr(sources, "_capture", lambda target: cameras.append(FakeCamera(frames_before_dropout=2)) or cameras[-1])
    monkeypatch.setattr(sources, "RECONNECT_FIRST_DELAY_S", 0.01)
    with open_source("0", camera=CameraSettings.parse("1280x720")) as source:
        frames = [source.read() for _ in range(4)]
    assert len(cameras) >= 2 and all((cv2.CAP_PROP_FRAME_WIDTH, 1280) in camera.asked for camera in cameras)
    assert {frame.image_bgr.shape for frame in frames} == {(720, 1280, 3)}


@pytest.mark.parametrize("size, fps, message", [("1280by720", None, "camera_size must be WIDTHxHEIGHT in pixels"),
                                                 ("0x720", None, "camera_size must be WIDTHxHEIGHT"),
                                                 (None, 0.0, r"camera_fps must be in \(0, 1000\]")])
def test_bad_camera_settings_are_refused(size, fps, message):
    from edgesight.runtime.camera import CameraSettings

    with pytest.raises(ValueError, match=message):
        CameraSettings.parse(size, fps)
    with pytest.raises(ValueError, match="camera_format must be a four-character code such as MJPG or YUYV. Received: camera_format='MJPEG'"):
        CameraSettings.parse(pixel_format="MJPEG")
    with pytest.raises(ValueError, match="camera width and height must both be given, in pixels .* or neither. Received: width=1280, height=None"):
        CameraSettings(1280)


def test_camera_settings_are_refused_for_sources_that_are_not_cameras(tiny_video):
    from edgesight.runtime.camera import CameraSettings

    for source in (tiny_video, "rtsp://192.0.2.1/cam"):
        with pytest.raises(ValueError, match="camera_size, camera_fps and camera_format are asked of a camera .* is none"):
            open_source(source, camera=CameraSettings.parse("1280x720"))
