"""Image-folder datasets: `[root/]{train,test}/<class name>/<image>` in a folder, .zip, .tar or .tgz.

The CIFAR-10 copy in ../shared/datasets and most users' own data come this way.
"""
from __future__ import annotations

import hashlib
import tarfile
import zipfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Callable

import numpy as np

from .datasets import LabelledRegions, decode_images
from .errors import DatasetError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".ppm", ".pgm", ".tif", ".tiff"}
SPLITS = ("train", "test")
TEST_ONE_IN = 5


def _archive_files(data: Path, read: bool = True) -> Iterator[tuple[str, bytes | None]]:
    """(inner POSIX path, bytes or None) of every image file, in one pass (a .tgz allows no random access)."""
    if data.is_dir():
        for path in sorted(data.rglob("*")):
            if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file():
                yield path.relative_to(data).as_posix(), path.read_bytes() if read else None
        return
    if not data.is_file():
        raise DatasetError(f"{data}: no such folder or archive.")
    name = data.name.lower()
    try:
        if name.endswith(".zip"):
            with zipfile.ZipFile(data) as bundle:
                for member in sorted(bundle.namelist()):
                    if PurePosixPath(member).suffix.lower() in IMAGE_SUFFIXES:
                        yield member, bundle.read(member) if read else None
        elif name.endswith((".tar", ".tgz", ".tar.gz")):
            with tarfile.open(data, "r:*") as bundle:
                for member in bundle:
                    if member.isfile() and PurePosixPath(member.name).suffix.lower() in IMAGE_SUFFIXES:
                        yield member.name, bundle.extractfile(member).read() if read else None
        else:
            raise DatasetError(f"{data}: expected a folder, .zip, .tar or .tgz image-folder archive.")
    except (zipfile.BadZipFile, tarfile.TarError, OSError, EOFError) as error:
        raise DatasetError(f"{data}: cannot be read as an archive ({error}).") from None


def _class_and_split(inner: str) -> tuple[str | None, str]:
    """The split folder (or None) and the class folder of an image path."""
    parts = PurePosixPath(inner).parts[:-1]
    for index, part in enumerate(parts):
        if part in SPLITS and index + 1 < len(parts):
            return part, parts[index + 1]
    return None, parts[-1] if parts else ""


def held_out_for_test(inner: str) -> bool:
    """The fixed split of a tree without train/ and test/: one image in five, chosen by a hash of its path.

    A hash, not a random draw, so that train, export and eval agree without sharing any state.
    """
    return int(hashlib.sha256(inner.encode()).hexdigest(), 16) % TEST_ONE_IN == 0


def discover_labels(data: str | Path) -> tuple[str, ...]:
    """Class names of an image-folder dataset: its class folder names, sorted."""
    names = sorted({_class_and_split(inner)[1] for inner, _ in _archive_files(Path(data), read=False)} - {""})
    if len(names) < 2:
        raise DatasetError(f"{data}: an image-folder dataset needs at least two class folders. Received: {names}")
    return tuple(names)


def load_image_folder(
    data: str | Path,
    split: str,
    labels: tuple[str, ...],
    progress: Callable[[int, int], None] | None = None,
) -> LabelledRegions:
    """Images of one split whose class is their folder name; the whole image is the labelled region.

    Args:
        data: folder or archive with `train/` and `test/` folders of class folders, or of class
            folders alone (then one image in five is the test split, see `held_out_for_test`).
        split: "train" or "test".
        labels: class names in output order; a class folder not among them is an error.
    Raises:
        DatasetError: unreadable archive, unknown class folder, split missing, or an image that does not decode.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}. Received: split={split!r}")
    data = Path(data)
    index_of = {label: index for index, label in enumerate(labels)}
    paths, encoded, classes = [], [], []
    has_split_folders = None
    for inner, content in _archive_files(data):
        found_split, class_name = _class_and_split(inner)
        if has_split_folders is None:
            has_split_folders = found_split is not None
        if has_split_folders:
            if found_split != split:
                continue
        elif held_out_for_test(inner) != (split == "test"):
            continue
        if class_name not in index_of:
            raise DatasetError(f"{data}:{inner}: class folder {class_name!r} is not one of the task's classes {list(labels)}.")
        paths.append(inner)
        encoded.append(content)
        classes.append(index_of[class_name])
    if not paths:
        raise DatasetError(f"{data}: no images under a {split}/<class name>/ folder.")
    images = decode_images(encoded, [f"{data}:{p}" for p in paths], progress)
    boxes = np.array([(0, 0, image.shape[1] - 1, image.shape[0] - 1) for image in images], np.int32).reshape(-1, 4)
    # Each image is its own group: image folders carry no tracks to keep together.
    return LabelledRegions(images, boxes, np.array(classes, np.int64), list(paths), [f"{data}:{p}" for p in paths])
