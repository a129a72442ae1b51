"""Annotated-video output, written atomically: the file appears whole when the demo ends."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from edgesight.runtime.errors import SourceError
from edgesight.runtime.files import AtomicFile


class VideoSink:
    """Write BGR frames to an MP4 (mp4v) file; frames of another size are scaled to the first one's."""

    def __init__(self, path: str | Path, fps: float):
        self._file = AtomicFile(path)
        self.fps = fps
        self._writer: cv2.VideoWriter | None = None
        self._size: tuple[int, int] | None = None
        self.frames = 0

    def write(self, frame_bgr: np.ndarray) -> None:
        if self._writer is None:
            self._size = (frame_bgr.shape[1], frame_bgr.shape[0])
            self._writer = cv2.VideoWriter(str(self._file.temporary), cv2.VideoWriter_fourcc(*"mp4v"), self.fps, self._size)
            if not self._writer.isOpened():
                raise SourceError(f"{self._file.path}: cannot write video (this OpenCV build has no mp4v encoder).")
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
