"""What pytidb's own test suite relies on (issue 14), tested as our own behaviour: ``DistanceMetric`` and
``VECTOR``, the TiDB URL builder, ``is_serverless``, ``table_name``, ``execute()`` row counts, the
column-choice errors, typed JSON comparisons in SQLAlchemy filters, relationships on ``to_pydantic()``
hits, ``_match_score``, statement-level atomicity in sessions and ``has_vector_index()`` on SQLite.

Engine behaviour runs on SQLite and PostgreSQL (the ``client`` fixture); TiDB as compiled SQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.dialects import mysql
from sqlmodel import JSON, Column, Relationship
from sqlmodel import Session as SQLModelSession

import lookalike
from lookalike import (
    VECTOR,
    ColumnChoiceError,
    ConfigurationError,
    DistanceMetric,
    EngineError,
    Field,
    FullTextField,
    SchemaError,
    TableModel,
    VectorField,
    VectorIndex,
)
from lookalike.builder import SearchHit
from lookalike.engines.tidb import TiDBEngine, build_tidb_connection_url
from lookalike.schema import VectorType

both_engines = pytest.mark.parametrize("engine_url", ["sqlite", "postgres"], indirect=True)

POINTS = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.6, 0.8, 0.0], [0.0, 0.0, 1.0], [0.5, 0.5, 0.5]]


def _ids(rows: list[dict[str, Any]]) -> list[int]:
    return [r["id"] for r in rows]


# ------------------------------------------------------------------ 1. DistanceMetric and VECTOR


def test_distance_metric_enum_values_and_sql_functions() -> None:
    assert [m.value for m in DistanceMetric] == ["L1", "L2", "COSINE", "NEGATIVE_INNER_PRODUCT"]
    assert DistanceMetric.L2 == "L2" and isinstance(DistanceMetric.COSINE, str)  # a str enum
    assert DistanceMetric.L1.to_sql_func() == "VEC_L1_DISTANCE"
    assert DistanceMetric.L2.to_sql_func() == "VEC_L2_DISTANCE"
    assert DistanceMetric.COSINE.to_sql_func() == "VEC_COSINE_DISTANCE"
    assert DistanceMetric.NEGATIVE_INNER_PRODUCT.to_sql_func() == "VEC_NEGATIVE_INNER_PRODUCT"
    assert lookalike.VECTOR is VectorType


def _reference_distance(metric: str, a: list[float], b: list[float]) -> float:
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if metric == "l1":
        return float(np.abs(x - y).sum())
    if metric == "l2":
        return float(np.linalg.norm(x - y))
    if metric == "inner_product":
        return float(-(x @ y))
    return float(1 - x @ y / (np.linalg.norm(x) * np.linalg.norm(y)))


@both_engines
def test_distance_metric_accepted_by_vector_field_and_search(client: lookalike.Client) -> None:
    class MetricItem(TableModel):
        __tablename__ = "suite_metric"
        id: int = Field(primary_key=True)
        vec: list[float] | None = VectorField(dimensions=3, distance_metric=DistanceMetric.L2)

    table = client.create_table(schema=MetricItem, if_exists="overwrite")
    assert table.spec.vectors["vec"].distance_metric == "l2"
    table.bulk_insert([{"id": i + 1, "vec": v} for i, v in enumerate(POINTS)])
    query = [0.9, 0.2, 0.1]
    cases = [
        (None, "l2"),  # the field's own metric
        (DistanceMetric.L1, "l1"),
        (DistanceMetric.L2, "l2"),
        (DistanceMetric.COSINE, "cosine"),
        (DistanceMetric.NEGATIVE_INNER_PRODUCT, "inner_product"),
    ]
    for given_metric, name in cases:
        search = table.search(query).limit(len(POINTS))
        if given_metric is not None:
            search = search.distance_metric(given_metric)
        rows = search.to_list()
        expected = sorted(range(len(POINTS)), key=lambda i: _reference_distance(name, query, POINTS[i]))
        assert _ids(rows) == [i + 1 for i in expected], name
        for row in rows:
            want = _reference_distance(name, query, POINTS[row["id"] - 1])
            assert row["_distance"] == pytest.approx(want, abs=1e-5), name
    table.create_vector_index("vec", metric=DistanceMetric.L2)
    assert table.has_vector_index("vec") is True
    rows = table.search(query).distance_metric(DistanceMetric.L2).limit(2).to_list()
    expected = sorted(range(len(POINTS)), key=lambda i: _reference_distance("l2", query, POINTS[i]))
    assert _ids(rows) == [i + 1 for i in expected[:2]]


@both_engines
def test_vector_sa_column_round_trips_and_searches(client: lookalike.Client) -> None:
    class TypedVec(TableModel):
        __tablename__ = "suite_vector_type"
        id: int = Field(primary_key=True)
        vec: list[float] = Field(sa_column=Column(VECTOR(3)))

    table = client.create_table(schema=TypedVec, if_exists="overwrite")
    assert list(table.spec.vectors) == ["vec"] and table.spec.vectors["vec"].dimensions == 3
    table.bulk_insert([TypedVec(id=i + 1, vec=v) for i, v in enumerate(POINTS)])
    for i, point in enumerate(POINTS):
        assert table.get(i + 1).vec == pytest.approx(point)
    rows = table.search([0.0, 1.0, 0.0]).limit(2).to_list()
    assert _ids(rows) == [2, 3]
    assert rows[0]["_distance"] == pytest.approx(0.0, abs=1e-6)
    assert rows[1]["_distance"] == pytest.approx(0.2, abs=1e-6)  # 1 - cos = 1 - 0.8


# ------------------------------------------------------------------ 2. build_tidb_connection_url


def test_build_tidb_connection_url_defaults_and_password() -> None:
    assert build_tidb_connection_url() == "mysql+pymysql://root@localhost:4000/test"
    url = build_tidb_connection_url(
        host="db.internal", port=4001, username="app", password="p@ss/w:rd", database="shop"
    )
    parsed = sa.engine.make_url(url)
    assert url.startswith("mysql+pymysql://app:") and "p@ss/w:rd" not in url  # quoted in the URL
    assert (parsed.username, parsed.password, parsed.host, parsed.port, parsed.database) == (
        "app",
        "p@ss/w:rd",
        "db.internal",
        4001,
        "shop",
    )
    assert dict(parsed.query) == {}


def test_build_tidb_connection_url_tls() -> None:
    cloud = sa.engine.make_url(
        build_tidb_connection_url(host="gateway01.us-west-2.prod.aws.tidbcloud.com", username="u.root")
    )
    assert cloud.query.get("ssl_verify_cert") == "true" and cloud.query.get("ssl_verify_identity") == "true"
    forced = sa.engine.make_url(build_tidb_connection_url(host="tidb.local", enable_ssl=True))
    assert forced.query.get("ssl_verify_cert") == "true"
    off = sa.engine.make_url(build_tidb_connection_url(host="x.tidbcloud.com", enable_ssl=False))
    assert dict(off.query) == {}


# ------------------------------------------------------------------ 3. is_serverless, 4. table_name


@both_engines
def test_is_serverless_false_on_sqlite_and_postgres(client: lookalike.Client) -> None:
    assert client.is_serverless is False


def test_is_serverless_on_tidb_follows_the_host() -> None:
    for url, expected in [
        ("mysql+pymysql://u@x.tidbcloud.com/db", True),
        ("mysql+pymysql://u@GATEWAY01.EU.PROD.AWS.TIDBCLOUD.COM:4000/db", True),
        ("mysql+pymysql://root@tidb.local:4000/test", False),
        ("mysql+pymysql://root@tidbcloud.com.example.org/test", False),
    ]:
        sa_engine = sa.create_engine(url)  # never connects
        try:
            assert TiDBEngine(sa_engine).is_serverless is expected, url
        finally:
            sa_engine.dispose()


@both_engines
def test_table_name_is_name(client: lookalike.Client) -> None:
    class Named(TableModel):
        __tablename__ = "suite_named"
        id: int = Field(primary_key=True)

    table = client.create_table(schema=Named, if_exists="overwrite")
    assert table.table_name == table.name == "suite_named"
    assert client.open_table("suite_named").table_name == "suite_named"


# ------------------------------------------------------------------ 5. execute() rowcount


@both_engines
def test_execute_rowcount_for_ddl_and_inserts(client: lookalike.Client) -> None:
    try:
        created = client.execute("CREATE TABLE suite_exec (id INTEGER PRIMARY KEY, label VARCHAR(20))")
        assert created.success and created.rowcount == 0
        inserted = client.execute("INSERT INTO suite_exec (id, label) VALUES (1, 'a'), (2, 'b'), (3, 'c')")
        assert inserted.success and inserted.rowcount == 3
        updated = client.execute("UPDATE suite_exec SET label = 'z' WHERE id > 5")
        assert updated.rowcount == 0
        failed = client.execute("INSERT INTO suite_exec (id, label) VALUES (1, 'dup')", raise_error=False)
        assert failed.success is False and failed.rowcount == 0
        message = (failed.message or "").lower()
        assert "unique" in message or "duplicate" in message, failed.message
        bad_sql = client.execute("SELEC nonsense", raise_error=False)
        assert bad_sql.success is False and bad_sql.rowcount == 0 and bad_sql.message
        assert client.query("SELECT COUNT(*) FROM suite_exec").scalar() == 3
    finally:
        dropped = client.execute("DROP TABLE IF EXISTS suite_exec")
        assert dropped.success and dropped.rowcount == 0
    again = client.execute("DROP TABLE IF EXISTS suite_exec")  # nothing to drop: still 0, not -1
    assert again.success and again.rowcount == 0


# ------------------------------------------------------------------ 6. ColumnChoiceError


@both_engines
def test_vector_column_choice_errors(client: lookalike.Client) -> None:
    class TwoVec(TableModel):
        __tablename__ = "suite_two_vec"
        id: int = Field(primary_key=True)
        title: str = Field(default="")
        text_vec: list[float] | None = VectorField(dimensions=3)
        image_vec: list[float] | None = VectorField(dimensions=3)

    table = client.create_table(schema=TwoVec, if_exists="overwrite")
    table.insert({"id": 1, "title": "a", "text_vec": [1.0, 0.0, 0.0], "image_vec": [0.0, 1.0, 0.0]})
    assert issubclass(ColumnChoiceError, SchemaError) and issubclass(ColumnChoiceError, ValueError)

    with pytest.raises(ColumnChoiceError, match="more than one vector column") as info:
        table.search([1.0, 0.0, 0.0]).to_list()
    assert "text_vec" in str(info.value) and "image_vec" in str(info.value)
    with pytest.raises(ColumnChoiceError, match=r"Invalid vector column 'title'.*not a vector column"):
        table.search([1.0, 0.0, 0.0]).vector_column("title").to_list()
    with pytest.raises(ColumnChoiceError, match=r"Invalid vector column 'nope'.*no such column"):
        table.search([1.0, 0.0, 0.0]).vector_column("nope").to_list()
    for bad in (None, ""):
        with pytest.raises(ColumnChoiceError, match="Invalid vector column name"):
            table.search([1.0, 0.0, 0.0]).vector_column(bad).to_list()  # type: ignore[arg-type]
    # naming one works, and searches that column
    assert _ids(table.search([0.0, 1.0, 0.0]).vector_column("image_vec").to_list()) == [1]
    row = table.search([0.0, 1.0, 0.0]).vector_column("image_vec").to_list()[0]
    assert row["_distance"] == pytest.approx(0.0, abs=1e-6)


@both_engines
def test_fulltext_column_choice_errors(client: lookalike.Client) -> None:
    class TwoText(TableModel):
        __tablename__ = "suite_two_text"
        id: int = Field(primary_key=True)
        title: str | None = FullTextField(default=None)
        body: str | None = FullTextField(default=None)

    table = client.create_table(schema=TwoText, if_exists="overwrite")
    table.bulk_insert([{"id": 1, "title": "red boots", "body": "blue hat"}])
    with pytest.raises(ColumnChoiceError, match="more than one full-text column") as info:
        table.search("boots", search_type="fulltext").to_list()
    assert "title" in str(info.value) and "body" in str(info.value)
    assert isinstance(info.value, ValueError)
    assert _ids(table.search("boots", search_type="fulltext").text_column("title").to_list()) == [1]
    assert table.search("boots", search_type="fulltext").text_column("body").to_list() == []


# ------------------------------------------------------------------ 7. JSON comparisons


def _json_model() -> type[TableModel]:
    """A fresh model per test (see test_same_model_created_twice for why not one module-level model)."""

    class JsonDoc(TableModel):
        __tablename__ = "suite_json"
        id: int = Field(primary_key=True)
        meta: dict | None = Field(default=None, sa_type=JSON)
        vec: list[float] | None = VectorField(dimensions=3)

    return JsonDoc


# values exactly representable in binary floating point and in every engine's JSON text, so equality
# means the same in SQL as in Python
_STRS = st.sampled_from(["apple", "pear", "x", "Apple", ""])
_INTS = st.integers(-5, 5)
_FLOATS = st.sampled_from([0.0, 0.25, 0.5, 0.75, 1.5, -0.5])
_DOCS = st.fixed_dictionaries(
    {},
    optional={
        "s": _STRS,
        "n": _INTS,
        "f": _FLOATS,
        "a": st.fixed_dictionaries({}, optional={"b": _INTS}),
    },
)
_OPS = {
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    ">=": lambda a, b: a >= b,
    ">": lambda a, b: a > b,
    "<=": lambda a, b: a <= b,
    "<": lambda a, b: a < b,
}


_MISSING = object()


def _path_value(doc: dict[str, Any], path: tuple[str, ...]) -> Any:
    """The value at ``path`` or a sentinel: a missing key (or a non-dict on the way) never matches."""
    node: Any = doc
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return _MISSING
        node = node[key]
    return node


# (path, the Python type its values have, the strategy for a compared value)
_CASES = [
    (("s",), str, _STRS),
    (("n",), int, _INTS),
    (("f",), float, _FLOATS),
    (("a", "b"), int, _INTS),
]


def _expression(model: Any, path: tuple[str, ...], op: str, value: Any, typed: bool) -> Any:
    column = model.meta
    element = column[path[0]] if len(path) == 1 else column[path]
    if typed:  # already read as a plain value: passed through as written
        element = {str: element.as_string(), int: element.as_integer(), float: element.as_float()}[
            type(value)
        ]
    return _OPS[op](element, value)


@both_engines
def test_same_model_created_twice(engine_url: str, client: lookalike.Client) -> None:
    """pytidb's tests declare each model once and create its table in several tests
    (``if_exists="overwrite"``), on one client or a new one."""
    model: Any = _json_model()
    for _ in range(2):
        table = client.create_table(schema=model, if_exists="overwrite")
        table.insert({"id": 1, "meta": {"s": "apple"}, "vec": [1.0, 0.0, 0.0]})
        assert _ids(table.query(filters=model.meta["s"] == "apple").to_list()) == [1]
    with lookalike.connect(engine_url) as other:
        table = other.create_table(schema=model, if_exists="overwrite")
        assert table.rows() == 0
    client.drop_table("suite_json", if_not_exists="skip")


@pytest.fixture
def json_table(client: lookalike.Client) -> Iterator[lookalike.Table]:
    table = client.create_table(schema=_json_model(), if_exists="overwrite")
    yield table
    client.drop_table("suite_json", if_not_exists="skip")


@both_engines
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    docs=st.lists(_DOCS, min_size=0, max_size=8),
    data=st.data(),
)
def test_json_comparisons_match_python(
    json_table: lookalike.Table, docs: list[dict], data: st.DataObject
) -> None:
    json_table.truncate()
    json_table.bulk_insert(
        [{"id": i + 1, "meta": d, "vec": [1.0, float(i), 0.5]} for i, d in enumerate(docs)]
    )
    path, kind, values = data.draw(st.sampled_from(_CASES), label="case")
    # strings only for (in)equality: their order is the database's collation, not what is tested here
    op = data.draw(st.sampled_from(["==", "!="] if kind is str else sorted(_OPS)), label="op")
    value = data.draw(values, label="value")
    typed = data.draw(st.booleans(), label="typed")
    expected = sorted(
        i + 1
        for i, doc in enumerate(docs)
        if (v := _path_value(doc, path)) is not _MISSING and isinstance(v, kind) and _OPS[op](v, value)
    )
    expr = _expression(json_table.table_model, path, op, value, typed)
    assert sorted(_ids(json_table.query(filters=expr).to_list())) == expected, (path, op, value)
    searched = json_table.search([1.0, 0.0, 0.5]).filter(expr).limit(100).to_list()
    assert sorted(_ids(searched)) == expected, (path, op, value)


@both_engines
def test_json_comparisons_fixed_examples(json_table: lookalike.Table) -> None:
    docs = [
        {"s": "apple", "f": 0.5, "n": 3, "a": {"b": 1}},
        {"s": "pear", "f": 0.25, "n": 4, "a": {"b": 2}},
        {"s": "x", "f": 0.75},
        {},
    ]
    json_table.bulk_insert([{"id": i + 1, "meta": d, "vec": [1.0, 0.0, 0.0]} for i, d in enumerate(docs)])
    meta = json_table.table_model.meta
    examples = [
        (meta["s"] == "apple", [1]),
        (meta["f"] >= 0.5, [1, 3]),
        (meta["n"] == 3, [1]),
        (meta["s"] != "x", [1, 2]),  # the row without "s" matches neither == nor !=
        (meta[("a", "b")] == 1, [1]),
        (meta["f"].as_float() >= 0.5, [1, 3]),
        (sa.and_(meta["s"] != "x", meta["n"] > 3), [2]),
    ]
    for expr, want in examples:
        assert sorted(_ids(json_table.query(filters=expr).to_list())) == want, str(expr)
        assert sorted(_ids(json_table.search([1.0, 0.0, 0.0]).filter(expr).to_list())) == want, str(expr)


@both_engines
def test_json_numbers_compare_as_numbers(json_table: lookalike.Table) -> None:
    """A JSON number compared with a Python number: ints and floats under one key (prices, scores),
    compared numerically as TiDB compares JSON numbers, whichever type the literal has."""
    values = [1, 1.5, 2, 0.25]
    json_table.bulk_insert(
        [{"id": i + 1, "meta": {"x": v}, "vec": [1.0, 0.0, 0.0]} for i, v in enumerate(values)]
        + [{"id": 5, "meta": {}, "vec": [1.0, 0.0, 0.0]}]
    )
    x = json_table.table_model.meta["x"]
    for op, literal in [(">=", 1), ("==", 1), (">", 1), ("<", 1), (">=", 0.5), ("==", 2.0), ("!=", 2)]:
        expr = _OPS[op](x, literal)
        want = [i + 1 for i, v in enumerate(values) if _OPS[op](v, literal)]
        got = sorted(_ids(json_table.query(filters=expr).to_list()))
        assert got == want, f"meta['x'] {op} {literal!r}"
        searched = sorted(_ids(json_table.search([1.0, 0.0, 0.0]).filter(expr).to_list()))
        assert searched == want, f"search: meta['x'] {op} {literal!r}"


def test_dict_filters_compare_json_numbers_as_numbers(json_table: lookalike.Table) -> None:
    """The same rule for dict filters: ``{"meta.x": 1}`` matched 1.5 on SQLite (read as an integer)."""
    values = [1, 1.5, 2, 0.25]
    json_table.bulk_insert(
        [{"id": i + 1, "meta": {"x": v}, "vec": [1.0, 0.0, 0.0]} for i, v in enumerate(values)]
    )
    for flt, want in [
        ({"meta.x": 1}, [1]),
        ({"meta.x": {"$gte": 1}}, [1, 2, 3]),
        ({"meta.x": {"$lt": 2}}, [1, 2, 4]),
        ({"meta.x": {"$in": [2, 0.25]}}, [3, 4]),
    ]:
        assert sorted(_ids(json_table.query(filters=flt).to_list())) == want, flt


def _tidb_sql(expr: Any, table: sa.Table) -> str:
    from lookalike.filters import compile_filter

    compiled = compile_filter(expr, table)
    assert compiled is not None
    return str(compiled.compile(dialect=mysql.dialect(), compile_kwargs={"literal_binds": True}))


def test_json_comparisons_compile_for_tidb() -> None:
    model: Any = _json_model()
    meta = model.meta
    string_sql = _tidb_sql(meta["s"] == "apple", model.__table__)
    assert "JSON_UNQUOTE(JSON_EXTRACT(suite_json.meta" in string_sql and "= 'apple'" in string_sql
    nested_sql = _tidb_sql(meta[("a", "b")] == 1, model.__table__)
    assert "JSON_EXTRACT(suite_json.meta" in nested_sql and "$.a.b" in nested_sql.replace('"', "")
    for expr in (meta["f"] >= 0.5, meta["n"] != 3, meta["f"].as_float() >= 0.5):
        assert "JSON_EXTRACT(suite_json.meta" in _tidb_sql(expr, model.__table__)


# ------------------------------------------------------------------ 8. relationships on to_pydantic()


class SuiteUser(TableModel):
    __tablename__ = "suite_users"
    id: int = Field(primary_key=True)
    name: str = Field(default="")


# module level, once: SQLAlchemy resolves the class names in primaryjoin through its registry
class SuiteChunk(TableModel):
    __tablename__ = "suite_chunks"
    id: int = Field(primary_key=True)
    text: str = Field(default="")
    user_id: int = Field(foreign_key="suite_users.id")
    vec: list[float] | None = VectorField(dimensions=3)
    user: SuiteUser = Relationship(
        sa_relationship_kwargs={"lazy": "joined", "primaryjoin": "SuiteChunk.user_id == SuiteUser.id"}
    )


@pytest.fixture
def chunks(client: lookalike.Client) -> Iterator[lookalike.Table]:
    for name in ("suite_chunks", "suite_users"):
        client.drop_table(name, if_not_exists="skip")
    users = client.create_table(schema=SuiteUser)
    users.bulk_insert([SuiteUser(id=1, name="ann"), SuiteUser(id=2, name="bob")])
    table = client.create_table(schema=SuiteChunk)
    owners = [1, 2, 1, 2, 2]
    table.bulk_insert(
        [{"id": 10 + i, "text": f"c{i}", "user_id": owners[i], "vec": v} for i, v in enumerate(POINTS)]
    )
    yield table
    for name in ("suite_chunks", "suite_users"):
        client.drop_table(name, if_not_exists="skip")


def _check_hits(table: lookalike.Table, query: list[float]) -> None:
    names = {1: "ann", 2: "bob"}
    rows = table.search(query).limit(4).to_list()
    hits = table.search(query).limit(4).to_pydantic()
    assert _ids(rows) != sorted(_ids(rows))  # so the check below tells the two orders apart
    assert [h.id for h in hits] == _ids(rows)  # the search's order, not the primary key's
    for hit, row in zip(hits, rows):
        assert isinstance(hit, SearchHit) and isinstance(hit.hit, SuiteChunk)
        assert hit.user.name == names[row["user_id"]]
        assert hit.distance == pytest.approx(row["_distance"]) and hit.score == pytest.approx(row["_score"])
    bare = table.search(query).limit(4).to_pydantic(with_score=False)
    assert [b.user.name for b in bare] == [names[r["user_id"]] for r in rows]


@both_engines
def test_to_pydantic_loads_relationships(chunks: lookalike.Table) -> None:
    _check_hits(chunks, [0.0, 0.1, 1.0])  # hits 13, 14, 11, 12: not the primary key's order
    _check_hits(chunks, [1.0, 0.2, 0.05])  # 10, 12, 14, 11 (no ties)


@both_engines
def test_to_pydantic_loads_relationships_in_a_session(
    client: lookalike.Client, chunks: lookalike.Table
) -> None:
    with client.session():
        chunks.update({"user_id": 1}, {"id": 13})  # seen by the hits, in the same transaction
        hits = chunks.search([0.0, 0.0, 1.0]).limit(1).to_pydantic()
        assert hits[0].id == 13 and hits[0].user.name == "ann"
        _check_hits(chunks, [0.0, 0.1, 1.0])
    assert chunks.get(13).user_id == 1


# ------------------------------------------------------------------ 9. _match_score


@both_engines
def test_match_score_on_fulltext_rows_and_after_rerank(client: lookalike.Client) -> None:
    class Note(TableModel):
        __tablename__ = "suite_notes"
        id: int = Field(primary_key=True)
        body: str | None = FullTextField(default=None)

    table = client.create_table(schema=Note, if_exists="overwrite")
    table.bulk_insert(
        [
            {"id": 1, "body": "red boots for rain"},
            {"id": 2, "body": "red hat, red scarf and red boots"},
            {"id": 3, "body": "blue boots"},
            {"id": 4, "body": "green hat"},
        ]
    )
    rows = table.search("red boots", search_type="fulltext").limit(10).to_list()
    assert rows and all(r["_match_score"] == r["_score"] for r in rows)
    before = {r["id"]: r["_match_score"] for r in rows}
    reranked = (
        table.search("red boots", search_type="fulltext")
        .limit(10)
        .rerank(lookalike.Reranker("bm25"))
        .to_list()
    )
    assert sorted(_ids(reranked)) == sorted(before)
    assert any(r["_score"] != pytest.approx(r["_match_score"]) for r in reranked)  # the rerank ran
    for row in reranked:
        assert row["_match_score"] == pytest.approx(before[row["id"]])  # the full-text value, kept
    hits = table.search("red boots", search_type="fulltext").limit(10).to_pydantic()
    assert [h.match_score for h in hits] == [r["_match_score"] for r in rows]


# ------------------------------------------------------------------ 10. atomic calls in sessions


class Account(TableModel):
    __tablename__ = "suite_accounts"
    id: int = Field(primary_key=True)
    code: str = Field(unique=True, max_length=20)
    balance: int = Field(default=0)


@pytest.fixture
def accounts(client: lookalike.Client) -> lookalike.Table:
    table = client.create_table(schema=Account, if_exists="overwrite")
    table.bulk_insert([Account(id=1, code="a", balance=10), Account(id=2, code="b", balance=20)])
    return table


def _state(table: lookalike.Table) -> list[tuple[int, str, int]]:
    return [(r["id"], r["code"], r["balance"]) for r in table.query(order_by="id").to_list()]


@both_engines
def test_failed_call_in_a_session_is_undone_alone(
    client: lookalike.Client, accounts: lookalike.Table
) -> None:
    with client.session():
        accounts.update({"balance": 11}, {"id": 1})  # earlier work: kept
        with pytest.raises(EngineError):
            accounts.update({"code": "a"}, {"id": 2})  # unique key
        with pytest.raises(EngineError):
            accounts.update({"code": None}, {"id": 2})  # NOT NULL
        with pytest.raises(EngineError):  # the second row breaks the unique key: neither is written
            accounts.bulk_insert([Account(id=3, code="c"), Account(id=4, code="a")])
        assert _state(accounts) == [(1, "a", 11), (2, "b", 20)]  # the session goes on
        accounts.insert(Account(id=5, code="e", balance=5))  # later work: kept
        client.execute("UPDATE suite_accounts SET balance = balance + 1 WHERE id = 2")
    assert _state(accounts) == [(1, "a", 11), (2, "b", 21), (5, "e", 5)]


@pytest.mark.parametrize("engine_url", ["postgres"], indirect=True)
def test_integer_overflow_on_postgres_says_out_of_range(
    client: lookalike.Client, accounts: lookalike.Table
) -> None:
    with client.session():
        accounts.update({"balance": 12}, {"id": 1})
        with pytest.raises(EngineError, match="Out of range"):
            accounts.update({"balance": 2**40}, {"id": 2})
        accounts.update({"balance": 22}, {"id": 2})
    assert _state(accounts) == [(1, "a", 12), (2, "b", 22)]
    with pytest.raises(EngineError, match="Out of range"):  # outside a session too
        client.execute("UPDATE suite_accounts SET balance = 3000000000 WHERE id = 1")


@both_engines
def test_atomic_calls_with_a_provided_session(client: lookalike.Client, accounts: lookalike.Table) -> None:
    with SQLModelSession(client.db_engine) as outer:
        with client.session(provided_session=outer):
            accounts.update({"balance": 13}, {"id": 1})
            with pytest.raises(EngineError):
                accounts.insert(Account(id=6, code="b"))  # unique key
            with pytest.raises(EngineError):
                accounts.bulk_insert([Account(id=7, code="g"), Account(id=8, code="g")])
            accounts.update({"balance": 23}, {"id": 2})
        outer.commit()
    assert _state(accounts) == [(1, "a", 13), (2, "b", 23)]


# ------------------------------------------------------------------ 11. has_vector_index on SQLite


def _index_models(prefix: str) -> tuple[type[TableModel], type[TableModel]]:
    class ByField(TableModel):
        __tablename__ = f"{prefix}_field"
        id: int = Field(primary_key=True)
        indexed: list[float] | None = VectorField(dimensions=3, index=True)
        plain: list[float] | None = VectorField(dimensions=3, index=False)

    class ByArgs(TableModel):
        __tablename__ = f"{prefix}_args"
        __table_args__ = (VectorIndex(f"idx_{prefix}_args", "vec", distance_metric="L2"),)
        id: int = Field(primary_key=True)
        vec: list[float] | None = VectorField(dimensions=3, index=False)

    return ByField, ByArgs


def test_has_vector_index_when_declared_on_sqlite(tmp_path: Path) -> None:
    by_field, by_args = _index_models("suite_hvi")
    with lookalike.connect(tmp_path / "on.db") as client:
        field_table = client.create_table(schema=by_field)
        args_table = client.create_table(schema=by_args)
        assert field_table.rows() == 0 and args_table.rows() == 0  # empty: nothing built yet
        assert field_table.has_vector_index("indexed") is True
        assert args_table.has_vector_index("vec") is True and args_table.has_vector_index() is True
        assert field_table.has_vector_index("plain") is False  # not declared
        with pytest.raises(SchemaError):
            field_table.has_vector_index("id")
        field_table.bulk_insert([{"id": i, "indexed": v, "plain": v} for i, v in enumerate(POINTS)])
        assert field_table.has_vector_index("indexed") is True  # still, below the build threshold
        assert field_table.has_vector_index("plain") is False
    with lookalike.connect(tmp_path / "off.db", vector_index="off") as client:
        field_table = client.create_table(schema=by_field)
        args_table = client.create_table(schema=by_args)
        assert field_table.has_vector_index("indexed") is False
        assert args_table.has_vector_index("vec") is False
        assert field_table.has_vector_index("plain") is False


def test_distance_metric_enum_in_vector_index_and_errors() -> None:
    index = VectorIndex("idx_suite_enum", "vec", distance_metric=DistanceMetric.NEGATIVE_INNER_PRODUCT)
    assert index.distance_metric == "inner_product"
    field_metrics = {m: VectorField(dimensions=3, distance_metric=m) for m in DistanceMetric}
    assert len(field_metrics) == 4  # every member is accepted
    with pytest.raises(ConfigurationError, match="unknown distance metric") as info:
        VectorField(dimensions=3, distance_metric="HAMMING")
    assert isinstance(info.value, ValueError)


def test_use_server_is_accepted_and_embedding_stays_local(client: lookalike.Client) -> None:
    """pytidb's auto_embedding example passes use_server=True (TiDB Cloud embeds); lookalike embeds in
    this process with the same model, so the call must work and the embedder be the usual one."""
    fn = lookalike.EmbeddingFunction("cohere/embed-v4.0", dimensions=1536, use_server=True)
    assert fn.dimensions == 1536 and fn.model_name == "embed-v4.0"
    client.configure_embedding_provider(provider="cohere", api_key="k-123", use_server=True)
    try:
        assert "k-123" not in repr(fn)
    finally:
        client.configure_embedding_provider(provider="cohere", api_key=None)
