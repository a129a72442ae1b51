"""The architecture's dependency directions (ARCHITECTURE.md, "Dependency tiers")."""
import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parents[1]
HEAVY = ("tensorflow", "keras", "tf2onnx", "onnx")


def test_runtime_and_demo_import_no_training_or_export_stack():
    code = (
        "import sys, edgesight.runtime, edgesight.camera_demo.loop, edgesight.runtime.sources, edgesight.runtime.predict, "
        "edgesight.runtime.bench, edgesight.runtime.evaluate, edgesight.export.bench, edgesight.cli.main\n"
        "edgesight.cli.main.build_parser()\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r}))"
    )
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert output.strip() == "[]"


def _imported_roots(folder: Path) -> set[str]:
    roots = set()
    for path in folder.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                roots.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                roots.add(node.module)
    return roots


@pytest.mark.parametrize("stage, forbidden", [
    ("runtime", HEAVY + ("edgesight.train", "edgesight.export", "edgesight.camera_demo")),
    ("camera_demo", HEAVY + ("edgesight.train", "edgesight.export")),
    ("export", ("edgesight.train",)),
    ("train", ("edgesight.export",)),
])
def test_stage_imports_respect_tiers(stage, forbidden):
    imported = _imported_roots(REPOSITORY / stage)
    offending = sorted(name for name in imported if any(name == f or name.startswith(f + ".") for f in forbidden))
    assert offending == []
