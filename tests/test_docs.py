"""The README's promises: the quick-start example runs and the README names the commands CI runs."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import tomllib

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


# what each command needs beyond the core install: the extras that bring it
COMMAND_EXTRAS = {
    "index": {"cli", "local"},
    "search": {"cli", "local"},
    "dupes": {"cli"},
    "serve": {"cli", "server"},
}


def test_the_readme_install_command_installs_what_its_next_commands_use() -> None:
    readme = (ROOT / "README.md").read_text()
    first_block = readme.split("```bash", 1)[1].split("```", 1)[0]
    install = re.search(r"pip install -e '\.\[([a-z,]+)\]'", first_block)
    assert install is not None, "the README's first command installs the package with its extras"
    extras = set(install.group(1).split(","))
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert extras <= set(declared)
    # the commands the quick start shows, up to the next section
    quick_start = readme.split("## Test", 1)[0]
    used = set(re.findall(r"^lookalike (\w+)", quick_start, flags=re.M)) | set(
        re.findall(r"&& lookalike (\w+)", quick_start)
    )
    assert {"index", "search", "serve"} <= used
    for command in used:
        missing = COMMAND_EXTRAS.get(command, {"cli"}) - extras
        assert not missing, f"`lookalike {command}` needs the {missing} extra(s) the install command lacks"
