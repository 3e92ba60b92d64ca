"""Run pytidb's example programs, unmodified, on lookalike, with local stand-ins for hosted APIs.

    pip install -e ".[pytidb-suite]"         # python-dotenv; Streamlit for three of the examples
    python scripts/pytidb_examples.py --pytidb /path/to/pytidb [--engine sqlite|postgres]

``--pytidb`` is a checkout of github.com/pingcap/pytidb or a bare git mirror of it. Its
``examples/`` folder is copied into a temporary folder and each program runs there, through the
same import mapping as ``scripts/pytidb_suite.py`` (a ``pytidb`` package that only re-exports
lookalike's names). What stands in for what cannot run here:

* OpenAI's and Jina AI's embedding APIs: the strict local stub servers of ``tests/stub_providers.py``
  (their vectors are hashes, so the examples' printed rankings are not meaningful, only their runs);
* BGE-M3 (``FlagEmbedding``, a 2 GB torch model used by ``custom_embedding``): a small stub module
  with the same call, giving deterministic vectors;
* the Oxford Pets images of ``image_search``: a dozen generated JPEGs named as the dataset names them;
* Amazon Bedrock, where TiDB Cloud's free Titan model (``auto_embedding``'s default) runs: the
  strict SigV4-checking stub of ``tests/stub_providers.py``; ``auto_embedding`` runs again with
  ``EMBEDDING_PROVIDER=openai`` and ``cohere`` (which passes pytidb's ``use_server=True``).

The Streamlit apps run under ``streamlit.testing.v1.AppTest``: the first render, then the search the
app offers (typing a query and pressing its button). A program passes when it exits 0 and an app
when it raises nothing and shows no ``st.error``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from pytidb_suite import engine_url, write_shim  # noqa: E402

STUB_KEY = "test-key"

FLAG_EMBEDDING = '''
"""Stand-in for FlagEmbedding's BGE-M3 (no torch, no download): deterministic unit vectors."""
import hashlib

import numpy as np


class BGEM3FlagModel:
    def __init__(self, model_name_or_path, use_fp16=True, device=None, **kwargs):
        self.model_name = model_name_or_path

    def encode(self, sentences, **kwargs):
        single = isinstance(sentences, str)
        texts = [sentences] if single else list(sentences)
        out = []
        for text in texts:
            seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
            vec = np.random.default_rng(seed).standard_normal(1024).astype(np.float32)
            out.append(vec / np.linalg.norm(vec))
        dense = out[0] if single else np.stack(out)
        return {"dense_vecs": dense}
