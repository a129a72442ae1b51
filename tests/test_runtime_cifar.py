import io
import os
import pickle
import tarfile

import numpy as np
import pytest
from edgesight.runtime.cifar import load_cifar10
from edgesight.runtime.errors import DatasetError

BATCH_NAMES = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]


def _batches(seed=0, per_batch=4):
    rng = np.random.default_rng(seed)
    return {name: (rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8), rng.integers(0, 10, per_batch).tolist())
            for name in BATCH_NAMES}


def _add(bundle, name, data):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    bundle.addfile(info, io.BytesIO(data))


def _python_archive(folder, batches, replace=None):
    path = folder / "cifar-10-python.tar.gz"
    with tarfile.open(path, "w:gz") as bundle:
        for name, (data, labels) in batches.items():
            content = pickle.dumps({b"data": data, b"labels": labels, b"batch_label": name.encode()}, protocol=2)
            _add(bundle, f"cifar-10-batches-py/{name}", (replace or {}).get(name, content))
    return path


def _binary_archive(folder, batches):
    path = folder / "cifar-10-binary.tar.gz"
    with tarfile.open(path, "w:gz") as bundle:
        for name, (data, labels) in batches.items():
            records = np.concatenate([np.array(labels, np.uint8)[:, None], data], axis=1)
            _add(bundle, f"cifar-10-batches-bin/{name}.bin", records.tobytes())
    return path


def test_python_and_binary_archives_give_the_same_images(tmp_path):
    batches = _batches()
    (tmp_path / "py").mkdir()
    (tmp_path / "bin").mkdir()
    from_python = load_cifar10(_python_archive(tmp_path / "py", batches), "test")
    from_binary = load_cifar10(_binary_archive(tmp_path / "bin", batches), "test")
    assert from_python.labels.tolist() == from_binary.labels.tolist() == batches["test_batch"][1]
    assert all(np.array_equal(a, b) for a, b in zip(from_python.images_bgr, from_binary.images_bgr))
    data = batches["test_batch"][0]
    # Row layout: 1024 red, 1024 green, 1024 blue bytes; images come out BGR like OpenCV's.
    assert from_python.images_bgr[0][0, 0].tolist() == [data[0, 2048], data[0, 1024], data[0, 0]]
    assert len(load_cifar10(tmp_path / "py", "train")) == 20  # a folder holding the archive works too


class _RunsCode:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_a_pickle_that_would_run_code_is_refused(tmp_path):
    hostile = pickle.dumps({b"data": _RunsCode(), b"labels": []}, protocol=2)
    archive = _python_archive(tmp_path, _batches(), replace={"test_batch": hostile})
    with pytest.raises(DatasetError, match=r"test_batch: not a CIFAR-10 python batch \(refused global (posix|os)\.system"):
        load_cifar10(archive, "test")


def test_truncated_binary_batch_and_missing_batches_are_named(tmp_path):
    path = tmp_path / "cifar-10-binary.tar.gz"
    with tarfile.open(path, "w:gz") as bundle:
        _add(bundle, "cifar-10-batches-bin/test_batch.bin", b"\x01" * 100)
    with pytest.raises(DatasetError, match=r"test_batch\.bin: size 100 is not a whole number of 3073-byte records"):
        load_cifar10(path, "test")
    with pytest.raises(DatasetError, match="lacks the CIFAR-10 batches data_batch_1"):
        load_cifar10(path, "train")


def test_a_folder_with_neither_images_nor_a_cifar_archive_says_which_archives_it_looked_for(tmp_path):
    (tmp_path / "GTSRB_Final_Test_Images.zip").write_bytes(b"another task's archive")
    with pytest.raises(DatasetError, match=r"no images under a test/<class name>/ folder\. Nor does it hold a CIFAR-10 "
                                           r"archive \(cifar-10-python\.tar\.gz, cifar-10-binary\.tar\.gz or cifar10_jpg\.tgz\)"):
        load_cifar10(tmp_path, "test")
