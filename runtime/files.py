"""Atomic writes: a reader sees the old file or the whole new one, never half of one."""
from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator

from .errors import OutputError


def make_folder(folder: Path, wanted_for: str | os.PathLike) -> None:
    """Create `folder` and its parents. The error names what the folder is wanted for (an output file, or the option
    that named the folder) and why it cannot be made, so the user sees which option is at fault."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError) as error:
        blocker = next((part for part in (folder, *folder.parents) if part.exists() and not part.is_dir()), folder)
        raise OutputError(f"{wanted_for}: cannot create the folder {folder}: {blocker} is a file, not a folder.") from error
    except OSError as error:
        raise OutputError(f"{wanted_for}: cannot create the folder {folder} ({error.strerror or error}).") from error


def make_parent_folder(path: Path) -> None:
    """Create the folder `path` is to be written in."""
    make_folder(path.parent, path)


class AtomicFile:
    """A temporary file beside `path` that becomes `path` on commit() and vanishes on discard().

    The suffix is kept so writers that choose a format by name (keras, onnx, cv2) pick the right one.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        make_parent_folder(self.path)
        try:
            handle, temporary = tempfile.mkstemp(prefix=f".{self.path.stem}.", suffix=self.path.suffix, dir=self.path.parent)
        except OSError as error:
            raise OutputError(f"{self.path}: cannot write in {self.path.parent} ({error.strerror or error}).") from error
        os.close(handle)
        self.temporary = Path(temporary)

    def commit(self) -> None:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(self.temporary, 0o666 & ~umask)  # mkstemp makes 0600; give the file the usual mode
        os.replace(self.temporary, self.path)

    def discard(self) -> None:
        self.temporary.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success rename it onto `path`, on error remove it."""
    target = AtomicFile(path)
    try:
        yield target.temporary
        target.commit()
    finally:
        target.discard()


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as temporary:
        with open(temporary, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    write_bytes_atomic(path, text.encode("utf-8"))


def write_json_atomic(path: str | os.PathLike, value: Any) -> None:
    write_text_atomic(path, json.dumps(value, indent=2) + "\n")
