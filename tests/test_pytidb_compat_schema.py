"""pytidb's schema surface: ``VectorIndex`` in ``__table_args__`` and the default HNSW index.

On PostgreSQL and TiDB a cosine/l2 vector field gets an HNSW index at ``create_table`` unless it says
``index=False``; a declared ``VectorIndex`` is built with the table on every engine (the IVF index on
the embedded one). TiDB is checked as the DDL it would be sent.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa

import lookalike
from lookalike import ConfigurationError, Field, SchemaError, TableModel, VectorField, VectorIndex
from lookalike.engines.tidb import TiDBEngine
from lookalike.schema import TableSpec


def declared_model(name: str, metric: str = "cosine") -> type[TableModel]:
    """A table whose only index comes from ``__table_args__`` (the field itself opts out)."""

    class Declared(TableModel):
        __tablename__ = name
        __table_args__ = (VectorIndex(f"idx_{name}_vec", "vec", distance_metric=metric),)
        id: int = Field(primary_key=True)
        cat: int = Field(default=0)
        vec: list[float] | None = VectorField(dimensions=4, index=False)

    return Declared


def plain_model(name: str, index: bool | None = None, metric: str = "cosine") -> type[TableModel]:
    class Plain(TableModel):
        __tablename__ = name
        id: int = Field(primary_key=True)
        vec: list[float] | None = VectorField(dimensions=4, index=index, distance_metric=metric)

    return Plain


def pg_indexes(client: lookalike.Client, table: str) -> list[str]:
    rows = client.query("SELECT indexdef FROM pg_indexes WHERE tablename = :t", {"t": table}).to_list()
    return [r["indexdef"] for r in rows]


def sqlite_plan(client: lookalike.Client, table: lookalike.Table) -> object:
    """The IVF index the embedded engine has recorded for ``vec`` (None: none)."""
    engine = client.engine
    with client.database.connection(write=False) as conn:
        return engine.indexes.plan(conn, table.spec, "vec")  # type: ignore[attr-defined]


def reference_top(data: np.ndarray, q: np.ndarray, k: int, metric: str) -> list[int]:
    if metric == "l2":
        d = np.linalg.norm(data - q, axis=1)
    else:
        d = 1 - (data @ q) / (np.linalg.norm(data, axis=1) * np.linalg.norm(q))
    return [int(i) for i in np.argsort(d, kind="stable")[:k]]


# ---------------------------------------------------------------------- every engine


@pytest.mark.parametrize("metric", ["cosine", "l2"])
def test_declared_vector_index_is_built_with_the_table(client: lookalike.Client, metric: str) -> None:
    t = client.create_table(schema=declared_model("pc_declared", metric), if_exists="overwrite")
    assert t.spec.vectors["vec"].index is True
    if client.engine.name == "postgresql":
        defs = pg_indexes(client, "pc_declared")
        assert any(
            "hnsw" in d and f"vector_{'cosine' if metric == 'cosine' else 'l2'}_ops" in d for d in defs
        )
        assert t.has_vector_index()
    else:  # the embedded engine records the wish on an empty table
        assert sqlite_plan(client, t) is not None
    rng = np.random.default_rng(7)
    data = rng.normal(size=(60, 4)).astype(np.float32)
    t.bulk_insert([{"id": i + 1, "vec": v.tolist()} for i, v in enumerate(data)])
    q = data[5] + 0.01
    got = [r["id"] - 1 for r in t.search(q.tolist()).distance_metric(metric).limit(5).to_list()]
    assert got == reference_top(data, q, 5, metric)


def test_declared_index_survives_open_table_elsewhere(engine_url: str) -> None:
    with lookalike.connect(engine_url) as c:
        c.create_table(schema=declared_model("pc_reopen", "l2"), if_exists="overwrite")
    with lookalike.connect(engine_url) as c:
        vec = c.open_table("pc_reopen").spec.vectors["vec"]
        assert (vec.index, vec.index_metric, vec.distance_metric) == (True, "l2", "cosine")
        c.drop_table("pc_reopen")


def test_default_index_follows_the_engine(client: lookalike.Client) -> None:
    default = client.create_table(schema=plain_model("pc_default"), if_exists="overwrite")
    opted_out = client.create_table(schema=plain_model("pc_opt_out", index=False), if_exists="overwrite")
    inner = client.create_table(schema=plain_model("pc_inner", metric="inner_product"), if_exists="overwrite")
    if client.engine.name == "postgresql":
        assert default.has_vector_index()  # pytidb's default: HNSW for cosine and l2
        assert any("hnsw" in d for d in pg_indexes(client, "pc_default"))
        assert not opted_out.has_vector_index()
        assert not any("hnsw" in d for d in pg_indexes(client, "pc_opt_out"))
        assert not inner.has_vector_index()  # pytidb indexes cosine and l2 only
        with client.database.connection(write=False) as conn:  # the default index serves cosine only
            assert client.engine.has_vector_index_for(conn, default.spec, "vec", "cosine")
            assert not client.engine.has_vector_index_for(conn, default.spec, "vec", "l1")
    else:  # the embedded engine indexes what is asked for only
        for t in (default, opted_out, inner):
            assert client.engine.declared_indexes(t.spec) == []
            if client.engine.vector_index == "on":  # type: ignore[attr-defined]  # "always" plans every column
                assert sqlite_plan(client, t) is None


# ---------------------------------------------------------------------- the embedded engine


def test_sqlite_declared_index_searched_through_ivf(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}?vector_index=always"
    rng = np.random.default_rng(3)
    data = rng.normal(size=(300, 4)).astype(np.float32)
    with lookalike.connect(url) as c:
        t = c.create_table(schema=declared_model("pc_ivf"), if_exists="overwrite")
        t.bulk_insert([{"id": i + 1, "cat": i % 3, "vec": v.tolist()} for i, v in enumerate(data)])
        q = data[17]
        got = [r["id"] - 1 for r in t.search(q.tolist()).limit(5).to_list()]
        assert t.has_vector_index()  # built by the search
        assert got[0] == 17
        ref = reference_top(data, q, 5, "cosine")
        assert len(set(got) & set(ref)) >= 4


def test_sqlite_declared_index_builds_at_once_on_a_table_with_rows(tmp_path: Path) -> None:
    db = tmp_path / "rows.db"
    with lookalike.connect(db) as c:
        t = c.create_table(schema=declared_model("pc_rows"), if_exists="overwrite")
        assert t.has_vector_index()  # declared: indexed (built once the table has rows)
        t.bulk_insert([{"vec": [1.0, float(i), 0.0, 1.0]} for i in range(40)])
        t.create_vector_index()  # already recorded: skip_existing keeps the declared one
        t.create_vector_index(skip_existing=False)  # rows are there: built now
        assert t.has_vector_index()


# ---------------------------------------------------------------------- bad declarations


def test_vector_index_needs_exactly_one_column() -> None:
    with pytest.raises(SchemaError, match="exactly one vector column, got 0"):
        VectorIndex("idx_none")
    with pytest.raises(SchemaError, match="'idx_two' must name exactly one vector column, got 2"):
        VectorIndex("idx_two", "a", "b")


def test_vector_index_rejects_unknown_algorithm_and_metric() -> None:
    with pytest.raises(ConfigurationError, match="unknown algorithm 'IVF'"):
        VectorIndex("idx_alg", "vec", algorithm="IVF")
    with pytest.raises(ConfigurationError, match="unknown distance metric 'hamming'"):
        VectorIndex("idx_metric", "vec", distance_metric="hamming")


def test_vector_index_on_a_non_vector_column_is_refused(client: lookalike.Client) -> None:
    class NotVector(TableModel):
        __tablename__ = "pc_not_vector"
        __table_args__ = (VectorIndex("idx_cat", "cat"),)
        id: int = Field(primary_key=True)
        cat: int = Field(default=0)
        vec: list[float] | None = VectorField(dimensions=4)

    with pytest.raises(SchemaError, match="'idx_cat' names 'cat', which is not a vector column"):
        client.create_table(schema=NotVector)
    assert not client.has_table("pc_not_vector")


def test_two_vector_indexes_on_one_column_are_refused(client: lookalike.Client) -> None:
    class Twice(TableModel):
        __tablename__ = "pc_twice"
        __table_args__ = (
            VectorIndex("idx_cos", "vec"),
            VectorIndex("idx_l2", "vec", distance_metric="l2"),
        )
        id: int = Field(primary_key=True)
        vec: list[float] | None = VectorField(dimensions=4)

    with pytest.raises(
        SchemaError, match="both index 'vec' of 'pc_twice'; declare one index per vector column"
    ):
        client.create_table(schema=Twice)
    assert not client.has_table("pc_twice")


# ---------------------------------------------------------------------- TiDB, as compiled DDL


@pytest.fixture
def tidb() -> TiDBEngine:
    # create_engine never connects by itself: only DDL text is produced below
    return TiDBEngine(sa.create_engine("mysql+pymysql://root@tidb.local:4000/test"))


def tidb_ddl(engine: TiDBEngine, model: type[TableModel]) -> list[str]:
    spec = TableSpec.from_model(model)
    return [
        sql
        for col, metric, params in engine.declared_indexes(spec)
        for sql in engine.index_ddl(spec, col, metric, params)
    ]


def test_tidb_default_and_declared_indexes(tidb: TiDBEngine) -> None:
    assert tidb_ddl(tidb, plain_model("pc_t_default"))[-1] == (
        "CREATE VECTOR INDEX IF NOT EXISTS vec_idx_vec_cosine ON pc_t_default "
        "((VEC_COSINE_DISTANCE(vec))) USING HNSW"
    )
    assert tidb_ddl(tidb, plain_model("pc_t_off", index=False)) == []
    assert tidb_ddl(tidb, plain_model("pc_t_ip", metric="inner_product")) == []
    declared = tidb_ddl(tidb, declared_model("pc_t_declared", "l2"))
    assert declared == [
        "ALTER TABLE pc_t_declared SET TIFLASH REPLICA 1",
        "CREATE VECTOR INDEX IF NOT EXISTS vec_idx_vec_l2 ON pc_t_declared ((VEC_L2_DISTANCE(vec))) USING HNSW",
    ]
    # the declared index is no B-tree in the CREATE TABLE
    spec = TableSpec.from_model(declared_model("pc_t_ct"))
    assert not spec.sa_table.indexes
