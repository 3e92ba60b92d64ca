"""Full-text search (issue 13, part 1): FullTextField / FullTextIndex, create_fts_index, and
``search(..., search_type="fulltext")`` on the embedded engine (FTS5) and PostgreSQL (tsvector + GIN).

Rankings are checked against a reference computation: on SQLite a Python BM25 with FTS5's own
constants gives the same scores; on PostgreSQL the rows found are those holding any query word.
TiDB's SQL is checked compiled (tests/test_tidb_sql.py style); it runs live with LOOKALIKE_TIDB_URL.
"""

from __future__ import annotations

import json
import math
import random
import re
from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import lookalike
from lookalike import (
    ConfigurationError,
    EngineError,
    Field,
    FullTextField,
    FullTextIndex,
    SchemaError,
    TableModel,
    TextSearch,
)
from lookalike.engines import sqlite_fts
from lookalike.engines.base import TextSearchRequest, query_words
from lookalike.engines.tidb import TiDBEngine
from lookalike.filters import compile_filter
from lookalike.schema import TableSpec

VOCAB = ["red", "blue", "leather", "boots", "cat", "dog", "beach", "and", "near", "not", "or", "sea", "hat"]
SYNTAX = [
    '"',
    "*",
    "NEAR",
    "AND",
    "OR",
    "NOT",
    "(",
    ")",
    ":",
    "-",
    "^",
    "+",
    "'",
    '"red',
    "NEAR(",
    "caption:",
]


def make_model(name: str = "items", *, language: str | None = None) -> type[TableModel]:
    class Item(TableModel):
        __tablename__ = name
        id: int | None = Field(default=None, primary_key=True)
        caption: str | None = FullTextField(default=None, language=language)
        n: int = Field(default=0)

    return Item


def captions(count: int, seed: int = 7) -> list[str | None]:
    rng = random.Random(seed)
    out: list[str | None] = []
    for i in range(count):
        if i % 11 == 5:
            out.append(None)  # rows without text are never found, and don't break the index
        else:
            out.append(" ".join(rng.choice(VOCAB) for _ in range(rng.randint(1, 6))))
    return out


def words_of(text: str | None) -> list[str]:
    return re.findall(r"[a-z0-9]+", (text or "").lower())


def reference_bm25(docs: dict[int, str | None], query: str) -> dict[int, float]:
    """FTS5's bm25() (k1 = 1.2, b = 0.75, idf floored at 1e-6), negated: rows holding any word."""
    terms = [w.lower() for w in query_words(query)]
    tokens = {i: words_of(t) for i, t in docs.items()}
    n_rows = len(tokens)
    avgdl = sum(len(t) for t in tokens.values()) / n_rows
    scores: dict[int, float] = {}
    for term in terms:
        hits = sum(1 for t in tokens.values() if term in t)
        idf = math.log((n_rows - hits + 0.5) / (hits + 0.5))
        idf = idf if idf > 0 else 1e-6
        for i, t in tokens.items():
            tf = t.count(term)
            if tf:
                part = idf * tf * 2.2 / (tf + 1.2 * (1 - 0.75 + 0.75 * len(t) / avgdl))
                scores[i] = scores.get(i, 0.0) + part
    return scores


def fill(client: lookalike.Client, texts: list[str | None], **kw: object) -> lookalike.Table:
    table = client.create_table(schema=make_model(**kw), if_exists="overwrite")  # type: ignore[arg-type]
    table.bulk_insert([{"caption": t, "n": i % 3} for i, t in enumerate(texts)])
    return table


def ids(rows: list[dict]) -> list[int]:
    return [r["id"] for r in rows]


# ---------------------------------------------------------------------- every engine


def test_ranked_search_finds_any_word_best_first(client: lookalike.Client) -> None:
    table = fill(client, ["red leather boots", "blue boots", "a red hat", "sea", None, "boots boots boots"])
    rows = table.search("red leather boots", search_type="fulltext").text_column("caption").to_list()
    assert set(ids(rows)) == {1, 2, 3, 6}  # OR semantics: any word
    assert ids(rows)[0] == 1  # all three words
    assert [r["_score"] for r in rows] == sorted((r["_score"] for r in rows), reverse=True)
    assert all("_distance" not in r and r["_score"] > 0 for r in rows)
    assert set(rows[0]) == {"id", "caption", "n", "_score", "_match_score"}


