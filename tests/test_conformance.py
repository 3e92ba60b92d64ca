"""One suite, every engine: the public API must behave the same on SQLite, PostgreSQL (and TiDB when
``LOOKALIKE_TIDB_URL`` is set). Search results are checked against a brute-force numpy reference."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sqlmodel import JSON

import lookalike
from lookalike import (
    BulkInsertError,
    ConfigurationError,
    Field,
    SchemaError,
    TableModel,
    TableNotFoundError,
    VectorError,
    VectorField,
)
from tests.toy_embedder import ToyEmbedder

METRICS = ["cosine", "l2", "inner_product", "l1"]


# ---------------------------------------------------------------------- helpers


def vector_table(
    client: lookalike.Client, dims: int = 8, name: str = "conf_vecs", index: bool | None = None
) -> lookalike.Table:
    class Vec(TableModel):
        __tablename__ = name
        id: int = Field(primary_key=True)
        cat: int = Field(default=0)
        label: str | None = Field(default=None)
        meta: dict | None = Field(default=None, sa_type=JSON)
        vec: list[float] | None = VectorField(dimensions=dims, index=index)

    return client.create_table(schema=Vec, if_exists="overwrite")


def items_table(client: lookalike.Client, toy: ToyEmbedder, name: str = "conf_items") -> lookalike.Table:
    class Item(TableModel):
        __tablename__ = name
        id: int = Field(primary_key=True)
        image_uri: str | None = Field(default=None)
        image_vec: list[float] | None = toy.VectorField(source_field="image_uri")

    return client.create_table(schema=Item, if_exists="overwrite")


def distances(data: np.ndarray, q: np.ndarray, metric: str) -> np.ndarray:
    """The reference: float64 numpy, the documented meaning of ``_distance``."""
    m, qq = data.astype(np.float64), q.astype(np.float64)
    if metric == "cosine":
        return 1.0 - (m @ qq) / (np.linalg.norm(m, axis=1) * np.linalg.norm(qq))
    if metric == "l2":
        return np.linalg.norm(m - qq, axis=1)
    if metric == "inner_product":
        return -(m @ qq)
    return np.abs(m - qq).sum(axis=1)


def assert_hits(got: list[dict], ids: np.ndarray, ref: np.ndarray, mask: np.ndarray | None, k: int) -> None:
    """``got`` is the exact top-k of ``ref`` (over ``mask``); ties may come in any order."""
    cand = np.arange(len(ref)) if mask is None else np.flatnonzero(mask)
    order = cand[np.argsort(ref[cand], kind="stable")][:k]
    assert len(got) == len(order)
    by_id = dict(zip(ids.tolist(), ref.tolist()))
    got_d = [by_id[r["id"]] for r in got]
    np.testing.assert_allclose(got_d, ref[order], rtol=1e-5, atol=1e-5)  # right rows, ties aside
    np.testing.assert_allclose([r["_distance"] for r in got], ref[order], rtol=1e-4, atol=1e-4)
    if mask is not None:
        allowed = set(ids[mask].tolist())
        assert all(r["id"] in allowed for r in got)


def filled(
    client: lookalike.Client, n: int = 300, dims: int = 8, seed: int = 3
) -> tuple[lookalike.Table, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    data = rng.standard_normal((n, dims)).astype(np.float32)
    t = vector_table(client, dims)
    rows = [
        {
            "cat": i % 10,
            "label": f"item {i}" if i % 7 else None,
            "meta": {"size": {"w": i}, "tags": ["even" if i % 2 == 0 else "odd", f"t{i % 3}"]}
            if i % 5
            else None,
            "vec": v,
        }
        for i, v in enumerate(data)
    ]
    out = t.bulk_insert(rows, chunk_size=128)
    ids = np.array([r["id"] for r in out])
    return t, data, ids


# ---------------------------------------------------------------------- tables


def test_table_lifecycle(
    client: lookalike.Client, engine_url: str, toy: ToyEmbedder, colour_images: dict[str, Path]
) -> None:
    before = client.list_tables()
    t = items_table(client, toy)
    assert client.has_table("conf_items")
    tables = client.list_tables()
    assert isinstance(tables, list) and sorted(tables) == sorted([*before, "conf_items"])
    assert not any(n.startswith("_lookalike") for n in tables)
    with pytest.raises(SchemaError, match="already exists"):
        items_table_raise(client, toy)
    t.bulk_insert([{"image_uri": str(p)} for p in colour_images.values()])
    skipped = client.create_table(schema=t.table_model, if_exists="skip")  # the existing table, kept
    assert skipped.name == "conf_items" and skipped.rows() == len(colour_images)

    # a new client rebuilds the columns and the embedder from the database
    other = lookalike.connect(engine_url)
    try:
        reopened = other.open_table("conf_items")
        assert isinstance(reopened.vector_field().embed_fn, ToyEmbedder)
        hit = reopened.search("red").limit(1).to_list()[0]
        assert hit["image_uri"] == str(colour_images["red"])
        assert reopened.rows() == len(colour_images)
        with pytest.raises(SchemaError, match="dimensions"):
            other.open_table("conf_items", embed_fn=ToyEmbedder(dimensions=32))
    finally:
        other.close()

    client.drop_table("conf_items")
    assert not client.has_table("conf_items")
    with pytest.raises(TableNotFoundError):
        client.drop_table("conf_items")
    client.drop_table("conf_items", if_not_exists="skip")
    with pytest.raises(TableNotFoundError, match="conf_items"):
        client.open_table("conf_items")


def items_table_raise(client: lookalike.Client, toy: ToyEmbedder) -> None:
    class Item(TableModel):
        __tablename__ = "conf_items"
        id: int = Field(primary_key=True)
        image_uri: str | None = Field(default=None)
        image_vec: list[float] | None = toy.VectorField(source_field="image_uri")

    client.create_table(schema=Item)


def test_crud(client: lookalike.Client) -> None:
    t = vector_table(client, dims=3)
    a = t.insert({"cat": 1, "label": "a", "meta": {"k": 1}, "vec": [1, 0, 0]})
    b = t.insert({"cat": 2, "label": "b", "vec": [0, 1, 0]})
    assert b["id"] > a["id"]
    got = t.get(a["id"])
    assert (got.cat, got.label, got.meta) == (1, "a", {"k": 1})
    np.testing.assert_array_equal(np.asarray(got.vec, dtype=np.float32), [1, 0, 0])
    assert t.get(10_000) is None

    saved = t.save({"id": a["id"], "label": "a2"})  # existing: update
    assert saved["id"] == a["id"]
    t.save({"id": 500, "cat": 9, "label": "new", "vec": [0, 0, 1]})  # missing: insert with that id
    assert t.get(a["id"]).label == "a2" and t.get(500).cat == 9
    c = t.insert({"cat": 3, "vec": [1, 1, 1]})  # auto id after an explicit one must not collide
    assert c["id"] not in (a["id"], b["id"], 500)
    fresh = t.save({"cat": 4, "label": "fresh", "vec": [1, 1, 0]})  # no id: insert with a new one
    assert fresh["id"] not in (a["id"], b["id"], c["id"], 500) and t.get(fresh["id"]).label == "fresh"

    assert t.update({"cat": 7}, {"label": {"$in": ["a2", "b"]}}) == 2
    assert [r["id"] for r in t.query({"cat": 7}, order_by="id")] == [a["id"], b["id"]]
    assert t.query({"cat": 7}, order_by="-id").to_list()[0]["id"] == b["id"]
    assert [r["id"] for r in t.query(order_by="-id", limit=3)] == [fresh["id"], c["id"], 500]
    assert [r["id"] for r in t.query(order_by="id", limit=1, offset=1)] == [b["id"]]
    # several keys, as tuples or "-name": cat 3, 4, 7 (b before a), 9
    by_cat = t.query(order_by=[("cat", "asc"), "-id"], limit=3, offset=1)
    assert [r["id"] for r in by_cat] == [fresh["id"], b["id"], a["id"]]
    assert t.rows() == 5
    assert t.delete({"cat": 9}) == 1 and t.rows() == 4
    cols = {c["name"]: c for c in t.columns()}
    assert cols["id"]["primary_key"] and cols["vec"]["vector"] and not cols["cat"]["vector"]
    t.truncate()
    assert t.rows() == 0
    assert t.search([1, 0, 0]).to_list() == []  # no vectors left behind for search either


def test_bulk_insert_ids_and_vectors_round_trip(client: lookalike.Client) -> None:
    t, data, ids = filled(client, n=300, dims=16)
    assert list(ids) == sorted(ids) and len(set(ids)) == 300
    back = {r["id"]: r for r in t.query(order_by="id")}
    for i, rid in enumerate(ids):
        np.testing.assert_array_equal(
            np.asarray(back[rid]["vec"], dtype=np.float32), data[i]
        )  # exact float32
    assert back[ids[5]]["meta"] is None and back[ids[6]]["meta"]["size"]["w"] == 6
    assert back[ids[7]]["label"] is None and back[ids[8]]["label"] == "item 8"
    # explicit ids mixed with generated ones
    top = int(ids.max())
    mixed = t.bulk_insert([{"id": top + 100, "vec": data[0]}, {"vec": data[1]}, {"vec": data[2]}])
    assert mixed[0]["id"] == top + 100 and len({r["id"] for r in mixed}) == 3
    later = t.insert({"vec": data[3]})
    assert later["id"] not in {r["id"] for r in mixed} | set(ids.tolist())


def test_bulk_insert_refuses_bad_vectors(client: lookalike.Client) -> None:
    t = vector_table(client, dims=4)
    bad_vectors: list[tuple[object, str]] = [
        ([1.0, 2.0], "has 2 dimensions, expected 4"),
        ([float("nan")] * 4, "NaN or Inf"),
        ([float("inf")] * 4, "NaN or Inf"),
        ("abc", "not a list of numbers"),
    ]
    for bad, match in bad_vectors:
        with pytest.raises(VectorError, match=match):
            t.insert({"vec": bad})
        with pytest.raises((BulkInsertError, VectorError), match="item 1"):
            t.bulk_insert([{"vec": np.ones(4)}, {"vec": bad}, {"vec": np.ones(4)}])
        with pytest.raises(VectorError, match=match):
            t.search(vector=bad).to_list()
        # a bare string is a text query, and this table has no embedder
        with pytest.raises(ConfigurationError if isinstance(bad, str) else VectorError):
            t.search(bad).to_list()
    assert t.rows() == 0  # nothing written, not even the good items around a bad one


def test_dimensions_above_the_engine_limit(client: lookalike.Client) -> None:
    too_many = client.engine.max_dimensions + 1

    class Wide(TableModel):
        __tablename__ = "conf_wide"
        id: int = Field(primary_key=True)
        vec: list[float] | None = VectorField(dimensions=too_many)

    with pytest.raises(SchemaError, match=f"{too_many} dimensions"):
        client.create_table(schema=Wide)
    assert not client.has_table("conf_wide")


# ---------------------------------------------------------------------- search


@pytest.mark.parametrize("metric", [*METRICS, "COSINE", "NEGATIVE_INNER_PRODUCT"])  # and two aliases
def test_search_matches_brute_force(client: lookalike.Client, metric: str) -> None:
    t, data, ids = filled(client)
    key = lookalike.schema.normalize_metric(metric)
    rng = np.random.default_rng(11)
    idx = np.arange(len(data))
    cats = idx % 10
    for _ in range(3):
        q = rng.standard_normal(data.shape[1]).astype(np.float32)
        ref = distances(data, q, key)
        got = t.search(q).distance_metric(metric).limit(15).to_list()
        assert_hits(got, ids, ref, None, 15)
        expected_score = {"cosine": 1 - got[0]["_distance"], "inner_product": -got[0]["_distance"]}.get(
            key, 1 / (1 + got[0]["_distance"])
        )
        assert got[0]["_score"] == pytest.approx(expected_score)
        # filtered search: exact over the matching rows, always `limit` rows when that many match
        got = t.search(q).distance_metric(metric).filter({"cat": {"$in": [2, 5]}}).limit(10).to_list()
        assert_hits(got, ids, ref, np.isin(cats, [2, 5]), 10)
        both = {"cat": 3, "meta.size.w": {"$gte": 100}}  # a column and a JSON path together
        got = t.search(q).distance_metric(metric).filter(both).limit(10).to_list()
        assert_hits(got, ids, ref, (cats == 3) & (idx % 5 != 0) & (idx >= 100), 10)


@pytest.mark.parametrize("metric", METRICS)
def test_exact_hits_score_exactly(client: lookalike.Client, metric: str) -> None:
    """An identical vector scores ``_distance == 0`` and ``_score == 1`` (as pytidb's tests assert),
    not float32's 5.96e-08; every score stays in its documented range."""
    rng = np.random.default_rng(17)
    data = rng.standard_normal((60, 24))
    data = (data / np.linalg.norm(data, axis=1, keepdims=True)).astype(np.float32)
    data[0] = 0.0
    data[0, :4] = 0.5  # unit length exactly, in any precision: an inner product of exactly 1
    t = vector_table(client, 24)
    out = t.bulk_insert([{"vec": v} for v in data])
    ids = [r["id"] for r in out]
    for i in (0, *range(1, 60, 6)):
        got = t.search(data[i]).distance_metric(metric).limit(5).to_list()
        assert got[0]["id"] == ids[i]
        if metric == "inner_product":
            self_dot = float(data[i].astype(np.float64) @ data[i].astype(np.float64))
            assert got[0]["_distance"] == pytest.approx(-self_dot, rel=1e-6)
            if i == 0:
                assert (got[0]["_distance"], got[0]["_score"]) == (-1.0, 1.0)
        else:
            assert (got[0]["_distance"], got[0]["_score"]) == (0.0, 1.0)
            assert got[0]["_score"] == 1.0
        for row in got:
            if metric == "cosine":
                assert 0.0 <= row["_distance"] <= 2.0 and -1.0 <= row["_score"] <= 1.0
            elif metric in ("l2", "l1"):
                assert row["_distance"] >= 0.0 and 0.0 < row["_score"] <= 1.0
    if metric != "inner_product":  # a threshold of 0 keeps exact matches (and only those)
        got = t.search(data[7]).distance_metric(metric).distance_threshold(0).to_list()
        assert [r["id"] for r in got] == [ids[7]]


def test_null_vectors_are_skipped(client: lookalike.Client) -> None:
    t = vector_table(client, dims=2)
    t.bulk_insert([{"vec": [1, 0]}, {"vec": None, "label": "no vector"}, {"vec": [0, 1]}])
    hits = t.search([1, 0]).limit(10).to_list()
    assert len(hits) == 2 and all(h["label"] is None for h in hits)


def test_thresholds_and_ranges(client: lookalike.Client) -> None:
    t, data, ids = filled(client, n=200, dims=4)
    q = data[17]
    for metric in METRICS:
        ref = distances(data, q, metric)
        lo, hi = np.quantile(ref, [0.1, 0.3])
        got = t.search(q).distance_metric(metric).distance_range(float(lo), float(hi)).limit(200).to_list()
        mask = (ref >= lo) & (ref <= hi)
        # values right at a bound may round differently on each engine: compare away from them
        inner = (ref >= lo + 1e-4) & (ref <= hi - 1e-4)
        got_ids = {r["id"] for r in got}
        assert (
            set(ids[inner].tolist())
            <= got_ids
            <= set(ids[mask | (np.abs(ref - lo) < 1e-4) | (np.abs(ref - hi) < 1e-4)].tolist())
        )
        got = t.search(q).distance_metric(metric).distance_threshold(float(hi)).limit(5).to_list()
        assert_hits(got, ids, ref, ref <= hi, 5)
    # 0 is a real threshold: only the identical vector (ties by id)
    twin = t.insert({"vec": data[17], "label": "twin"})
    exact = t.search(q).distance_metric("l2").distance_threshold(0).limit(10).to_list()
    assert [r["id"] for r in exact] == [ids[17], twin["id"]]


def test_thresholds_and_ranges_on_plain_vectors(client: lookalike.Client) -> None:
    """The default metric (cosine) on vectors whose distances are exact: 0, 1 - 1/sqrt(2), 1."""
    t = vector_table(client, dims=2, name="conf_plain")
    rows = t.bulk_insert([{"vec": [1.0, 0.0]}, {"vec": [1.0, 0.0]}, {"vec": [0.0, 1.0]}, {"vec": [1.0, 1.0]}])
    ids = [r["id"] for r in rows]
    exact = t.search([2.0, 0.0]).distance_threshold(0).to_list()
    assert [r["id"] for r in exact] == ids[:2]  # 0 is a valid threshold; a scaled query is distance 0
    mid = t.search([1.0, 0.0]).distance_range(0.1, 0.5).to_list()
    assert [r["id"] for r in mid] == [ids[3]]
    everything = t.search([1.0, 0.0]).distance_threshold(0).distance_threshold(None).limit(4).to_list()
    assert [r["id"] for r in everything] == [ids[0], ids[1], ids[3], ids[2]]  # None clears it
    with pytest.raises(ConfigurationError):
        t.search([1.0, 0.0]).distance_range(0.5, 0.1)


def test_filters_on_columns_and_json_paths(client: lookalike.Client) -> None:
    t, data, ids = filled(client, n=120, dims=4)
    n = len(data)
    idx = np.arange(n)
    has_meta = idx % 5 != 0
    labels = np.array([i % 7 != 0 for i in idx])
    cases = [
        ({"cat": 3}, idx % 10 == 3),
        ({"cat": {"$ne": 3}}, idx % 10 != 3),
        ({"cat": {"$gt": 2, "$lte": 5}}, (idx % 10 > 2) & (idx % 10 <= 5)),
        ({"cat": {"$in": [1, 4]}}, np.isin(idx % 10, [1, 4])),
        ({"cat": {"$nin": [1, 4]}}, ~np.isin(idx % 10, [1, 4])),
        ({"label": {"$like": "item 1%"}}, labels & np.array([str(i).startswith("1") for i in idx])),
        ({"label": {"$contains": "m 2"}}, labels & np.array([str(i).startswith("2") for i in idx])),
        ({"label": {"$exists": False}}, ~labels),
        ({"$or": [{"cat": 1}, {"cat": 2}]}, np.isin(idx % 10, [1, 2])),
        ({"$not": {"cat": {"$lt": 8}}}, idx % 10 >= 8),
        ({"meta.size.w": {"$gte": 100}}, has_meta & (idx >= 100)),
        ({"meta.tags": {"$contains": "odd"}}, has_meta & (idx % 2 == 1)),
        ({"meta.size": {"$exists": True}}, has_meta),
        (
            {"$and": [{"meta.tags": {"$contains": "t1"}}, {"cat": {"$lt": 5}}]},
            has_meta & (idx % 3 == 1) & (idx % 10 < 5),
        ),
    ]
    q = data[0]
    ref = distances(data, q, "cosine")
    for filt, mask in cases:
        got_rows = t.query(filt, order_by="id")
        assert [r["id"] for r in got_rows] == sorted(ids[mask].tolist()), filt
        hits = t.search(q).filter(filt).limit(7).to_list()
        assert_hits(hits, ids, ref, mask, 7)
    # values are parameters, never SQL
    assert t.query({"label": "x' OR '1'='1"}).to_list() == []


def test_filter_edge_values(client: lookalike.Client) -> None:
    """Filters where the values themselves are awkward: SQL wildcards and quotes, a JSON key that is
    missing from one document and a document that is NULL; and filters given as SQL text or SQLAlchemy."""
    t = vector_table(client, dims=2, name="conf_filters")
    rows = t.bulk_insert(
        [
            {"cat": 1, "label": "apple pie", "meta": {"tags": ["a", "b"], "size": {"w": 10}}, "vec": [1, 0]},
            {"cat": 2, "label": "banana", "meta": {"tags": ["b"], "size": {"w": 20}}, "vec": [1, 1]},
            {"cat": 3, "label": "cherry 100%", "meta": {"size": {"w": 30}}, "vec": [0, 1]},
            {"cat": 4, "label": None, "meta": None, "vec": [1, 2]},
        ]
    )
    one, two, three, four = (r["id"] for r in rows)

    def ids(f: object) -> list[int]:
        return [r["id"] for r in t.query(f, order_by="id")]

    assert ids({"$or": [{"cat": 1}, {"label": "banana"}]}) == [one, two]
    assert ids({"$and": [{"cat": {"$gte": 2}}, {"$not": {"cat": 3}}]}) == [two, four]
    assert ids({"label": {"$like": "%an%"}}) == [two]
    assert ids({"label": {"$contains": "100%"}}) == [three]  # % is a literal here
    assert ids({"label": {"$contains": "y 1%"}}) == []  # and not a wildcard
    assert ids({"meta.tags": {"$contains": "b"}}) == [one, two]
    assert ids({"meta.tags": {"$exists": True}}) == [one, two]  # absent in row 3's document, row 4 NULL
    assert ids("cat >= 3") == [three, four]
    assert ids(t.spec.sa_table.c.cat == 2) == [two]
    # SQL text inside a dict value is a value, never SQL
    assert ids({"label": {"$in": ["banana'); DROP TABLE conf_filters; --"]}}) == []
    assert t.rows() == 4  # and the injection attempts dropped nothing


def test_auto_embedding_text_and_image_queries(
    client: lookalike.Client, toy: ToyEmbedder, colour_images: dict[str, Path], tmp_path: Path
) -> None:
    t = items_table(client, toy)
    t.bulk_insert([{"image_uri": str(p)} for p in colour_images.values()] + [{"image_uri": None}])
    assert t.search("orange").limit(1).to_list()[0]["image_uri"] == str(colour_images["orange"])
    assert t.search(colour_images["blue"]).limit(1).to_list()[0]["image_uri"] == str(colour_images["blue"])
    rows = t.query({"image_uri": {"$exists": False}}).to_list()
    assert len(rows) == 1 and rows[0]["image_vec"] is None
    # a changed source re-embeds
    green = t.query({"image_uri": str(colour_images["green"])}).to_list()[0]
    t.update({"image_uri": str(colour_images["purple"])}, {"id": green["id"]})
    hit = t.search("purple").limit(2).to_list()
    assert green["id"] in {h["id"] for h in hit} and hit[0]["_distance"] == pytest.approx(0, abs=1e-5)

    # only missing vectors are computed: a given one is kept as it is, a blank source gets none
    rng = np.random.default_rng()  # fresh pixels: never in the embedding cache the database holds
    fresh = [tmp_path / "fresh-a.png", tmp_path / "fresh-b.png"]
    for path in fresh:
        Image.fromarray(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)).save(path)
    given = np.zeros(16, dtype=np.float32)
    given[0] = 1
    before = toy.calls["images"]
    rows = t.bulk_insert(
        [{"image_uri": str(fresh[0])}, {"image_uri": str(fresh[1]), "image_vec": given}, {"image_uri": "   "}]
    )
    assert toy.calls["images"] == before + 1
    np.testing.assert_array_equal(rows[1]["image_vec"], given)
    np.testing.assert_array_equal(np.asarray(t.get(rows[1]["id"]).image_vec, dtype=np.float32), given)
    assert t.get(rows[2]["id"]).image_vec is None
    top = t.search(fresh[0]).limit(1).to_list()[0]
    assert top["id"] == rows[0]["id"] and top["_distance"] == pytest.approx(0, abs=1e-5)


