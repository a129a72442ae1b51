"""ORT-format copies of locator files, checked against their ONNX files without onnxruntime's NCHWc layout
(export/ort_format.py; the classifiers' copies are covered with their export in test_cli_pipeline.py)."""
import shutil

import numpy as np
import pytest
from edgesight.runtime.shipped import resolve_model

ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnx", reason="export needs the [export] extra")


def _locator_folder(tmp_path):
    """The shipped locator's ONNX files and card, without their ORT copies."""
    folder = tmp_path / "sign-locator"
    folder.mkdir()
    for name in ("locator.onnx", "locator.int8.onnx", "MODEL_CARD.md"):
        shutil.copy(resolve_model("sign-locator-fp32").parent / name, folder / name)
    return folder


def test_locator_files_get_ort_copies_that_compute_what_they_compute_without_the_nchwc_layout(tmp_path, capsys):
    from edgesight.export.ort_format import X86_LAYOUT_OPTIMIZER, locator_check_inputs, main
    from edgesight.runtime.learned_locate import LearnedLocator
    from edgesight.runtime.sessions import session_options

    folder = _locator_folder(tmp_path)
    sources = [folder / "locator.onnx", folder / "locator.int8.onnx"]
    assert main([str(path) for path in sources]) == 0
    assert "locator.int8.ort" in capsys.readouterr().out
    operators = (folder / "required_operators.config").read_text()
    assert "locator.ort" in operators and "locator.int8.ort" in operators and "QLinearConv" in operators
    image = locator_check_inputs(sources[0], count=1)[0]
    for source in sources:
        copy = ort.InferenceSession(str(source.with_suffix(".ort")), providers=["CPUExecutionProvider"])
        reference = ort.InferenceSession(str(source), session_options(1), providers=["CPUExecutionProvider"],
                                         disabled_optimizers=[X86_LAYOUT_OPTIMIZER])
        for ours, theirs in zip(copy.run(None, {"image": image}), reference.run(None, {"image": image})):
            assert np.array_equal(ours, theirs)
        assert LearnedLocator(source.with_suffix(".ort")).min_score == LearnedLocator(source).min_score  # metadata travels
    assert main([str(path) for path in sources]) == 0  # made again: the card keeps one section
    card = (folder / "MODEL_CARD.md").read_text()
    assert card.count("## ORT format") == 1 and card.index("## ORT format") < card.index("## Reproduce")


def test_a_copy_that_computes_otherwise_is_refused_and_nothing_is_written(tmp_path, monkeypatch):
    import onnxruntime.tools.convert_onnx_models_to_ort as converter
    from edgesight.export.ort_format import OrtFormatError, locator_check_inputs, write_ort_files

    convert = converter.convert_onnx_models_to_ort

    def convert_then_swap(sources, output_dir, **options):  # the float graph under the int8 file's name
        convert(sources, output_dir=output_dir, **options)
        shutil.copy(output_dir / "locator.ort", output_dir / "locator.int8.ort")

    monkeypatch.setattr(converter, "convert_onnx_models_to_ort", convert_then_swap)
    folder = _locator_folder(tmp_path)
    sources = [folder / "locator.onnx", folder / "locator.int8.onnx"]  # the float file's copy passes, then the twin's fails
    with pytest.raises(OrtFormatError, match=r"locator\.int8\.ort: gives other outputs than .*locator\.int8\.onnx"):
        write_ort_files(sources, locator_check_inputs(sources[0], count=1))
    assert not list(folder.glob("*.ort")) and not (folder / "required_operators.config").exists()


def test_files_of_other_folders_kinds_or_suffixes_are_refused_before_any_work(tmp_path, capsys):
    from edgesight.export.ort_format import main

    folder = _locator_folder(tmp_path)
    elsewhere = tmp_path / "elsewhere.onnx"
    shutil.copy(folder / "locator.onnx", elsewhere)
    for arguments, message in (([folder / "locator.onnx", elsewhere], "not in"), ([folder / "MODEL_CARD.md"], "not an .onnx file")):
        with pytest.raises(SystemExit) as stop:
            main([str(path) for path in arguments])
        assert stop.value.code == 2 and message in capsys.readouterr().err
    shutil.copy(resolve_model("gtsrb-tiny"), folder / "model.int8.onnx")
    with pytest.raises(SystemExit):
        main([str(folder / "locator.onnx"), str(folder / "model.int8.onnx")])
    assert "the files take different inputs" in capsys.readouterr().err
    assert not list(folder.glob("*.ort"))
