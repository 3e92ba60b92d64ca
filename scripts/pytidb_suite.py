"""Run pytidb's own test suite against lookalike, through a module that only maps import paths.

    pip install -e ".[pytidb-suite]"                                    # python-dotenv, as pytidb's tests
    python scripts/pytidb_suite.py --pytidb /path/to/pytidb            # SQLite and PostgreSQL
    python scripts/pytidb_suite.py --pytidb /path/to/pytidb --engine sqlite -k search

``--pytidb`` is a checkout of github.com/pingcap/pytidb (or a bare git mirror of it): its ``tests/``
folder is copied into a temporary folder, untouched. Next to it the script writes a ``pytidb``
package whose modules only re-export lookalike's names under pytidb's import paths (and the
SQLAlchemy/SQLModel names pytidb itself re-exports). The one piece of logic in it is where
``TiDBClient.connect(host=..., database=...)`` goes: to the engine under test (a SQLite file in a
temporary folder, or the PostgreSQL server of ``LOOKALIKE_PG_URL`` / a pgserver started for the run),
with pytidb's ``database`` and ``ensure_db`` honoured through lookalike's ``use_database``.

Each test is put in one of three groups before it runs, from pytidb's own markings and fixtures:
``paid`` (it calls a hosted API: OpenAI, Jina, a TiDB Cloud model, an LLM reranker), ``tidb-only``
(TiFlash replicas, TiDB's server-side embedding) and ``portable`` (the rest). The goal is on the
portable group; the others are run too (they fail or skip for want of a key) and listed apart.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# pytidb import path -> {name: "module:attribute"}. Everything pytidb's tests import is here; a name
# lookalike lacks makes the import fail, and so the tests that need it.
MAPPING: dict[str, dict[str, str]] = {
    "pytidb": {
        "Table": "lookalike:Table",
        "Session": "sqlmodel:Session",
        "create_engine": "sqlalchemy:create_engine",
        "build_tidb_connection_url": "lookalike.engines.tidb:build_tidb_connection_url",
    },
    "pytidb.client": {},
    "pytidb.table": {"Table": "lookalike:Table"},
    "pytidb.schema": {
        "TableModel": "lookalike:TableModel",
        "Field": "lookalike:Field",
        "VectorField": "lookalike:VectorField",
        "FullTextField": "lookalike:FullTextField",
        "DistanceMetric": "lookalike:DistanceMetric",
        "VectorIndex": "lookalike:VectorIndex",
        "FullTextIndex": "lookalike:FullTextIndex",
        "Column": "sqlalchemy:Column",
        "Relationship": "sqlmodel:Relationship",
    },
    "pytidb.datatype": {
        "VECTOR": "lookalike:VECTOR",
        "JSON": "sqlalchemy:JSON",
        "TEXT": "sqlalchemy:TEXT",
    },
    "pytidb.embeddings": {"EmbeddingFunction": "lookalike:EmbeddingFunction"},
    "pytidb.embeddings.base": {
        "BaseEmbeddingFunction": "lookalike:BaseEmbeddingFunction",
        "EmbeddingSourceType": "lookalike.types:SourceType",
    },
    "pytidb.fusion": {
        "fusion_result_rows_by_rrf": "lookalike.fusion:fusion_result_rows_by_rrf",
        "fusion_result_rows_by_weighted": "lookalike.fusion:fusion_result_rows_by_weighted",
    },
    "pytidb.orm": {},
    "pytidb.orm.indexes": {
        "VectorIndex": "lookalike:VectorIndex",
        "FullTextIndex": "lookalike:FullTextIndex",
    },
    "pytidb.orm.distance_metric": {"DistanceMetric": "lookalike:DistanceMetric"},
    "pytidb.orm.tiflash_replica": {"TiFlashReplica": "lookalike.engines.tidb:TiFlashReplica"},
    "pytidb.rerankers": {"Reranker": "lookalike:Reranker"},
    "pytidb.rerankers.base": {"BaseReranker": "lookalike:BaseReranker"},
    "pytidb.search": {
        "SCORE_LABEL": "lookalike.search:SCORE_LABEL",
        "DISTANCE_LABEL": "lookalike.search:DISTANCE_LABEL",
    },
    "pytidb.utils": {"build_tidb_connection_url": "lookalike.engines.tidb:build_tidb_connection_url"},
}

CLIENT = '''
import os

import lookalike


class TiDBClient(lookalike.TiDBClient):
    """lookalike's client; connect() goes to the engine under test instead of a TiDB server."""

    @classmethod
    def connect(cls, url=None, *, database=None, ensure_db=False, **_server):
        client = super().connect(os.environ["PYTIDB_SUITE_URL"])
        if database:
            client.use_database(database, ensure_db=ensure_db)
        return client
