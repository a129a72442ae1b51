"""Frame sources: camera index, video file, stream URL or image folder, behind one interface.

Live sources (cameras, streams) are read by a thread that keeps only the newest frame, so a slow
consumer sees the present, not a growing queue of the past. Files and folders are read in order.
"""
from __future__ import annotations

import contextlib
import glob
import os
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from .camera import CameraSettings
from .datasets import SKIP_HINT, report
from .errors import SourceError
from .image_folder import IMAGE_SUFFIXES


@dataclass(frozen=True)
class Frame:
    image_bgr: np.ndarray
    index: int  # 0-based count of frames delivered by this source
    captured: float  # time.monotonic() when the frame was read from the device or file
    origin: str  # the source, or the file path for image folders


class FrameSource:
    """Iterate frames until the input ends; close() releases the device. Use as a context manager."""

    name: str = ""
    live: bool = False
    fps: float | None = None

    def read(self) -> Frame | None:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __iter__(self) -> Iterator[Frame]:
        while (frame := self.read()) is not None:
            yield frame

    def __enter__(self) -> FrameSource:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


# A stream that stalls without closing would otherwise block a read for FFmpeg's default of 30 s or more.
STREAM_TIMEOUT_MS = 5000

# OpenCV 5 keeps its log level in cv2.utils.logging; the 4.x releases edgesight supports (4.9 on) keep it at the top
# level, without the level constants.
_OPENCV_LOG = getattr(cv2.utils, "logging", cv2)
_OPENCV_LOG_FATAL = 1  # cv::utils::logging::LOG_LEVEL_FATAL in both


class _OpenCVQuiet:
    """OpenCV's own log held to fatal errors while a capture opens: a failed open would print its backends' lines (such
    as "Camera index out of range"), on every reconnection attempt too, beside the state and the one error that name
    the source. The level is the process's, and live sources reopen in their own threads: the outermost user restores it.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._users = 0
        self._level_before = None

    @contextlib.contextmanager
    def __call__(self):
        with self._lock:
            if self._users == 0:
                self._level_before = _OPENCV_LOG.getLogLevel()
                _OPENCV_LOG.setLogLevel(_OPENCV_LOG_FATAL)
            self._users += 1
        try:
            yield
        finally:
            with self._lock:
                self._users -= 1
                if self._users == 0:
                    _OPENCV_LOG.setLogLevel(self._level_before)


_opencv_quiet = _OpenCVQuiet()


def _capture(target: int | str) -> cv2.VideoCapture:
    with _opencv_quiet():
        if isinstance(target, str) and "://" in target:
            return cv2.VideoCapture(target, cv2.CAP_FFMPEG, [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, STREAM_TIMEOUT_MS,
                                                             cv2.CAP_PROP_READ_TIMEOUT_MSEC, STREAM_TIMEOUT_MS])
        return cv2.VideoCapture(target)


def _open_capture(target: int | str, description: str) -> cv2.VideoCapture:
    capture = _capture(target)
    if not capture.isOpened():
        capture.release()
        raise SourceError(f"{description}: cannot be opened (no such device, unsupported format, or no access).")
    return capture


class VideoFileSource(FrameSource):
    """Every frame of a video file, in order."""

    def __init__(self, path: Path):
        self.name = str(path)
        self._capture = _open_capture(str(path), f"video file {path}")
        reported = self._capture.get(cv2.CAP_PROP_FPS)
        self.fps = reported if reported and 0 < reported < 1000 else None
        self._index = 0

    def read(self) -> Frame | None:
        ok, image = self._capture.read()
        if not ok or image is None:
            if self._index == 0:
                raise SourceError(f"video file {self.name}: no frame could be decoded (truncated or corrupt?).")
            return None
        frame = Frame(image, self._index, time.monotonic(), self.name)
        self._index += 1
        return frame

    def close(self) -> None:
        self._capture.release()


def name_order(path: Path) -> list:
    """Sort key: names in order with their numbers as numbers, as a person reads them (frame2.jpg before frame10.jpg).
    Splitting on digit runs alternates text and number at the same places in every key, so keys always compare."""
    return [int(part) if index % 2 else part for index, part in enumerate(re.split(r"(\d+)", str(path)))]


def list_images(folder_or_pattern: Path | str) -> list[Path]:
    """The image files of a folder (a Path) or matching a glob pattern (a str), in name order (`name_order`).

    Raises:
        SourceError: none there, naming the folder or pattern and the image suffixes looked for.
    """
    if isinstance(folder_or_pattern, Path):
        candidates, described = folder_or_pattern.iterdir(), f"image folder {folder_or_pattern}"
    else:
        candidates, described = (Path(name) for name in glob.glob(folder_or_pattern)), f"pattern {folder_or_pattern}"
    paths = sorted((p for p in candidates if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()), key=name_order)
    if not paths:
        raise SourceError(f"{described}: matches no images ({', '.join(sorted(IMAGE_SUFFIXES))}).")
    return paths


def read_image(path: Path | str, skip_bad: bool) -> np.ndarray | None:
    """A BGR image file; one that does not decode is an error naming it, or with `skip_bad` is reported by name on
    stderr and gives None."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        if Path(path).suffix.lower() not in IMAGE_SUFFIXES and _plays_as_video(path):
            reason = f"a video, not an image (`edgesight demo --source {path} --jsonl FILE` classifies each of its frames)"
        else:
            reason = "not a readable image"
        if not skip_bad:
            raise SourceError(f"{path}: {reason}. {SKIP_HINT}")
        report(f"skipped {path}: {reason}.")
    return image


