"""Errors the runtime raises for bad input: each names the file, field or argument at fault."""
from __future__ import annotations


class EdgesightError(Exception):
    """Base class: a problem with the user's input, reported without a library traceback."""


class ModelFileError(EdgesightError, ValueError):
    """A model file is missing, unreadable, or does not follow the edgesight metadata contract."""


class DatasetError(EdgesightError, ValueError):
    """A dataset archive, folder, CSV row or image is missing or malformed."""


class DatasetNotFoundError(DatasetError):
    """No dataset in the layout a built-in task expects where one was named (a user's own data may be there instead)."""


class NoImagesError(DatasetError):
    """An image-folder dataset holds no image of the split asked for."""


class SourceError(EdgesightError, RuntimeError):
    """A frame source (camera, file, stream, folder) cannot be opened or read."""


class OutputError(EdgesightError, OSError):
    """An output file (results, video, JSON lines, model) cannot be created where it was asked for."""
