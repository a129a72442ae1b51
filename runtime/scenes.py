"""Road scenes with ground-truth signs, in the GTSDB layout: images plus `gt.txt`.

`gt.txt` holds one line per sign, `file;x1;y1;x2;y2;ClassId` (inclusive pixel corners, GTSRB class
ids). Every image beside it is a scene, including scenes with no sign at all (they count for false
detections). The folder may sit inside a .zip, as the official download does.
"""
from __future__ import annotations

import zipfile
from collections.abc import Container, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import cv2
import numpy as np

from .datasets import LabelledRegions
from .errors import DatasetError
from .locate import ColourLocator, box_size, iou

TRUTH_FILE = "gt.txt"
SCENE_SUFFIXES = (".jpg", ".jpeg", ".png", ".ppm")


@dataclass(frozen=True)
class TrueSign:
    box: tuple[int, int, int, int]  # inclusive x1, y1, x2, y2
    class_id: int

    @property
    def size(self) -> int:
        """The longer side in pixels: what the size bands are measured on."""
        return box_size(self.box)


@dataclass(frozen=True)
class Scene:
    name: str  # the image's file name, as gt.txt names it
    source: str  # where it was read from, for records and errors
    image_bgr: np.ndarray
    signs: tuple[TrueSign, ...]


def parse_truth(text: str, source: str) -> dict[str, list[TrueSign]]:
    """Signs per image file name; each malformed line is named with what was expected."""
    signs: dict[str, list[TrueSign]] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        fields = line.strip().split(";")
        try:
            if len(fields) != 6:
                raise ValueError
            x1, y1, x2, y2, class_id = (int(value) for value in fields[1:])
        except ValueError:
            raise DatasetError(f"{source} line {number}: expected file;x1;y1;x2;y2;ClassId with integer fields. "
                               f"Received: {line.strip()!r}") from None
        if x2 < x1 or y2 < y1 or min(x1, y1) < 0:
            raise DatasetError(f"{source} line {number}: box corners must satisfy 0 <= x1 <= x2 and 0 <= y1 <= y2. "
                               f"Received: {line.strip()!r}")
        signs.setdefault(fields[0], []).append(TrueSign((x1, y1, x2, y2), class_id))
    return signs


class _Folder:
    def __init__(self, path: Path):
        truth = sorted(path.rglob(TRUTH_FILE))
        if not truth:
            raise DatasetError(f"{path}: no {TRUTH_FILE} found; expected road scenes in the GTSDB layout (images and gt.txt).")
        self.truth_path, self.root = truth[0], truth[0].parent

    def truth_text(self) -> str:
        return self.truth_path.read_text(encoding="utf-8")

    def image_names(self) -> list[str]:
        return sorted(item.name for item in self.root.iterdir() if item.suffix.lower() in SCENE_SUFFIXES)

    def read(self, name: str) -> tuple[bytes, str]:
        path = self.root / name
        return path.read_bytes(), str(path)


class _Zip:
    def __init__(self, path: Path):
        self.path = path
        try:
            self.archive = zipfile.ZipFile(path)
        except zipfile.BadZipFile:
            raise DatasetError(f"{path}: not a readable zip archive.") from None
        truth = sorted(name for name in self.archive.namelist() if PurePosixPath(name).name == TRUTH_FILE)
        if not truth:
            raise DatasetError(f"{path}: no {TRUTH_FILE} inside; expected road scenes in the GTSDB layout (images and gt.txt).")
        self.truth_member, self.prefix = truth[0], truth[0][: -len(TRUTH_FILE)]

    def truth_text(self) -> str:
        return self.archive.read(self.truth_member).decode("utf-8")

    def image_names(self) -> list[str]:
        return sorted(name[len(self.prefix):] for name in self.archive.namelist()
                      if name.startswith(self.prefix) and "/" not in name[len(self.prefix):]
                      and PurePosixPath(name).suffix.lower() in SCENE_SUFFIXES)

    def read(self, name: str) -> tuple[bytes, str]:
        return self.archive.read(self.prefix + name), f"{self.path}:{self.prefix}{name}"


