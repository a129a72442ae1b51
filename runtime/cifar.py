"""CIFAR-10 in its official archives (python pickles, binary records) or as an image-folder tree.

The python archive is pickled: it is read with an unpickler that builds only plain containers,
bytes, numbers and numeric numpy arrays, and refuses every other global, so a tampered archive
cannot run code.
"""
from __future__ import annotations

import io
import pickle
import tarfile
from pathlib import Path
from typing import Callable

import numpy as np

from .datasets import LabelledRegions
from .errors import DatasetError, NoImagesError
from .image_folder import load_image_folder

CIFAR10_CLASS_NAMES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
PYTHON_ARCHIVE = "cifar-10-python.tar.gz"
BINARY_ARCHIVE = "cifar-10-binary.tar.gz"
IMAGE_FOLDER_ARCHIVE = "cifar10_jpg.tgz"
BATCHES = {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]}
RECORD_BYTES = 1 + 32 * 32 * 3


class _NumbersOnlyUnpickler(pickle.Unpickler):
    """Allows the globals a pickled numeric ndarray needs, and nothing else.

    (`_codecs.encode` is how protocol-2 pickles written by Python 3 spell a bytes literal.)
    """

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
    }

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refused global {module}.{name}: only plain data and numeric arrays are read")
        return super().find_class(module, name)


def _unpickle(data: bytes, where: str) -> dict:
    try:
        value = _NumbersOnlyUnpickler(io.BytesIO(data), encoding="bytes").load()
    except Exception as error:  # a damaged or hostile pickle raises many kinds of errors
        raise DatasetError(f"{where}: not a CIFAR-10 python batch ({error}).") from None
    arrays = [item for item in value.values() if isinstance(item, np.ndarray)] if isinstance(value, dict) else []
    if any(array.dtype.hasobject for array in arrays):
        raise DatasetError(f"{where}: holds an object array; only numeric arrays are read.")
    if not isinstance(value, dict):
        raise DatasetError(f"{where}: expected a dict batch. Received: {type(value).__name__}")
    return value


def _rgb_planes_to_bgr(rows: np.ndarray) -> list[np.ndarray]:
    """CIFAR rows of 3072 bytes (R plane, G plane, B plane, each 32x32) -> BGR HxWx3 images."""
    images = rows.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)[..., ::-1]
    return [np.ascontiguousarray(image) for image in images]


def _tar_members(archive: Path, wanted: list[str]) -> dict[str, bytes]:
    found: dict[str, bytes] = {}
    try:
        with tarfile.open(archive, "r:*") as bundle:
            for member in bundle:
                base = member.name.rsplit("/", 1)[-1]
                stem = base.rsplit(".", 1)[0] if base.endswith(".bin") else base
                if member.isfile() and stem in wanted:
                    found[stem] = bundle.extractfile(member).read()
    except (tarfile.TarError, OSError, EOFError) as error:
        raise DatasetError(f"{archive}: cannot be read as a tar archive ({error}).") from None
    missing = [name for name in wanted if name not in found]
    if missing:
        raise DatasetError(f"{archive}: lacks the CIFAR-10 batches {', '.join(missing)}.")
    return found


def _load_python(archive: Path, split: str) -> LabelledRegions:
    images, labels, names = [], [], []
    for batch_name, content in _tar_members(archive, BATCHES[split]).items():
        where = f"{archive}:{batch_name}"
        batch = _unpickle(content, where)
        data, batch_labels = batch.get(b"data"), batch.get(b"labels")
        if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
            raise DatasetError(f"{where}: 'data' must be a uint8 array of shape (N, 3072).")
        if not isinstance(batch_labels, list) or len(batch_labels) != len(data):
            raise DatasetError(f"{where}: 'labels' must be a list of {len(data)} class ids.")
        images += _rgb_planes_to_bgr(data)
        labels += batch_labels
        names += [f"{where}[{i}]" for i in range(len(data))]
    return _regions(images, labels, names, str(archive))


def _load_binary(archive: Path, split: str) -> LabelledRegions:
    images, labels, names = [], [], []
    for batch_name, content in _tar_members(archive, BATCHES[split]).items():
        where = f"{archive}:{batch_name}.bin"
        if len(content) % RECORD_BYTES:
            raise DatasetError(f"{where}: size {len(content)} is not a whole number of {RECORD_BYTES}-byte records.")
        records = np.frombuffer(content, np.uint8).reshape(-1, RECORD_BYTES)
        images += _rgb_planes_to_bgr(records[:, 1:])
        labels += records[:, 0].tolist()
        names += [f"{where}[{i}]" for i in range(len(records))]
    return _regions(images, labels, names, str(archive))


def _regions(images, labels, names, where: str) -> LabelledRegions:
    labels_array = np.array(labels, np.int64)
    if labels_array.size and (labels_array.min() < 0 or labels_array.max() >= len(CIFAR10_CLASS_NAMES)):
        raise DatasetError(f"{where}: class ids must be 0..9. Received: {sorted(set(labels_array.tolist()))[:12]}")
    boxes = np.tile(np.array([0, 0, 31, 31], np.int32), (len(images), 1))
    return LabelledRegions(images, boxes, labels_array, list(names), list(names))


def _resolve(data: str | Path) -> Path:
    path = Path(data)
    if path.is_dir():
        for archive in (PYTHON_ARCHIVE, BINARY_ARCHIVE, IMAGE_FOLDER_ARCHIVE):
            if (path / archive).is_file():
                return path / archive
    return path


def is_lossless_cifar10(data: str | Path) -> bool:
    """Whether `data` resolves to an official archive (raw pixels) rather than a re-encoded image folder."""
    return _resolve(data).name in (PYTHON_ARCHIVE, BINARY_ARCHIVE)


def load_cifar10(data: str | Path, split: str, progress: Callable[[int, int], None] | None = None,
                 skip_bad_images: bool = False) -> LabelledRegions:
    """CIFAR-10 from cifar-10-python.tar.gz, cifar-10-binary.tar.gz, an image-folder tree/.zip/.tgz,
    or a folder holding one of those archives (official ones first).

    `skip_bad_images` applies to image-folder trees; the official archives hold raw pixels, not files.
    """
    if split not in BATCHES:
        raise ValueError(f"split must be one of {tuple(BATCHES)}. Received: split={split!r}")
    path = _resolve(data)
    if path.name == PYTHON_ARCHIVE:
        return _load_python(path, split)
    if path.name == BINARY_ARCHIVE:
        return _load_binary(path, split)
    try:
        return load_image_folder(path, split, CIFAR10_CLASS_NAMES, progress, skip_bad_images)
    except NoImagesError as error:
        if not path.is_dir():
            raise
        raise NoImagesError(f"{error} Nor does it hold a CIFAR-10 archive ({PYTHON_ARCHIVE}, {BINARY_ARCHIVE} or "
                            f"{IMAGE_FOLDER_ARCHIVE}).") from None
