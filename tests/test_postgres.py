"""PostgreSQL specifics on a real server (pgserver: PostgreSQL 16 + pgvector 0.6.2): version gates,
the index paths of filtered search, COPY inserts, and errors at the connection boundary."""

from __future__ import annotations

import datetime as dt
import decimal
import time
import uuid
from collections.abc import Iterator

import numpy as np
import pytest
import sqlalchemy as sa
from sqlmodel import JSON

import lookalike
from lookalike import (
    ConfigurationError,
    ConnectionFailedError,
    EngineError,
    Field,
    SchemaError,
    TableModel,
    VectorField,
)
from tests.pg_support import pg_data_dir, postgres_url
from tests.test_conformance import assert_hits, distances

URL = postgres_url()
pytestmark = pytest.mark.skipif(URL is None, reason="PostgreSQL + pgvector not available")


@pytest.fixture
def pg() -> Iterator[lookalike.Client]:
    assert URL is not None
    c = lookalike.connect(URL)
    before = set(c.list_tables())
    yield c
    for name in set(c.list_tables()) - before:
        c.drop_table(name, if_not_exists="skip")
    c.close()


def _admin(sql: str) -> None:
    assert URL is not None
    eng = sa.create_engine(
        URL.replace("postgresql://", "postgresql+psycopg://", 1), isolation_level="AUTOCOMMIT"
    )
    with eng.connect() as conn:
        conn.exec_driver_sql(sql)
    eng.dispose()


def _url_for(user: str, password: str | None = None, database: str | None = None) -> str:
    assert URL is not None
    u = sa.engine.make_url(URL).set(username=user, password=password)
    if database:
        u = u.set(database=database)
    return u.render_as_string(hide_password=False)


def _table(client: lookalike.Client, dims: int, name: str = "pg_t") -> lookalike.Table:
    class T(TableModel):
        __tablename__ = name
        id: int = Field(primary_key=True)
        cat: int = Field(default=0)
        # no default HNSW index: these tests create (and count) their indexes themselves
        vec: list[float] | None = VectorField(dimensions=dims, index=False)

    return client.create_table(schema=T, if_exists="overwrite")


# ---------------------------------------------------------------------- what the engine sees


def test_url_forms_and_version(pg: lookalike.Client) -> None:
    from lookalike.engines.postgres import postgres_sa_url

    assert postgres_sa_url("postgresql://u:p@h/db").drivername == "postgresql+psycopg"
    assert postgres_sa_url("postgres://u:p@h/db").drivername == "postgresql+psycopg"
    assert postgres_sa_url("postgresql+psycopg2://u@h/db").drivername == "postgresql+psycopg2"
    assert pg.engine.name == "postgresql" and pg.engine.pgvector_version >= (0, 5, 0)
    t = _table(pg, 3)
    types = {c["name"]: c["type"] for c in t.columns()}
    assert types["vec"] == "vector(3)"


def test_json_fields_are_jsonb(pg: lookalike.Client) -> None:
    class J(TableModel):
        __tablename__ = "pg_json"
        id: int = Field(primary_key=True)
        meta: dict | None = Field(default=None, sa_type=JSON)

    pg.create_table(schema=J)
    kind = pg.query(
        "SELECT data_type FROM information_schema.columns WHERE table_name = 'pg_json' AND column_name = 'meta'"
    ).scalar()
    assert kind == "jsonb"


def test_copy_insert_keeps_every_column_type(pg: lookalike.Client) -> None:
    class Many(TableModel):
        __tablename__ = "pg_many"
        id: int = Field(primary_key=True)
        when: dt.datetime | None = Field(default=None)
        day: dt.date | None = Field(default=None)
        price: decimal.Decimal | None = Field(default=None, max_digits=10, decimal_places=2)
        ratio: float | None = Field(default=None)
        flag: bool | None = Field(default=None)
        blob: bytes | None = Field(default=None)
        key: uuid.UUID | None = Field(default=None)
        meta: dict | None = Field(default=None, sa_type=JSON)
        vec: list[float] | None = VectorField(dimensions=4)

    t = pg.create_table(schema=Many)
    rows = [
        {
            "when": dt.datetime(2024, 1, 1, 12, 0, i % 60, tzinfo=dt.timezone.utc),
            "day": dt.date(2024, 2, 1 + i % 28),
            "price": decimal.Decimal(f"{i}.25"),
            "ratio": i / 3,
            "flag": i % 2 == 0,
            "blob": bytes([i % 256, 1]),
            "key": uuid.UUID(int=i + 1),
            "meta": {"i": i, "s": "ü'\"\\"} if i % 3 else None,
            "vec": [i, 0.5, -1e-7, 3.4e38],
        }
        for i in range(100)  # above the COPY threshold
    ]
    small = [dict(r) for r in rows[:3]]  # below it: plain INSERT ... RETURNING
    out = t.bulk_insert(rows) + t.bulk_insert(small)
    back = {r["id"]: r for r in t.query(order_by="id")}
    for src, res in zip(rows + small, out):
        got = back[res["id"]]
        for key, value in src.items():
            if key == "vec":
                np.testing.assert_array_equal(np.asarray(got[key], np.float32), np.asarray(value, np.float32))
            else:
                assert got[key] == value, key
    # JSON None is stored the same way by both paths
    nulls = pg.query("SELECT count(*) FROM pg_many WHERE meta IS NULL").scalar()
    assert nulls in (0, 34 + 1)


