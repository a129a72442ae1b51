"""Labelled image sets read straight from their distribution formats (zip archive or extracted folder).

They live in runtime, not train, because evaluation and int8 calibration on a device need them too,
and they need nothing beyond numpy and OpenCV.
"""
from __future__ import annotations

import csv
import io
import sys
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Callable

import cv2
import numpy as np

from .errors import DatasetError, DatasetNotFoundError
from .preprocess import PreprocessSpec, crop_region

# Class names in ClassId order, from the official GTSDB ReadMe.txt (shared by GTSRB).
GTSRB_CLASS_NAMES = (
    "speed limit 20", "speed limit 30", "speed limit 50", "speed limit 60", "speed limit 70",
    "speed limit 80", "restriction ends 80", "speed limit 100", "speed limit 120", "no overtaking",
    "no overtaking (trucks)", "priority at next intersection", "priority road", "give way", "stop",
    "no traffic both ways", "no trucks", "no entry", "danger", "bend left",
    "bend right", "bend", "uneven road", "slippery road", "road narrows",
    "construction", "traffic signal", "pedestrian crossing", "school crossing", "cycles crossing",
    "snow", "animals", "restriction ends", "go right", "go left",
    "go straight", "go right or straight", "go left or straight", "keep right", "keep left",
    "roundabout", "restriction ends (overtaking)", "restriction ends (overtaking (trucks))",
)
GTSRB_CSV_COLUMNS = ["Filename", "Width", "Height", "Roi.X1", "Roi.Y1", "Roi.X2", "Roi.Y2"]
GTSRB_TRAIN_ARCHIVE = "GTSRB_Final_Training_Images.zip"
GTSRB_TEST_ARCHIVE = "GTSRB_Final_Test_Images.zip"
GTSRB_TEST_GT_ARCHIVE = "GTSRB_Final_Test_GT.zip"
GTSRB_TRAIN_DIR = "GTSRB/Final_Training/Images"
GTSRB_TEST_DIR = "GTSRB/Final_Test/Images"
GTSRB_TEST_GT_CSV = "GT-final_test.csv"


class FileTree:
    """The files of a zip archive or a folder, addressed by their inner POSIX path."""

    def __init__(self, root: Path):
        self.root = root
        self._zip: zipfile.ZipFile | None = None
        if root.is_file():
            try:
                self._zip = zipfile.ZipFile(root)
            except (zipfile.BadZipFile, OSError) as error:
                raise DatasetError(f"{root}: not a readable zip archive ({error}).") from None
            self._names = {name.rstrip("/") for name in self._zip.namelist()}
        elif not root.is_dir():
            raise DatasetError(f"{root}: no such archive or folder.")

    def describe(self, inner: str) -> str:
        return f"{self.root}:{inner}" if self._zip else str(self.root / inner)

    def exists(self, inner: str) -> bool:
        return inner in self._names if self._zip else (self.root / inner).exists()

    def list_dir(self, inner: str) -> list[str]:
        """Names directly inside the folder `inner`, sorted."""
        if self._zip is None:
            folder = self.root / inner
            return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
        prefix = inner.rstrip("/") + "/"
        return sorted({n[len(prefix):].split("/")[0] for n in self._names if n.startswith(prefix) and len(n) > len(prefix)})

    def read(self, inner: str) -> bytes:
        try:
            if self._zip is None:
                return (self.root / inner).read_bytes()
            return self._zip.read(inner)
        except KeyError:
            raise DatasetError(f"{self.describe(inner)}: file listed but missing from the archive.") from None
        except (OSError, zipfile.BadZipFile, EOFError) as error:
            raise DatasetError(f"{self.describe(inner)}: cannot be read ({error}).") from None


@dataclass
class LabelledRegions:
    """Images with one labelled region each (GTSRB: the sign's ROI)."""

    images_bgr: list[np.ndarray]
    boxes_xyxy: np.ndarray  # (N, 4) int, inclusive corners
    labels: np.ndarray  # (N,) int
    groups: list[str]  # the physical-sign track of each image ("" where unknown); split by these
    names: list[str]  # where each image came from, for messages

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, indices: np.ndarray) -> LabelledRegions:
        return LabelledRegions(
            [self.images_bgr[i] for i in indices], self.boxes_xyxy[indices], self.labels[indices],
            [self.groups[i] for i in indices], [self.names[i] for i in indices],
        )


