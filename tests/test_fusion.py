"""Fusion functions: RRF and weighted score fusion against a reference written here, pytidb's
functions against pytidb's published expectations, and every bad input."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import result_tuple

from lookalike.errors import ConfigurationError
from lookalike.fusion import (
    fusion_result_rows_by_rrf,
    fusion_result_rows_by_weighted,
    rrf_fusion,
    weighted_fusion,
)

# --------------------------------------------------------------------------- reference computations


def reference_rrf(vec_keys: list[int], txt_keys: list[int], k: float) -> dict[int, float]:
    """RRF from its definition: sum over the lists holding a key of 1 / (k + 1-based rank)."""
    out: dict[int, float] = {}
    for keys in (vec_keys, txt_keys):
        for position, key in enumerate(keys):
            out[key] = out.get(key, 0.0) + 1.0 / (k + position + 1)
    return out


def reference_weighted(
    vec: list[tuple[int, float]], txt: list[tuple[int, float]], vw: float, tw: float
) -> dict[int, float]:
    """Min-max per list: nearest distance / highest BM25 → 1, the other end → 0; equal values → 1."""

    def scaled(values: list[float], higher_better: bool) -> list[float]:
        if not values:
            return []
        lo, hi = min(values), max(values)
        if hi == lo:
            return [1.0] * len(values)
        return [((v - lo) if higher_better else (hi - v)) / (hi - lo) for v in values]

    out: dict[int, float] = {}
    for (key, _), s in zip(vec, scaled([d for _, d in vec], higher_better=False)):
        out[key] = out.get(key, 0.0) + vw * s
    for (key, _), s in zip(txt, scaled([b for _, b in txt], higher_better=True)):
        out[key] = out.get(key, 0.0) + tw * s
    return out


def vector_rows(pairs: list[tuple[int, float]]) -> list[dict[str, Any]]:
    return [{"id": key, "name": f"v{key}", "_distance": d, "_score": 1 - d} for key, d in pairs]


def text_rows(pairs: list[tuple[int, float]]) -> list[dict[str, Any]]:
    return [{"id": key, "name": f"t{key}", "_score": s} for key, s in pairs]


def assert_matches_reference(result: list[dict[str, Any]], expected: dict[int, float]) -> None:
    assert sorted(r["id"] for r in result) == sorted(expected)
    for row in result:
        assert row["_score"] == pytest.approx(expected[row["id"]], rel=1e-12, abs=1e-12)
    # best first; where the reference tells two rows apart the order agrees with it; exact ties in
    # the fused score put the smaller key first
    for i, a in enumerate(result):
        for b in result[i + 1 :]:
            assert a["_score"] >= b["_score"]
            assert expected[a["id"]] >= expected[b["id"]] - 1e-12
            if a["_score"] == b["_score"]:
                assert a["id"] < b["id"]


# --------------------------------------------------------------------------- strategies

keys = st.lists(st.integers(0, 40), unique=True, max_size=25)
floats = st.floats(0.0, 2.0, allow_nan=False, allow_infinity=False)


@st.composite
def ranked_pairs(draw: Any, ascending: bool) -> list[tuple[int, float]]:
    ks = draw(keys)
    values = sorted(draw(st.lists(floats, min_size=len(ks), max_size=len(ks))), reverse=not ascending)
    return list(zip(ks, values))


# --------------------------------------------------------------------------- RRF


@settings(max_examples=200, deadline=None)
@given(ranked_pairs(True), ranked_pairs(False), st.sampled_from([1, 10, 60, 0.5, 1000]))
def test_rrf_equals_reference(vec: list[tuple[int, float]], txt: list[tuple[int, float]], k: float) -> None:
    result = rrf_fusion(vector_rows(vec), text_rows(txt), key="id", k=k)
    assert_matches_reference(result, reference_rrf([a for a, _ in vec], [a for a, _ in txt], k))


@settings(max_examples=200, deadline=None)
@given(
    ranked_pairs(True),
    ranked_pairs(False),
    st.floats(0, 5, allow_nan=False),
    st.floats(0, 5, allow_nan=False),
)
def test_weighted_equals_reference(
    vec: list[tuple[int, float]], txt: list[tuple[int, float]], vw: float, tw: float
) -> None:
    if vw == 0 and tw == 0:
        vw = 1.0
    result = weighted_fusion(vector_rows(vec), text_rows(txt), key="id", vs_weight=vw, fts_weight=tw)
    assert_matches_reference(result, reference_weighted(vec, txt, vw, tw))


def test_fused_rows_carry_distance_and_match_score() -> None:
    vec = vector_rows([(1, 0.1), (2, 0.3)])
    txt = text_rows([(3, 7.5), (1, 2.0)])
    rows = {r["id"]: r for r in rrf_fusion(vec, txt)}
    assert rows[1]["_distance"] == 0.1 and rows[1]["_match_score"] == 2.0
    assert rows[2]["_distance"] == 0.3 and rows[2]["_match_score"] is None
    assert rows[3]["_distance"] is None and rows[3]["_match_score"] == 7.5
    assert rows[1]["name"] == "v1" and rows[3]["name"] == "t3"  # the vector row's columns win
    assert rows[1]["_score"] == pytest.approx(1 / 61 + 1 / 62)


def test_key_function_and_duplicates_count_once() -> None:
    vec = [{"a": 1, "b": "x", "_distance": 0.1}, {"a": 1, "b": "x", "_distance": 0.2}]
    txt = [{"a": 1, "b": "y", "_score": 3.0}]
    rows = rrf_fusion(vec, txt, key=lambda r: (r["a"], r["b"]), k=1)
    assert [(r["a"], r["b"]) for r in rows] == [(1, "x"), (1, "y")]
    assert rows[0]["_score"] == pytest.approx(1 / 2)  # the duplicate at rank 2 did not add 1/3


def test_weighted_ties_and_single_rows_score_one() -> None:
    rows = weighted_fusion(
        vector_rows([(5, 0.4)]), text_rows([(5, 1.0), (6, 1.0)]), vs_weight=1, fts_weight=2
    )
    assert [(r["id"], r["_score"]) for r in rows] == [(5, 3.0), (6, 2.0)]


def test_zero_weight_ignores_a_list_but_keeps_its_rows() -> None:
    rows = weighted_fusion(vector_rows([(1, 0.1), (2, 0.9)]), text_rows([(3, 9.0)]), fts_weight=0)
    assert [r["id"] for r in rows] == [1, 2, 3]
    assert rows[2]["_score"] == 0.0


def test_atan_normalisation() -> None:
    rows = weighted_fusion(vector_rows([(1, 0.5)]), text_rows([(1, 1.0)]), normalize="atan", metric="COSINE")
    assert rows[0]["_score"] == pytest.approx(0.5 * (1 - 0.25) + 0.5 * 0.5)
    ip = weighted_fusion(vector_rows([(1, -1.0)]), [], normalize="atan", metric="inner_product")
    assert ip[0]["_score"] == pytest.approx(0.5 * 0.75)


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("k", [0, -1, -0.5, float("nan"), float("inf"), "60", True])
def test_bad_rrf_k(k: Any) -> None:
    with pytest.raises(ConfigurationError, match="RRF k must be a positive number"):
        rrf_fusion([], [], k=k)
    with pytest.raises(ConfigurationError, match="RRF k"):
        fusion_result_rows_by_rrf([], [], lambda r: r["id"], k=k)


@pytest.mark.parametrize(
    ("vw", "tw", "message"),
    [
        (-0.1, 0.5, "vs_weight must not be negative"),
        (0.5, -1, "fts_weight must not be negative"),
        (0, 0, "both 0"),
        (0.0, 0.0, "both 0"),
        (float("nan"), 0.5, "vs_weight must be a finite number"),
        (0.5, float("inf"), "fts_weight must be a finite number"),
        ("0.5", 0.5, "vs_weight must be a finite number"),
    ],
)
def test_bad_weights(vw: Any, tw: Any, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        weighted_fusion(vector_rows([(1, 0.1)]), [], vs_weight=vw, fts_weight=tw)
    with pytest.raises(ConfigurationError, match=message):
        fusion_result_rows_by_weighted([], "cosine", [], lambda r: r["id"], vw, tw)


def test_other_bad_input() -> None:
    with pytest.raises(ConfigurationError, match="no key column 'pk'"):
        rrf_fusion(vector_rows([(1, 0.1)]), [], key="pk")
    with pytest.raises(ConfigurationError, match="normalize must be"):
        weighted_fusion([], [], normalize="zscore")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="needs the vector search's metric"):
        weighted_fusion([], [], normalize="atan")
    with pytest.raises(ConfigurationError, match="has no _distance"):
        weighted_fusion([{"id": 1}], [])
    with pytest.raises(ConfigurationError, match="has no _match_score or _score"):
        weighted_fusion([], [{"id": 1}])
    with pytest.raises(ConfigurationError, match="must be mappings"):
        rrf_fusion([(1, 0.2)], [])  # type: ignore[list-item]


# --------------------------------------------------------------------------- pytidb's functions
# The cases and expected values below are pytidb's own (tests/test_fusion.py), so issue 14's run of
# pytidb's suite against lookalike sees the same numbers.

VS = [(101, 0.1), (203, 0.2), (150, 0.3), (198, 0.4), (175, 0.5)]
FTS = [(198, 2.5), (101, 2.4), (110, 2.3), (175, 2.2), (250, 2.1)]
FIELDS = ["id", "_distance", "_match_score", "_score"]


def pytidb_rows(vs: list[tuple[int, float]], fts: list[tuple[int, float]]) -> tuple[list[Any], list[Any]]:
    make = result_tuple(FIELDS)
    return (
        [make([key, d, None, 1 - d]) for key, d in vs],
        [make([key, None, s, s]) for key, s in fts],
    )


def test_pytidb_rrf() -> None:
    vs, fts = pytidb_rows(VS, FTS)
    names, rows = fusion_result_rows_by_rrf(vs, fts, lambda r: r.id, k=60)
    assert names == FIELDS
    expected = [
        (101, 0.1, 2.4, 0.03252),
        (198, 0.4, 2.5, 0.03202),
        (175, 0.5, 2.2, 0.03101),
        (203, 0.2, None, 0.01613),
        (110, None, 2.3, 0.01587),  # ties with 150: the smaller key first
        (150, 0.3, None, 0.01587),
        (250, None, 2.1, 0.01538),
    ]
    assert [(r.id, r._distance, r._match_score) for r in rows] == [e[:3] for e in expected]
    assert [r._score for r in rows] == pytest.approx([e[3] for e in expected], abs=1e-5)
    _, only_vs = fusion_result_rows_by_rrf(vs[:3], [], lambda r: r.id, k=None)  # None means 60
    assert [r._score for r in only_vs] == pytest.approx([0.01639, 0.01613, 0.01587], abs=1e-5)
    assert fusion_result_rows_by_rrf([], [], lambda r: r.id) == ([], [])


@pytest.mark.parametrize(
    ("vs", "fts", "metric", "weights", "expected"),
    [
        (
            VS,
            FTS,
            "L2",
            (0.5, 0.5),
            [
                (101, 0.84261),
                (198, 0.75776),
                (175, 0.71662),
                (203, 0.43717),
                (150, 0.40723),
                (110, 0.36945),
                (250, 0.35854),
            ],
        ),
        (
            [(101, 0.1), (203, 0.0), (150, 0.2)],
            [(101, 2.4), (110, 2.3)],
            "COSINE",
            (0.5, 0.5),
            [(101, 0.84933), (203, 0.5), (150, 0.45), (110, 0.36945)],
        ),
        (VS[:3], [], "L2", (0.5, 0.5), [(101, 0.46827), (203, 0.43717), (150, 0.40723)]),
        ([], FTS[:3], "L2", (0.5, 0.5), [(198, 0.37888), (101, 0.37433), (110, 0.36945)]),
        (
            VS[:2],
            [(101, 2.4), (110, 2.3)],
            "L2",
            (0.3, 0.7),
            [(101, 0.80503), (110, 0.51723), (203, 0.26230)],
        ),
    ],
)
def test_pytidb_weighted(
    vs: list[tuple[int, float]],
    fts: list[tuple[int, float]],
    metric: str,
    weights: tuple[float, float],
    expected: list[tuple[int, float]],
) -> None:
    vs_rows, fts_rows = pytidb_rows(vs, fts)
    names, rows = fusion_result_rows_by_weighted(vs_rows, metric, fts_rows, lambda r: r.id, *weights)
    assert names == FIELDS
    assert [r.id for r in rows] == [e[0] for e in expected]
    assert [r._score for r in rows] == pytest.approx([e[1] for e in expected], abs=1e-3)


def test_pytidb_functions_take_dicts_and_weights_zero_or_one() -> None:
    vs = [{"id": 1, "_distance": 0.2}]
    fts = [{"id": 2, "_match_score": 1.0}]
    names, rows = fusion_result_rows_by_weighted(vs, "cosine", fts, lambda r: r["id"], 1.0, 0.0)
    assert names == ["id", "_distance", "_match_score", "_score"]
    assert rows == [
        {"id": 1, "_distance": 0.2, "_match_score": None, "_score": pytest.approx(0.9)},
        {"id": 2, "_distance": None, "_match_score": 1.0, "_score": 0.0},
    ]
    assert math.isclose(rows[0]["_score"], 0.9)