def test_two_vector_fields(
    client: lookalike.Client, toy: ToyEmbedder, colour_images: dict[str, Path]
) -> None:
    class Two(TableModel):
        __tablename__ = "conf_two"
        id: int = Field(primary_key=True)
        uri: str = Field()
        caption: str = Field()
        img_vec: list[float] | None = toy.VectorField(source_field="uri", source_type="image")
        txt_vec: list[float] | None = toy.VectorField(source_field="caption", source_type="text")
        extra: list[float] | None = VectorField(dimensions=3)

    t = client.create_table(schema=Two, if_exists="overwrite")
    t.bulk_insert(
        [
            {"uri": str(p), "caption": f"a {name} thing", "extra": [i, 1, 0]}
            for i, (name, p) in enumerate(colour_images.items())
        ]
    )
    with pytest.raises(SchemaError, match="more than one vector column"):
        t.search("red").to_list()
    assert t.search("yellow").vector_column("img_vec").limit(1).to_list()[0]["caption"] == "a yellow thing"
    img = t.search(str(colour_images["blue"])).vector_column("img_vec").limit(1).to_list()
    assert img[0]["uri"] == str(colour_images["blue"])
    txt = t.search(text="a green thing").vector_column("txt_vec").limit(1).to_list()
    assert txt[0]["caption"] == "a green thing"
    got = t.search(vector=[3, 1, 0]).vector_column("extra").distance_metric("l2").limit(1).to_list()
    assert got[0]["caption"] == f"a {list(colour_images)[3]} thing"
    with pytest.raises(SchemaError, match="not a vector column"):
        t.search("red").vector_column("uri")


