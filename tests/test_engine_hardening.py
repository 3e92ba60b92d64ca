"""Engine and table edge cases from issue 10, on real SQLite files and the suite's real PostgreSQL:
``$in`` filters on indexed tables, the default HNSW beam, source records that follow their rows,
corrupted / read-only / full databases, reserved names, atomic replacement of changed files, and
negative ``limit``/``offset``."""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

import lookalike
from lookalike import (
    ConfigurationError,
    EngineError,
    Field,
    LookalikeError,
    SchemaError,
    TableModel,
    VectorField,
)
from lookalike.folders import index_paths
from tests.toy_embedder import COLOURS, ToyEmbedder


def _vec_table(client: lookalike.Client, dims: int, name: str = "hard_vecs") -> lookalike.Table:
    class Vec(TableModel):
        __tablename__ = name
        id: int = Field(primary_key=True)
        cat: int = Field(default=0)
        vec: list[float] | None = VectorField(dimensions=dims)

    return client.create_table(schema=Vec, if_exists="overwrite")


def _unit(n: int, dims: int, seed: int) -> np.ndarray:
    data = np.random.default_rng(seed).standard_normal((n, dims)).astype(np.float32)
    return data / np.linalg.norm(data, axis=1, keepdims=True)


# ---------------------------------------------------------------------- 1. $in on an indexed table


def test_in_filter_on_an_indexed_table(client: lookalike.Client) -> None:
    data = _unit(600, 8, seed=1)
    t = _vec_table(client, 8)
    out = t.bulk_insert([{"cat": i % 10, "vec": v} for i, v in enumerate(data)])
    ids = np.array([r["id"] for r in out])
    t.create_vector_index(metric="cosine")
    got = t.search(data[3]).filter({"cat": {"$in": [3, 4]}}).limit(10).to_list()
    mask = np.isin(np.arange(600) % 10, [3, 4])
    ref = 1.0 - data.astype(np.float64) @ data[3].astype(np.float64)
    want = ids[np.flatnonzero(mask)[np.argsort(ref[mask], kind="stable")[:10]]]
    assert [r["id"] for r in got] == want.tolist()


# ---------------------------------------------------------------------- 2. the default HNSW beam


def test_default_beam_recall_on_random_unit_vectors(client: lookalike.Client) -> None:
    """20,000 x 32-d uniformly random unit vectors, HNSW defaults: recall@10 >= 0.95 by default."""
    if client.engine.name == "sqlite":
        pytest.skip("HNSW's beam; the embedded engine's IVF has its own: test_sqlite_index.py, num_candidate")
    n, dims, k = 20_000, 32, 10
    data, queries = _unit(n, dims, seed=0), _unit(60, dims, seed=1)
    t = _vec_table(client, dims, name="hard_beam")
    ids = np.array([r["id"] for r in t.bulk_insert([{"vec": v} for v in data], chunk_size=5000)])
    t.create_vector_index(metric="cosine")
    engine: Any = client.engine
    # 20,000 rows is at the size up to which a table is searched exactly: make it use the index
    saved, engine.exact_search_max_rows = engine.exact_search_max_rows, 0
    try:
        recalls = []
        for q in queries:
            truth = set(ids[np.argsort(1.0 - data @ q)[:k]].tolist())
            got = {r["id"] for r in t.search(q).limit(k).select("id").to_list()}
            recalls.append(len(got & truth) / k)
        assert np.mean(recalls) >= 0.95
        # per query: a narrow beam (ef_search = 10) gives visibly worse recall, a wide one near-perfect
        narrow = np.mean(
            [
                len(
                    {r["id"] for r in t.search(q).limit(k).num_candidate(10).to_list()}
                    & set(ids[np.argsort(1.0 - data @ q)[:k]].tolist())
                )
                / k
                for q in queries
            ]
        )
        assert narrow < np.mean(recalls)
    finally:
        engine.exact_search_max_rows = saved


# ---------------------------------------------------------------------- 4. source records follow rows


def test_delete_drops_source_records_and_a_reused_id_has_none(
    client: lookalike.Client, toy: ToyEmbedder, colour_images: dict[str, Path]
) -> None:
    class Pic(TableModel):
        __tablename__ = "hard_pics"
        id: int = Field(primary_key=True)
        uri: str | None = Field(default=None)
        vec: list[float] | None = toy.VectorField(source_field="uri")

    t = client.create_table(schema=Pic, if_exists="overwrite")
    red = t.insert({"uri": str(colour_images["red"])})
    again = t.insert({"uri": str(colour_images["red"])})  # a byte-identical copy
    assert set(t.source_info()) == {str(red["id"]), str(again["id"])}
    assert t.delete({"id": again["id"]}) == 1
    assert set(t.source_info()) == {str(red["id"])}
    # a different, vector-only row under the deleted id is not a copy of anything
    t.insert({"id": again["id"], "vec": np.ones(16, dtype=np.float32)})
    assert str(again["id"]) not in t.source_info()
    assert not [g for g in t.find_duplicates(threshold=0.0) if again["id"] in g.ids]
    t.truncate()
    assert t.source_info() == {}


