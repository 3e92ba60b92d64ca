"""Hybrid search (issue 13, part 2) on real tables, every engine: the fused order equals a reference
fusion computed here from the two searches' own lists, with filters, limits, pools and select; and
every bad input (no text column, bad fusion arguments, a query without words)."""

from __future__ import annotations

import itertools
import random
from typing import Any

import numpy as np
import pytest

import lookalike
from lookalike import ConfigurationError, Field, FullTextField, HybridSearch, SchemaError, TableModel
from lookalike.hybrid import hybrid_pool
from tests.toy_embedder import ToyEmbedder

VOCAB = ["leather", "boots", "cat", "dog", "beach", "sea", "hat", "old", "town", "night", "snow", "tree"]
QUERY = "leather boots on the beach"


def make_table(client: lookalike.Client, toy: ToyEmbedder, rows: int = 70) -> lookalike.Table:
    class Item(TableModel):
        __tablename__ = "hybrid_items"
        id: int | None = Field(default=None, primary_key=True)
        caption: str | None = FullTextField(default=None)
        album: str = Field(default="a")
        vec: list[float] | None = toy.VectorField(source_field="caption", source_type="text")

    table = client.create_table(schema=Item, if_exists="overwrite")
    rng = random.Random(13)
    items = []
    for i in range(rows):
        words = [rng.choice(VOCAB) for _ in range(rng.randint(2, 6))]
        items.append({"caption": " ".join(words) + f" n{i}", "album": "ab"[i % 2]})
    table.bulk_insert(items)
    return table


def rrf_reference(vec_ids: list[int], txt_ids: list[int], k: float) -> list[tuple[int, float]]:
    scores: dict[int, float] = {}
    for ids in (vec_ids, txt_ids):
        for rank, i in enumerate(ids, start=1):
            scores[i] = scores.get(i, 0.0) + 1.0 / (k + rank)
    return sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))


def weighted_reference(
    vec: list[dict[str, Any]], txt: list[dict[str, Any]], vw: float, tw: float
) -> list[tuple[int, float]]:
    def minmax(values: np.ndarray) -> np.ndarray:
        span = values.max() - values.min() if len(values) else 0.0
        return np.ones(len(values)) if span == 0 else (values - values.min()) / span

    scores: dict[int, float] = {}
    v = minmax(-np.array([r["_distance"] for r in vec], dtype=float))
    t = minmax(np.array([r["_score"] for r in txt], dtype=float))
    for row, s in zip(vec, v):
        scores[row["id"]] = vw * float(s)
    for row, s in zip(txt, t):
        scores[row["id"]] = scores.get(row["id"], 0.0) + tw * float(s)
    return sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))


def both_lists(table: lookalike.Table, limit: int, filters: Any = None) -> tuple[list[dict], list[dict]]:
    vs = table.search(text=QUERY).limit(hybrid_pool(limit))
    ts = table.search(QUERY, search_type="fulltext").text_column("caption").limit(hybrid_pool(limit))
    if filters is not None:
        vs, ts = vs.filter(filters), ts.filter(filters)
    return vs.to_list(), ts.to_list()


def test_vector_side_is_the_exact_nearest(client: lookalike.Client, toy: ToyEmbedder) -> None:
    table = make_table(client, toy)
    vec, _ = both_lists(table, 5)
    captions = {r["id"]: r["caption"] for r in table.query().to_list()}
    q = toy.embed_texts([QUERY], purpose="query")[0]
    emb = toy.embed_texts(list(captions.values()), purpose="document")
    dist = 1 - emb @ q
    expected = [i for _, i in sorted(zip(dist.tolist(), captions))][: len(vec)]
    assert [r["id"] for r in vec] == expected


