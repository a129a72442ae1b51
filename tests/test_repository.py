"""What outside tools rely on in the repository itself."""
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[1]


def test_ci_runs_the_readme_test_command():
    readme = (REPOSITORY / "README.md").read_text()
    ci_lines = [line for line in (REPOSITORY / ".ci" / "run").read_text().splitlines() if "pytest" in line]
    assert len(ci_lines) == 1 and ci_lines[0].strip() in readme
