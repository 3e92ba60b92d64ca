"""The long differential run: thousands of generated cases per engine against the reference.

    python scripts/differential_long.py                 # 4,000 examples per engine
    python scripts/differential_long.py --examples 500  # shorter

It runs the Hypothesis tests of ``tests/test_differential.py`` under the ``long`` profile and prints
how many generated cases ran on each engine (SQLite, PostgreSQL, PostgreSQL with an HNSW index).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--examples", type=int, default=4000, help="generated cases per engine")
    parser.add_argument("-k", default="matches_reference", help="pytest -k expression (which engines)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        stats = Path(tmp) / "runs.json"
        env = {
            **os.environ,
            "LOOKALIKE_HYPOTHESIS_PROFILE": "long",
            "LOOKALIKE_HYPOTHESIS_EXAMPLES": str(args.examples),
            "LOOKALIKE_DIFF_STATS": str(stats),
        }
        cmd = [sys.executable, "-m", "pytest", "tests/test_differential.py", "-k", args.k, "-q", "-x"]
        start = time.monotonic()
        rc = subprocess.call(cmd, cwd=ROOT, env=env)
        took = time.monotonic() - start
        runs = json.loads(stats.read_text()) if stats.exists() else {}
    for engine, n in sorted(runs.items()):
        print(f"{engine}: {n} generated cases passed")
    print(f"{sum(runs.values())} cases in {took:.0f} s (pytest exit code {rc})")
    return rc


if __name__ == "__main__":
    sys.exit(main())
