"""Predictions as JSON lines (ARCHITECTURE.md, "Contract: predictions as JSON lines")."""
from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path
from typing import IO, Sequence

from .classifier import Prediction
from .errors import OutputError
from .files import make_parent_folder


def detection(box_xyxy: Sequence[int], prediction: Prediction) -> dict:
    """One classified region: inclusive pixel corners of the original frame, x right, y down."""
    return {
        "box": [int(v) for v in box_xyxy],
        "label": prediction.label,
        "class_id": prediction.class_id,
        "score": round(float(prediction.score), 6),
    }


def frame_record(frame: int, source: str, t: float, latency_ms: float, detections: list[dict]) -> dict:
    return {"frame": frame, "source": source, "t": round(t, 4), "latency_ms": round(latency_ms, 3), "detections": detections}


class JsonLinesWriter:
    """One JSON object per line, flushed per line; "-" writes to standard output."""

    def __init__(self, target: str | Path | None):
        self._stream: IO[str] | None = None
        self._owned = False
        self._path: Path | None = None
        if target is None:
            return
        if str(target) == "-":
            self._stream = sys.stdout
        else:
            path = Path(target)
            make_parent_folder(path)
            try:
                self._stream = open(path, "w", encoding="utf-8")
            except OSError as error:
                raise OutputError(f"{path}: cannot write it ({error.strerror or error}).") from error
            self._owned = True
            self._path = path

    def write(self, record: dict) -> None:
        if self._stream is None:
            return
        try:
            self._stream.write(json.dumps(record) + "\n")
            self._stream.flush()
        except OSError as error:
            if not self._owned:
                raise  # standard output: a reader that went away is the command line's to handle (cli/main.py)
            with contextlib.suppress(OSError):  # its buffer still holds the line: closing fails the same way again
                self._stream.close()
            self._stream = None
            raise OutputError(f"{self._path}: cannot write it ({error.strerror or error}).") from error

    def close(self) -> None:
        if self._owned and self._stream is not None:
            self._stream.close()
        self._stream = None

    def __enter__(self) -> JsonLinesWriter:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
