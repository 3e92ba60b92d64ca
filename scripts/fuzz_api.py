"""A longer fuzz of the REST API than CI runs: ``python scripts/fuzz_api.py [examples per operation]``.

Runs ``tests/test_api_fuzz.py`` (schemathesis against a real uvicorn server) with a bigger budget;
CI runs the same test with 25 examples per operation.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    """Run the fuzz test with ``argv[1]`` (default 500) examples per operation; its exit status."""
    examples = sys.argv[1] if len(sys.argv) > 1 else "500"
    env = {**os.environ, "LOOKALIKE_FUZZ_EXAMPLES": examples}
    command = [sys.executable, "-m", "pytest", "tests/test_api_fuzz.py", "-q", "-s", "-p", "no:cacheprovider"]
    return subprocess.call(command, cwd=ROOT, env=env)


if __name__ == "__main__":
    raise SystemExit(main())