'''

# what each app's search looks like to AppTest: (widget kind, index or label, value); a button press
# (and a radio choice) runs the script again
APP_DRIVER = """
import sys
from streamlit.testing.v1 import AppTest

at = AppTest.from_file(sys.argv[1], default_timeout=300)
at.run()
steps = STEPS
for kind, label, value in steps:
    if kind == "button":  # a press runs the script again, with what was typed before it
        [b for b in at.button if b.label == label][0].click()
        at.run()
    elif kind == "text_input":
        at.text_input[label].input(value)
    elif kind == "radio":
        at.radio[label].set_value(value)
        at.run()
    elif kind == "slider":
        [w for w in at.slider if w.label == label][0].set_value(value)


def count(node, kind):
    own = type(node).__name__ == kind
    return own + sum(count(child, kind) for child in getattr(node, "children", {}).values())

if "--dump" in sys.argv:
    print(at._tree)
problems = [str(e.value) for e in at.exception] + [str(e.value) for e in at.error]
print(
    f"APP-RESULT exceptions={len(at.exception)} errors={len(at.error)} tables={len(at.dataframe)} "
    f"images={count(at._tree, 'Image')} infos={[i.value[:60] for i in at.info]}"
)
for p in problems:
    print("APP-PROBLEM", p[:500])
sys.exit(1 if problems else 0)
"""

EXAMPLES: dict[str, dict[str, object]] = {
    "quickstart": {"run": "main.py"},
    "basic": {"run": "main.py"},
    # its default, TiDB Cloud's free Titan text model, runs at Amazon Bedrock (a local stub here)
    "auto_embedding": {"run": "main.py"},
    "auto_embedding (cohere)": {
        "dir": "auto_embedding",
        "run": "main.py",
        "env": {"EMBEDDING_PROVIDER": "cohere"},
    },
    "auto_embedding (openai)": {
        "dir": "auto_embedding",
        "run": "main.py",
        "env": {"EMBEDDING_PROVIDER": "openai"},
    },
    "custom_embedding": {"run": "main.py"},
    "vector_search": {
        "app": "app.py",
        # the stub's vectors are hashes: every distance is near 1, so the threshold is opened
        "steps": [
            ("slider", "Distance threshold", 1.0),
            ("text_input", 0, "a fast database"),
            ("button", "Search", None),
        ],
    },
    "vector_index": {"app": "app.py", "steps": [("button", "Generate & Search", None)]},
    "image_search": {
        "app": "app.py",
        "steps": [
            ("button", "Load Sample Data", None),
            ("radio", 0, "Text"),
            ("text_input", 0, "shiba inu"),
            ("button", "Search", None),
        ],
    },
}


def pet_images(folder: Path) -> None:
    """A dozen JPEGs named as the Oxford Pets dataset names its files (breed_number.jpg)."""
    from PIL import Image, ImageDraw

    folder.mkdir(parents=True, exist_ok=True)
    breeds = ["shiba_inu", "scottish_terrier", "Abyssinian", "pug"]
    for b, breed in enumerate(breeds):
        for n in range(1, 4):
            img = Image.new("RGB", (96, 80), (40 + 50 * b, 200 - 40 * n, 90 + 30 * b))
            ImageDraw.Draw(img).ellipse((10 * n, 10, 60 + 5 * b, 70), fill=(250 - 40 * b, 30 * n, 120))
            img.save(folder / f"{breed}_{n}.jpg", quality=90)


def run_one(name: str, spec: dict[str, object], folder: Path, env: dict[str, str]) -> tuple[bool, str, float]:
    cwd = folder / str(spec.get("dir", name))
    run_env = {**env, **spec.get("env", {})}  # type: ignore[dict-item]
    if name == "image_search":
        pet_images(cwd / "oxford_pets" / "images")
    start = time.monotonic()
    if "run" in spec:
        cmd = [sys.executable, str(spec["run"])]
    else:
        driver = cwd / "_apptest_driver.py"
        driver.write_text(APP_DRIVER.replace("STEPS", repr(spec["steps"])))
        cmd = [
            sys.executable,
            driver.name,
            str(spec["app"]),
            *(["--dump"] if os.environ.get("PYTIDB_EXAMPLES_DUMP") else []),
        ]
    proc = subprocess.run(cmd, cwd=cwd, env=run_env, capture_output=True, text=True, timeout=900)
    output = (proc.stdout + proc.stderr).strip()
    return proc.returncode == 0, output, time.monotonic() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pytidb", type=Path, required=True, help="pytidb checkout or bare git mirror")
    parser.add_argument("--engine", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--only", nargs="*", help="run these examples only")
    parser.add_argument("--json", type=Path, help="write each example's outcome here")
    args = parser.parse_args(argv)
    from tests.stub_providers import STUB_ACCESS_KEY, STUB_SECRET_KEY, CloudStub, StubModel, StubProvider

    # vector_search's TiDB Cloud model is Cohere's embed-multilingual-v3.0, run at Cohere's API
    multilingual = {"embed-multilingual-v3.0": StubModel(1024, max_items=96)}
    with (
        tempfile.TemporaryDirectory(prefix="pytidb-examples-") as tmp,
        StubProvider("openai") as openai,
        StubProvider("jina") as jina,
        StubProvider("cohere", extra_models=multilingual) as cohere,
        CloudStub("bedrock") as bedrock,
    ):
        work = Path(tmp)
        write_shim(work / "shim")
        (work / "shim" / "FlagEmbedding.py").write_text(textwrap.dedent(FLAG_EMBEDDING))
        source = args.pytidb.resolve()
        if (source / "examples").is_dir():
            shutil.copytree(source / "examples", work / "examples")
        else:
            archive = subprocess.run(
                ["git", f"--git-dir={source}", "archive", "HEAD", "examples"], check=True, capture_output=True
            ).stdout
            subprocess.run(["tar", "x", "-C", str(work)], input=archive, check=True)
        env = {
            **{
                k: v
                for k, v in os.environ.items()
                if not k.startswith(("TIDB_", "OPENAI_", "JINA_", "CO_", "COHERE_", "AWS_"))
            },
            "PYTIDB_SUITE_URL": engine_url(args.engine, work),
            "PYTHONPATH": os.pathsep.join([str(work / "shim"), str(ROOT)]),
            "OPENAI_API_KEY": STUB_KEY,
            "OPENAI_BASE_URL": openai.api_base,
            "JINA_AI_API_KEY": STUB_KEY,
            "JINA_API_BASE": jina.api_base,
            "COHERE_API_KEY": STUB_KEY,
            "CO_API_URL": cohere.api_base,
            "AWS_ACCESS_KEY_ID": STUB_ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": STUB_SECRET_KEY,
            "AWS_REGION": "us-east-1",
            "AWS_BEDROCK_RUNTIME_ENDPOINT": bedrock.api_base,
            "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false",
        }
        outcomes = {}
        for name, spec in EXAMPLES.items():
            if args.only and name not in args.only:
                continue
            ok, output, seconds = run_one(name, spec, work / "examples", env)
            outcomes[name] = {"ok": ok, "seconds": round(seconds, 1), "output_tail": output[-3000:]}
            summary = [line for line in output.splitlines() if line.startswith("APP-RESULT")]
            print(f"{'PASS' if ok else 'FAIL'} {name:18} {seconds:6.1f} s  {' '.join(summary)}")
            if not ok or os.environ.get("PYTIDB_EXAMPLES_DUMP"):
                print(textwrap.indent(output[-3000:], "    | "))
        violations = openai.violations + jina.violations + cohere.violations + bedrock.violations
        print(
            f"\n{sum(o['ok'] for o in outcomes.values())} / {len(outcomes)} examples ran clean on {args.engine}"
        )
        counts = (
            f"openai {openai.request_count}, jina {jina.request_count}, cohere {cohere.request_count}, "
            f"bedrock {len(bedrock.seen)}"
        )
        print(f"stub requests: {counts}; protocol violations: {len(violations)}")
        for v in violations:
            print("  VIOLATION", v)
    if args.json:
        args.json.write_text(json.dumps(outcomes, indent=1))
    return 0 if outcomes and all(o["ok"] for o in outcomes.values()) and not violations else 1


if __name__ == "__main__":
    sys.exit(main())
