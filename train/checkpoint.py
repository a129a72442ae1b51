"""Per-epoch checkpoints that survive an interruption at any moment.

Each epoch writes `checkpoints/epoch-NNN.keras` (weights and optimizer state) atomically, then
`state.json` naming it with the history so far; the previous checkpoint is removed only after that.
A run killed mid-write therefore always has a state.json pointing at a whole checkpoint.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import keras
from edgesight.runtime.files import atomic_path, write_json_atomic

STATE_FILE = "state.json"
CHECKPOINT_DIR = "checkpoints"


def read_state(run_dir: Path) -> dict | None:
    path = run_dir / STATE_FILE
    if not path.is_file():
        return None
    try:
        state = json.loads(path.read_text())
        return state if isinstance(state, dict) and "epochs_done" in state else None
    except json.JSONDecodeError:
        raise ValueError(f"{path}: not valid JSON; the run's state is damaged.") from None


class EpochCheckpoint(keras.callbacks.Callback):
    """Save the full model and the history after every epoch."""

    def __init__(self, run_dir: Path, history: dict[str, list[float]], total_epochs: int, seconds_before: float = 0.0):
        super().__init__()
        self.run_dir = run_dir
        self.history = history
        self.total_epochs = total_epochs
        self.train_seconds = seconds_before  # wall time over all sessions of this run
        self._epoch_started = 0.0

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._epoch_started = time.monotonic()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.train_seconds += time.monotonic() - self._epoch_started
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(float(value))
        folder = self.run_dir / CHECKPOINT_DIR
        checkpoint = folder / f"epoch-{epoch + 1:03d}.keras"
        with atomic_path(checkpoint) as temporary:
            self.model.save(temporary)
        write_json_atomic(
            self.run_dir / STATE_FILE,
            {"epochs_done": epoch + 1, "total_epochs": self.total_epochs,
             "checkpoint": str(checkpoint.relative_to(self.run_dir)), "train_seconds": self.train_seconds,
             "history": self.history},
        )
        for old in folder.glob("epoch-*.keras"):
            if old != checkpoint:
                old.unlink(missing_ok=True)