def test_select_and_result_shapes(client: lookalike.Client) -> None:
    t, data, ids = filled(client, n=50, dims=4)
    base = t.search(data[3]).limit(5)
    rows = base.select("id", "cat").to_list()
    assert set(rows[0]) == {"id", "cat", "_distance", "_score"} and rows[0]["id"] == ids[3]
    assert "vec" not in base.to_list()[0]
    assert len(base.to_rows()) == 5 and base.to_pydantic()[0].id == ids[3]


def test_sessions_commit_and_roll_back(client: lookalike.Client) -> None:
    t = vector_table(client, dims=2)
    with client.session():
        first = t.insert({"cat": 1, "vec": [1, 0]})
        t.bulk_insert([{"cat": 2, "vec": [0, 1]} for _ in range(40)])
        assert t.rows() == 41  # the session sees its own writes
        assert [r["id"] for r in t.query({"cat": 1})] == [first["id"]]  # Table.query honours it
        assert t.search([1, 0]).limit(1).to_list()[0]["id"] == first["id"]
        assert t.search([0, 1]).limit(3).to_list()[0]["cat"] == 2
    assert t.rows() == 41
    with pytest.raises(RuntimeError), client.session():
        t.insert({"cat": 3, "vec": [1, 1]})
        t.bulk_insert([{"cat": 3, "vec": [1, 1]} for _ in range(40)])
        t.update({"cat": 9}, {"cat": 1})
        raise RuntimeError("boom")
    assert t.rows() == 41 and t.query({"cat": 3}).to_list() == [] and len(t.query({"cat": 1}).to_list()) == 1
    assert t.search([1, 1]).filter({"cat": 3}).to_list() == []
    hits = t.search([1, 1]).limit(100).to_list()  # no phantom rows from the rolled-back writes
    assert len(hits) == 41 and {h["cat"] for h in hits} == {1, 2}
    # a write after the rollback (SQLite hands out the rolled-back ids again) is what search finds
    later = t.insert({"cat": 4, "vec": [-1, -1]})
    hit = t.search([-1, -1]).limit(1).to_list()[0]
    assert (hit["id"], hit["cat"]) == (later["id"], 4) and hit["_distance"] == pytest.approx(0, abs=1e-6)


