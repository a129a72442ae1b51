"""Annotated-video output, written atomically: the file appears whole when the demo ends."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from edgesight.runtime.errors import SourceError
from edgesight.runtime.files import AtomicFile

# Containers OpenCV's FFmpeg backend writes mp4v video into; it picks the container by the file's suffix.
VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov", ".mkv", ".avi")


def check_video_path(path: str | Path) -> None:
    """Refuse, before any work, a video path whose suffix names no container for mp4v (OpenCV would fail only at the
    first frame)."""
    if Path(path).suffix.lower() not in VIDEO_SUFFIXES:
        raise ValueError(f"save_video must name a video file ending in {', '.join(VIDEO_SUFFIXES)}. Received: save_video={str(path)!r}")


class VideoSink:
    """Write BGR frames to an MP4 (mp4v) file, or another container by its suffix (one of VIDEO_SUFFIXES, which the demo
    checks with `check_video_path` before any work); frames of another size are scaled to the first one's."""

    def __init__(self, path: str | Path, fps: float):
        self._file = AtomicFile(path)
        self.fps = fps
        self._writer: cv2.VideoWriter | None = None
        self._size: tuple[int, int] | None = None
        self.frames = 0

    def write(self, frame_bgr: np.ndarray) -> None:
        if self._writer is None:
            self._size = (frame_bgr.shape[1], frame_bgr.shape[0])
            writer = cv2.VideoWriter(str(self._file.temporary), cv2.VideoWriter_fourcc(*"mp4v"), self.fps, self._size)
            if not writer.isOpened():  # close() then leaves no file behind, not an empty one
                writer.release()
                raise SourceError(f"{self._file.path}: cannot write video (this OpenCV build has no mp4v encoder).")
            self._writer = writer
        if (frame_bgr.shape[1], frame_bgr.shape[0]) != self._size:
            frame_bgr = cv2.resize(frame_bgr, self._size, interpolation=cv2.INTER_AREA)
        self._writer.write(frame_bgr)
        self.frames += 1

    def close(self) -> None:
        """Finish the file; a run that produced no frame leaves no file."""
        if self._writer is not None:
            self._writer.release()
            self._writer = None
            self._file.commit()
        self._file.discard()

    def __enter__(self) -> VideoSink:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
