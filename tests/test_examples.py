"""Several examples in one query: ``table.search(positive=[...], negative=[...])`` and ``parse_terms``.

The combined vector and the ranking are compared with a reference computed here from the toy
embedder's own vectors, on every engine of the conformance fixtures.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

import lookalike
from lookalike import ConfigurationError, Field, TableModel, VectorError
from lookalike.examples import Example, combine_vectors, parse_terms, read_examples
from tests.toy_embedder import COLOURS, DIMS, ToyEmbedder


class BatchCountingToy(ToyEmbedder):
    """The toy embedder, recording the size of every batch it is given."""

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[tuple[str, int]] = []

    def embed_texts(self, texts: list[str], *, purpose: str) -> np.ndarray:
        self.batches.append(("text", len(texts)))
        return super().embed_texts(texts, purpose=purpose)

    def embed_images(self, images: list, *, purpose: str) -> np.ndarray:
        self.batches.append(("image", len(images)))
        return super().embed_images(images, purpose=purpose)


def make_table(client: lookalike.Client, toy: ToyEmbedder, images: dict[str, Path]) -> lookalike.Table:
    class Picture(TableModel):
        __tablename__ = "examples_pictures"
        id: int = Field(primary_key=True)
        path: str = Field()
        colour: str = Field()
        vec: list[float] = toy.VectorField(source_field="path", source_type="image")

    table = client.create_table(schema=Picture, if_exists="overwrite")
    table.bulk_insert([{"path": str(p), "colour": name} for name, p in images.items()])
    return table


@pytest.fixture
def table(client: lookalike.Client, colour_images: dict[str, Path]) -> lookalike.Table:
    return make_table(client, BatchCountingToy(), colour_images)


def unit(v: Any) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64)
    return v / np.linalg.norm(v)


def reference(pos: list[tuple[np.ndarray, float]], neg: list[tuple[np.ndarray, float]]) -> np.ndarray:
    """The combination written out independently: weighted unit vectors, summed, normalised."""
    q = np.zeros(len(pos[0][0]))
    for v, w in pos:
        q = q + w * unit(v)
    for v, w in neg:
        q = q - w * unit(v)
    return q / math.sqrt(float(np.dot(q, q)))


# ---------------------------------------------------------------------- the library, on every engine


def test_mixed_examples_match_the_reference(table: lookalike.Table, colour_images: dict[str, Path]) -> None:
    toy = ToyEmbedder()
    red_words = toy.embed_texts(["red"], purpose="query")[0]
    blue_image = toy.embed_images([Image.open(colour_images["blue"])], purpose="query")[0]
    green_words = toy.embed_texts(["green"], purpose="query")[0]
    given_vector = np.linspace(-1, 1, DIMS) * 3  # not unit length: the combination normalises it
    expected = reference(
        [(red_words, 1.0), (blue_image, 2.0), (given_vector, 0.5)],
        [(green_words, 1.5)],
    )
    search = table.search(
        positive=["red", (str(colour_images["blue"]), 2), (given_vector, 0.5)], negative=[("green", 1.5)]
    )
    np.testing.assert_allclose(search.query_vector(), expected, atol=1e-6)
    # the ranking is the one of that vector over the stored vectors (cosine)
    rows = table.query(columns=["path", "vec"]).to_list()
    sims = {r["path"]: float(np.dot(unit(r["vec"]), expected)) for r in rows}
    hits = search.limit(len(rows)).to_list()
    assert [h["path"] for h in hits] == sorted(sims, key=lambda p: -sims[p])
    for h in hits:
        assert h["_score"] == pytest.approx(sims[h["path"]], abs=1e-5)


def test_filters_limit_select_and_num_candidate_apply(table: lookalike.Table) -> None:
    search = table.search(positive=["red", "orange"], negative=["blue"])
    everything = search.limit(8).to_list()
    warm = {"red", "orange", "yellow", "purple"}
    filtered = search.filter({"colour": {"$in": sorted(warm)}}).limit(3).select("colour").num_candidate(50)
    got = filtered.to_list()
    assert [h["colour"] for h in got] == [h["colour"] for h in everything if h["colour"] in warm][:3]
    assert set(got[0]) == {"colour", "_distance", "_score"}


def test_example_rows_are_kept_in_the_results(table: lookalike.Table, colour_images: dict[str, Path]) -> None:
    hits = table.search(positive=[colour_images["green"], colour_images["yellow"]]).limit(2).to_list()
    assert {h["colour"] for h in hits} == {"green", "yellow"}  # the examples themselves, nearest
    # ... and a filter is how a caller leaves them out
    rest = table.search(positive=[colour_images["green"]]).filter({"colour": {"$ne": "green"}}).limit(1)
    assert rest.to_list()[0]["colour"] != "green"


def test_one_example_is_the_ordinary_search(table: lookalike.Table) -> None:
    plain = table.search("purple").limit(8).to_list()
    combined = table.search(positive=["purple"]).limit(8).to_list()
    assert [h["colour"] for h in combined] == [h["colour"] for h in plain]
    for a, b in zip(plain, combined):
        assert a["_score"] == pytest.approx(b["_score"], abs=1e-5)


# ---------------------------------------------------------------------- embedding in batches


def test_texts_and_images_are_embedded_in_batches(
    sqlite_client: lookalike.Client, colour_images: dict[str, Path]
) -> None:
    toy = BatchCountingToy()
    table = make_table(sqlite_client, toy, colour_images)
    toy.batches.clear()
    table.search(
        positive=["red", "a sunny beach", colour_images["blue"], colour_images["white"]],
        negative=["green", "fog", colour_images["black"]],
    ).query_vector()
    # one batch per kind and side: positives' 2 texts and 2 images, negatives' 2 texts and 1 image
    assert sorted(toy.batches) == [("image", 1), ("image", 2), ("text", 2), ("text", 2)]


def test_a_forced_kind_is_honoured(sqlite_client: lookalike.Client, colour_images: dict[str, Path]) -> None:
    toy = BatchCountingToy()
    table = make_table(sqlite_client, toy, colour_images)
    toy.batches.clear()
    # "red.png" would read as a path; Example(kind="text") embeds the words
    table.search(positive=[Example("red.png", kind="text")]).query_vector()
    assert toy.batches == [("text", 1)]


def test_an_image_that_cannot_be_read_names_the_example(table: lookalike.Table, tmp_path: Path) -> None:
    with pytest.raises(lookalike.ImageInputError) as info:
        table.search(positive=["red"], negative=["blue", str(tmp_path / "gone.png")]).to_list()
    assert info.value.index == 1
    assert "gone.png" in str(info.value) and "negative example" in str(info.value)


def test_a_table_without_embedder_takes_vector_examples(sqlite_client: lookalike.Client) -> None:
    class Plain(TableModel):
        __tablename__ = "plain"
        id: int = Field(primary_key=True)
        vec: list[float] = lookalike.VectorField(dimensions=3)

    table = sqlite_client.create_table(schema=Plain)
    table.bulk_insert([{"vec": [1, 0, 0]}, {"vec": [0, 1, 0]}, {"vec": [0, 0, 1]}])
    hits = table.search(positive=[[1, 0, 0], [0, 1, 0]], negative=[[0, 1, 0.1]]).limit(1).to_list()
    assert hits[0]["id"] == 1
    with pytest.raises(ConfigurationError, match=r"positive example 1 .*needs an embedding function"):
        table.search(positive=[[1, 0, 0], "words"]).to_list()
    with pytest.raises(VectorError, match="positive example 0"):
        table.search(positive=[[1, 0]]).to_list()


# ---------------------------------------------------------------------- bad input


def test_empty_positive_list_is_refused(table: lookalike.Table) -> None:
    with pytest.raises(ConfigurationError, match="positive= is empty"):
        table.search(positive=[])
    with pytest.raises(ConfigurationError, match="positive= is empty"):
        table.search(positive=[], negative=[])


def test_negatives_only_are_refused(table: lookalike.Table) -> None:
    with pytest.raises(ConfigurationError, match="at least one positive example"):
        table.search(negative=["grass"])
    with pytest.raises(ConfigurationError, match="at least one positive example"):
        table.search(positive=[], negative=["grass"])


@pytest.mark.parametrize("weight", [0, 0.0, -1, -0.5, float("nan"), float("inf"), True, "2", None])
def test_a_bad_weight_names_the_example(table: lookalike.Table, weight: Any) -> None:
    with pytest.raises(ConfigurationError) as info:
        table.search(positive=["red", Example("a cat", weight=weight)])
    assert "positive example 1 (a cat)" in str(info.value) and "weight" in str(info.value)
    if not isinstance(weight, (str, type(None))):  # a pair's second element must be a number to be a weight
        with pytest.raises(ConfigurationError, match=r"negative example 0 \(grass\): weight"):
            table.search(positive=["red"], negative=[("grass", weight)])


@pytest.mark.parametrize("item", [None, 5, 2.5, {}, "", "   ", ["cat", 2], ("cat", 2, 3), object()])
def test_an_item_that_is_neither_names_its_index(table: lookalike.Table, item: Any) -> None:
    with pytest.raises(ConfigurationError, match=r"positive example 2 \(.*\) is neither"):
        table.search(positive=["red", "blue", item])


def test_examples_that_cancel_out_are_refused(table: lookalike.Table, colour_images: dict[str, Path]) -> None:
    with pytest.raises(ConfigurationError, match="cancel each other out"):
        table.search(positive=["red"], negative=["red"]).to_list()
    with pytest.raises(ConfigurationError, match="cancel each other out"):
        table.search(positive=[(colour_images["red"], 2)], negative=[(colour_images["red"], 2)]).to_list()
    with pytest.raises(ConfigurationError, match="no direction"):
        table.search(positive=[[0.0] * DIMS]).to_list()


def test_other_misuse_is_refused(table: lookalike.Table) -> None:
    with pytest.raises(ConfigurationError, match="takes a list of examples"):
        table.search(positive="red")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="either a query"):
        table.search("red", positive=["blue"])
    with pytest.raises(ConfigurationError, match="kind must be one of"):
        table.search(positive=[Example("red", kind="sound")])  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="text example must be non-empty"):
        table.search(positive=[Example(3, kind="text")])


# ---------------------------------------------------------------------- the combination on its own


vectors = st.lists(st.floats(-10, 10, allow_nan=False, width=32), min_size=4, max_size=4).filter(
    lambda v: np.linalg.norm(v) > 1e-2
)
weighted = st.tuples(vectors, st.floats(0.01, 100))


@settings(max_examples=200, deadline=None)
@given(pos=st.lists(weighted, min_size=1, max_size=5), neg=st.lists(weighted, max_size=5))
def test_combine_vectors_matches_the_reference(
    pos: list[tuple[list[float], float]], neg: list[tuple[list[float], float]]
) -> None:
    total = sum(w for _, w in pos + neg)
    q = np.zeros(4)
    for v, w in pos:
        q += w * unit(v)
    for v, w in neg:
        q -= w * unit(v)
    if np.linalg.norm(q) <= 1e-5 * total:  # (nearly) cancelled: refused rather than a noisy direction
        return
    ref = reference([(np.array(v), w) for v, w in pos], [(np.array(v), w) for v, w in neg])
    got = combine_vectors([(np.array(v), w) for v, w in pos], [(np.array(v), w) for v, w in neg])
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, ref, atol=1e-4)
    assert np.linalg.norm(got) == pytest.approx(1.0, abs=1e-5)
    # scaling an example does not change anything: each one is normalised first
    scaled = combine_vectors([(np.array(v) * 7.5, w) for v, w in pos], [(np.array(v), w) for v, w in neg])
    np.testing.assert_allclose(scaled, got, atol=1e-4)


def test_combine_vectors_refuses_mismatched_dimensions() -> None:
    with pytest.raises(ConfigurationError, match="negative example 0 has 2 dimensions, expected 3"):
        combine_vectors([(np.ones(3), 1.0)], [(np.ones(2), 1.0)])


def test_read_examples_normalises_the_forms() -> None:
    ex = read_examples(["cat", ("dog", 3), [0.5, 1.0], (np.array([1.0, 2.0]), 2)], [Example("grass", 0.5)])
    kinds = [(e.kind, e.weight) for e in ex.positive]
    assert kinds == [("auto", 1.0), ("auto", 3.0), ("vector", 1.0), ("vector", 2.0)]
    assert (ex.negative[0].value, ex.negative[0].weight) == ("grass", 0.5)
    assert repr(ex) == "<Examples +4 -1>"


# ---------------------------------------------------------------------- the command line's terms


def test_parse_terms_reads_the_rclip_form(tmp_path: Path) -> None:
    photo = tmp_path / "pool.jpg"
    Image.new("RGB", (8, 8), COLOURS["blue"]).save(photo)
    pos, neg = parse_terms(
        ["2:golden retriever", "+", str(photo), "-", "grass", "-", "0.5:https://x.test/a.jpg"]
    )
    assert pos == [Example("golden retriever", 2.0, "text"), Example(str(photo), 1.0, "image")]
    assert neg == [Example("grass", 1.0, "text"), Example("https://x.test/a.jpg", 0.5, "image")]


def test_parse_terms_single_and_leading_operators(tmp_path: Path) -> None:
    assert parse_terms(["cat"]) == ([Example("cat", 1.0, "text")], [])
    assert parse_terms(["+", "cat"]) == ([Example("cat", 1.0, "text")], [])
    # a leading "-" is read (the library then refuses a query of negatives only)
    assert parse_terms(["-", "grass"]) == ([], [Example("grass", 1.0, "text")])
    # a missing file is words, as in rclip; only an existing file is an image
    assert parse_terms([str(tmp_path / "gone.jpg")])[0][0].kind == "text"


def test_parse_terms_prefixes_that_are_not_weights_are_words() -> None:
    for term in ("x:cat", "1e3:cat", "nan:cat", "C:\\photos\\cat", "cat: a pet"):
        assert parse_terms([term]) == ([Example(term, 1.0, "text")], [])
    assert parse_terms(["1:10:30 sunset"]) == ([Example("10:30 sunset", 1.0, "text")], [])
    assert parse_terms([".5:cat"]) == ([Example("cat", 0.5, "text")], [])


def test_parse_terms_force_reads_every_term_one_way(tmp_path: Path) -> None:
    photo = tmp_path / "a.png"
    Image.new("RGB", (8, 8)).save(photo)
    assert parse_terms([str(photo), "-", "dog"], force="text") == (
        [Example(str(photo), 1.0, "text")],
        [Example("dog", 1.0, "text")],
    )
    assert parse_terms(["x.jpg"], force="image") == ([Example("x.jpg", 1.0, "image")], [])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["cat", "-"], "'-' at the end has no term after it"),
        (["cat", "+"], "'\\+' at the end"),
        (["-"], "'-' at the end"),
        (["cat", "+", "+", "dog"], "two operators in a row"),
        (["cat", "-", "+", "dog"], "two operators in a row"),
        (["golden", "retriever"], "no \\+ or - between them"),
        (["0:cat"], "weight must be above 0, got 0"),
        (["0.0:cat"], "weight must be above 0"),
        (["-1:cat"], "weight must be above 0, got -1"),
        (["2:"], "has a weight but nothing to search for"),
        (["2:  "], "nothing to search for"),
        (["cat", "+", ""], "term 2 is empty"),
        ([], "no search terms"),
    ],
)
def test_parse_terms_bad_forms(args: list[str], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        parse_terms(args)