'''

# --open-serverless-gate: pytidb's full-text and hybrid tests skip unless ``client.is_serverless``;
# lookalike has full-text search on every engine, so this runs them anyway
OPEN_GATE = """
    is_serverless = True
"""

# tests that call hosted APIs or TiDB-only components, by pytidb's test file or test name
PAID_FIXTURES = ("text_embed",)
PAID_FILES = ("test_auto_embedding_image.py", "test_auto_embedding_server.py")
TIDB_ONLY_FILES = ("test_tiflash_replica.py",)
TIDB_SQL = ("COMPACT", "TIFLASH")  # TiDB's own statements in a test or its fixtures
PAID_WORDS = ("jina", "openai", "litellm", "cohere")
# tests that call pytidb's private methods (its SQL builder's internals), not its API
PRIVATE_CALLS = ("._build_", "._execute_query")


def write_shim(target: Path, open_gate: bool = False) -> None:
    """Write the mapping package ``pytidb`` into ``target``."""
    for module, names in MAPPING.items():
        path = target.joinpath(*module.split("."))
        path.mkdir(parents=True, exist_ok=True)
        lines = ['"""pytidb import path mapped to lookalike (written by scripts/pytidb_suite.py)."""']
        for name, source in names.items():
            mod, _, attr = source.partition(":")
            lines.append(f"from {mod} import {attr} as {name}")
        if module in ("pytidb", "pytidb.client"):
            lines.append("from pytidb._client import TiDBClient")
        (path / "__init__.py").write_text("\n".join(lines) + "\n")
    (target / "pytidb" / "_client.py").write_text(CLIENT + (OPEN_GATE if open_gate else ""))
    sql = ["from sqlalchemy.sql import *  # noqa: F403", "from sqlalchemy import text, func"]
    sql.append("from sqlmodel import select, col, and_, or_, not_, between, case, cast")
    (target / "pytidb" / "sql").mkdir(exist_ok=True)
    (target / "pytidb" / "sql" / "__init__.py").write_text("\n".join(sql) + "\n")


def copy_tests(source: Path, target: Path) -> None:
    """Copy pytidb's ``tests/`` (from a checkout or a bare git mirror) into ``target/tests``."""
    if (source / "tests").is_dir():
        shutil.copytree(source / "tests", target / "tests")
        return
    archive = subprocess.run(
        ["git", f"--git-dir={source}", "archive", "HEAD", "tests"], check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "x", "-C", str(target)], input=archive, check=True)


def group_of(nodeid: str, source: str) -> str:
    """``paid``, ``tidb-only``, ``private`` or ``portable`` for one test, from its file and its source text
    (the test's and its fixtures')."""
    file = nodeid.split("::")[0].rsplit("/", 1)[-1]
    if file in TIDB_ONLY_FILES or any(word in source for word in TIDB_SQL):
        return "tidb-only"
    if file in PAID_FILES or any(re.search(rf"\b{f}\b", source) for f in PAID_FIXTURES):
        return "paid"
    if any(w in source.lower() for w in PAID_WORDS) and (
        "os.getenv" in source or "EmbeddingFunction(" in source
    ):
        return "paid"
    if any(call in source for call in PRIVATE_CALLS):
        return "private"
    return "portable"


def engine_url(engine: str, work: Path) -> str:
    """The URL the mapped ``TiDBClient.connect`` opens for ``engine``."""
    if engine == "sqlite":
        (work / "db").mkdir(exist_ok=True)
        return str(work / "db" / "main.db")
    sys.path.insert(0, str(ROOT))
    from tests.pg_support import postgres_url

    url = postgres_url()
    if url is None:
        raise SystemExit("PostgreSQL: install pgserver or set LOOKALIKE_PG_URL")
    return url


def run(engine: str, pytidb: Path, extra: list[str], open_gate: bool) -> dict[str, dict[str, str]]:
    """Run the suite on one engine; ``{nodeid: {"outcome", "group", "message"}}``."""
    with tempfile.TemporaryDirectory(prefix=f"pytidb-{engine}-") as tmp:
        work = Path(tmp)
        write_shim(work / "shim", open_gate)
        copy_tests(pytidb, work)
        report = work / "junit.xml"
        env = {
            **os.environ,
            "PYTIDB_SUITE_URL": engine_url(engine, work),
            "PYTHONPATH": os.pathsep.join([str(work / "shim"), str(work)]),
        }
        for key in ("OPENAI_API_KEY", "JINA_API_KEY", "JINA_AI_API_KEY", "TIDB_HOST"):
            env.pop(key, None)
        cmd = [
            sys.executable,
            "-m",
            "pytest",
            "tests",
            "-q",
            "-p",
            "no:cacheprovider",
            "-o",
            "addopts=",
            "--continue-on-collection-errors",
        ]
        cmd += ["--junitxml", str(report), "--timeout", "300", "-rN", *extra]
        subprocess.run(cmd, cwd=work, env=env, check=False)
        return read_report(report, work)


def read_report(report: Path, work: Path) -> dict[str, dict[str, str]]:
    results: dict[str, dict[str, str]] = {}
    for case in ET.parse(report).getroot().iter("testcase"):
        classname, name = case.get("classname", ""), case.get("name", "")
        if not classname:  # the whole file failed to collect
            classname, name = name, "<collection>"
        parts = classname.split(".")
        if parts[-1][:1].isupper():  # a test class: tests.test_x.TestY
            name, parts = f"{parts[-1]}::{name}", parts[:-1]
        file = "/".join(parts) + ".py"
        nodeid = f"{file}::{name}"
        outcome, message = "passed", ""
        for tag in ("failure", "error", "skipped"):
            node = case.find(tag)
            if node is not None:
                outcome = {"failure": "failed", "error": "error", "skipped": "skipped"}[tag]
                message = (node.get("message") or "").splitlines()[0][:200] if node.get("message") else ""
                break
        if outcome == "skipped" and "TiDB Serverless" in message:
            results[nodeid] = {"outcome": outcome, "group": "serverless", "message": message}
            continue
        source = _test_source(work / file, name.split("[")[0].split("::")[-1])
        group = group_of(nodeid, source)
        if group == "portable" and outcome == "skipped":
            group = "skipped"  # pytidb's own skip mark, or its own check of the environment
        results[nodeid] = {"outcome": outcome, "group": group, "message": message}
    return results


def _test_source(path: Path, name: str) -> str:
    """The text of test function ``name`` in ``path`` and of the fixtures it takes (followed through
    the fixtures they take, in that file and in conftest.py)."""
    functions: dict[str, ast.FunctionDef] = {}
    texts: dict[str, str] = {}
    for file in (path.parent / "conftest.py", path):
        try:
            text = file.read_text()
        except OSError:
            continue
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef):
                functions[node.name] = node
                texts[node.name] = ast.get_source_segment(text, node) or ""
    seen: set[str] = set()
    todo = [name]
    while todo:
        current = todo.pop()
        if current in seen or current not in functions:
            continue
        seen.add(current)
        todo.extend(arg.arg for arg in functions[current].args.args)
    return "\n".join(texts[n] for n in seen)


def summarise(engine: str, results: dict[str, dict[str, str]]) -> dict[str, dict[str, int]]:
    table: dict[str, dict[str, int]] = {}
    for nodeid, r in sorted(results.items()):
        file = nodeid.split("::")[0].rsplit("/", 1)[-1]
        row = table.setdefault(f"{r['group']:9} {file}", {"passed": 0, "total": 0})
        row["total"] += 1
        row["passed"] += r["outcome"] == "passed"
    print(f"\n== {engine}")
    for key, row in table.items():
        print(f"  {key:52} {row['passed']:3} / {row['total']:3}")
    for group in ("portable", "private", "skipped", "serverless", "paid", "tidb-only"):
        rows = [r for r in results.values() if r["group"] == group]
        ok = sum(r["outcome"] == "passed" for r in rows)
        share = f"{100 * ok / len(rows):.1f} %" if rows else "-"
        print(f"  {group:9} total: {ok} / {len(rows)} passed ({share})")
    for nodeid, r in sorted(results.items()):
        if r["group"] == "portable" and r["outcome"] != "passed":
            print(f"  NOT PASSED {r['outcome']:7} {nodeid}: {r['message']}")
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pytidb", type=Path, required=True, help="pytidb checkout or bare git mirror")
    parser.add_argument("--engine", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument(
        "--open-serverless-gate", action="store_true", help="run the tests pytidb keeps for TiDB Serverless"
    )
    parser.add_argument("--json", type=Path, help="write every test's outcome here")
    parser.add_argument("pytest_args", nargs="*", help="extra pytest arguments (after --)")
    args = parser.parse_args(argv)
    engines = ("sqlite", "postgres") if args.engine == "both" else (args.engine,)
    everything = {}
    for engine in engines:
        start = time.monotonic()
        results = run(engine, args.pytidb.resolve(), args.pytest_args, args.open_serverless_gate)
        summarise(engine, results)
        print(f"  ({time.monotonic() - start:.0f} s)")
        everything[engine] = results
    if args.json:
        args.json.write_text(json.dumps(everything, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
