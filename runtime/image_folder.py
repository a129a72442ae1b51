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

from .datasets import LabelledRegions, decode_images, report
from .errors import DatasetError, NoImagesError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".ppm", ".pgm", ".tif", ".tiff"}
SPLITS = ("train", "test")
TEST_ONE_IN = 5


def _is_image_name(inner: str) -> bool:
    return PurePosixPath(inner).suffix.lower() in IMAGE_SUFFIXES


def _archive_files(data: Path, read: bool = True) -> Iterator[tuple[str, bytes | None]]:
    """(inner POSIX path, bytes or None) of every file, in one pass (a .tgz allows no random access).

    Non-image files are yielded too, with None for their bytes, so the caller can name them.
    """
    if data.is_dir():
        for path in sorted(data.rglob("*")):
            if path.is_file():
                inner = path.relative_to(data).as_posix()
                yield inner, path.read_bytes() if read and _is_image_name(inner) else None
        return
    if not data.is_file():
        raise DatasetError(f"{data}: no such folder or archive.")
    name = data.name.lower()
    try:
        if name.endswith(".zip"):
            with zipfile.ZipFile(data) as bundle:
                for member in sorted(bundle.namelist()):
                    if not member.endswith("/"):
                        yield member, bundle.read(member) if read and _is_image_name(member) else None
        elif name.endswith((".tar", ".tgz", ".tar.gz")):
            with tarfile.open(data, "r:*") as bundle:
                for member in bundle:
                    if member.isfile():
                        content = bundle.extractfile(member).read() if read and _is_image_name(member.name) else None
                        yield member.name, content
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


def _split_of(inner: str, has_split_folders: bool) -> str | None:
    """The split an image belongs to: its split folder's name in a tree with train/ and test/ (None outside them), else
    the fixed split by hash (`held_out_for_test`)."""
    if has_split_folders:
        return _class_and_split(inner)[0]
    return "test" if held_out_for_test(inner) else "train"


def _images_by_split(files: Iterator[tuple[str, bytes | None]]) -> Iterator[tuple[str, bytes | None, str | None, str]]:
    """(inner path, bytes, split, class folder) of each image; whether the tree has split folders is decided by the
    first image, so every image of one dataset is split the same way."""
    has_split_folders = None
    for inner, content in files:
        if _is_image_name(inner):
            found_split, class_name = _class_and_split(inner)
            if has_split_folders is None:
                has_split_folders = found_split is not None
            yield inner, content, _split_of(inner, has_split_folders), class_name


def discover_labels(data: str | Path) -> tuple[str, ...]:
    """Class names of an image-folder dataset: its class folder names, sorted.

    Raises:
        DatasetError: fewer than two classes, or a class with test images and no training images, which no model
            trained on this dataset could learn. A class with training images and no test images is reported.
    """
    classes = {split: set() for split in (*SPLITS, None)}
    for _, _, split, class_name in _images_by_split(_archive_files(Path(data), read=False)):
        if class_name:  # an image straight in the root has no class folder
            classes[split].add(class_name)
    names = sorted(set().union(*classes.values()))
    if len(names) < 2:
        raise DatasetError(f"{data}: an image-folder dataset needs at least two class folders. Received: {names}")
    untrained, untested = sorted(classes["test"] - classes["train"]), sorted(classes["train"] - classes["test"])
    if untrained:
        raise DatasetError(f"{data}: class folder(s) {untrained} have test images but no training images, so no model "
                           f"can learn them; add training images for them or remove them from the test split.")
    if untested and classes["test"]:
        report(f"{data}: class folder(s) {untested} have no test images; test accuracy will not cover them.")
    return tuple(names)


def load_image_folder(
    data: str | Path,
    split: str,
    labels: tuple[str, ...],
    progress: Callable[[int, int], None] | None = None,
    skip_bad_images: bool = False,
) -> LabelledRegions:
    """Images of one split whose class is their folder name; the whole image is the labelled region.

    Args:
        data: folder or archive with `train/` and `test/` folders of class folders, or of class
            folders alone (then one image in five is the test split, see `held_out_for_test`).
        split: "train" or "test".
        labels: class names in output order; a class folder not among them is an error.
        skip_bad_images: drop images that do not decode, reporting each, instead of refusing the dataset.
            Files that are not images by their extension are never read; they are reported by name.
    Raises:
        DatasetError: unreadable archive, unknown class folder, split missing, or an image that does not decode.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}. Received: split={split!r}")
    data = Path(data)
    index_of = {label: index for index, label in enumerate(labels)}
    paths, encoded, classes = [], [], []
    not_images = []

    def noting_other_files(files):
        for inner, content in files:
            if _is_image_name(inner):
                yield inner, content
            else:
                not_images.append(inner)

    for inner, content, image_split, class_name in _images_by_split(noting_other_files(_archive_files(data))):
        if image_split != split:
            continue
        if class_name not in index_of:
            raise DatasetError(f"{data}:{inner}: class folder {class_name!r} is not one of the task's classes {list(labels)}.")
        paths.append(inner)
        encoded.append(content)
        classes.append(index_of[class_name])
    if not_images:
        shown = ", ".join(not_images[:5]) + (f" and {len(not_images) - 5} more" if len(not_images) > 5 else "")
        report(f"{data}: ignored {len(not_images)} file(s) that are not images by their extension: {shown}")
    if not paths:
        raise NoImagesError(f"{data}: no images under a {split}/<class name>/ folder.")
    images = decode_images(encoded, [f"{data}:{p}" for p in paths], progress, skip_bad_images)
    kept = [index for index, image in enumerate(images) if image is not None]
    images, paths, classes = [images[i] for i in kept], [paths[i] for i in kept], [classes[i] for i in kept]
    if not images:
        raise DatasetError(f"{data}: none of the {split} images decode.")
    boxes = np.array([(0, 0, image.shape[1] - 1, image.shape[0] - 1) for image in images], np.int32).reshape(-1, 4)
    # Each image is its own group: image folders carry no tracks to keep together.
    return LabelledRegions(images, boxes, np.array(classes, np.int64), list(paths), [f"{data}:{p}" for p in paths])
