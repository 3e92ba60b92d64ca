"""The declared engine contract: ``read_vectors``, typed ``num_candidate``, vector storage chosen by
the engine, the engine-neutral search planner, the ``VectorIndex`` protocol and the engine registry."""

from __future__ import annotations

import math
import sys
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.schema import CreateTable

import lookalike
from lookalike import Field, MissingDependencyError, TableModel, VectorField
from lookalike._registry import LazyRegistry
from lookalike.engines import base as engines_base
from lookalike.engines.base import Engine, SearchRequest, register_engine
from lookalike.engines.planner import IndexScan, PoolPolicy, planned_search
from lookalike.engines.postgres import PostgresEngine
from lookalike.engines.sqlite import SQLiteEngine
from lookalike.engines.tidb import TiDBEngine
from lookalike.schema import TableSpec
from lookalike.vectors.base import VectorIndex
from lookalike.vectors.exact import VectorMatrix

DIMS = 4


def vector_table(client: lookalike.Client, name: str = "contract_vecs") -> lookalike.Table:
    class Vec(TableModel):
        __tablename__ = name
        id: int = Field(primary_key=True)
        cat: int = Field(default=0)
        vec: list[float] | None = VectorField(dimensions=DIMS)

    return client.create_table(schema=Vec, if_exists="overwrite")


def read_vectors(client: lookalike.Client, table: lookalike.Table) -> tuple[list[Any], np.ndarray]:
    with client.database.connection(write=False) as conn:
        return client.engine.read_vectors(conn, table.spec, "vec")


def stored(table: lookalike.Table) -> dict[Any, list[float]]:
    """The rows' vectors as the table hands them out (rows without a vector left out)."""
    return {r["id"]: r["vec"] for r in table.query().to_list() if r["vec"] is not None}


def assert_read_matches(client: lookalike.Client, table: lookalike.Table) -> list[Any]:
    ids, data = read_vectors(client, table)
    assert data.dtype == np.float32 and data.shape == (len(ids), DIMS)
    expected = stored(table)
    assert sorted(ids) == sorted(expected) and len(set(ids)) == len(ids)
    for key, row in zip(ids, data):
        np.testing.assert_array_equal(row, np.asarray(expected[key], dtype=np.float32))
    return ids


# ---------------------------------------------------------------------- read_vectors


def test_read_vectors_equals_the_rows(client: lookalike.Client, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engines_base, "READ_PAGE_ROWS", 7)  # several pages on a server engine
    t = vector_table(client)
    rng = np.random.default_rng(3)
    data = rng.standard_normal((40, DIMS)).astype(np.float32)
    t.bulk_insert([{"cat": i % 3, "vec": None if i % 9 == 4 else v} for i, v in enumerate(data)])
    ids = assert_read_matches(client, t)
    assert len(ids) == 40 - 4  # rows 4, 13, 22 and 31 have no vector: left out
    assert ids == sorted(ids)  # integer keys: key order is insertion order on every engine
    t.delete(filters={"cat": 1})
    t.update({"vec": [1.0, 2.0, 3.0, 4.0]}, filters={"cat": 2})
    assert_read_matches(client, t)


def test_read_vectors_of_an_empty_table(client: lookalike.Client) -> None:
    t = vector_table(client, name="contract_empty")
    ids, data = read_vectors(client, t)
    assert ids == [] and data.shape == (0, DIMS) and data.dtype == np.float32


def test_sqlite_read_vectors_follows_writes_from_another_connection(tmp_path: Any) -> None:
    path = tmp_path / "shared.db"
    first, second = lookalike.connect(path), lookalike.connect(path)
    try:
        t1 = vector_table(first)
        t1.bulk_insert([{"id": i, "vec": [float(i), 0.0, 1.0, 2.0]} for i in range(1, 11)])
        assert_read_matches(first, t1)  # the matrix is now cached in `first`
        t2 = second.open_table("contract_vecs")
        t2.bulk_insert([{"id": i, "vec": [float(i), 1.0, 1.0, 1.0]} for i in range(11, 16)])
        t2.delete(filters={"id": {"$in": [2, 3, 12]}})
        t2.update({"vec": [9.0, 9.0, 9.0, 9.0]}, filters={"id": 5})
        t2.insert({"id": 3, "vec": [3.0, 3.0, 3.0, 3.0]})  # an id below the largest: logged, not appended
        ids = assert_read_matches(first, t1)
        assert ids == [1, 3, *range(4, 12), 13, 14, 15]
    finally:
        first.close()
        second.close()