def test_filter_limit_select_and_conversions(client: lookalike.Client) -> None:
    table = fill(client, ["red boots"] * 9)
    search = table.search("boots", search_type="fulltext")
    assert len(search.limit(4).to_list()) == 4
    filtered = search.filter({"n": 1}).limit(100).to_list()
    assert ids(filtered) == [2, 5, 8] and all(r["n"] == 1 for r in filtered)
    picked = search.select("id").limit(2).to_list()
    assert [set(r) for r in picked] == [{"id", "_score", "_match_score"}] * 2
    models = search.limit(2).to_pydantic()
    assert models[0].caption == "red boots"
    assert len(search.limit(3).to_rows()) == 3
    assert isinstance(search, TextSearch)


def test_query_syntax_characters_are_words(client: lookalike.Client) -> None:
    table = fill(client, ["salt and pepper", "near the sea", "red boots", "not this one", "hat"])
    for query, expect in [
        ("AND", {1}),
        ("NEAR(", {2}),
        ('"red', {3}),
        ('boots"', {3}),
        ("NOT", {4}),
        ("(hat) OR", {5}),
        ("-hat*", {5}),
        ("caption:hat", {5}),
        ("^sea +red", {2, 3}),
        ("'salt'", {1}),
    ]:
        rows = table.search(query, search_type="fulltext").limit(10).to_list()
        assert set(ids(rows)) == expect, query


@pytest.mark.parametrize("query", ["", "   ", '"*()', "- : ^", "___"])
def test_query_without_words_is_refused(client: lookalike.Client, query: str) -> None:
    table = fill(client, ["red boots"])
    with pytest.raises(ConfigurationError, match="no words"):
        table.search(query, search_type="fulltext").to_list()


def test_raw_query_uses_engine_syntax_and_reports_its_errors(client: lookalike.Client) -> None:
    if client.engine.name == "tidb":
        pytest.skip("TiDB's FTS_MATCH_WORD has no operator syntax to test")
    table = fill(client, ["red leather boots", "blue boots", "red hat"])
    engine = client.engine.name
    raw = "red NOT hat" if engine == "sqlite" else "red & !hat"
    assert ids(table.search(raw, search_type="fulltext").raw().to_list()) == [1]
    assert set(ids(table.search(raw, search_type="fulltext").to_list())) == {1, 3}  # as words: red, hat
    with pytest.raises(ConfigurationError, match="raw full-text query"):
        table.search("AND (", search_type="fulltext").raw().to_list()
    with pytest.raises(ConfigurationError, match="must not be empty"):
        table.search("  ", search_type="fulltext").raw().to_list()
    assert ids(table.search("hat", search_type="fulltext").to_list()) == [3]  # usable afterwards


def test_writes_keep_the_index_in_step(client: lookalike.Client) -> None:
    table = fill(client, ["red boots", "blue hat"])
    table.insert({"caption": "green boots"})
    table.update({"caption": "blue sea"}, {"id": 1})
    found = ids(table.search("boots", search_type="fulltext").to_list())
    assert found == [3]
    assert set(ids(table.search("blue", search_type="fulltext").to_list())) == {1, 2}
    table.delete({"id": 2})
    assert ids(table.search("blue hat", search_type="fulltext").to_list()) == [1]
    table.truncate()
    assert table.search("blue boots sea", search_type="fulltext").to_list() == []
    table.insert({"caption": "boots again"})
    assert [r["caption"] for r in table.search("boots", search_type="fulltext").to_list()] == ["boots again"]
    client.drop_table("items")
    again = fill(client, ["boots"])  # a re-created table starts with a fresh index
    assert [r["caption"] for r in again.search("boots", search_type="fulltext").to_list()] == ["boots"]