@pytest.mark.parametrize("limit", [1, 5, 12])
def test_rrf_equals_reference(client: lookalike.Client, toy: ToyEmbedder, limit: int) -> None:
    table = make_table(client, toy)
    vec, txt = both_lists(table, limit)
    expected = rrf_reference([r["id"] for r in vec], [r["id"] for r in txt], 60)[:limit]
    rows = table.search(QUERY, search_type="hybrid").text_column("caption").limit(limit).to_list()
    assert [r["id"] for r in rows] == [i for i, _ in expected]
    assert [r["_score"] for r in rows] == pytest.approx([s for _, s in expected], rel=1e-12)
    by_id_v = {r["id"]: r["_distance"] for r in vec}
    by_id_t = {r["id"]: r["_score"] for r in txt}
    for row in rows:
        assert row["_distance"] == pytest.approx(by_id_v.get(row["id"]))
        assert row["_match_score"] == pytest.approx(by_id_t.get(row["id"]))
        assert row["caption"] and "vec" not in row


def test_rrf_k_filter_and_select(client: lookalike.Client, toy: ToyEmbedder) -> None:
    table = make_table(client, toy)
    vec, txt = both_lists(table, 4, {"album": "b"})
    expected = rrf_reference([r["id"] for r in vec], [r["id"] for r in txt], 5)[:4]
    search = (
        table.search(QUERY, search_type="hybrid")
        .fusion("rrf", k=5)
        .filter({"album": "b"})
        .select("album")
        .limit(4)
    )
    rows = search.to_list()
    assert [r["_score"] for r in rows] == pytest.approx([s for _, s in expected], rel=1e-12)
    assert all(set(r) == {"album", "_score", "_distance", "_match_score"} for r in rows)
    assert all(r["album"] == "b" for r in rows)
    # the same search keeping the key tells the rows apart: the reference's order
    assert [r["id"] for r in search.select("id", "album").to_list()] == [i for i, _ in expected]


@pytest.mark.parametrize(("vw", "tw"), [(0.5, 0.5), (0.8, 0.2), (0.0, 1.0), (2.0, 0.0)])
def test_weighted_equals_reference(client: lookalike.Client, toy: ToyEmbedder, vw: float, tw: float) -> None:
    table = make_table(client, toy)
    vec, txt = both_lists(table, 6)
    expected = weighted_reference(vec, txt, vw, tw)[:6]
    rows = (
        table.search(QUERY, search_type="hybrid")
        .fusion("weighted", vs_weight=vw, fts_weight=tw)
        .limit(6)
        .to_list()
    )
    assert [r["_score"] for r in rows] == pytest.approx([s for _, s in expected], rel=1e-6, abs=1e-9)
    # rows whose reference scores differ clearly come in the reference's order
    ref = dict(expected)
    for a, b in itertools.pairwise(rows):
        if abs(ref.get(a["id"], 0) - ref.get(b["id"], 0)) > 1e-6:
            assert ref[a["id"]] > ref[b["id"]]


def test_text_and_vector_forms(client: lookalike.Client, toy: ToyEmbedder) -> None:
    table = make_table(client, toy)
    base = table.search(QUERY, search_type="hybrid").limit(5).to_list()
    assert table.search(search_type="hybrid").text(QUERY).limit(5).to_list() == base
    assert table.search(text=QUERY, search_type="hybrid").limit(5).to_list() == base
    qv = toy.embed_texts([QUERY], purpose="query")[0].tolist()
    by_vector = table.search(QUERY, search_type="hybrid", vector=qv).limit(5).to_list()
    assert [r["id"] for r in by_vector] == [r["id"] for r in base]


def test_result_formats(client: lookalike.Client, toy: ToyEmbedder) -> None:
    table = make_table(client, toy)
    search = table.search(QUERY, search_type="hybrid").limit(3)
    assert isinstance(search, HybridSearch)
    rows = search.to_list()
    frame = search.to_pandas()
    assert list(frame["id"]) == [r["id"] for r in rows]
    models = search.to_pydantic()
    assert [m.id for m in models] == [r["id"] for r in rows]
    assert [m._score for m in models] == [r["_score"] for r in rows]
    assert len(search.to_rows()) == 3


# --------------------------------------------------------------------------- bad input