def decode_image(data: bytes, name: str) -> np.ndarray:
    """Decode an encoded image to BGR uint8, or raise naming the file."""
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) if data else None
    if image is None:
        raise DatasetError(f"{name}: not a decodable image ({len(data)} bytes).")
    return image


def _read_csv(tree: FileTree, inner: str, columns: list[str]) -> list[dict[str, str]]:
    text = tree.read(inner).decode("utf-8-sig", errors="replace")
    reader = csv.reader(io.StringIO(text), delimiter=";")
    header = next(reader, None)
    if header is None or header[: len(columns)] != columns:
        raise DatasetError(
            f"{tree.describe(inner)}: expected a header starting {';'.join(columns)}. Received: {header!r}"
        )
    rows = []
    for line_number, row in enumerate(reader, start=2):
        if not row:
            continue
        if len(row) != len(header):
            raise DatasetError(
                f"{tree.describe(inner)} line {line_number}: expected {len(header)} fields separated by ';'. "
                f"Received: {';'.join(row)!r}"
            )
        rows.append(dict(zip(header, row)))
    return rows


def _int_field(row: dict[str, str], key: str, where: str) -> int:
    try:
        return int(row[key])
    except ValueError:
        raise DatasetError(f"{where}: field {key} must be an integer. Received: {row[key]!r}") from None


SKIP_OPTION = "--skip-bad-images"
SKIP_HINT = f"Pass {SKIP_OPTION} to skip such files (each is reported)."  # after an error naming an image that does not decode


def report(message: str) -> None:
    """A dataset notice the user must see (a skipped or ignored file), on stderr, one line each."""
    print(f"edgesight: {message}", file=sys.stderr)


def decode_images(encoded: list[bytes], names: list[str], progress: Callable[[int, int], None] | None,
                  skip_bad: bool = False) -> list[np.ndarray | None]:
    """Decode in parallel threads (cv2.imdecode releases the GIL).

    An image that fails is refused, naming it; with `skip_bad` it is reported by name and its slot
    is None instead, for the caller to drop with its labels.
    """
    def decode_or_none(data: bytes, name: str) -> np.ndarray | None:
        try:
            return decode_image(data, name)
        except DatasetError as error:
            if not skip_bad:
                raise DatasetError(f"{error} {SKIP_HINT}") from None
            report(f"skipped {error}")
            return None

    with ThreadPoolExecutor() as pool:
        images = []
        for done, image in enumerate(pool.map(decode_or_none, encoded, names, chunksize=256), start=1):
            images.append(image)
            if progress and (done % 2500 == 0 or done == len(encoded)):
                progress(done, len(encoded))
    return images


def _gtsrb_tree(data_dir: Path, archive: str, extracted_marker: str) -> FileTree:
    if (data_dir / archive).is_file():
        return FileTree(data_dir / archive)
    if (data_dir / extracted_marker).exists():
        return FileTree(data_dir)
    raise DatasetNotFoundError(
        f"{data_dir}: expected the official GTSRB archive {archive} or its extracted folder {extracted_marker}."
    )


@dataclass(frozen=True)
class _Row:
    """One CSV annotation row, with where it came from for error messages."""

    where: str
    image_path: str
    fields: dict[str, str]
    label: int
    group: str


def _read_labelled_rows(tree: FileTree, folder: str, csv_tree: FileTree, csv_name: str, group_of=None) -> list[_Row]:
    rows = []
    csv_where = csv_tree.describe(csv_name)
    for line_number, fields in enumerate(_read_csv(csv_tree, csv_name, GTSRB_CSV_COLUMNS + ["ClassId"]), start=2):
        where = f"{csv_where} line {line_number}"
        label = _int_field(fields, "ClassId", where)
        if not 0 <= label < len(GTSRB_CLASS_NAMES):
            raise DatasetError(f"{where}: ClassId must be 0..{len(GTSRB_CLASS_NAMES) - 1}. Received: {label}")
        # The file name comes from the CSV: copies of GTSRB differ in image format (.ppm, .webp, .png).
        group = group_of(fields["Filename"], label) if group_of else ""
        rows.append(_Row(where, f"{folder}/{fields['Filename']}", fields, label, group))
    return rows