def test_index_built_later_covers_existing_rows_and_is_stored(
    client: lookalike.Client, engine_url: str
) -> None:
    class Plain(TableModel):
        __tablename__ = "plain"
        id: int | None = Field(default=None, primary_key=True)
        caption: str | None = Field(default=None)
        other: str | None = Field(default=None)

    table = client.create_table(schema=Plain, if_exists="overwrite")
    table.bulk_insert([{"caption": "red boots", "other": "x"}, {"caption": "blue hat", "other": "y"}])
    assert not table.has_fts_index("caption")
    with pytest.raises(SchemaError, match="no full-text column"):
        table.search("boots", search_type="fulltext").to_list()
    table.create_fts_index("caption")
    assert table.has_fts_index("caption")
    table.create_fts_index("caption")  # skip_existing: a no-op
    assert ids(table.search("boots", search_type="fulltext").to_list()) == [1]
    with pytest.raises(SchemaError, match="no full-text index"):
        table.search("x", search_type="fulltext").text_column("other").to_list()
    other = lookalike.connect(engine_url)  # another client reads the mark from the catalogue
    try:
        reopened = other.open_table("plain")
        assert list(reopened.spec.fulltext) == ["caption"]
        reopened.insert({"caption": "boots too"})
        assert ids(reopened.search("boots", search_type="fulltext").to_list()) == [1, 3]
    finally:
        other.close()
    table.create_fts_index("other")
    with pytest.raises(SchemaError, match="more than one full-text column"):
        table.search("x", search_type="fulltext").to_list()
    assert ids(table.search("y", search_type="fulltext").text_column("other").to_list()) == [2]


def test_bad_index_requests(client: lookalike.Client) -> None:
    table = fill(client, ["red boots"])
    with pytest.raises(SchemaError, match="not a column"):
        table.create_fts_index("nope")
    with pytest.raises(SchemaError, match="does not hold text"):
        table.create_fts_index("n")
    if client.engine.name != "tidb":  # TiDB has no language setting to refuse
        with pytest.raises(ConfigurationError):
            table.create_fts_index("caption", language="klingon", skip_existing=False)
    with pytest.raises(ConfigurationError, match="language must be a name"):
        table.create_fts_index("caption", language="english'; drop table x; --", skip_existing=False)
    with pytest.raises(SchemaError, match="not a column"):
        table.search("x", search_type="fulltext").text_column("nope")
    with pytest.raises(ConfigurationError, match="must be text"):
        table.search(b"bytes", search_type="fulltext")
    with pytest.raises(ConfigurationError, match="one text"):
        table.search("x", search_type="fulltext", vector=[1.0])
    with pytest.raises(ConfigurationError, match="limit"):
        table.search("x", search_type="fulltext").limit(0)
    assert ids(table.search("boots", search_type="fulltext").to_list()) == [1]  # still searchable


def test_english_stemming(client: lookalike.Client) -> None:
    if client.engine.name == "tidb":
        pytest.skip("TiDB's analyzers pick their language themselves")
    table = fill(client, ["running boots", "a boot", "hats"], language="english")
    assert set(ids(table.search("boot run", search_type="fulltext").to_list())) == {1, 2}
    assert ids(table.search("hat", search_type="fulltext").to_list()) == [3]
    plain = fill(client, ["running boots", "a boot"])
    assert ids(plain.search("boot", search_type="fulltext").to_list()) == [2]


def test_fulltext_index_in_table_args(client: lookalike.Client) -> None:
    class Note(TableModel):
        __tablename__ = "notes"
        __table_args__ = (FullTextIndex("fts_body", "body"),)
        id: int | None = Field(default=None, primary_key=True)
        body: str | None = Field(default=None)

    table = client.create_table(schema=Note, if_exists="overwrite")
    assert table.has_fts_index("body")
    assert not Note.__table__.indexes  # type: ignore[attr-defined]  # no plain SQL index over the text
    table.insert({"body": "leather boots"})
    assert ids(table.search("boots", search_type="fulltext").to_list()) == [1]