def test_hybrid_without_a_text_column(client: lookalike.Client, toy: ToyEmbedder) -> None:
    class Plain(TableModel):
        __tablename__ = "hybrid_plain"
        id: int | None = Field(default=None, primary_key=True)
        caption: str | None = Field(default=None)
        vec: list[float] | None = toy.VectorField(source_field="caption", source_type="text")

    table = client.create_table(schema=Plain, if_exists="overwrite")
    with pytest.raises(ConfigurationError, match="'hybrid_plain' has no full-text column") as info:
        table.search("boots", search_type="hybrid")
    assert "create_fts_index" in str(info.value)


def test_hybrid_text_column_must_be_indexed(client: lookalike.Client, toy: ToyEmbedder) -> None:
    table = make_table(client, toy, rows=3)
    with pytest.raises(ConfigurationError, match="'album' of 'hybrid_items' has no full-text index"):
        table.search("boots", search_type="hybrid").text_column("album")
    with pytest.raises(ConfigurationError, match="'nope' is not a column"):
        table.search("boots", search_type="hybrid").text_column("nope")


def test_bad_fusion_arguments(client: lookalike.Client, toy: ToyEmbedder) -> None:
    search = make_table(client, toy, rows=3).search("boots", search_type="hybrid")
    with pytest.raises(ConfigurationError, match="vs_weight must not be negative"):
        search.fusion("weighted", vs_weight=-0.5, fts_weight=0.5)
    with pytest.raises(ConfigurationError, match="fts_weight must not be negative"):
        search.fusion("weighted", vs_weight=0.5, fts_weight=-1)
    with pytest.raises(ConfigurationError, match="both 0"):
        search.fusion("weighted", vs_weight=0, fts_weight=0)
    for k in (0, -3):
        with pytest.raises(ConfigurationError, match="RRF k must be a positive number"):
            search.fusion("rrf", k=k)
    with pytest.raises(ConfigurationError, match="fusion method must be one of rrf, weighted"):
        search.fusion("borda")
    with pytest.raises(ConfigurationError, match="unknown: vs_weight"):
        search.fusion("rrf", vs_weight=0.3)
    with pytest.raises(ConfigurationError, match="normalize must be"):
        search.fusion("weighted", normalize="zscore")


def test_bad_queries(client: lookalike.Client, toy: ToyEmbedder) -> None:
    table = make_table(client, toy, rows=3)
    with pytest.raises(ConfigurationError, match="needs query text"):
        table.search(search_type="hybrid").to_list()
    with pytest.raises(ConfigurationError, match="has no words"):
        table.search('"*" -- ()', search_type="hybrid").to_list()
    with pytest.raises(ConfigurationError, match="query is text"):
        table.search([0.1] * 16, search_type="hybrid")
    with pytest.raises(ConfigurationError, match="takes one text"):
        table.search("a", search_type="hybrid", text="b")
    with pytest.raises(SchemaError, match="unknown column"):
        table.search("boots", search_type="hybrid").select("nope")
    with pytest.raises(ConfigurationError, match="limit must be a positive integer"):
        table.search("boots", search_type="hybrid").limit(0)


def test_same_answer_in_a_session_and_in_memory(client: lookalike.Client, toy: ToyEmbedder) -> None:
    table = make_table(client, toy)
    expected = table.search(QUERY, search_type="hybrid").limit(8).to_list()
    with client.session():  # one connection: the two searches run one after the other
        assert table.search(QUERY, search_type="hybrid").limit(8).to_list() == expected
    memory = lookalike.connect(":memory:")  # one shared connection as well
    try:
        copy = make_table(memory, toy)
        vec, txt = both_lists(copy, 8)
        reference = rrf_reference([r["id"] for r in vec], [r["id"] for r in txt], 60)[:8]
        rows = copy.search(QUERY, search_type="hybrid").limit(8).to_list()
        assert [(r["id"], r["_score"]) for r in rows] == reference
    finally:
        memory.close()