def test_vector_index_keeps_results_exact_enough(client: lookalike.Client) -> None:
    t, data, ids = filled(client, n=400, dims=8)
    t.create_vector_index(metric="cosine")
    assert t.has_vector_index()  # asked for, so built, on every engine (the embedded one too)
    q = data[42]
    ref = distances(data, q, "cosine")
    got = t.search(q).limit(10).to_list()
    assert got[0]["id"] == ids[42]
    recall = len({r["id"] for r in got} & set(ids[np.argsort(ref)[:10]].tolist())) / 10
    assert recall >= 0.9
    # a filter never loses rows: exact over the matches
    cats = np.arange(len(data)) % 10
    got = t.search(q).filter({"cat": 7}).limit(10).to_list()
    assert_hits(got, ids, ref, cats == 7, 10)
    # other metrics are served exactly
    got = t.search(q).distance_metric("l1").limit(10).to_list()
    assert_hits(got, ids, distances(data, q, "l1"), None, 10)


def test_vector_field_index_true(client: lookalike.Client) -> None:
    t = vector_table(client, dims=4, name="conf_indexed", index=True)
    assert t.has_vector_index()  # declared; the embedded engine builds it once the table has rows
    t.bulk_insert([{"vec": [1, 0, 0, i / 10]} for i in range(50)])
    assert (
        t.search([1, 0, 0, 0]).limit(1).to_list()[0]["id"]
        == t.query(order_by="id", limit=1).to_list()[0]["id"]
    )


