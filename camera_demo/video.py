"""Annotated-video output, written atomically: the file appears whole when the demo ends."""
from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
from edgesight.runtime.errors import OutputError, SourceError
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

    def close(self, check: bool = True) -> None:
        """Finish the file; a run that produced no frame leaves no file, and a file that plays back no frame is removed.

        Raises:
            OutputError: (with `check`) the finished file plays back fewer frames than were written. OpenCV's writer
                reports no failure, so a disk that filled up mid-run showed only when the video was played.
        """
        if self._writer is None:
            self._file.discard()
            return
        self._writer.release()
        self._writer = None
        playable = _frame_count(self._file.temporary)
        free_mb = shutil.disk_usage(self._file.temporary).free / 1e6  # before a removal frees the space
        if playable:
            self._file.commit()  # a short video is still the frames that were saved
        self._file.discard()
        if check and playable < self.frames:
            kept = f"it holds {playable} of the {self.frames} frames written" if playable else \
                f"the finished file played back none of the {self.frames} frames written, so none is left"
            raise OutputError(f"{self._file.path}: the video was not written whole: {kept} "
                              f"({free_mb:.1f} MB free on its disk; a full disk is the usual cause).")

    def __enter__(self) -> VideoSink:
        return self

    def __exit__(self, exc_type, *exc_info) -> None:
        self.close(check=exc_type is None)  # an error already on its way out is the one to report


def _frame_count(path: Path) -> int:
    """Frames a video file plays back, by its container's index (exact for mp4v in every suffix of VIDEO_SUFFIXES)."""
    capture = cv2.VideoCapture(str(path))
    try:
        return max(0, int(capture.get(cv2.CAP_PROP_FRAME_COUNT))) if capture.isOpened() else 0
    finally:
        capture.release()
