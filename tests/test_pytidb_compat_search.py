"""pytidb's search builder surface and what its example programs need (issue 14, items 7 and 9).

Real SQLite files and the suite's PostgreSQL (the ``client`` fixture); TiDB as compiled SQL.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import Field as PydanticField  # pytidb's embedders declare settings as pydantic fields
from sqlmodel import Column

import lookalike
from lookalike import ConfigurationError, Field, TableModel, VectorField
from lookalike.builder import SearchHit
from lookalike.embeddings import EmbeddingFunction, build_from_config
from lookalike.errors import AuthenticationError
from lookalike.schema import VectorType
from lookalike.search import Search, VectorColumns
from tests.stub_providers import StubProvider

KEY = "test-key"
POINTS = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.6, 0.8, 0.0], [0.0, 0.0, 1.0]]


def _vector_table(client: lookalike.Client, name: str = "compat_vec") -> lookalike.Table:
    class Item(TableModel, table=True):
        __tablename__ = name
        id: int = Field(primary_key=True)
        text: str = Field()
        vec: list[float] | None = VectorField(dimensions=3)

    table = client.create_table(schema=Item, if_exists="overwrite")
    table.bulk_insert([{"id": i + 1, "text": f"t{i + 1}", "vec": v} for i, v in enumerate(POINTS)])
    return table


def _cosine(a: list[float], b: list[float]) -> float:
    x, y = np.asarray(a), np.asarray(b)
    return float(1 - x @ y / (np.linalg.norm(x) * np.linalg.norm(y)))


# ---------------------------------------------------------------------------------- 1. key names


@pytest.mark.parametrize("env", ["JINA_API_KEY", "JINA_AI_API_KEY"])
def test_jina_key_from_either_name(env: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("JINA_API_KEY", "JINA_AI_API_KEY", "JINA_API_BASE"):
        monkeypatch.delenv(name, raising=False)
    with StubProvider("jina") as stub:
        ef = EmbeddingFunction("jina_ai/jina-embeddings-v4", api_base=stub.api_base)
        monkeypatch.setenv(env, KEY)
        assert ef.embed_query("hello").shape == (2048,)
        assert stub.request_count == 1 and stub.violations == []
        # the stored configuration names a variable, never the key
        assert KEY not in repr(ef.config()) and ef.config()["options"]["api_key_env"] == "JINA_API_KEY"


def test_no_jina_key_names_both_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("JINA_API_KEY", "JINA_AI_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    ef = EmbeddingFunction("jina_ai/jina-embeddings-v4", api_base="http://127.0.0.1:9")
    with pytest.raises(AuthenticationError, match="JINA_API_KEY or JINA_AI_API_KEY"):
        ef.embed_query("hello")


# ---------------------------------------------------------------------------------- 2. builder surface


def test_vector_columns_is_a_list_of_columns(client: lookalike.Client) -> None:
    table = _vector_table(client)
    cols = table.vector_columns
    assert isinstance(cols, VectorColumns) and isinstance(cols, list) and len(cols) == 1
    assert isinstance(cols[0], sa.Column) and cols[0].name == "vec"
    assert table.has_vector_index(cols[0].name) in (True, False)
    # the earlier dict form still answers by name
    assert cols["vec"].dimensions == 3 and cols.keys() == ["vec"] and "vec" in cols
    with pytest.raises(KeyError, match="not a vector column"):
        cols["text"]


def test_vector_and_text_builders(client: lookalike.Client) -> None:
    table = _vector_table(client)
    by_vector = table.search([0.0, 1.0, 0.0]).vector([1.0, 0.0, 0.0]).limit(1).to_list()
    assert by_vector[0]["id"] == 1
    numpy_query = table.search([0.0, 1.0, 0.0]).vector(np.array([0.0, 0.0, 1.0])).limit(1)
    assert numpy_query.to_list()[0]["id"] == 4
    for bad in ([], [[1.0, 0.0, 0.0]], ["a", "b", "c"], [1.0, float("nan"), 0.0]):
        with pytest.raises(ConfigurationError, match="vector\\(\\)"):
            table.search([1.0, 0.0, 0.0]).vector(bad)
    with pytest.raises(lookalike.LookalikeError, match="dimension"):
        table.search([1.0, 0.0, 0.0]).vector([1.0, 0.0]).to_list()
    for bad_text in ("", "   ", 3):
        with pytest.raises(ConfigurationError, match="text\\(\\)"):
            table.search([1.0, 0.0, 0.0]).text(bad_text)  # type: ignore[arg-type]


def test_text_builder_embeds_text(client: lookalike.Client, toy: Any) -> None:
    class Doc(TableModel, table=True):
        __tablename__ = "compat_docs"
        id: int = Field(primary_key=True)
        body: str = Field()
        vec: list[float] | None = toy.VectorField(source_field="body", source_type="text")

    table = client.create_table(schema=Doc, if_exists="overwrite")
    table.bulk_insert([{"id": 1, "body": "red"}, {"id": 2, "body": "blue"}])
    text_vec = np.asarray(toy.embed_query("blue", source_type="text"))
    search = table.search(vector=[1.0] * len(text_vec)).text("blue").limit(2)
    rows = search.to_list()
    expected = table.search(vector=text_vec.tolist()).limit(2).to_list()
    assert [r["id"] for r in rows] == [r["id"] for r in expected]
    assert rows[0]["_distance"] == pytest.approx(expected[0]["_distance"], abs=1e-6)


def test_skip_null_vectors_never_returns_rows_without_vectors(client: lookalike.Client) -> None:
    table = _vector_table(client)
    table.insert({"id": 99, "text": "no vector", "vec": None})
    for flag in (True, False):
        rows = table.search([1.0, 0.0, 0.0]).skip_null_vectors(flag).limit(10).to_list()
        assert [r["id"] for r in rows] == [1, 3, 2, 4]
    assert table.search([1.0, 0.0, 0.0]).skip_null_vectors().limit(10).to_list()[0]["id"] == 1
    with pytest.raises(ConfigurationError, match="skip_null_vectors"):
        table.search([1.0, 0.0, 0.0]).skip_null_vectors("yes")  # type: ignore[arg-type]


def test_compiled_sql_and_debug(client: lookalike.Client, caplog: pytest.LogCaptureFixture) -> None:
    table = _vector_table(client)
    search = table.search([1.0, 0.0, 0.0]).filter({"id": {"$gte": 2}}).limit(2)
    sql = search.compiled_vector_query_sql()
    embedded = client.engine.sa_engine.url.get_backend_name() == "sqlite"
    if embedded:
        assert sql is None  # numpy computes the distances, not SQL
    else:
        assert sql is not None and "ORDER BY" in sql and "LIMIT 2" in sql and "<=>" in sql
        assert "1.0" in sql  # the query vector is written in
        # the text runs as it is (pytidb's vector_index example EXPLAINs it): no bare ``nan``
        ran = client.query(sql).to_list()
        assert [r["id"] for r in ran] == [r["id"] for r in search.to_list()]
        threshold = table.search([1.0, 0.0, 0.0]).distance_threshold(0.9).limit(5)
        assert len(client.query(threshold.compiled_vector_query_sql()).to_list()) == len(threshold.to_list())
    with pytest.raises(ConfigurationError, match="debug"):
        search.debug("on")  # type: ignore[arg-type]
    with caplog.at_level(logging.INFO, logger="lookalike.search"):
        quiet = search.to_list()
        assert caplog.records == []
        rows = search.debug().to_list()
    assert rows == quiet and [r["id"] for r in rows] == [3, 2]
    text = "\n".join(r.getMessage() for r in caplog.records)
    if embedded:
        assert "exact scan" in text or "IVF index" in text
    else:
        assert "SQL follows" in text and "ORDER BY" in text
    assert "SELECT" in text  # the statements that ran


def test_compiled_sql_on_tidb() -> None:
    from lookalike.engines.tidb import TiDBEngine
    from lookalike.session import Database

    class Photo(TableModel, table=True):
        __tablename__ = "compat_photos"
        id: int = Field(primary_key=True)
        vec: list[float] | None = VectorField(dimensions=3)

    engine = TiDBEngine(sa.create_engine("mysql+pymysql://root@tidb.local:4000/test"))  # never connects
    spec = lookalike.schema.TableSpec.from_model(Photo)
    search = Search(spec, Database(engine), [0.5, 0.25, 1.0], "vector").limit(3)
    sql = " ".join((search.compiled_vector_query_sql() or "").split())
    assert "VEC_COSINE_DISTANCE(compat_photos.vec, VEC_FROM_TEXT('[0.5, 0.25, 1.0]'))" in sql
    assert sql.endswith("LIMIT 3")


# ---------------------------------------------------------------------------------- 3. to_pydantic


def test_to_pydantic_hits_carry_scores(client: lookalike.Client) -> None:
    table = _vector_table(client)
    query = [1.0, 0.1, 0.0]
    hits = table.search(query).limit(3).to_pydantic()
    rows = table.search(query).limit(3).to_list()
    assert all(isinstance(h, SearchHit) for h in hits)
    for hit, row in zip(hits, rows):
        assert hit.hit.id == row["id"] and hit.id == row["id"] and hit.text == row["text"]
        assert hit.distance == pytest.approx(_cosine(query, POINTS[row["id"] - 1]), abs=1e-5)
        assert hit.similarity_score == pytest.approx(1 - hit.distance, abs=1e-9)
        assert hit.score == row["_score"] and hit._score == row["_score"]
        assert hit.match_score is None
    bare = table.search(query).limit(3).to_pydantic(with_score=False)
    assert [b.id for b in bare] == [r["id"] for r in rows] and not isinstance(bare[0], SearchHit)
    assert [b.id for b in table.search(query).limit(3).to_pydantic(False)] == [r["id"] for r in rows]


def test_similarity_score_follows_the_metric(client: lookalike.Client) -> None:
    table = _vector_table(client)
    hit = table.search([2.0, 0.0, 0.0]).distance_metric("L2").limit(1).to_pydantic()[0]
    assert hit.id == 1 and hit.distance == pytest.approx(1.0, abs=1e-6)
    assert hit.similarity_score == pytest.approx(1 / (1 + hit.distance))


def test_to_pydantic_with_a_required_vector_field(client: lookalike.Client) -> None:
    class Strict(TableModel, table=True):
        __tablename__ = "compat_strict"
        id: int = Field(primary_key=True)
        text: str = Field()
        vec: list[float] = Field(sa_column=Column(VectorType(3)))

    table = client.create_table(schema=Strict, if_exists="overwrite")
    table.bulk_insert([{"id": i + 1, "text": f"t{i}", "vec": v} for i, v in enumerate(POINTS)])
    hits = table.search([0.0, 1.0, 0.0]).limit(2).to_pydantic()
    assert [h.id for h in hits] == [2, 3]
    assert hits[0].hit.vec == pytest.approx(POINTS[1]) and hits[1].vec == pytest.approx(POINTS[2])
    # to_list() still leaves vectors out unless selected
    assert "vec" not in table.search([0.0, 1.0, 0.0]).limit(1).to_list()[0]
    picked = table.search([0.0, 1.0, 0.0]).select("id", "text").limit(1).to_pydantic(with_score=False)
    assert picked[0].id == 2 and picked[0].vec == pytest.approx(POINTS[1])


@settings(max_examples=25, deadline=None)
@given(st.lists(st.floats(-1, 1, allow_nan=False).filter(lambda x: abs(x) > 1e-3), min_size=3, max_size=3))
def test_hits_match_a_numpy_reference(tmp_path_factory: pytest.TempPathFactory, query: list[float]) -> None:
    path = tmp_path_factory.mktemp("hyp") / "h.db"
    with lookalike.connect(str(path)) as client:
        table = _vector_table(client)
        hits = table.search(query).limit(4).to_pydantic()
    expected = sorted(range(4), key=lambda i: (round(_cosine(query, POINTS[i]), 6), i))
    assert [h.id - 1 for h in hits] == expected
    for h in hits:
        assert h.distance == pytest.approx(_cosine(query, POINTS[h.id - 1]), abs=1e-5)


# ---------------------------------------------------------------------------------- 4. custom embedders


def _word_vector(text: str) -> list[float]:
    """A reference embedding: letter counts of a, b, c (plus one, so never all zero)."""
    return [text.count("a") + 1.0, text.count("b") + 1.0, text.count("c") + 1.0]


class LetterEmbedder(lookalike.embeddings.base.BaseEmbeddingFunction):
    """Written as pytidb's custom_embedding example is: settings passed to super().__init__,
    only get_query_embedding / get_source_embedding(s) overridden."""

    scale: float = PydanticField(1.0, description="multiplies every vector")
    device: str | None = PydanticField(None, description="unused")

    def __init__(self, model_name: str = "letters", scale: float = 1.0, **kwargs: Any) -> None:
        super().__init__(model_name=model_name, dimensions=3, scale=scale, **kwargs)
        self.calls: list[str] = []

    def get_query_embedding(self, query: Any, source_type: str | None = "text", **kwargs: Any) -> list[float]:
        self.calls.append(f"query:{source_type}")
        return [self.scale * x for x in _word_vector(str(query))]

    def get_source_embeddings(
        self, sources: list[Any], source_type: str | None = "text", **kwargs: Any
    ) -> list[list[float]]:
        self.calls.append(f"sources:{source_type}:{len(sources)}")
        if any(s == "boom" for s in sources):
            raise ValueError("model crashed on this batch")
        return [[self.scale * x for x in _word_vector(str(s))] for s in sources]


class OneByOne(lookalike.embeddings.base.BaseEmbeddingFunction):
    def __init__(self) -> None:
        super().__init__(model_name="one", dimensions=3, flavour="plain")

    def get_source_embedding(
        self, source: Any, source_type: str | None = "text", **kwargs: Any
    ) -> list[float]:
        return _word_vector(str(source))


def test_pytidb_style_embedder_fields_and_overrides(client: lookalike.Client) -> None:
    ef = LetterEmbedder(scale=2.0)
    assert ef.scale == 2.0 and ef.device is None  # passed field, and a declared field's default
    assert ef.config_options() == {"scale": 2.0}
    rebuilt = build_from_config(json.loads(json.dumps(ef.config())))  # as open_table in a new process
    assert isinstance(rebuilt, LetterEmbedder) and rebuilt.scale == 2.0 and rebuilt.dimensions == 3
    fixed = build_from_config(OneByOne().config())  # a setting it passed itself, not a parameter
    assert isinstance(fixed, OneByOne) and fixed.flavour == "plain"

    class Note(TableModel, table=True):
        __tablename__ = "compat_notes"
        id: int = Field(primary_key=True)
        body: str = Field()
        vec: list[float] | None = ef.VectorField(source_field="body", source_type="text")

    table = client.create_table(schema=Note, if_exists="overwrite")
    bodies = ["aaa", "bbb", "abc", "ccc"]
    table.bulk_insert([{"id": i + 1, "body": b} for i, b in enumerate(bodies)])
    assert ef.calls == ["sources:text:4"]  # one batch through get_source_embeddings
    stored = {r["id"]: r["vec"] for r in table.query().to_list()}
    for i, body in enumerate(bodies):
        assert stored[i + 1] == pytest.approx([2 * x for x in _word_vector(body)])
    hits = table.search("aab").limit(4).to_list()
    assert ef.calls[-1] == "query:text"
    expected = sorted(range(4), key=lambda i: _cosine(_word_vector("aab"), _word_vector(bodies[i])))
    assert [h["id"] - 1 for h in hits] == expected
    # get_source_embedding alone serves both queries and stored items
    single = OneByOne()
    assert single.embed_query("abc").tolist() == pytest.approx(_word_vector("abc"))
    assert [v.tolist() for v in single.embed_sources(["a", "cc"])] == [_word_vector("a"), _word_vector("cc")]


def test_embedder_without_any_method_and_bad_fields() -> None:
    class Nothing(lookalike.embeddings.base.BaseEmbeddingFunction):
        pass

    with pytest.raises(lookalike.LookalikeError, match="neither embed_texts nor get_query_embedding"):
        Nothing(dimensions=3).embed_query("x")
    for bad in ("provider", "_secret"):
        with pytest.raises(ConfigurationError, match=repr(bad)):
            lookalike.embeddings.base.BaseEmbeddingFunction(dimensions=3, **{bad: 1})


def test_whole_failed_batch_names_its_items(client: lookalike.Client) -> None:
    ef = LetterEmbedder()

    class Note(TableModel, table=True):
        __tablename__ = "compat_fail"
        id: int = Field(primary_key=True)
        body: str = Field()
        vec: list[float] | None = ef.VectorField(source_field="body", source_type="text")

    table = client.create_table(schema=Note, if_exists="overwrite")
    result = table.bulk_insert([{"body": "aa"}, {"body": "boom"}, {"body": "cc"}], on_error="skip")
    assert [f.index for f in result.failed] == [1]  # isolated: the other two were written
    assert "boom" in result.failed[0].item and "None" not in str(result.failed[0].error)
    assert table.rows() == 2


def test_whole_failed_remote_request_names_its_items(client: lookalike.Client) -> None:
    from tests.stub_providers import Fault

    with StubProvider("jina") as stub:
        ef = EmbeddingFunction(
            "jina_ai/jina-embeddings-v3", api_key=KEY, api_base=stub.api_base, max_retries=0, dimensions=32
        )

        class Note(TableModel, table=True):
            __tablename__ = "compat_remote_fail"
            id: int = Field(primary_key=True)
            body: str = Field()
            vec: list[float] | None = ef.VectorField(source_field="body", source_type="text")

        table = client.create_table(schema=Note, if_exists="overwrite")
        stub.script(*[Fault.http(500)] * 10)
        with pytest.raises(lookalike.errors.BulkInsertError) as info:
            table.bulk_insert([{"body": "first"}, {"body": "second"}, {"body": "third"}])
        text = str(info.value)
        assert "item 0 (first)" in text and "whole request failed" in text
        assert "first, second, third" in text and "(None)" not in text
        assert KEY not in text


def test_configure_embedding_provider_keeps_the_key_in_memory(
    client: lookalike.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("JINA_API_KEY", "JINA_AI_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    with StubProvider("jina") as stub:
        ef = EmbeddingFunction("jina_ai/jina-embeddings-v3", api_base=stub.api_base, dimensions=32)
        try:
            client.configure_embedding_provider(provider="jina_ai", api_key=KEY)
            assert ef.embed_query("hello").shape == (32,)

            class Note(TableModel, table=True):
                __tablename__ = "compat_keyed"
                id: int = Field(primary_key=True)
                body: str = Field()
                vec: list[float] | None = ef.VectorField(source_field="body", source_type="text")

            table = client.create_table(schema=Note, if_exists="overwrite")
            table.insert({"body": "hi"})
            # what a table stores: the variable's name, never the key
            assert KEY not in repr(ef.config()) and ef.config()["options"]["api_key_env"] == "JINA_API_KEY"
        finally:
            client.configure_embedding_provider("jina", None)
        with pytest.raises(AuthenticationError):
            ef.embed_query("hello")
    with pytest.raises(ConfigurationError, match="unknown embedding provider 'nope'"):
        client.configure_embedding_provider("nope", KEY)
    with pytest.raises(ConfigurationError, match="runs locally"):
        client.configure_embedding_provider("local", KEY)
    with pytest.raises(ConfigurationError, match="non-empty string"):
        client.configure_embedding_provider("jina_ai", "  ")
    with pytest.raises(ConfigurationError, match="non-empty string") as info:
        client.configure_embedding_provider("jina_ai", 987654)  # type: ignore[arg-type]
    assert "987654" not in str(info.value)  # a mistyped key is never echoed


# ---------------------------------------------------------------------------------- 5. open_table


def test_tidbclient_returns_none_for_a_missing_table(client: lookalike.Client) -> None:
    """pytidb's class name keeps pytidb's default; lookalike's own Client raises."""
    pytidb_style = lookalike.TiDBClient(client.engine)
    assert isinstance(pytidb_style, lookalike.Client)
    assert pytidb_style.open_table("no_such_table") is None
    with pytest.raises(lookalike.errors.TableNotFoundError):
        pytidb_style.open_table("no_such_table", if_missing="raise")
    _vector_table(client)
    assert pytidb_style.open_table("compat_vec") is not None


def test_open_table_missing_raises_or_returns_none(client: lookalike.Client) -> None:
    with pytest.raises(lookalike.errors.TableNotFoundError, match="no_such_table"):
        client.open_table("no_such_table")
    assert client.open_table("no_such_table", if_missing="none") is None
    with pytest.raises(ConfigurationError, match="if_missing"):
        client.open_table("no_such_table", if_missing="skip")  # type: ignore[call-overload]
    _vector_table(client)
    assert client.open_table("compat_vec", if_missing="none") is not None
    client.open_table_if_missing = "none"  # a client running pytidb code
    try:
        assert client.open_table("no_such_table") is None
        opened = client.open_table("compat_vec")
        assert opened is not None and opened.search([1.0, 0.0, 0.0]).limit(1).to_list()[0]["id"] == 1
        with pytest.raises(lookalike.errors.TableNotFoundError):
            client.open_table("no_such_table", if_missing="raise")
    finally:
        client.open_table_if_missing = "raise"
