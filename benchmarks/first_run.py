"""Benchmark: how long a first run takes to say that the model can't be downloaded.

    python benchmarks/first_run.py              # 3 runs per case
    python benchmarks/first_run.py --runs 1 --baseline

Each case runs ``lookalike index <folder>`` in a fresh process with an empty Hugging Face cache and a
hub endpoint that can't be reached, and times it to the exit:

* ``no DNS``: the hub's host name does not resolve (``*.invalid`` never does; on this machine any
  outside name fails the same way);
* ``refused``: the host resolves but nothing listens (127.0.0.1 port 9).

``--baseline`` also times huggingface_hub's own download call on the same endpoints (what the first
run did before it checked the hub first: five rounds of back-off per file, then a message per image).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
CASES = {"no DNS": "https://lookalike-bench.invalid", "refused": "http://127.0.0.1:9"}


def _env(home: Path, endpoint: str) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HOME": str(home / "hf"), "HF_ENDPOINT": endpoint}
    for var in ("HF_HUB_OFFLINE", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy", "LOOKALIKE_DEBUG"):
        env.pop(var, None)
    return env


def time_cli(endpoint: str) -> tuple[float, int, str]:
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        pics = home / "pics"
        pics.mkdir()
        for i in range(20):
            Image.new("RGB", (64, 48), (i * 12, 80, 160)).save(pics / f"{i}.jpg")
        t0 = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "lookalike.cli", "index", str(pics)],
            cwd=home,
            capture_output=True,
            text=True,
            env=_env(home, endpoint),
            timeout=900,
        )
        return time.perf_counter() - t0, proc.returncode, proc.stderr.strip()


def time_hub_download(endpoint: str) -> float:
    code = (
        "import huggingface_hub as h\n"
        "try:\n"
        "    h.hf_hub_download('Xenova/clip-vit-base-patch32', 'preprocessor_config.json')\n"
        "except Exception as e:\n"
        "    print(type(e).__name__)\n"
    )
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, env=_env(Path(tmp), endpoint), timeout=900
        )
        return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--baseline", action="store_true", help="also time huggingface_hub alone")
    args = parser.parse_args()
    print(
        f"{'case':<10} {'lookalike index':>18} {'exit':>5} {'lines':>6}   baseline (hf_hub_download, 1 file)"
    )
    for name, endpoint in CASES.items():
        runs = [time_cli(endpoint) for _ in range(args.runs)]
        seconds = statistics.median(r[0] for r in runs)
        codes = {r[1] for r in runs}
        lines = max(len(r[2].splitlines()) for r in runs)
        base = f"{time_hub_download(endpoint):.1f} s" if args.baseline else "-"
        print(f"{name:<10} {seconds:>16.2f} s {','.join(map(str, codes)):>5} {lines:>6}   {base}")
    print("message:", runs[-1][2][:300], "…")


if __name__ == "__main__":
    main()