def test_filtered_search_with_index_has_full_recall(client: lookalike.Client) -> None:
    """1 % and 10 % selectivity over an HNSW-indexed table: recall@10 must be 1.0."""
    rng = np.random.default_rng(5)
    n, dims = 3000, 24
    centers = rng.standard_normal((30, dims))
    data = (centers[rng.integers(0, 30, n)] + 0.3 * rng.standard_normal((n, dims))).astype(np.float32)
    data /= np.linalg.norm(data, axis=1, keepdims=True)
    t = vector_table(client, dims=dims, name="conf_recall")
    out = t.bulk_insert([{"cat": i % 100, "vec": v} for i, v in enumerate(data)], chunk_size=1000)
    ids = np.array([r["id"] for r in out])
    t.create_vector_index(metric="cosine")
    cats = np.arange(n) % 100
    for sel in ({"cat": 7}, {"cat": {"$lt": 10}}):
        mask = cats == 7 if "$lt" not in str(sel) else cats < 10
        for _ in range(5):
            q = data[rng.integers(0, n)] + 0.05 * rng.standard_normal(dims).astype(np.float32)
            ref = distances(data, q, "cosine")
            got = t.search(q).filter(sel).limit(10).to_list()
            assert_hits(got, ids, ref, mask, 10)


def test_bad_search_arguments(client: lookalike.Client) -> None:
    t = vector_table(client, dims=2)
    t.insert({"vec": [1, 0]})
    with pytest.raises(VectorError, match="3 dimensions, expected 2"):
        t.search([1, 0, 0]).to_list()
    with pytest.raises(ConfigurationError):
        t.search([1, 0]).limit(0)
    with pytest.raises(ConfigurationError, match="embedding function"):
        t.search("words").to_list()
