from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # tests/fakes.py

from fakes import write_gtsrb_archives, write_tiny_model, write_video  # noqa: E402

SHARED_DATASETS = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"


@pytest.fixture(scope="session")
def tiny_gtsrb(tmp_path_factory) -> Path:
    return write_gtsrb_archives(tmp_path_factory.mktemp("gtsrb data"))


@pytest.fixture
def tiny_model(tmp_path) -> Path:
    return write_tiny_model(tmp_path / "tiny.onnx")


@pytest.fixture(scope="session")
def tiny_video(tmp_path_factory) -> Path:
    return write_video(tmp_path_factory.mktemp("video") / "clip.mp4")


def require_shared_dataset(name: str) -> Path:
    folder = SHARED_DATASETS / name
    if not folder.is_dir():
        pytest.skip(f"real dataset {folder} is absent (it sits in ../shared/datasets beside the repository)")
    return folder