def test_matches_are_the_rows_with_any_query_word(client: lookalike.Client) -> None:
    texts = captions(120)
    table = fill(client, texts)
    rng = random.Random(3)
    for _ in range(12):
        query = " ".join(rng.choice(VOCAB + SYNTAX) for _ in range(rng.randint(1, 4)))
        terms = {w.lower() for w in query_words(query)}
        if not terms:
            continue
        expect = {i + 1 for i, t in enumerate(texts) if terms & set(words_of(t))}
        rows = table.search(query, search_type="fulltext").limit(500).to_list()
        assert set(ids(rows)) == expect, query
        assert [r["_score"] for r in rows] == sorted((r["_score"] for r in rows), reverse=True)


# ---------------------------------------------------------------------- the embedded engine


@pytest.fixture(scope="module")
def bm25_table(tmp_path_factory: pytest.TempPathFactory) -> lookalike.Table:
    client = lookalike.connect(tmp_path_factory.mktemp("bm25") / "t.db")
    return fill(client, captions(200, seed=11))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.sampled_from(VOCAB + SYNTAX), min_size=1, max_size=5))
def test_sqlite_scores_are_fts5_bm25(bm25_table: lookalike.Table, parts: list[str]) -> None:
    query = " ".join(parts)
    if not query_words(query):
        return
    docs = {i + 1: t for i, t in enumerate(captions(200, seed=11))}
    expect = reference_bm25(docs, query)
    rows = bm25_table.search(query, search_type="fulltext").limit(300).to_list()
    assert {r["id"] for r in rows} == set(expect)
    for row in rows:
        assert row["_score"] == pytest.approx(expect[row["id"]], rel=1e-6, abs=1e-9)


def common_captions(count: int, seed: int) -> list[str | None]:
    """Captions where "the" is in about 3 rows of 4 (FTS5 floors its IDF) and "and" in about 2 of 5."""
    rng = random.Random(seed)
    out: list[str | None] = []
    for i in range(count):
        if i % 13 == 7:
            out.append(None)
            continue
        words = [rng.choice(VOCAB) for _ in range(rng.randint(1, 4))]
        words += ["the"] * (rng.random() < 0.75) + ["and"] * (rng.random() < 0.25)
        rng.shuffle(words)
        out.append(" ".join(words))
    return out


@pytest.fixture(scope="module")
def common_table(tmp_path_factory: pytest.TempPathFactory) -> lookalike.Table:
    client = lookalike.connect(tmp_path_factory.mktemp("common") / "t.db")
    return fill(client, common_captions(300, seed=5))


def full_query(table: lookalike.Table, query: str, limit: int) -> list[dict]:
    """The same words ORed, given raw: the full query, which never takes the shortcut."""
    raw = sqlite_fts.fts5_match_query(query)
    return table.search(raw, search_type="fulltext").raw().limit(limit).to_list()


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(st.sampled_from([*VOCAB, "the", "the", "and"]), min_size=1, max_size=4),
    st.sampled_from([1, 3, 10, 40, 400]),
    st.sampled_from([None, {"n": 1}]),
)
def test_sqlite_common_words_shortcut_gives_the_full_answer(
    common_table: lookalike.Table, parts: list[str], limit: int, where: dict | None
) -> None:
    query = " ".join(parts)
    search = common_table.search(query, search_type="fulltext").limit(limit)
    rows = (search if where is None else search.filter(where)).to_list()
    full = common_table.search(sqlite_fts.fts5_match_query(query), search_type="fulltext").raw()
    assert rows == (full if where is None else full.filter(where)).limit(limit).to_list()  # same floats
    docs = {i + 1: t for i, t in enumerate(common_captions(300, seed=5))}
    reference = reference_bm25(docs, query)
    if where is not None:
        reference = {i: v for i, v in reference.items() if (i - 1) % 3 == 1}
    best = sorted(reference.values(), reverse=True)[:limit]
    assert [r["_score"] for r in rows] == pytest.approx(best, rel=1e-9)


