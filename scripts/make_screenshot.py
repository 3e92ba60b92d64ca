"""Make the README's picture, docs/screenshot.png, from the page test that draws it.

    python scripts/make_screenshot.py

Runs ``tests/test_page.py::test_readme_screenshot`` (Debian's Chromium, a generated gallery, a real
server), which leaves ``test-artifacts/page-readme.png``, and copies that into ``docs/``. Test runs
themselves never write into the source tree.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    test = "tests/test_page.py::test_readme_screenshot"
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", test], cwd=ROOT)
    if done.returncode != 0:
        return done.returncode
    shutil.copyfile(ROOT / "test-artifacts" / "page-readme.png", ROOT / "docs" / "screenshot.png")
    print("wrote docs/screenshot.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
