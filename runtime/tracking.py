"""Signs kept stable over video: a sign is confirmed once seen in k of the last n frames.

A single frame's detection can be a flicker (a red car, a leaf); a real sign stays put for many
frames. Detections are matched to tracks frame to frame by box overlap, whatever class they read
as, and a track reports the class it read most often over its window, so one misread frame does
not change the label on screen.
"""
from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field

from .classifier import Prediction
from .locate import Box, iou
from .signs import FoundSign


@dataclass
class Track:
    track_id: int
    box: Box
    seen: deque  # per frame of the window: the Prediction seen, or None

    def hits(self) -> int:
        return sum(prediction is not None for prediction in self.seen)

    def prediction(self) -> Prediction:
        """The class read most often in the window (ties: the better score), with its best score."""
        votes = Counter(prediction.class_id for prediction in self.seen if prediction is not None)
        class_id = max(votes, key=lambda cid: (votes[cid], max(p.score for p in self.seen if p is not None and p.class_id == cid)))
        return max((p for p in self.seen if p is not None and p.class_id == class_id), key=lambda p: p.score)


@dataclass
class SignTracker:
    confirm_hits: int = 3  # k: frames a sign must be seen in ...
    window: int = 5  # n: ... out of the last n frames
    min_iou: float = 0.3  # boxes of one sign in consecutive frames overlap at least this much
    tracks: list[Track] = field(default_factory=list)
    _next_id: int = 0

    def __post_init__(self):
        if not 1 <= self.confirm_hits <= self.window:
            raise ValueError(f"need 1 <= confirm_hits <= window. Received: confirm_hits={self.confirm_hits}, window={self.window}")

    def update(self, found: list[FoundSign]) -> list[tuple[int, FoundSign]]:
        """Feed one frame's detections; returns the confirmed signs as (track id, sign), best score first."""
        unmatched = list(range(len(self.tracks)))
        matched: dict[int, FoundSign] = {}
        for sign in sorted(found, key=lambda item: -item.prediction.score):
            overlaps = [(iou(sign.box, self.tracks[t].box), t) for t in unmatched]
            overlap, track = max(overlaps, default=(0.0, -1))
            if overlap >= self.min_iou:
                unmatched.remove(track)
                matched[track] = sign
            else:
                self.tracks.append(Track(self._next_id, sign.box, deque([None] * (self.window - 1), maxlen=self.window)))
                self._next_id += 1
                matched[len(self.tracks) - 1] = sign
        for index, track in enumerate(self.tracks):
            sign = matched.get(index)
            track.seen.append(sign.prediction if sign else None)
            if sign:
                track.box = sign.box
        self.tracks = [track for track in self.tracks if track.hits()]
        # A confirmed sign missed in a frame or two stays on (at its last box): that is the stability asked for.
        confirmed = [(track.track_id, FoundSign(track.box, track.prediction())) for track in self.tracks
                     if track.hits() >= self.confirm_hits]
        return sorted(confirmed, key=lambda item: -item[1].prediction.score)
