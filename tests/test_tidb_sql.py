"""The SQL the TiDB engine sends, compiled with SQLAlchemy's MySQL dialect (no server needed).

The same engine runs the conformance suite live when ``LOOKALIKE_TIDB_URL`` is set.
"""

from __future__ import annotations

import numpy as np
import pytest
import sqlalchemy as sa
from sqlalchemy.schema import CreateTable
from sqlmodel import JSON

import lookalike
from lookalike import ConfigurationError, Field, SchemaError, TableModel, VectorField
from lookalike.engines.base import SearchRequest, engine_for_url
from lookalike.engines.planner import IndexScan
from lookalike.engines.tidb import TiDBEngine, plan_insert_batches, tidb_connect_args
from lookalike.filters import compile_filter
from lookalike.schema import TableSpec


class Photo(TableModel):
    __tablename__ = "photos"
    id: int = Field(primary_key=True)
    uri: str = Field()
    cat: int = Field(default=0)
    meta: dict | None = Field(default=None, sa_type=JSON)
    vec: list[float] | None = VectorField(dimensions=3)


@pytest.fixture
def engine() -> TiDBEngine:
    # create_engine never connects by itself: everything below is compilation only
    return TiDBEngine(sa.create_engine("mysql+pymysql://root@tidb.local:4000/test"))


def sql(engine: TiDBEngine, stmt: object) -> str:
    text = str(stmt.compile(dialect=engine.sa_engine.dialect, compile_kwargs={"literal_binds": True}))  # type: ignore[attr-defined]
    return " ".join(text.split())


def request(engine: TiDBEngine, spec: TableSpec, **kw: object) -> SearchRequest:
    where = kw.pop("filters", None)
    return SearchRequest(
        column="vec",
        vector=np.array([0.5, 0.25, 1.0], dtype=np.float32),
        metric=kw.pop("metric", "cosine"),  # type: ignore[arg-type]
        limit=kw.pop("limit", 3),  # type: ignore[arg-type]
        where=compile_filter(where, spec.sa_table, json_contains=engine.json_contains),
        columns=["id", "uri"],
        **kw,  # type: ignore[arg-type]
    )


# ---------------------------------------------------------------------- routing and connection


def test_schemes_route_to_tidb() -> None:
    for url in ("tidb://u:p@h:4000/db", "mysql://u@h/db", "mysql+pymysql://u@h/db"):
        assert engine_for_url(url) is TiDBEngine


def test_connect_arguments() -> None:
    a = tidb_connect_args("tidb://u:secret@gateway01.us-west-2.prod.aws.tidbcloud.com:4000/db")
    assert a.url.drivername == "mysql+pymysql" and a.url.port == 4000 and a.tls
    assert a.connect_args["ssl_verify_identity"] is True
    assert "secret" not in a.url.render_as_string(hide_password=True)
    local = tidb_connect_args("mysql://root@127.0.0.1:4000/test")
    assert not local.tls and local.url.query["charset"] == "utf8mb4"
    # pytidb's keywords, with its defaults for what is left out
    kw = tidb_connect_args("tidb://", host="x.tidbcloud.com", username="me", password="pw", database="photos")
    assert (kw.url.host, kw.url.port, kw.url.username, kw.url.database) == (
        "x.tidbcloud.com",
        4000,
        "me",
        "photos",
    )
    assert kw.tls
    assert not tidb_connect_args(None, host="x.tidbcloud.com", enable_ssl=False).tls
    assert tidb_connect_args(None, host="db.internal", enable_ssl=True).tls
    d = tidb_connect_args(None)
    assert (d.url.host, d.url.port, d.url.username, d.url.database) == ("localhost", 4000, "root", "test")
    with pytest.raises(ConfigurationError, match="not a TiDB"):
        tidb_connect_args("postgresql://x/y")


