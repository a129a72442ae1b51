import shutil
import zipfile

import numpy as np
import pytest
from conftest import require_shared_dataset
from edgesight.runtime.datasets import load_gtsrb, preprocess_regions
from edgesight.runtime.errors import DatasetError
from edgesight.runtime.preprocess import PreprocessSpec
from fakes import CLASS_STYLES, HEADER, png_bytes, sign_image, write_gtsrb_archives


def test_reads_official_zips_with_tracks_and_rois(tiny_gtsrb):
    train = load_gtsrb(tiny_gtsrb, "train")
    assert len(train) == len(CLASS_STYLES) * 3 * 6
    assert set(train.labels.tolist()) == set(CLASS_STYLES)
    assert len(set(train.groups)) == len(CLASS_STYLES) * 3  # one group per (class, track)
    image, box = train.images_bgr[0], train.boxes_xyxy[0]
    assert box[2] < image.shape[1] and box[3] < image.shape[0]
    test = load_gtsrb(tiny_gtsrb, "test")
    assert len(test) == len(CLASS_STYLES) * 6 and test.groups[0] == ""
    batch = preprocess_regions(test, PreprocessSpec(32, 32, "box", 0.1, "area"))
    assert batch.shape == (len(test), 32, 32, 3) and batch.dtype == np.uint8


def test_reads_extracted_folders_the_same(tiny_gtsrb, tmp_path):
    for archive in tiny_gtsrb.glob("*.zip"):
        with zipfile.ZipFile(archive) as bundle:
            bundle.extractall(tmp_path)
    from_zip, from_folder = load_gtsrb(tiny_gtsrb, "test"), load_gtsrb(tmp_path, "test")
    assert np.array_equal(from_zip.labels, from_folder.labels)
    assert all(np.array_equal(a, b) for a, b in zip(from_zip.images_bgr, from_folder.images_bgr))


def test_file_name_comes_from_the_csv(tmp_path):
    write_gtsrb_archives(tmp_path, tracks=1, frames=2, test_per_class=1, extension=".bmp")
    assert load_gtsrb(tmp_path, "train").names[0].endswith(".bmp")


def _replace_member(archive_path, name, data):
    copy = archive_path.with_suffix(".tmp")
    with zipfile.ZipFile(archive_path) as source, zipfile.ZipFile(copy, "w") as target:
        for item in source.infolist():
            target.writestr(item, data if item.filename == name else source.read(item.filename))
    copy.replace(archive_path)


@pytest.fixture
def data_copy(tiny_gtsrb, tmp_path):
    shutil.copytree(tiny_gtsrb, tmp_path / "data")
    return tmp_path / "data"


def test_corrupt_image_is_named(data_copy):
    _replace_member(data_copy / "GTSRB_Final_Test_Images.zip", "GTSRB/Final_Test/Images/00003.png", b"garbage")
    with pytest.raises(DatasetError, match=r"GTSRB_Final_Test_Images\.zip:GTSRB/Final_Test/Images/00003\.png: not a decodable image"):
        load_gtsrb(data_copy, "test")
    complete = 24  # the fake test set's size
    kept = load_gtsrb(data_copy, "test", skip_bad_images=True)
    assert len(kept) == complete - 1 and not any(name.endswith("00003.png") for name in kept.names)
    assert len(kept.boxes_xyxy) == len(kept.labels) == len(kept.images_bgr)


def test_bad_csv_row_is_named_with_its_line(data_copy):
    csv_name = "GTSRB/Final_Training/Images/00014/GT-00014.csv"
    with zipfile.ZipFile(data_copy / "GTSRB_Final_Training_Images.zip") as bundle:
        lines = bundle.read(csv_name).decode().splitlines()
    lines[3] = lines[3].replace(";", ",")
    _replace_member(data_copy / "GTSRB_Final_Training_Images.zip", csv_name, "\n".join(lines).encode())
    with pytest.raises(DatasetError, match=r"GT-00014\.csv line 4: expected 8 fields separated by ';'"):
        load_gtsrb(data_copy, "train")


def test_roi_outside_image_and_bad_class_are_refused(tmp_path):
    image, _ = sign_image(1, np.random.default_rng(0))
    members = {"GTSRB/Final_Training/Images/00001/00000_00000.png": png_bytes(image),
               "GTSRB/Final_Training/Images/00001/GT-00001.csv":
                   f"{HEADER}\n00000_00000.png;{image.shape[1]};{image.shape[0]};1;1;400;400;1\n".encode()}
    with zipfile.ZipFile(tmp_path / "GTSRB_Final_Training_Images.zip", "w") as bundle:
        for name, data in members.items():
            bundle.writestr(name, data)
    with pytest.raises(DatasetError, match="lies outside"):
        load_gtsrb(tmp_path, "train")


def test_missing_or_broken_archive(tmp_path):
    with pytest.raises(DatasetError, match="expected the official GTSRB archive GTSRB_Final_Training_Images.zip"):
        load_gtsrb(tmp_path, "train")
    (tmp_path / "GTSRB_Final_Training_Images.zip").write_bytes(b"not a zip")
    with pytest.raises(DatasetError, match="not a readable zip archive"):
        load_gtsrb(tmp_path, "train")


@pytest.mark.slow
def test_real_gtsrb_archives_read_whole():
    folder = require_shared_dataset("gtsrb")
    train, test = load_gtsrb(folder, "train"), load_gtsrb(folder, "test")
    assert (len(train), len(test)) == (39209, 12630)
    assert len(set(train.groups)) > 1000 and set(train.labels.tolist()) == set(range(43))