def _rows_to_regions(tree: FileTree, rows: list[_Row], progress, skip_bad: bool) -> LabelledRegions:
    boxes = []
    for row in rows:
        x1, y1, x2, y2 = (_int_field(row.fields, key, row.where) for key in ("Roi.X1", "Roi.Y1", "Roi.X2", "Roi.Y2"))
        if x2 < x1 or y2 < y1 or x1 < 0 or y1 < 0:
            raise DatasetError(f"{row.where}: ROI must have 0 <= X1 <= X2 and 0 <= Y1 <= Y2. Received: {(x1, y1, x2, y2)}")
        boxes.append((x1, y1, x2, y2))
    images = decode_images([tree.read(row.image_path) for row in rows], [tree.describe(row.image_path) for row in rows],
                           progress, skip_bad)
    kept = [index for index, image in enumerate(images) if image is not None]
    images, boxes, rows = [images[i] for i in kept], [boxes[i] for i in kept], [rows[i] for i in kept]
    for image, box, row in zip(images, boxes, rows):
        if box[2] >= image.shape[1] or box[3] >= image.shape[0]:
            raise DatasetError(f"{row.where}: ROI {box} lies outside the {image.shape[1]}x{image.shape[0]} image {row.image_path}.")
    return LabelledRegions(
        images, np.array(boxes, np.int32).reshape(-1, 4), np.array([row.label for row in rows], np.int64),
        [row.group for row in rows], [tree.describe(row.image_path) for row in rows],
    )


def load_gtsrb(data_dir: str | Path, split: str, progress: Callable[[int, int], None] | None = None,
               skip_bad_images: bool = False) -> LabelledRegions:
    """Read the GTSRB training or official test set from the official archives or their extracted folders.

    Args:
        data_dir: folder holding GTSRB_Final_Training_Images.zip, GTSRB_Final_Test_Images.zip and
            GTSRB_Final_Test_GT.zip, or what they extract to.
        split: "train" (39,209 images in tracks) or "test" (12,630 images).
        progress: called with (done, total) while images decode.
        skip_bad_images: drop (and report) images that do not decode instead of refusing the dataset.
    Raises:
        DatasetError: an archive, CSV row or image is missing or malformed.
    """
    data_dir = Path(data_dir)
    if split == "train":
        return _load_gtsrb_train(data_dir, progress, skip_bad_images)
    if split == "test":
        return _load_gtsrb_test(data_dir, progress, skip_bad_images)
    raise ValueError(f"split must be 'train' or 'test'. Received: split={split!r}")


def _track_of(file_name: str, label: int) -> str:
    # TTTTT_FFFFF.ext: frame FFFFF of track TTTTT, one physical sign seen in consecutive frames.
    return f"{label}/{PurePosixPath(file_name).stem.split('_')[0]}"


def _load_gtsrb_train(data_dir: Path, progress, skip_bad: bool) -> LabelledRegions:
    tree = _gtsrb_tree(data_dir, GTSRB_TRAIN_ARCHIVE, GTSRB_TRAIN_DIR)
    class_folders = [name for name in tree.list_dir(GTSRB_TRAIN_DIR) if name.isdigit()]
    if not class_folders:
        raise DatasetError(f"{tree.describe(GTSRB_TRAIN_DIR)}: no class folders 00000..00042 found.")
    rows: list[_Row] = []
    for folder_name in class_folders:
        folder = f"{GTSRB_TRAIN_DIR}/{folder_name}"
        csv_name = f"{folder}/GT-{folder_name}.csv"
        if not tree.exists(csv_name):
            raise DatasetError(f"{tree.describe(csv_name)}: annotation CSV missing for class folder {folder_name}.")
        rows += _read_labelled_rows(tree, folder, tree, csv_name, _track_of)
    return _rows_to_regions(tree, rows, progress, skip_bad)


def _load_gtsrb_test(data_dir: Path, progress, skip_bad: bool) -> LabelledRegions:
    tree = _gtsrb_tree(data_dir, GTSRB_TEST_ARCHIVE, GTSRB_TEST_DIR)
    gt_tree = _gtsrb_tree(data_dir, GTSRB_TEST_GT_ARCHIVE, GTSRB_TEST_GT_CSV)
    return _rows_to_regions(tree, _read_labelled_rows(tree, GTSRB_TEST_DIR, gt_tree, GTSRB_TEST_GT_CSV), progress, skip_bad)


def preprocess_regions(regions: LabelledRegions, spec: PreprocessSpec) -> np.ndarray:
    """Every region through the runtime preprocessing: an NHWC uint8 batch."""
    batch_nhwc = np.empty((len(regions), spec.height, spec.width, 3), np.uint8)
    for index, (image, box) in enumerate(zip(regions.images_bgr, regions.boxes_xyxy)):
        batch_nhwc[index] = crop_region(image, spec, tuple(int(v) for v in box))
    return batch_nhwc