def test_connect_with_host_keywords_routes_to_tidb_and_fails_clearly() -> None:
    """``connect(host=...)`` is pytidb's form: it must reach the TiDB engine (and say so on failure)."""
    with pytest.raises(lookalike.ConnectionFailedError, match="TiDB at") as info:
        lookalike.connect(host="127.0.0.1", port=1, username="u", password="hunter2", connect_retries=1)
    assert "hunter2" not in str(info.value)


# ---------------------------------------------------------------------- DDL


def test_create_table_ddl(engine: TiDBEngine) -> None:
    spec = TableSpec.from_model(Photo)
    ddl = " ".join(str(CreateTable(spec.sa_table).compile(dialect=engine.sa_engine.dialect)).split())
    assert "vec VECTOR(3)" in ddl and "meta JSON" in ddl and "id INTEGER NOT NULL AUTO_INCREMENT" in ddl
    assert "uri VARCHAR(255)" in ddl


def test_dimension_limit(engine: TiDBEngine) -> None:
    class Wide(TableModel):
        __tablename__ = "wide"
        id: int = Field(primary_key=True)
        vec: list[float] | None = VectorField(dimensions=16_384)

    with pytest.raises(SchemaError, match="16383"):
        engine.check_spec(TableSpec.from_model(Wide))


def test_index_ddl(engine: TiDBEngine) -> None:
    spec = TableSpec.from_model(Photo)
    assert engine.index_ddl(spec, "vec", "cosine", {}) == [
        "ALTER TABLE photos SET TIFLASH REPLICA 1",
        "CREATE VECTOR INDEX IF NOT EXISTS vec_idx_vec_cosine ON photos ((VEC_COSINE_DISTANCE(vec))) USING HNSW",
    ]
    assert "VEC_L2_DISTANCE(vec)" in engine.index_ddl(spec, "vec", "l2", {"algorithm": "HNSW"})[-1]
    for metric in ("l1", "inner_product"):
        with pytest.raises(SchemaError, match="cosine and l2 metrics only"):
            engine.index_ddl(spec, "vec", metric, {})
    with pytest.raises(ConfigurationError):
        engine.index_ddl(spec, "vec", "cosine", {"m": 16})
    cloud = TiDBEngine(sa.create_engine("mysql+pymysql://u@gw.tidbcloud.com:4000/test"))
    assert len(cloud.index_ddl(spec, "vec", "cosine", {})) == 1  # TiDB Cloud manages replicas


# ---------------------------------------------------------------------- search SQL


@pytest.mark.parametrize(
    ("metric", "fn"),
    [
        ("cosine", "VEC_COSINE_DISTANCE"),
        ("l2", "VEC_L2_DISTANCE"),
        ("inner_product", "VEC_NEGATIVE_INNER_PRODUCT"),
        ("l1", "VEC_L1_DISTANCE"),
    ],
)
def test_exact_search_sql(engine: TiDBEngine, metric: str, fn: str) -> None:
    spec = TableSpec.from_model(Photo)
    text = sql(engine, engine.exact_statement(spec, request(engine, spec, metric=metric, filters={"cat": 3})))
    assert f"{fn}(photos.vec, VEC_FROM_TEXT('[0.5, 0.25, 1.0]')) AS _distance" in text
    assert "WHERE photos.vec IS NOT NULL AND photos.cat = 3" in text
    assert text.endswith("ORDER BY _distance, photos.id LIMIT 3")


def test_filters_with_json_paths_and_ranges(engine: TiDBEngine) -> None:
    spec = TableSpec.from_model(Photo)
    req = request(
        engine,
        spec,
        filters={"meta.size.w": {"$gte": 10}, "meta.tags": {"$contains": "cat"}, "uri": {"$like": "%.jpg"}},
        distance_max=0.5,
    )
    text = sql(engine, engine.exact_statement(spec, req))
    assert 'JSON_EXTRACT(photos.meta, \'$."size"."w"\')' in text
    assert "JSON_CONTAINS(JSON_EXTRACT(photos.meta, '$.\"tags\"'), JSON_ARRAY('cat')) = 1" in text
    assert "photos.uri LIKE '%%.jpg'" in text or "photos.uri LIKE '%.jpg'" in text
    assert "<= 0.5" in text