def test_sqlite_shortcut_runs_and_counts_words(common_table: lookalike.Table) -> None:
    fts = common_table.database.engine.fts  # type: ignore[attr-defined]
    spec = common_table.spec
    texts = common_captions(300, seed=5)
    with common_table.database.connection(write=False) as conn:
        counts = fts.word_counts(conn, spec, "caption", ["the", "and", "red", "zebra"])
        assert counts.rows == 300  # rows without text count too, as bm25() counts them
        assert counts.tokens == sum(len(words_of(t)) for t in texts)
        for word in ("the", "and", "red", "zebra"):
            assert counts.hits[word] == sum(word in words_of(t) for t in texts)
        assert sqlite_fts.fts5_idf(300, counts.hits["the"]) == 1e-6  # in more than half the rows
        assert sqlite_fts.fts5_idf(300, counts.hits["and"]) < sqlite_fts.COMMON_IDF
        assert sqlite_fts.fts5_idf(300, counts.hits["red"]) > sqlite_fts.COMMON_IDF
        for query, limit, taken in [
            ("red the", 5, True),  # a rarer word and a common one: the shortcut answers
            ("the red", 1, True),
            ("the and", 5, True),  # common words only: the floored one is left out
            ("the", 5, False),  # nothing to leave out
            ("red cat", 5, False),  # no common word
            ("zebra the", 5, False),  # the rarer word finds too few rows
            ("red the", 250, False),
        ]:
            request = TextSearchRequest(column="caption", query=query, limit=limit, columns=["id"])
            found = fts.rare_words_search(conn, spec, request, ["id"])
            assert (found is not None) is taken, query
            if found is not None:
                assert found == [
                    {"id": r["id"], "_score": r["_score"]} for r in full_query(common_table, query, limit)
                ]
    assert sqlite_fts.fts5_idf(6, 3) == 1e-6 and sqlite_fts.fts5_idf(7, 3) > 0.1
    rows = common_table.search("the", search_type="fulltext").limit(500).to_list()
    assert len(rows) == counts.hits["the"]  # a query of common words only still finds its rows


def test_sqlite_word_counts_follow_writes(tmp_path: Path) -> None:
    path = tmp_path / "counts.db"
    client = lookalike.connect(path)
    table = fill(client, ["red boots", "blue hat", "sea", "red sea"])
    fts = client.engine.fts  # type: ignore[attr-defined]
    name = fts.index_name("items", "caption")

    def hits(word: str) -> tuple[int, int]:
        with table.database.connection(write=False) as conn:
            counts = fts.word_counts(conn, table.spec, "caption", [word])
        return counts.rows, counts.hits[word]

    assert hits("hat") == (4, 1)
    assert fts._counts[name].hits == {"hat": 1}  # cached
    table.bulk_insert([{"caption": "hat"}] * 4)  # now "hat" is in 5 of 8 rows: a common word
    assert hits("hat") == (8, 5)
    other = lookalike.connect(path)  # a write from another connection (or process)
    try:
        other.open_table("items").delete({"caption": "hat"})
    finally:
        other.close()
    assert hits("hat") == (4, 1)
    rows = table.search("hat sea", search_type="fulltext").limit(1).to_list()
    assert rows == full_query(table, "hat sea", 1) and rows[0]["caption"] == "blue hat"
    table.truncate()
    assert hits("hat") == (0, 0)
    with client.session():  # inside a write transaction the full query runs, uncached
        table.bulk_insert([{"caption": "the cat"}, {"caption": "the dog"}, {"caption": "a cat"}])
        found = table.search("the cat", search_type="fulltext").limit(1).to_list()
        assert found[0]["caption"] == "the cat"
    client.close()


def test_sqlite_accents_fold(sqlite_client: lookalike.Client) -> None:
    table = fill(sqlite_client, ["Café crème", "Ångström units", "cafe"])
    assert set(ids(table.search("cafe", search_type="fulltext").to_list())) == {1, 3}
    assert ids(table.search("ANGSTROM", search_type="fulltext").to_list()) == [2]


def test_sqlite_index_tables_are_private_and_dropped(sqlite_client: lookalike.Client, tmp_path: Path) -> None:
    fill(sqlite_client, ["red boots"])
    assert sqlite_client.list_tables() == ["items"]
    names = sqlite_client.query("SELECT name FROM sqlite_master").to_list()
    assert any(n["name"].startswith("_lookalike_fts_5_items_caption") for n in names)
    sqlite_client.drop_table("items")
    left = [r["name"] for r in sqlite_client.query("SELECT name FROM sqlite_master").to_list()]
    assert not [n for n in left if n.startswith("_lookalike_fts")]


