"""The README's promises: the quick-start example runs and the README names the commands CI runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_quickstart_example_runs(tmp_path: Path) -> None:
    out = subprocess.run(
        [
            sys.executable,
            str(ROOT / "examples" / "quickstart.py"),
            "--db",
            str(tmp_path / "q.db"),
            "--folder",
            str(tmp_path / "pics"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith("indexed 13 pictures")
    # the image search's first hit is the query itself; words find pictures of their colour
    by_file = lines[lines.index("search by image file: red-0.jpg") + 1]
    assert by_file.strip().startswith("1.000") and "red-" in by_file
    by_words = lines[lines.index('search by words: "green leaves"') + 1]
    assert "green-" in by_words


def test_readme_commands_match_ci() -> None:
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "python -m pytest" in readme and "python -m pytest" in ci