def test_ann_search_sql_keeps_where_outside_the_index_scan(engine: TiDBEngine) -> None:
    spec = TableSpec.from_model(Photo)
    scan = IndexScan("hnsw", 120, post_filter=True)
    text = sql(engine, engine.post_filter_statement(spec, request(engine, spec, filters={"cat": 3}), scan))
    inner = text[text.index("(SELECT") : text.index(") AS cand")]
    assert "WHERE" not in inner  # TiDB only uses the vector index without a WHERE clause
    assert inner.endswith("ORDER BY _distance LIMIT 120")
    outer = text.split(") AS cand", 1)[1]
    assert "JOIN" in text and "photos.cat = 3" in outer
    # rows without a vector can enter the pool (no WHERE inside) and must never be results
    assert "cand._distance IS NOT NULL" in outer
    assert text.endswith("ORDER BY cand._distance, cand._lookalike_pk LIMIT 3")


def test_count_statement_and_pool_plan(engine: TiDBEngine) -> None:
    spec = TableSpec.from_model(Photo)
    text = sql(engine, engine.count_statement(spec, request(engine, spec, filters={"cat": 3})))
    assert "sum(CASE WHEN (photos.cat = 3) THEN 1 ELSE 0 END)" in text and "count(*)" in text
    assert engine.plan_pool(10, 500, 100_000) is None  # selective: exact over the matches
    assert engine.plan_pool(10, 50_000, 100_000) == 80  # broad: a pool ~3x what's needed
    engine.exact_search_max_rows = 0
    assert engine.plan_pool(10, 100, 1_000_000) is None  # the pool would be too big: exact


def test_insert_batches() -> None:
    rows = (
        [{"uri": "a", "vec": np.ones(3)} for _ in range(1200)]
        + [{"id": 7, "uri": "b"}]
        + [{"uri": "c", "vec": np.ones(3)}]
    )
    plan = plan_insert_batches(rows, "id")
    generated = plan[(frozenset({"uri", "vec"}), False)]
    assert [len(b) for b in generated] == [500, 500, 201] and generated[-1][-1] == 1201
    assert plan[(frozenset({"id", "uri"}), True)] == [[1200]]


def test_tiflash_replica_statements_and_other_engines(tmp_path: object) -> None:
    from lookalike.engines.tidb import TiFlashReplica, build_tidb_connection_url

    table = sa.Table("my table", sa.MetaData(), sa.Column("id", sa.Integer, primary_key=True))
    replica = TiFlashReplica(table, replica_count=2)
    assert replica.statement() == "ALTER TABLE `my table` SET TIFLASH REPLICA 2"
    assert replica.statement(0) == "ALTER TABLE `my table` SET TIFLASH REPLICA 0"
    for bad in (-1, 1.5, True, "2"):
        with pytest.raises(ConfigurationError, match="replica_count"):
            TiFlashReplica(table, replica_count=bad)  # type: ignore[arg-type]
    sqlite = sa.create_engine("sqlite://")
    for call in (replica.create, replica.drop, replica.get_replication_progress):
        with pytest.raises(lookalike.EngineError, match="TiDB only"):
            call(sqlite)
    assert build_tidb_connection_url() == "mysql+pymysql://root@localhost:4000/test"
    cloud = build_tidb_connection_url(host="gw.prod.aws.tidbcloud.com", username="u.root", password="p@ss/w")
    assert cloud.startswith("mysql+pymysql://u.root:p%40ss%2Fw@gw.prod.aws.tidbcloud.com:4000/test?")
    assert "ssl_verify_cert=true" in cloud and "ssl_verify_identity=true" in cloud
    assert "ssl" not in build_tidb_connection_url(host="gw.prod.aws.tidbcloud.com", enable_ssl=False)
