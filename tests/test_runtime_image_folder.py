import tarfile
import zipfile

import cv2
import numpy as np
import pytest
from conftest import require_shared_dataset
from edgesight.runtime.errors import DatasetError
from edgesight.runtime.image_folder import load_image_folder
from edgesight.runtime.tasks import CIFAR10_CLASS_NAMES, get_task

LABELS = ("cat", "dog")


def _write_tree(root, per_class=3):
    for split in ("train", "test"):
        for index, label in enumerate(LABELS):
            folder = root / "pets" / split / label
            folder.mkdir(parents=True)
            for number in range(per_class):
                cv2.imwrite(str(folder / f"{number:04d}.png"), np.full((12, 10, 3), 40 * index + number, np.uint8))
    return root


def _archives(tmp_path):
    tree = _write_tree(tmp_path / "tree")
    with tarfile.open(tmp_path / "pets.tgz", "w:gz") as bundle:
        bundle.add(tree / "pets", arcname="pets")
    with zipfile.ZipFile(tmp_path / "pets.zip", "w") as bundle:
        for path in sorted((tree / "pets").rglob("*.png")):
            bundle.write(path, path.relative_to(tree).as_posix())
    return [tree, tmp_path / "pets.tgz", tmp_path / "pets.zip"]


def test_folder_tgz_and_zip_read_alike(tmp_path):
    results = [load_image_folder(source, "test", LABELS) for source in _archives(tmp_path)]
    for result in results:
        assert len(result) == 6 and result.labels.tolist() == [0, 0, 0, 1, 1, 1]
        assert result.boxes_xyxy[0].tolist() == [0, 0, 9, 11]  # the whole image, inclusive corners
        assert len(set(result.groups)) == 6
    assert all(np.array_equal(a, b) for a, b in zip(results[0].images_bgr, results[1].images_bgr))


def test_unknown_class_folder_and_bad_image_are_named(tmp_path):
    tree = _write_tree(tmp_path / "tree")
    with pytest.raises(DatasetError, match="class folder 'dog' is not one of the task's classes"):
        load_image_folder(tree, "train", ("cat",))
    (tree / "pets" / "test" / "cat" / "0001.png").write_bytes(b"broken")
    with pytest.raises(DatasetError, match=r"test/cat/0001\.png: not a decodable image .* Pass --skip-bad-images"):
        load_image_folder(tree, "test", LABELS)


def test_bad_images_are_skipped_on_request_and_other_files_ignored_each_named(tmp_path, capsys):
    tree = _write_tree(tmp_path / "tree")
    (tree / "pets" / "test" / "cat" / "0001.png").write_bytes(b"broken")
    (tree / "pets" / "test" / "dog" / "notes.txt").write_text("taken in the garden")
    result = load_image_folder(tree, "test", LABELS, skip_bad_images=True)
    assert len(result) == 5 and result.labels.tolist() == [0, 0, 1, 1, 1]
    assert not any(name.endswith("cat/0001.png") for name in result.names)
    notices = capsys.readouterr().err
    assert "skipped " in notices and "test/cat/0001.png: not a decodable image" in notices
    assert "ignored 1 file(s) that are not images by their extension: pets/test/dog/notes.txt" in notices


def test_missing_split_and_unknown_archive(tmp_path):
    with pytest.raises(DatasetError, match="no images under a train/<class name>/ folder"):
        load_image_folder(tmp_path, "train", LABELS)
    (tmp_path / "data.rar").write_bytes(b"x")
    with pytest.raises(DatasetError, match="expected a folder, .zip, .tar or .tgz"):
        load_image_folder(tmp_path / "data.rar", "train", LABELS)


def test_cifar10_task_mirrors_objects_but_not_signs():
    assert get_task("cifar10").augmentation == "objects" and get_task("gtsrb").augmentation == "signs"
    assert get_task("cifar10").labels == CIFAR10_CLASS_NAMES


@pytest.mark.slow
def test_real_cifar10_image_folder_archive():
    data = require_shared_dataset("cifar10") / "cifar10_jpg.tgz"
    test = get_task("cifar10").load(data, "test")
    assert len(test) == 10000 and np.bincount(test.labels).tolist() == [1000] * 10


def test_tree_without_splits_holds_out_one_in_five_by_path(tmp_path):
    for label in LABELS:
        folder = tmp_path / "mine" / label
        folder.mkdir(parents=True)
        for number in range(20):
            cv2.imwrite(str(folder / f"{number:03d}.png"), np.full((9, 9, 3), number, np.uint8))
    from edgesight.runtime.image_folder import discover_labels

    assert discover_labels(tmp_path / "mine") == LABELS
    train, test = (load_image_folder(tmp_path / "mine", split, LABELS) for split in ("train", "test"))
    assert len(train) + len(test) == 40 and 2 <= len(test) <= 16
    assert not set(train.names) & set(test.names)
    assert load_image_folder(tmp_path / "mine", "test", LABELS).names == test.names  # the same every time


def test_a_class_with_test_images_and_no_training_images_is_refused_and_one_without_test_images_reported(tmp_path, capsys):
    from edgesight.runtime.image_folder import discover_labels

    tree = _write_tree(tmp_path / "tree")
    (tree / "pets" / "test" / "bird").mkdir()
    cv2.imwrite(str(tree / "pets" / "test" / "bird" / "0.png"), np.zeros((9, 9, 3), np.uint8))
    with pytest.raises(DatasetError, match=r"class folder\(s\) \['bird'\] have test images but no training images"):
        discover_labels(tree)
    for path in (tree / "pets" / "test" / "bird").iterdir():
        path.unlink()
    (tree / "pets" / "train" / "eel").mkdir()
    cv2.imwrite(str(tree / "pets" / "train" / "eel" / "0.png"), np.zeros((9, 9, 3), np.uint8))
    assert discover_labels(tree) == ("cat", "dog", "eel")
    assert "class folder(s) ['eel'] have no test images; test accuracy will not cover them" in capsys.readouterr().err


def test_user_task_takes_its_classes_from_the_folders(tmp_path):
    tree = _write_tree(tmp_path / "tree")
    task = get_task("pets", str(tree))
    assert task.labels == LABELS and task.augmentation == "objects" and task.preprocess.crop == "full"
    with pytest.raises(ValueError, match="any other name needs the image-folder dataset"):
        get_task("pets")


def test_scores_on_the_lossy_cifar_copy_say_so(tmp_path):
    from edgesight.runtime.tasks import TASKS, test_set_name

    (tmp_path / "cifar10_jpg.tgz").write_bytes(b"")
    assert "lossy JPEG copy" in test_set_name(TASKS["cifar10"], str(tmp_path), 10000)
    (tmp_path / "cifar-10-python.tar.gz").write_bytes(b"")
    assert test_set_name(TASKS["cifar10"], str(tmp_path), 10000) == "cifar10 official test, 10000 images"
    assert test_set_name(TASKS["gtsrb"], "anywhere", 5) == "gtsrb official test, 5 images"
