import importlib.metadata
import importlib.util
import subprocess
import sys

import pytest
from edgesight.cli.main import SIGPIPE_STATUS, main


def test_a_missing_extra_is_named_before_any_work(monkeypatch, capsys, tmp_path):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "tensorflow" else real_find_spec(name, *a))
    assert main(["train", "--data", str(tmp_path)]) == 3
    assert "needs the [train] extra (missing: tensorflow)" in capsys.readouterr().err


def test_version_prints_the_installed_package_version(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.strip() == f"edgesight {importlib.metadata.version('edgesight')}"


def test_a_reader_of_the_json_lines_that_goes_away_ends_the_run_quietly(tiny_model, tiny_video, tmp_path):
    video = tmp_path / "annotated.mp4"
    process = subprocess.Popen([sys.executable, "-m", "edgesight.cli.main", "demo", "--model", str(tiny_model), "--source",
                                str(tiny_video), "--no-window", "--jsonl", "-", "--save-video", str(video)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    process.stdout.close()  # the reader is gone before the first line: `edgesight demo --jsonl - | head -0`
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == SIGPIPE_STATUS
    assert "Traceback" not in stderr and "Broken pipe" not in stderr and "error" not in stderr
    assert not list(tmp_path.glob(".annotated*"))  # the video's temporary file was cleaned up on the way out