def test_sqlite_read_vectors_maps_row_ids_to_text_keys(sqlite_client: lookalike.Client) -> None:
    class Named(TableModel):
        __tablename__ = "contract_named"
        name: str = Field(primary_key=True)
        vec: list[float] | None = VectorField(dimensions=2)

    t = sqlite_client.create_table(schema=Named, if_exists="overwrite")
    t.bulk_insert([{"name": n, "vec": [float(i), -float(i)]} for i, n in enumerate(["zed", "amy", "kim"])])
    with sqlite_client.database.connection(write=False) as conn:
        ids, data = sqlite_client.engine.read_vectors(conn, t.spec, "vec")
    assert ids == ["zed", "amy", "kim"]  # insertion (row id) order, not key order
    np.testing.assert_array_equal(data, np.array([[0, 0], [1, -1], [2, -2]], dtype=np.float32))


# ---------------------------------------------------------------------- num_candidate


def test_num_candidate_reaches_the_engine(client: lookalike.Client, monkeypatch: pytest.MonkeyPatch) -> None:
    t = vector_table(client)
    t.bulk_insert([{"vec": [float(i), 1.0, 0.0, 0.0]} for i in range(20)])
    seen: list[SearchRequest] = []
    engine = client.engine
    original = engine.vector_search

    def recording(conn: Any, spec: TableSpec, request: SearchRequest) -> list[dict[str, Any]]:
        seen.append(request)
        return original(conn, spec, request)

    monkeypatch.setattr(engine, "vector_search", recording)
    q = [3.0, 1.0, 0.0, 0.0]
    hits = t.search(q).limit(2).num_candidate(150).to_list()
    assert hits[0]["id"] == 4  # the same direction as row 4's vector: cosine distance 0
    t.search(q).limit(2).to_list()
    assert [r.num_candidate for r in seen] == [150, None]


def test_num_candidate_sets_the_pgvector_beam(client: lookalike.Client) -> None:
    if client.engine.name != "postgresql":
        pytest.skip("hnsw.ef_search is pgvector's")
    t = vector_table(client)
    t.bulk_insert([{"vec": [float(i), 1.0, 0.0, 0.0]} for i in range(50)])
    t.create_vector_index(metric="cosine")
    engine = client.engine
    assert isinstance(engine, PostgresEngine)
    with client.session():  # one connection: the setting the search made is visible after it
        t.search([1.0, 1.0, 0.0, 0.0]).limit(3).num_candidate(321).to_list()
        assert client.query("SHOW hnsw.ef_search").scalar() != "321"  # 50 rows: searched exactly
        saved, engine.exact_search_max_rows = engine.exact_search_max_rows, 0  # every table is "large"
        try:
            t.search([1.0, 1.0, 0.0, 0.0]).limit(3).num_candidate(321).to_list()
            assert client.query("SHOW hnsw.ef_search").scalar() == "321"
            t.search([1.0, 1.0, 0.0, 0.0]).limit(3).to_list()
            assert client.query("SHOW hnsw.ef_search").scalar() == "100"  # default_ef_search(3)
        finally:
            engine.exact_search_max_rows = saved


def test_a_small_indexed_table_is_searched_exactly(client: lookalike.Client) -> None:
    """Found by a flaky run of test_sessions_commit_and_roll_back: pgvector's HNSW graph of a small
    table full of equal vectors and rolled-back rows missed the one row nearest the query."""
    t = vector_table(client)
    t.bulk_insert([{"vec": [0.0, 1.0, 0.0, 0.0]} for _ in range(60)])
    t.create_vector_index(metric="cosine")
    with pytest.raises(RuntimeError), client.session():
        t.bulk_insert([{"vec": [1.0, 1.0, 0.0, 0.0]} for _ in range(60)])
        raise RuntimeError("roll back")
    for i in range(5):
        row = t.insert({"vec": [-1.0, -1.0, float(i), 0.0]})
        hit = t.search([-1.0, -1.0, float(i), 0.0]).limit(1).to_list()[0]
        assert hit["id"] == row["id"] and hit["_distance"] == pytest.approx(0, abs=1e-6)


# ---------------------------------------------------------------------- vector storage


def vec_model() -> TableSpec:
    class Stored(TableModel):
        __tablename__ = "stored"
        id: int = Field(primary_key=True)
        vec: list[float] | None = VectorField(dimensions=3)

    return TableSpec.from_model(Stored)


def ddl(spec: TableSpec, dialect: sa.Dialect) -> str:
    return " ".join(str(CreateTable(spec.sa_table).compile(dialect=dialect)).split())