def test_delete_in_a_rolled_back_session_keeps_source_records(
    sqlite_client: lookalike.Client, toy: ToyEmbedder, colour_images: dict[str, Path]
) -> None:
    class Pic(TableModel):
        __tablename__ = "hard_pics2"
        id: int = Field(primary_key=True)
        uri: str | None = Field(default=None)
        vec: list[float] | None = toy.VectorField(source_field="uri")

    t = sqlite_client.create_table(schema=Pic)
    row = t.insert({"uri": str(colour_images["blue"])})
    with pytest.raises(RuntimeError), sqlite_client.session():
        t.delete({"id": row["id"]})
        raise RuntimeError("boom")
    assert t.get(row["id"]) is not None and str(row["id"]) in t.source_info()


# ---------------------------------------------------------------------- 5, 13. SQLite file errors


def _big_db(path: Path) -> None:
    c = lookalike.connect(path)
    t = _vec_table(c, 64, name="big")
    t.bulk_insert([{"cat": i, "vec": v} for i, v in enumerate(_unit(4000, 64, seed=2))])
    c.close()


def test_corrupted_database_search_raises_a_lookalike_error_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "corrupt.db"
    _big_db(path)
    size = path.stat().st_size
    with open(path, "r+b") as f:  # garbage over the middle of the table's pages (not the header)
        f.seek(size // 2)
        f.write(os.urandom(64 * 1024))
    c = lookalike.connect(path)
    try:
        t = c.open_table("big")
        with pytest.raises(LookalikeError) as info:
            t.search(np.ones(64)).to_list()
        assert str(path) in str(info.value)
        assert isinstance(info.value.__cause__, sqlite3.DatabaseError)
    finally:
        c.close()


def test_read_only_database_error_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "ro.db"
    _big_db(path)
    # a real read-only connection (chmod doesn't stop root): SQLite's own mode=ro
    ro = lambda: sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)  # noqa: E731
    c = lookalike.connect(path, creator=ro)
    try:
        t = c.open_table("big")
        assert len(t.search(np.ones(64)).limit(3).to_list()) == 3  # reading works
        with pytest.raises(EngineError, match="read-only") as info:
            t.insert({"vec": np.ones(64)})
        assert str(path) in str(info.value)
    finally:
        c.close()


def test_full_database_error_names_the_file(tmp_path: Path) -> None:
    """A real SQLITE_FULL: the file may not grow past its page limit (a full disk reads the same)."""
    path = tmp_path / "full.db"
    c = lookalike.connect(path)
    try:
        t = _vec_table(c, 64)
        with pytest.raises(EngineError, match="full") as info, c.session():
            pages = c.query("PRAGMA page_count").scalar()
            c.query(f"PRAGMA max_page_count = {int(pages) + 2}")
            t.bulk_insert([{"vec": v} for v in _unit(2000, 64, seed=3)])
        assert str(path) in str(info.value)
    finally:
        c.close()


# ---------------------------------------------------------------------- 9. reserved names


def test_reserved_names_are_refused_up_front(client: lookalike.Client) -> None:
    class Internal(TableModel):
        __tablename__ = "_lookalike_mine"
        id: int = Field(primary_key=True)

    with pytest.raises(SchemaError, match="reserved"):
        client.create_table(schema=Internal)

    class RowId(TableModel):
        __tablename__ = "hard_rowid"
        id: int = Field(primary_key=True)
        rowid: int = Field(default=0)

    with pytest.raises(SchemaError, match=r"rowid.*reserved"):
        client.create_table(schema=RowId)
    assert "hard_rowid" not in client.list_tables()


# ---------------------------------------------------------------------- 10. replacing a changed file


def test_a_changed_file_whose_write_fails_keeps_its_old_row(tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    Image.new("RGB", (40, 30), COLOURS["red"]).save(folder / "red.png")
    c = lookalike.connect(tmp_path / "index.db")
    try:
        index_paths(c, [folder], model=ToyEmbedder())
        before = c.open_table("images").query().to_list()
        assert len(before) == 1
        Image.new("RGB", (64, 64), COLOURS["green"]).save(folder / "red.png")
        later = time.time() + 5
        os.utime(folder / "red.png", (later, later))
        # a real engine failure at the insert, after the old row's delete in the same transaction
        c.execute(
            "CREATE TRIGGER refuse_new BEFORE INSERT ON images "
            "BEGIN SELECT RAISE(ABORT, 'the disk is on fire'); END"
        )
        report = index_paths(c, [folder], model=ToyEmbedder())
        assert "on fire" in report.failures[0].error
        assert report.failed == 1 and report.updated == 0
        after = c.open_table("images").query().to_list()
        assert [r["id"] for r in after] == [before[0]["id"]]  # the old row is still there
        assert after[0]["vec"] == pytest.approx(before[0]["vec"])
    finally:
        c.close()


# ---------------------------------------------------------------------- 11. negative limit / offset


def test_query_refuses_negative_limit_and_offset(client: lookalike.Client) -> None:
    t = _vec_table(client, 2)
    t.bulk_insert([{"cat": i, "vec": [1, i]} for i in range(5)])
    for kwargs in ({"limit": -5}, {"offset": -5}, {"limit": 1.5}, {"limit": True}):
        with pytest.raises(ConfigurationError):
            t.query(**kwargs)
    assert len(t.query(limit=0).to_list()) == 0
    assert [r["cat"] for r in t.query(order_by="cat", limit=2, offset=1).to_list()] == [1, 2]
