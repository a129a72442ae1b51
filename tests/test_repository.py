"""What outside tools rely on in the repository itself."""
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[1]


def test_ci_runs_the_readme_test_command():
    readme = (REPOSITORY / "README.md").read_text()
    ci_lines = [line for line in (REPOSITORY / ".ci" / "run").read_text().splitlines() if "pytest" in line]
    assert len(ci_lines) == 1 and ci_lines[0].strip() in readme


def test_shipped_model_folders_hold_only_what_export_writes():
    shipped = {"MODEL_CARD.md", "model.onnx", "model.int8.onnx", "model.ort", "model.int8.ort", "required_operators.config"}
    for folder in (path for path in (REPOSITORY / "models").iterdir() if path.is_dir() and path.name != "__pycache__"):
        names = {path.name for path in folder.iterdir()}
        assert {"MODEL_CARD.md", "model.onnx", "model.int8.onnx"} <= names <= shipped, folder


def test_shipped_locator_folders_hold_a_locator_file_its_int8_twin_their_ort_copies_and_their_card():
    for folder in (path for path in (REPOSITORY / "locators").iterdir() if path.is_dir() and path.name != "__pycache__"):
        assert {path.name for path in folder.iterdir()} == {"MODEL_CARD.md", "locator.onnx", "locator.int8.onnx", "locator.ort",
                                                             "locator.int8.ort", "required_operators.config"}, folder