def test_each_engine_names_its_vector_column_type() -> None:
    spec = vec_model()
    lite = SQLiteEngine(sa.create_engine("sqlite://"), ":memory:")
    pg = PostgresEngine(sa.create_engine("postgresql+psycopg://u@pg.local/db"))
    tidb = TiDBEngine(sa.create_engine("mysql+pymysql://root@tidb.local:4000/test"))
    assert "vec BLOB" in ddl(spec, lite.sa_engine.dialect)
    assert "vec vector(3)" in ddl(spec, pg.sa_engine.dialect)
    assert "vec VECTOR(3)" in ddl(spec, tidb.sa_engine.dialect)
    # a dialect no engine owns (DDL printed outside lookalike) gets the portable float32 blob
    assert "vec BLOB" in ddl(spec, sqlite.dialect())
    assert "vec BYTEA" in ddl(spec, postgresql.dialect())
    assert "vec BLOB" in ddl(spec, mysql.dialect())


def test_vector_values_are_encoded_by_the_engine() -> None:
    v = [0.5, -1.25, 3.0]
    lite = SQLiteEngine(sa.create_engine("sqlite://"), ":memory:")
    blob = lite.encode_vector(v)
    assert blob == np.array(v, dtype="<f4").tobytes() and lite.decode_vector(blob) == v
    assert lite.encode_vector(blob) == blob  # bytes already encoded pass through
    tidb = TiDBEngine(sa.create_engine("mysql+pymysql://root@tidb.local:4000/test"))
    assert tidb.encode_vector(np.array(v, dtype=np.float32)) == "[0.5, -1.25, 3.0]"
    assert tidb.encode_vector(blob) == "[0.5, -1.25, 3.0]"
    assert tidb.decode_vector("[0.5,-1.25,3]") == v and tidb.decode_vector(b"[0.5,-1.25,3]") == v


def test_a_table_round_trips_vectors_through_its_engine(client: lookalike.Client) -> None:
    t = vector_table(client)
    v = [0.1, 1e-8, -3.5, 65504.0]
    key = t.insert({"vec": v})["id"]
    assert t.get(key).vec == np.asarray(v, dtype=np.float32).tolist()


# ---------------------------------------------------------------------- the search planner


class FakeHooks:
    """The three searches over an in-memory table: ``request.where`` is a boolean row mask, the
    "index" ranks rows by their first coordinate only (approximate), then re-ranks its pool exactly."""

    def __init__(self, data: np.ndarray) -> None:
        self.data = data
        self.calls: list[tuple[str, Any]] = []

    def _mask(self, request: SearchRequest) -> np.ndarray:
        return np.ones(len(self.data), bool) if request.where is None else request.where

    def _top(self, rows: np.ndarray, request: SearchRequest) -> list[dict[str, Any]]:
        dist = np.linalg.norm(self.data[rows] - request.vector, axis=1)
        order = np.lexsort((rows, dist))[: request.limit]
        return [{"id": int(rows[i]), "_distance": float(dist[i])} for i in order]

    def exact_search(self, conn: Any, spec: Any, request: SearchRequest) -> list[dict[str, Any]]:
        self.calls.append(("exact", None))
        return self._top(np.flatnonzero(self._mask(request)), request)

    def index_search(
        self, conn: Any, spec: Any, request: SearchRequest, scan: IndexScan
    ) -> list[dict[str, Any]]:
        self.calls.append(("index", scan))
        coarse = np.abs(self.data[:, 0] - request.vector[0])
        pool = np.argsort(coarse, kind="stable")[: scan.pool]
        if scan.post_filter:
            pool = pool[self._mask(request)[pool]]
        else:  # the filter applied within the scan: keep scanning until enough pass
            pool = np.argsort(np.where(self._mask(request), coarse, np.inf), kind="stable")[: scan.pool]
            pool = pool[self._mask(request)[pool]]
        return self._top(pool, request)

    def count_matches(self, conn: Any, spec: Any, request: SearchRequest) -> tuple[float, float]:
        self.calls.append(("count", None))
        return float(self._mask(request).sum()), float(len(self.data))


def plan_request(q: np.ndarray, k: int, where: np.ndarray | None = None, **kw: Any) -> SearchRequest:
    return SearchRequest(column="vec", vector=q, metric="l2", limit=k, where=where, **kw)


@pytest.fixture
def plan_data() -> np.ndarray:
    return np.random.default_rng(5).standard_normal((2000, 3)).astype(np.float64)


