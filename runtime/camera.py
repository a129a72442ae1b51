"""What a camera is asked for when it opens: its pixel format, frame size and rate.

OpenCV opens a camera at its driver's default, often 640x480 whatever the sensor can do. Many USB cameras give their
larger sizes at full rate only as MJPG, which is why the format can be asked for too. A camera may give another
format, size or rate than the one asked for (the nearest it supports); that is reported, never passed over in silence.
Streams and files come as they are sent, so these settings apply to cameras only.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import cv2

MAX_SIDE = 16384  # pixels: far beyond any camera's, yet refuses a typo's extra digits
CAMERA_SIZE_HELP = ("with a camera as the source: the frame size to ask it for, WIDTHxHEIGHT such as 1280x720 (default: "
                    "the driver's); the camera may give the nearest size it supports, which is reported")
CAMERA_FPS_HELP = "with a camera as the source: the frame rate to ask it for (default: the driver's); reported if not given"
CAMERA_FORMAT_HELP = ("with a camera as the source: the pixel format to ask it for, a four-character code such as MJPG "
                      "(which many USB cameras need for large frames at full rate) or YUYV (default: the driver's)")


@dataclass(frozen=True)
class CameraSettings:
    """A pixel format, frame size and rate to ask a camera for; None leaves the driver's."""

    width: int | None = None  # with height, or neither
    height: int | None = None
    fps: float | None = None
    pixel_format: str | None = None  # a four-character code (FOURCC), such as "MJPG"

    def __post_init__(self):
        sides = (self.width, self.height)
        if sides != (None, None) and not all(isinstance(side, int) and 0 < side <= MAX_SIDE for side in sides):
            raise ValueError(f"camera width and height must both be given, in pixels (1 to {MAX_SIDE}), or neither. "
                             f"Received: width={self.width}, height={self.height}")
        if self.fps is not None and not 0 < self.fps <= 1000:
            raise ValueError(f"camera_fps must be in (0, 1000] frames per second. Received: camera_fps={self.fps}")
        if self.pixel_format is not None and not re.fullmatch(r"[0-9A-Za-z ]{4}", self.pixel_format):
            raise ValueError(f"camera_format must be a four-character code such as MJPG or YUYV. "
                             f"Received: camera_format={self.pixel_format!r}")

    @classmethod
    def parse(cls, size: str | None = None, fps: float | None = None, pixel_format: str | None = None) -> CameraSettings:
        """From --camera-size WIDTHxHEIGHT, --camera-fps and --camera-format, any left out."""
        width = height = None
        if size is not None:
            match = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", size)
            if not match or not all(0 < int(side) <= MAX_SIDE for side in match.groups()):
                raise ValueError(f"camera_size must be WIDTHxHEIGHT in pixels, such as 1280x720. Received: camera_size={size!r}")
            width, height = (int(side) for side in match.groups())
        return cls(width, height, fps, pixel_format)

    @property
    def asked(self) -> bool:
        return self.width is not None or self.fps is not None or self.pixel_format is not None

    def apply(self, capture: cv2.VideoCapture, description: str) -> str | None:
        """Ask an open capture for these settings; a note naming what the camera gives instead, if it does (else None)."""
        if self.pixel_format is not None:  # first: a V4L2 camera lists its sizes and rates per format
            capture.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter.fourcc(*self.pixel_format))
        if self.width is not None:
            capture.set(cv2.CAP_PROP_FRAME_WIDTH, self.width)
            capture.set(cv2.CAP_PROP_FRAME_HEIGHT, self.height)
        if self.fps is not None:
            capture.set(cv2.CAP_PROP_FPS, self.fps)
        differences = []
        if self.pixel_format is not None:
            code = int(capture.get(cv2.CAP_PROP_FOURCC))
            given_format = "".join(chr((code >> shift) & 0xFF) for shift in (0, 8, 16, 24))
            if given_format != self.pixel_format:
                differences.append(f"{given_format!r} pixels for the {self.pixel_format!r} asked")
        if self.width is not None:
            given = (round(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), round(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)))
            if given != (self.width, self.height):
                differences.append(f"{given[0]}x{given[1]} frames for the {self.width}x{self.height} asked")
        if self.fps is not None:
            given_fps = capture.get(cv2.CAP_PROP_FPS)
            if abs(given_fps - self.fps) > 0.5:
                differences.append(f"{given_fps:g} frames/s for the {self.fps:g} asked")
        return f"{description} gives {' and '.join(differences)}" if differences else None