def _plays_as_video(path: Path | str) -> bool:
    """Whether OpenCV decodes a frame of the file as a video: asked only of files that do not decode as images and are
    not named as one (FFmpeg's decoders would print their complaint about a broken PNG or JPEG)."""
    capture = _capture(str(path))
    try:
        return capture.isOpened() and capture.read()[0]
    finally:
        capture.release()


class ImageFolderSource(FrameSource):
    """The images of a folder, or matching a glob pattern, in name order.

    A file that does not decode is an error naming it; with `skip_bad` it is reported by name on stderr instead, counted
    in `skipped`, and the next image follows (frame indices count the images delivered).
    """

    def __init__(self, folder_or_pattern: Path | str, skip_bad: bool = False):
        self.name = str(folder_or_pattern)
        self._paths = list_images(folder_or_pattern)
        self._skip_bad = skip_bad
        self._next_path = 0
        self._index = 0
        self.skipped = 0

    def read(self) -> Frame | None:
        while self._next_path < len(self._paths):
            path = self._paths[self._next_path]
            self._next_path += 1
            image = read_image(path, self._skip_bad)
            if image is not None:
                frame = Frame(image, self._index, time.monotonic(), str(path))
                self._index += 1
                return frame
            self.skipped += 1
        return None


CONNECTED, RECONNECTING, LOST = "connected", "reconnecting", "lost"
RECONNECT_FIRST_DELAY_S, RECONNECT_MAX_DELAY_S = 0.25, 4.0