def test_planner_few_matches_search_exactly(plan_data: np.ndarray) -> None:
    hooks = FakeHooks(plan_data)
    mask = np.zeros(len(plan_data), bool)
    mask[::100] = True  # 20 rows match
    policy = PoolPolicy(exact_search_max_rows=50)
    rows = planned_search(hooks, None, None, plan_request(plan_data[7], 5, mask), "hnsw", policy)  # type: ignore[arg-type]
    assert [name for name, _ in hooks.calls] == ["count", "exact"]
    assert rows == FakeHooks(plan_data).exact_search(None, None, plan_request(plan_data[7], 5, mask))
    assert all(r["id"] % 100 == 0 for r in rows) and len(rows) == 5


def test_planner_many_matches_take_a_widened_pool(plan_data: np.ndarray) -> None:
    hooks = FakeHooks(plan_data)
    mask = plan_data[:, 1] > 0  # about half the rows
    matches = int(mask.sum())
    policy = PoolPolicy(exact_search_max_rows=50, pool_overfetch=3.0, max_pool=5_000)
    q = plan_data[11].copy()
    rows = planned_search(hooks, None, None, plan_request(q, 10, mask), "hnsw", policy)  # type: ignore[arg-type]
    assert [name for name, _ in hooks.calls] == ["count", "index"]
    scan = hooks.calls[1][1]
    assert scan == IndexScan("hnsw", math.ceil(10 * 2000 / matches * 3.0) + 20, post_filter=True)
    assert len(rows) == 10 and all(mask[r["id"]] for r in rows)
    # a query's num_candidate is the pool's floor
    hooks.calls.clear()
    planned_search(hooks, None, None, plan_request(q, 10, mask, num_candidate=900), "hnsw", policy)  # type: ignore[arg-type]
    assert hooks.calls[1][1].pool == 900


def test_planner_reruns_exactly_when_the_pool_comes_up_short(plan_data: np.ndarray) -> None:
    hooks = FakeHooks(plan_data)
    q = np.array([3.0, 0.0, 0.0])
    # matches are many, but all far from q on the index's coarse order: the pool finds too few
    mask = plan_data[:, 0] < -0.5
    policy = PoolPolicy(exact_search_max_rows=10, pool_overfetch=1.0, max_pool=5_000)
    rows = planned_search(hooks, None, None, plan_request(q, 10, mask), "hnsw", policy)  # type: ignore[arg-type]
    assert [name for name, _ in hooks.calls] == ["count", "index", "exact"]
    assert rows == FakeHooks(plan_data).exact_search(None, None, plan_request(q, 10, mask))
    assert len(rows) == 10


def test_planner_other_branches(plan_data: np.ndarray) -> None:
    q = plan_data[3]
    policy = PoolPolicy(exact_search_max_rows=50, max_pool=300)
    # no index: exact, nothing counted
    hooks = FakeHooks(plan_data)
    planned_search(hooks, None, None, plan_request(q, 4), None, policy)  # type: ignore[arg-type]
    assert [name for name, _ in hooks.calls] == ["exact"]
    # no filter: straight to the index, num_candidate widening the scan
    hooks = FakeHooks(plan_data)
    rows = planned_search(hooks, None, None, plan_request(q, 4, num_candidate=64), "hnsw", policy)  # type: ignore[arg-type]
    assert hooks.calls == [("index", IndexScan("hnsw", 64, post_filter=False))] and rows[0]["id"] == 3
    # nothing matches (counted exactly): no rows, no search
    hooks = FakeHooks(plan_data)
    none = np.zeros(len(plan_data), bool)
    assert planned_search(hooks, None, None, plan_request(q, 4, none), "hnsw", policy) == []  # type: ignore[arg-type]
    assert [name for name, _ in hooks.calls] == ["count"]
    # a pool over max_pool: exact (a selective filter on a big table)
    hooks = FakeHooks(plan_data)
    mask = np.zeros(len(plan_data), bool)
    mask[:60] = True
    planned_search(hooks, None, None, plan_request(q, 4, mask), "hnsw", policy)  # type: ignore[arg-type]
    assert [name for name, _ in hooks.calls] == ["count", "exact"]
    # an index that filters while it scans: no count, no pool
    hooks = FakeHooks(plan_data)
    inside = PoolPolicy(exact_search_max_rows=50, filters_in_index=True)
    rows = planned_search(hooks, None, None, plan_request(q, 4, plan_data[:, 2] > 0), "hnsw", inside)  # type: ignore[arg-type]
    assert hooks.calls == [("index", IndexScan("hnsw", 4, post_filter=False))] and len(rows) == 4


