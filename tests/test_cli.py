import importlib.metadata
import importlib.util

import pytest
from edgesight.cli.main import main


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