class LiveSource(FrameSource):
    """A camera or stream read by a background thread that keeps only the newest frame.

    When the device or stream stops giving frames, the thread reopens it with a growing delay
    (0.25 s, doubling to 4 s) and `state` says "reconnecting"; a reader is never given a frame
    twice, so nothing stale reaches the model. After `lost_after_s` without a frame the state is
    "lost" and `read` raises. With `lost_after_s=None` the first failed read ends the source instead.
    A camera's `camera` settings (pixel format, frame size and rate) are asked for at every opening, reopenings included.
    """

    live = True

    def __init__(self, target: int | str, description: str, first_frame_timeout_s: float = 10.0,
                 lost_after_s: float | None = 30.0, camera: CameraSettings | None = None):
        if lost_after_s is not None and lost_after_s <= 0:
            raise ValueError(f"lost_after_s must be > 0 or None. Received: lost_after_s={lost_after_s}")
        self.name = description
        self._target = target
        self._camera = camera
        self._capture = self._configured(_open_capture(target, description))
        reported = self._capture.get(cv2.CAP_PROP_FPS)
        self.fps = reported if reported and 0 < reported < 1000 else None
        self.state = CONNECTED
        self.reconnects = 0  # times the device was reopened
        self._gone_since: float | None = None  # when the last frame came before an outage
        self._lost_after_s = lost_after_s
        self._condition = threading.Condition()
        self._latest: tuple[np.ndarray, float] | None = None
        self._sequence = 0  # frames captured so far; lets read() refuse a frame it has already given
        self._delivered = 0
        self._index = 0
        self._ended = False
        self._stop = threading.Event()
        self._first_frame_timeout_s = first_frame_timeout_s
        self._thread = threading.Thread(target=self._capture_loop, name=f"capture {description}", daemon=True)
        self._thread.start()

    def _configured(self, capture: cv2.VideoCapture) -> cv2.VideoCapture:
        if self._camera is not None and self._camera.asked:
            note = self._camera.apply(capture, self.name)
            if note:
                report(note)
        return capture

    def _set_state(self, state: str, ended: bool = False) -> None:
        with self._condition:
            self.state = state
            self._ended = self._ended or ended
            self._condition.notify_all()

    def _capture_loop(self) -> None:
        while not self._stop.is_set():
            ok, image = self._capture.read()
            if ok and image is not None and image.size:
                with self._condition:
                    self._latest = (image, time.monotonic())
                    self._sequence += 1
                    self.state = CONNECTED
                    self._condition.notify_all()
                self._gone_since = None
                continue
            if self._lost_after_s is None:
                self._set_state(self.state, ended=True)
                return
            if not self._reopen():
                return

    def _reopen(self) -> bool:
        """Reopen the device until it gives a capture again (True) or the outage outlasts lost_after_s (False)."""
        self._set_state(RECONNECTING)
        self._capture.release()
        # Counted from the last frame, not from this attempt: a stream that opens but gives nothing is still gone.
        if self._gone_since is None:
            self._gone_since = time.monotonic()
        delay = RECONNECT_FIRST_DELAY_S
        while not self._stop.wait(delay):
            if time.monotonic() - self._gone_since > self._lost_after_s:
                self._set_state(LOST, ended=True)
                return False
            capture = _capture(self._target)
            if capture.isOpened():
                self._capture = self._configured(capture)
                self.reconnects += 1
                return True  # "connected" again once a frame arrives
            capture.release()
            delay = min(2 * delay, RECONNECT_MAX_DELAY_S)
        return False

    def poll(self, wait_s: float) -> Frame | None:
        """The newest frame not yet given, or None if none came within `wait_s` (look at `state`).

        Raises:
            SourceError: the source is lost, or gave no first frame in time.
            EOFError: a source without reconnection ended.
        """
        first = self._index == 0
        with self._condition:
            self._condition.wait_for(lambda: self._sequence > self._delivered or self._ended,
                                     self._first_frame_timeout_s if first else wait_s)
            if self._sequence == self._delivered:
                if self.state == LOST:
                    raise SourceError(f"{self.name}: lost: no frame for more than {self._lost_after_s:g} s "
                                      f"despite reconnecting.")
                if self._ended:
                    if first:
                        raise SourceError(f"{self.name}: opened, but gave no frame.")
                    raise EOFError(self.name)
                if first:
                    raise SourceError(f"{self.name}: no frame for {self._first_frame_timeout_s:.0f} s.")
                return None
            image, captured = self._latest  # type: ignore[misc]
            self._delivered = self._sequence
        frame = Frame(image, self._index, captured, self.name)
        self._index += 1
        return frame

    def read(self) -> Frame | None:
        """The next fresh frame, waiting through reconnections; None when a source without reconnection ends."""
        try:
            while (frame := self.poll(1.0)) is None:
                pass
        except EOFError:
            return None
        return frame

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2.0)
        self._capture.release()


def open_source(source: str | int | os.PathLike, lost_after_s: float = 30.0, skip_bad_images: bool = False,
                camera: CameraSettings | None = None) -> FrameSource:
    """Open a camera index ("0"), a /dev/video* device, a stream URL, a video file, an image folder or a glob ("shots/*.jpg").

    `skip_bad_images`: an image folder or glob skips (and reports) files that do not decode instead of stopping there.
    `camera`: the pixel format, frame size and rate a camera is asked for.

    Raises:
        SourceError: the source does not exist or cannot be opened.
        ValueError: skip_bad_images for a source that is no image folder or glob, or camera settings for one that is no
            camera.
    """
    text = str(source)
    path = Path(text)
    is_camera = text.isdigit() or text.startswith("/dev/video")
    if camera is not None and camera.asked and not is_camera:
        raise ValueError(f"camera_size, camera_fps and camera_format are asked of a camera (an index or a /dev/video* "
                         f"device), and {text} is none: streams and files come as they were made. Received: source={text!r}")
    live = is_camera or "://" in text
    image_set = not live and (path.is_dir() or glob.has_magic(text))
    if skip_bad_images and not image_set and (live or path.is_file()):  # before a camera is opened, which takes seconds
        raise ValueError(f"skip_bad_images skips unreadable files of an image folder or glob, and {text} is a "
                         f"{'camera or stream' if live else 'video file'}. Received: source={text!r}, skip_bad_images=True")
    if text.isdigit():
        return LiveSource(int(text), f"camera {text}", lost_after_s=lost_after_s, camera=camera)
    if "://" in text:
        return LiveSource(text, text, lost_after_s=lost_after_s)
    if text.startswith("/dev/video"):
        if not path.exists():
            raise SourceError(f"camera device {text}: does not exist.")
        return LiveSource(text, f"camera device {text}", lost_after_s=lost_after_s, camera=camera)
    if image_set:
        return ImageFolderSource(path if path.is_dir() else text, skip_bad_images)
    if path.is_file():
        return VideoFileSource(path)
    raise SourceError(
        f"{text}: no such file or folder; expected a camera index, a /dev/video* path, a stream URL, "
        "a video file, an image folder or a glob pattern of images."
    )