def test_server_engines_plan_with_their_own_numbers() -> None:
    tidb = TiDBEngine(sa.create_engine("mysql+pymysql://root@tidb.local:4000/test"))
    assert tidb.pool_policy() == PoolPolicy(10_000, 3.0, 10_000, True, False)
    pg = PostgresEngine(sa.create_engine("postgresql+psycopg://u@pg.local/db"))
    pg.pgvector_version = (0, 7, 4)
    assert pg.pool_policy() == PoolPolicy(20_000, 4.0, 1_000, False, False, small_tables_exact=True)
    pg.pgvector_version = (0, 8, 0)
    assert pg.pool_policy().filters_in_index


# ---------------------------------------------------------------------- the index protocol


def test_vector_matrix_is_a_vector_index() -> None:
    m = VectorMatrix(3)
    assert isinstance(m, VectorIndex)
    assert set(m.metrics) == {"cosine", "l2", "inner_product", "l1"} and m.supports_prefilter
    m.upsert(np.array([5, 2]), np.array([[1, 0, 0], [0, 1, 0]], dtype=np.float32))
    ids, data = m.snapshot()
    assert ids.tolist() == [2, 5] and data.tolist() == [[0, 1, 0], [1, 0, 0]]
    m.remove(np.array([2]))
    assert ids.tolist() == [2, 5]  # the snapshot is a copy
    assert m.memory_bytes >= len(m) * 3 * 4 and len(m) == 1
    assert not isinstance(object(), VectorIndex)


def test_sqlite_engine_caches_a_vector_index(sqlite_client: lookalike.Client) -> None:
    t = vector_table(sqlite_client)
    t.insert({"vec": [1.0, 2.0, 3.0, 4.0]})
    engine = sqlite_client.engine
    assert isinstance(engine, SQLiteEngine)
    index = engine._new_index(t.spec, "vec")
    assert isinstance(index, VectorIndex) and index.dimensions == DIMS


# ---------------------------------------------------------------------- the registry


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch) -> LazyRegistry[Engine]:
    """A copy of the engine registry, so what a test registers is gone afterwards."""
    fresh: LazyRegistry[Engine] = LazyRegistry(engines_base.ENGINES.kind, engines_base.ENGINES.what)
    for name, entry in engines_base.ENGINES.items():
        fresh.register(name, entry.cls or entry.target, extra=entry.extra, package=entry.package)
    monkeypatch.setattr(engines_base, "ENGINES", fresh)
    return fresh


def test_an_engine_with_a_missing_extra_names_it(registry: LazyRegistry[Engine]) -> None:
    register_engine(
        "fancydb", "lookalike_no_such_engine_module:FancyEngine", extra="fancy", package="fancy-driver"
    )
    with pytest.raises(MissingDependencyError) as info:
        lookalike.connect("fancydb://user:pw@host/db")
    text = str(info.value)
    assert (
        "the fancydb engine" in text and "pip install 'lookalike[fancy]'" in text and "fancy-driver" in text
    )
    assert info.value.extra == "fancy"
    with pytest.raises(lookalike.ConfigurationError, match="unknown database URL scheme 'nosuch'") as unknown:
        lookalike.connect("nosuch://host/db")
    assert "fancydb:// (pip install 'lookalike[fancy]')" in str(unknown.value)


def test_a_registered_engine_class_is_used(registry: LazyRegistry[Engine]) -> None:
    register_engine("embedded", SQLiteEngine)  # a class, not "module:Class"
    assert engines_base.engine_for_url("embedded+driver://x") is SQLiteEngine
    assert registry.entry("embedded").target == "lookalike.engines.sqlite:SQLiteEngine"


@pytest.mark.parametrize(
    ("engine", "url", "module", "extra", "package"),
    [
        (PostgresEngine, "postgresql://u@h/db", "psycopg", "postgres", "psycopg[binary]"),
        (PostgresEngine, "postgresql+psycopg2://u@h/db", "psycopg2", "postgres", "psycopg2"),
        (TiDBEngine, "tidb://u@h:4000/db", "pymysql", "tidb", "pymysql"),
    ],
)
def test_missing_drivers_are_named_from_the_registry(
    monkeypatch: pytest.MonkeyPatch, engine: type[Engine], url: str, module: str, extra: str, package: str
) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # importing it now raises ImportError
    with pytest.raises(MissingDependencyError) as info:
        engine.from_url(url)
    text = str(info.value)
    assert f"the {engine.name} engine" in text and f"pip install 'lookalike[{extra}]'" in text
    assert f"(or pip install {package})" in text