# ---------------------------------------------------------------------- version gates


def test_index_limits_name_the_pgvector_version(pg: lookalike.Client) -> None:
    version = pg.engine.pgvector_version
    t = _table(pg, 8)
    if version < (0, 7, 0):
        with pytest.raises(SchemaError, match=r"l1 metric needs pgvector 0\.7\.0"):
            t.create_vector_index(metric="l1")
        wide = _table(pg, 2048, name="pg_wide")
        with pytest.raises(SchemaError, match=r"2,000 dimensions.*halfvec.*0\.7\.0"):
            wide.create_vector_index()
        wide.insert({"vec": np.ones(2048)})
        assert wide.search(np.ones(2048)).limit(1).to_list()[0]["_distance"] == pytest.approx(0, abs=1e-6)
    huge = _table(pg, 4001, name="pg_huge")
    with pytest.raises(SchemaError, match="at most 4,000"):
        huge.create_vector_index()
    with pytest.raises(ConfigurationError, match="unknown HNSW index parameter"):
        t.create_vector_index(lists=100)


def test_l1_is_exact_on_every_version(pg: lookalike.Client) -> None:
    t = _table(pg, 5)
    data = np.random.default_rng(1).standard_normal((50, 5)).astype(np.float32)
    ids = np.array([r["id"] for r in t.bulk_insert([{"vec": v} for v in data])])
    got = t.search(data[0]).distance_metric("l1").limit(5).to_list()
    assert_hits(got, ids, distances(data, data[0], "l1"), None, 5)


# ---------------------------------------------------------------------- filtered search paths


