"""Shared fixtures: clients on every engine, a toy embedder, generated images."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

import lookalike
from tests.toy_embedder import COLOURS, ToyEmbedder

# "sqlite-ivf": the embedded engine with every vector column searched through its IVF index
# (vector_index=always) and every filtered search through the index's candidate pool
# (exact_search_max_rows=0), so the conformance suite holds the index to the exact engine's answers
ENGINES = ["sqlite", "sqlite-ivf", "postgres"]
if os.environ.get("LOOKALIKE_TIDB_URL"):  # a live TiDB (e.g. TiDB Cloud) joins the conformance suite
    ENGINES.append("tidb")


def _postgres_url() -> str | None:
    """A PostgreSQL + pgvector URL for the suite, or None (then postgres tests skip)."""
    try:
        from tests.pg_support import postgres_url
    except ImportError:
        return None
    return postgres_url()


@pytest.fixture(params=ENGINES)
def engine_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database URL for each engine: a fresh SQLite file, or the suite's PostgreSQL."""
    if request.param == "sqlite":
        return str(tmp_path / "test.db")
    if request.param == "sqlite-ivf":
        return f"sqlite:///{tmp_path / 'test.db'}?vector_index=always&exact_search_max_rows=0"
    if request.param == "tidb":
        return os.environ["LOOKALIKE_TIDB_URL"]
    url = _postgres_url()
    if url is None:
        if os.environ.get("CI") and os.environ.get("LOOKALIKE_REQUIRE_POSTGRES"):
            pytest.fail("PostgreSQL is required in CI but could not be started")
        pytest.skip("PostgreSQL + pgvector not available")
    return url


@pytest.fixture
def client(engine_url: str) -> Iterator[lookalike.Client]:
    """A client on each engine; tables it made are dropped afterwards."""
    c = lookalike.connect(engine_url)
    before = set(c.list_tables())
    yield c
    if not c.closed:
        for name in set(c.list_tables()) - before:
            c.drop_table(name, if_not_exists="skip")
        c.close()


@pytest.fixture
def sqlite_client(tmp_path: Path) -> Iterator[lookalike.Client]:
    c = lookalike.connect(tmp_path / "test.db")
    yield c
    c.close()


@pytest.fixture
def toy() -> ToyEmbedder:
    return ToyEmbedder()


@pytest.fixture
def colour_images(tmp_path: Path) -> dict[str, Path]:
    """One PNG per colour name."""
    out = {}
    for name, rgb in COLOURS.items():
        p = tmp_path / f"{name}.png"
        Image.new("RGB", (32, 24), rgb).save(p)
        out[name] = p
    return out


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Say loudly when whole layers were skipped (a green run that never opened the page isn't)."""
    reasons: dict[str, int] = {}
    for report in terminalreporter.stats.get("skipped", []):
        longrepr = getattr(report, "longrepr", None)
        reason = longrepr[2] if isinstance(longrepr, tuple) and len(longrepr) == 3 else ""
        if "NOT tested" in reason or "PostgreSQL + pgvector not available" in reason:
            reasons[reason] = reasons.get(reason, 0) + 1
    for reason, n in reasons.items():
        terminalreporter.write_sep("!", f"{n} tests skipped: {reason.removeprefix('Skipped: ')}", yellow=True)