def test_sqlite_names_cannot_collide() -> None:
    assert sqlite_fts.SQLiteFullText.index_name("a_b", "c") != sqlite_fts.SQLiteFullText.index_name(
        "a", "b_c"
    )


def test_sqlite_writer_in_another_connection_is_indexed(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    first = lookalike.connect(path)
    table = fill(first, ["red boots"])
    second = lookalike.connect(path)
    try:
        second.open_table("items").insert({"caption": "more boots"})
        second.execute("UPDATE items SET caption = 'sea' WHERE id = 1")  # raw SQL: triggers still fire
    finally:
        second.close()
    assert ids(table.search("boots", search_type="fulltext").to_list()) == [2]
    assert ids(table.search("sea", search_type="fulltext").to_list()) == [1]
    first.close()


def test_sqlite_without_fts5_says_so(
    sqlite_client: lookalike.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_fts, "fts5_available", lambda: False)
    with pytest.raises(EngineError, match="built without it"):
        fill(sqlite_client, ["red boots"])
    assert "items" not in sqlite_client.list_tables()  # the whole create_table rolled back


def test_sqlite_fts5_probe_and_language_errors(sqlite_client: lookalike.Client) -> None:
    assert sqlite_fts.fts5_available() is True
    table = fill(sqlite_client, ["red boots"])
    with pytest.raises(ConfigurationError, match="knows the languages"):
        table.create_fts_index("caption", language="german", skip_existing=False)


def test_old_catalogue_without_fulltext_still_opens(sqlite_client: lookalike.Client) -> None:
    class Old(TableModel):
        __tablename__ = "old"
        id: int | None = Field(default=None, primary_key=True)
        caption: str | None = Field(default=None)

    sqlite_client.create_table(schema=Old)
    desc = TableSpec.from_model(Old).describe()
    assert desc["version"] == 2 and desc["fulltext"] == {}
    desc["version"] = 1
    del desc["fulltext"]
    sqlite_client.execute(
        "UPDATE _lookalike_tables SET description = :d WHERE name = 'old'", {"d": json.dumps(desc)}
    )
    other = lookalike.connect(sqlite_client.engine.path)  # type: ignore[attr-defined]
    try:
        table = other.open_table("old")
        assert table.spec.fulltext == {}
        table.create_fts_index("caption")
        stored = json.loads(
            other.query("SELECT description FROM _lookalike_tables WHERE name = 'old'").scalar()
        )
        assert stored["version"] == 2 and stored["fulltext"]["caption"]["index"] is True
    finally:
        other.close()


def test_fulltext_field_arguments() -> None:
    with pytest.raises(ConfigurationError, match="parser"):
        FullTextField(fts_parser="KLINGON")
    with pytest.raises(ConfigurationError, match="language"):
        FullTextField(language="en glish")

    class Unindexed(TableModel):
        __tablename__ = "unindexed"
        id: int | None = Field(default=None, primary_key=True)
        body: str | None = FullTextField(index=False, fts_parser="standard", default=None)

    spec = TableSpec.from_model(Unindexed)
    assert spec.fulltext["body"].index is False and spec.fulltext["body"].parser == "STANDARD"
    with pytest.raises(SchemaError, match="must hold text"):

        class Wrong(TableModel):
            __tablename__ = "wrong"
            id: int | None = Field(default=None, primary_key=True)
            n: int | None = FullTextField(default=None, sa_type=sa.Integer)

        TableSpec.from_model(Wrong)


def test_unindexed_field_is_built_on_request(sqlite_client: lookalike.Client) -> None:
    class Later(TableModel):
        __tablename__ = "later"
        id: int | None = Field(default=None, primary_key=True)
        body: str | None = FullTextField(index=False, default=None)

    table = sqlite_client.create_table(schema=Later)
    table.insert({"body": "red boots"})
    assert not table.has_fts_index("body")
    with pytest.raises(SchemaError, match="create_fts_index"):
        table.search("boots", search_type="fulltext").to_list()
    table.create_fts_index("body")
    assert ids(table.search("boots", search_type="fulltext").to_list()) == [1]


def test_query_words() -> None:
    assert query_words('"Red" NEAR(red, boots*) x_y -é') == ["Red", "NEAR", "boots", "x", "y", "é"]
    assert sqlite_fts.fts5_match_query('a "b" AND') == '"a" OR "b" OR "AND"'
    assert query_words("?!") == []


# ---------------------------------------------------------------------- PostgreSQL specifics


def test_postgres_uses_the_gin_index(client: lookalike.Client) -> None:
    if client.engine.name != "postgresql":
        pytest.skip("PostgreSQL only")
    table = fill(client, captions(50))
    engine = client.engine
    request = TextSearchRequest(column="caption", query="red boots", limit=5, columns=["id"])
    stmt = engine.text_search_statement(table.spec, request)  # type: ignore[attr-defined]
    sql = str(stmt.compile(dialect=engine.sa_engine.dialect, compile_kwargs={"literal_binds": True}))
    with table.database.connection(write=False) as conn:
        conn.exec_driver_sql("SET LOCAL enable_seqscan = off")  # a 50-row table is otherwise scanned
        plan = "\n".join(r[0] for r in conn.exec_driver_sql("EXPLAIN " + sql))
    assert "items_caption_fts" in plan


# ---------------------------------------------------------------------- TiDB, compiled


@pytest.fixture
def tidb() -> TiDBEngine:
    # create_engine never connects by itself: everything here is compilation only
    return TiDBEngine(sa.create_engine("mysql+pymysql://root@tidb.local:4000/test"))


def compiled(engine: TiDBEngine, stmt: object) -> str:
    text = str(stmt.compile(dialect=engine.sa_engine.dialect, compile_kwargs={"literal_binds": True}))  # type: ignore[attr-defined]
    return " ".join(text.split())


def test_tidb_index_ddl(tidb: TiDBEngine) -> None:
    spec = TableSpec.from_model(make_model("docs"))
    assert tidb.fts_index_ddl(spec, "caption") == (
        "ALTER TABLE docs ADD FULLTEXT INDEX fts_idx_caption (caption) WITH PARSER MULTILINGUAL "
        "ADD_COLUMNAR_REPLICA_ON_DEMAND"
    )

    class Standard(TableModel):
        __tablename__ = "std"
        id: int | None = Field(default=None, primary_key=True)
        body: str | None = FullTextField(default=None, fts_parser="STANDARD")

    assert "WITH PARSER STANDARD" in tidb.fts_index_ddl(TableSpec.from_model(Standard), "body")


def test_tidb_search_sql_sends_words_as_one_bound_string(tidb: TiDBEngine) -> None:
    spec = TableSpec.from_model(make_model("docs"))
    where = compile_filter({"n": {"$gt": 1}}, spec.sa_table, json_contains=tidb.json_contains)
    request = TextSearchRequest(
        column="caption", query="red \"leather' NEAR(boots*", limit=5, where=where, columns=["id", "caption"]
    )
    stmt = tidb.text_search_statement(spec, request)
    assert compiled(tidb, stmt) == (
        "SELECT docs.id, docs.caption, FTS_MATCH_WORD('red leather NEAR boots', docs.caption) AS _score "
        "FROM docs WHERE FTS_MATCH_WORD('red leather NEAR boots', docs.caption) AND docs.n > 1 "
        "ORDER BY FTS_MATCH_WORD('red leather NEAR boots', docs.caption) DESC, docs.id LIMIT 5"
    )
    # the text travels as a parameter, never inside the SQL text
    plain = str(stmt.compile(dialect=tidb.sa_engine.dialect))
    assert "leather" not in plain and "FTS_MATCH_WORD(%(fts_query)s, docs.caption)" in plain
    raw = tidb.text_search_statement(spec, TextSearchRequest("caption", 'it\'s "raw"', 3, raw=True))
    assert "FTS_MATCH_WORD('it''s \"raw\"', docs.caption)" in compiled(tidb, raw)