def _clustered(n: int, dims: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((40, dims))
    data = (centers[rng.integers(0, 40, n)] + 0.3 * rng.standard_normal((n, dims))).astype(np.float32)
    return data / np.linalg.norm(data, axis=1, keepdims=True)


@pytest.mark.parametrize("exact_rows", [10_000, 0])
def test_filtered_recall_on_both_paths(exact_rows: int) -> None:
    """``exact_rows=0`` forces the widened-pool index path whenever the pool fits hnsw.ef_search."""
    assert URL is not None
    client = lookalike.connect(URL, exact_search_max_rows=exact_rows)
    try:
        n, dims = 4000, 32
        data = _clustered(n, dims)
        t = _table(client, dims, name="pg_recall")
        ids = np.array(
            [
                r["id"]
                for r in t.bulk_insert(
                    [{"cat": i % 100, "vec": v} for i, v in enumerate(data)], chunk_size=2000
                )
            ]
        )
        t.create_vector_index(metric="cosine")
        cats = np.arange(n) % 100
        rng = np.random.default_rng(9)
        for filt, mask in (({"cat": 3}, cats == 3), ({"cat": {"$lt": 10}}, cats < 10)):
            for _ in range(5):
                q = data[rng.integers(0, n)]
                ref = distances(data, q, "cosine")
                assert_hits(t.search(q).filter(filt).limit(10).to_list(), ids, ref, mask, 10)
        # an unfiltered search goes through the index and still finds the query's own row first
        q = data[123]
        assert t.search(q).limit(10).to_list()[0]["id"] == ids[123]
    finally:
        client.drop_table("pg_recall", if_not_exists="skip")
        client.close()


def test_exact_path_ignores_the_index(pg: lookalike.Client) -> None:
    """With an index in place, a filtered search must still return `limit` rows whenever they match."""
    n, dims = 2000, 16
    data = _clustered(n, dims, seed=2)
    t = _table(pg, dims)
    ids = np.array(
        [r["id"] for r in t.bulk_insert([{"cat": int(i % 200 == 0), "vec": v} for i, v in enumerate(data)])]
    )
    t.create_vector_index(metric="l2")
    mask = np.arange(n) % 200 == 0  # 10 rows, far apart: an HNSW post-filter would miss most
    ref = distances(data, data[1], "l2")
    assert_hits(
        t.search(data[1]).distance_metric("l2").filter({"cat": 1}).limit(10).to_list(), ids, ref, mask, 10
    )
    # a distance range alone is a filter too
    hi = float(np.sort(ref)[30])
    got = (
        t.search(data[1])
        .distance_metric("l2")
        .distance_range(float(np.sort(ref)[20]), hi)
        .limit(10)
        .to_list()
    )
    assert len(got) == 10


# ---------------------------------------------------------------------- errors at the boundary


def test_server_down_is_retried_then_reported(tmp_path) -> None:
    url = f"postgresql://postgres@/postgres?host={tmp_path}/no-such-dir"
    start = time.monotonic()
    with pytest.raises(ConnectionFailedError, match="tried 3 times") as info:
        lookalike.connect(url, retry_backoff_s=0.05)
    assert time.monotonic() - start >= 0.05 + 0.1  # it waited between attempts
    assert "cannot reach PostgreSQL" in str(info.value)
    with pytest.raises(ConnectionFailedError, match="cannot reach"):
        lookalike.connect("postgresql://u:secret-pw@127.0.0.1:1/db", connect_retries=1)


def test_wrong_password_names_the_cause_not_the_password() -> None:
    data = pg_data_dir()
    if data is None:
        pytest.skip("needs the suite's own pgserver (to require passwords for a role)")
    _admin("DROP ROLE IF EXISTS lk_pw")
    _admin("CREATE ROLE lk_pw LOGIN SUPERUSER PASSWORD 'right-horse'")
    hba = data / "pg_hba.conf"
    text = hba.read_text()
    if "lk_pw" not in text:
        hba.write_text("local all lk_pw scram-sha-256\n" + text)
        _admin("SELECT pg_reload_conf()")
    with pytest.raises(ConnectionFailedError, match="wrong password") as info:
        lookalike.connect(_url_for("lk_pw", "battery-staple"))
    assert "battery-staple" not in str(info.value) and "lk_pw" in str(info.value)
    ok = lookalike.connect(_url_for("lk_pw", "right-horse"))
    assert ok.query("SELECT current_user AS u").scalar() == "lk_pw"  # in, as that role
    ok.close()


def test_unknown_role_and_database() -> None:
    with pytest.raises(ConnectionFailedError, match='role "nobody_here" does not exist'):
        lookalike.connect(_url_for("nobody_here"))
    with pytest.raises(ConnectionFailedError, match="does not exist"):
        lookalike.connect(_url_for("postgres", database="no_such_db"))


def test_missing_pgvector_permission_says_how_to_enable_it() -> None:
    _admin("DROP DATABASE IF EXISTS lk_noext")
    _admin("DROP ROLE IF EXISTS lk_plain")
    _admin("CREATE ROLE lk_plain LOGIN")
    _admin("CREATE DATABASE lk_noext OWNER lk_plain")
    try:
        with pytest.raises(EngineError, match="CREATE EXTENSION vector") as info:
            lookalike.connect(_url_for("lk_plain", database="lk_noext"))
        assert "superuser or the database owner" in str(info.value)
    finally:
        _admin("DROP DATABASE IF EXISTS lk_noext")


def test_extension_not_installed_message(pg: lookalike.Client) -> None:
    """The driver error for an extension the server lacks, translated (provoked for real)."""
    engine = pg.engine
    with pytest.raises(sa.exc.DBAPIError) as info, engine.sa_engine.connect() as conn:
        conn.exec_driver_sql("CREATE EXTENSION lookalike_no_such_extension")
    err = engine._extension_error(info.value, "mydb")  # type: ignore[attr-defined]
    assert "not installed" in str(err) and "pgvector" in str(err) and "CREATE EXTENSION vector" in str(err)


def test_unknown_scheme_lists_the_known_ones() -> None:
    with pytest.raises(ConfigurationError) as info:
        lookalike.connect("mongodb://user:hunter2@host/db")
    text = str(info.value)
    assert "postgresql://" in text and "lookalike[postgres]" in text and "tidb://" in text
    assert "hunter2" not in text


def test_server_errors_are_engine_errors(pg: lookalike.Client) -> None:
    with pytest.raises(EngineError, match="postgresql"):
        pg.query("SELECT * FROM no_such_table_here")