def _open_scenes(path: str | Path):
    """The scene store at `path`, its ground truth by image name, and its image names in order, each checked."""
    path = Path(path)
    if not path.exists():
        raise DatasetError(f"{path}: not found; expected a folder or .zip of road scenes with gt.txt.")
    store = _Zip(path) if path.is_file() else _Folder(path)
    truth = parse_truth(store.truth_text(), f"{path}/{TRUTH_FILE}")
    names = store.image_names()
    missing = sorted(set(truth) - set(names))
    if missing:
        raise DatasetError(f"{path}: {TRUTH_FILE} names images that are not there: {', '.join(missing[:5])}")
    return store, truth, names


def scene_names(path: str | Path) -> list[str]:
    """The scenes' image names in the order read_scenes gives them, without decoding any image."""
    return _open_scenes(path)[2]


def read_scenes(path: str | Path, only: Container[str] | None = None) -> Iterator[Scene]:
    """Decode the scenes one at a time, in file-name order, each with its signs; `only`: the image names to decode
    (None: all of them).

    Raises:
        DatasetError: no gt.txt, a malformed line, a sign in an image that is not there or outside its image, or
            an image that does not decode, each named.
    """
    store, truth, names = _open_scenes(path)
    for name in names:
        if only is not None and name not in only:
            continue
        data, source = store.read(name)
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        if image is None:
            raise DatasetError(f"{source}: not a decodable image.")
        height, width = image.shape[:2]
        for sign in truth.get(name, ()):
            if sign.box[2] >= width or sign.box[3] >= height:  # gt.txt's corners are inclusive pixels of the image
                raise DatasetError(f"{source}: ground-truth box {list(sign.box)} reaches outside the {width}x{height} image; "
                                   f"expected inclusive corners with x2 <= {width - 1} and y2 <= {height - 1}.")
        yield Scene(name, source, image, tuple(truth.get(name, ())))


# Background boxes must stay clear of every true sign: a box overlapping one by more is neither sign nor background.
BACKGROUND_MAX_IOU = 0.2


def scene_regions(path: str | Path, background_label: int, locator=None, per_scene: int = 40, seed: int = 0) -> LabelledRegions:
    """Training regions from road scenes: every true sign with its class, and background boxes.

    The background boxes are what the locator (colour by default) proposes away from the signs (the
    cases the detector must learn to reject: leaves, cars, roofs) and, a quarter as many, random
    sign-sized windows. Each region's group is its scene, so a validation split never shares a scene.
    """
    locator, rng = locator or ColourLocator(), np.random.default_rng(seed)
    images, boxes, labels, groups, names = [], [], [], [], []

    def add(scene: Scene, box, label: int) -> None:
        images.append(scene.image_bgr)  # shared, not copied: the crop is taken at preprocessing
        boxes.append(box)
        labels.append(label)
        groups.append(f"scene:{scene.name}")
        names.append(scene.source)

    def clear_of_signs(scene: Scene, box) -> bool:
        return all(iou(box, sign.box) < BACKGROUND_MAX_IOU for sign in scene.signs)

    for scene in read_scenes(path):
        for sign in scene.signs:
            add(scene, sign.box, sign.class_id)
        proposals = [box for box in locator.propose(scene.image_bgr) if clear_of_signs(scene, box)]
        for index in rng.permutation(len(proposals))[:per_scene]:
            add(scene, proposals[index], background_label)
        height, width = scene.image_bgr.shape[:2]
        for _ in range(per_scene // 4):
            side = int(rng.integers(16, min(129, height, width)))
            x, y = int(rng.integers(0, width - side + 1)), int(rng.integers(0, height - side + 1))
            if clear_of_signs(scene, (x, y, x + side - 1, y + side - 1)):
                add(scene, (x, y, x + side - 1, y + side - 1), background_label)
    if not labels:
        raise DatasetError(f"{path}: no regions: the scenes hold no signs and nothing to propose.")
    return LabelledRegions(images, np.array(boxes, dtype=np.int64), np.array(labels, dtype=np.int64), groups, names)
