"""Rerankers (issue 13, part 2): the seam's checks and fallback, the offline BM25 reranker against a
reference written here, the Jina reranker against a strict local stand-in for ``POST /v1/rerank``, and
``.rerank(...)`` on vector and hybrid searches over real tables on every engine."""

from __future__ import annotations

import math
import pickle
import random
import re
import threading
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import lookalike
from lookalike import (
    AuthenticationError,
    BaseReranker,
    ConfigurationError,
    EngineError,
    Field,
    FullTextField,
    ProviderError,
    Reranker,
    TableModel,
)
from lookalike.fusion import rrf_fusion
from lookalike.rerank import RerankResult, RerankWarning, known_rerankers, register_reranker, rerank_rows
from lookalike.rerank.bm25 import BM25Reranker
from lookalike.rerank.jina import JinaReranker
from tests.helpers.http_server import LocalHTTPServer, Request, Response
from tests.toy_embedder import ToyEmbedder

KEY = "test-key-123456"
JINA_MODELS = {"jina-reranker-v2-base-multilingual", "jina-reranker-v1-base-en", "jina-reranker-m0"}
ALLOWED_FIELDS = {"model", "query", "documents", "top_n", "return_documents"}


# --------------------------------------------------------------------------- a strict Jina stand-in


def stub_relevance(query: str, document: str) -> float:
    """The stand-in's "model": shared words over the document's length (deterministic, in [0, 1))."""
    q = set(re.findall(r"\w+", query.lower()))
    d = re.findall(r"\w+", document.lower())
    return sum(1 for w in d if w in q) / (len(d) + 1)


class JinaRerankStub:
    """``POST /v1/rerank`` as Jina documents it, checked strictly: a request that breaks the schema is
    answered 400 and recorded in ``violations``. ``script`` holds one-off answers for the next calls."""

    def __init__(self) -> None:
        self.server = LocalHTTPServer()
        self.server.route("/v1/rerank", self._handle, methods=["POST"])
        self.violations: list[str] = []
        self.bodies: list[dict[str, Any]] = []
        self.script: list[Response | str] = []
        self._lock = threading.Lock()

    @property
    def api_base(self) -> str:
        return self.server.url("/v1")

    def _reject(self, status: int, message: str, *, violation: bool = True) -> Response:
        if violation:
            self.violations.append(message)
        return Response.json({"detail": message}, status=status)

    def _handle(self, request: Request) -> Response:
        if request.headers.get("content-type", "").split(";")[0] != "application/json":
            return self._reject(400, "Content-Type must be application/json")
        if request.headers.get("authorization") != f"Bearer {KEY}":
            return self._reject(
                401, f"invalid API key {request.headers.get('authorization')}", violation=False
            )
        try:
            body = request.json()
        except ValueError:
            return self._reject(400, "body is not JSON")
        problem = self._check(body)
        if problem:
            return self._reject(400, problem)
        with self._lock:
            self.bodies.append(body)
            scripted = self.script.pop(0) if self.script else None
        if isinstance(scripted, Response):
            return scripted
        scores = [(i, stub_relevance(body["query"], d)) for i, d in enumerate(body["documents"])]
        ranked = sorted(scores, key=lambda p: -p[1])[: body.get("top_n", len(scores))]
        if scripted == "wrong_count":
            ranked = ranked[:-1]
        elif scripted == "out_of_range":
            ranked[0] = (len(scores) + 5, 1.0)
        results = [{"index": i, "relevance_score": s} for i, s in ranked]
        if body.get("return_documents", True):
            for r in results:
                r["document"] = {"text": body["documents"][r["index"]]}
        return Response.json(
            {"model": body["model"], "usage": {"total_tokens": 10 * len(scores)}, "results": results}
        )

    def _check(self, body: Any) -> str | None:
        if not isinstance(body, dict):
            return "body must be an object"
        extra = set(body) - ALLOWED_FIELDS
        if extra:
            return f"unknown fields {sorted(extra)}"
        if body.get("model") not in JINA_MODELS:
            return f"unknown model {body.get('model')!r}"
        if not isinstance(body.get("query"), str) or not body["query"]:
            return "query must be a non-empty string"
        docs = body.get("documents")
        if not isinstance(docs, list) or not docs or not all(isinstance(d, str) for d in docs):
            return "documents must be a non-empty list of strings"
        top_n = body.get("top_n")
        if top_n is not None and (isinstance(top_n, bool) or not isinstance(top_n, int) or top_n < 1):
            return f"top_n must be a positive integer, got {top_n!r}"
        if "return_documents" in body and not isinstance(body["return_documents"], bool):
            return "return_documents must be a boolean"
        return None


@pytest.fixture
def jina() -> Iterator[JinaRerankStub]:
    stub = JinaRerankStub()
    with stub.server:
        yield stub
    assert stub.violations == []


@pytest.fixture(autouse=True)
def _no_keys_in_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("JINA_API_KEY", "JINA_AI_API_KEY", "JINA_API_BASE"):
        monkeypatch.delenv(name, raising=False)


def jina_reranker(stub: JinaRerankStub, **kw: Any) -> JinaReranker:
    options: dict[str, Any] = {"api_key": KEY, "api_base": stub.api_base, "backoff_base": 0.0, **kw}
    reranker = Reranker("jina_ai/jina-reranker-v2-base-multilingual", **options)
    assert isinstance(reranker, JinaReranker)
    return reranker


DOCS = ["red leather boots", "a blue hat", "boots for the beach", "red red red", "nothing here"]


# --------------------------------------------------------------------------- the Jina reranker


def test_jina_request_and_answer(jina: JinaRerankStub) -> None:
    reranker = jina_reranker(jina)
    got = reranker.rerank("red boots", DOCS, top_n=3)
    expected = sorted(((i, stub_relevance("red boots", d)) for i, d in enumerate(DOCS)), key=lambda p: -p[1])
    assert [(r.index, r.relevance_score) for r in got] == expected[:3]
    assert jina.bodies == [
        {
            "model": "jina-reranker-v2-base-multilingual",
            "query": "red boots",
            "documents": DOCS,
            "top_n": 3,
            "return_documents": False,
        }
    ]
    assert len(reranker.rerank("red boots", DOCS)) == len(DOCS)  # no top_n: all of them
    assert "top_n" not in jina.bodies[-1]
    assert reranker.rerank("red boots", []) == [] and len(jina.bodies) == 2  # nothing to send


@pytest.mark.parametrize("env", ["JINA_API_KEY", "JINA_AI_API_KEY"])
def test_jina_key_from_the_environment(
    jina: JinaRerankStub, monkeypatch: pytest.MonkeyPatch, env: str
) -> None:
    monkeypatch.setenv(env, KEY)
    reranker = Reranker(model_name="jina_ai/jina-reranker-v1-base-en", api_base=jina.api_base)
    assert [r.index for r in reranker.rerank("blue hat", DOCS, top_n=1)] == [1]


def test_jina_key_is_never_shown(jina: JinaRerankStub) -> None:
    with pytest.raises(AuthenticationError, match="no API key for the Jina reranker"):
        Reranker("jina_ai/jina-reranker-v2-base-multilingual", api_base=jina.api_base).rerank("x", DOCS)
    wrong = "wrong-key-987654"
    with pytest.raises(AuthenticationError, match="HTTP 401") as info:
        jina_reranker(jina, api_key=wrong).rerank("x", DOCS)
    assert wrong not in str(info.value) and "***" in str(info.value)  # the stub echoes the key back
    reranker = jina_reranker(jina)
    assert KEY not in repr(reranker) and KEY not in repr(vars(reranker))
    copy = pickle.loads(pickle.dumps(reranker))
    with pytest.raises(AuthenticationError):  # a pickle keeps no key
        copy.rerank("x", DOCS)


def test_jina_retries_and_errors(jina: JinaRerankStub) -> None:
    jina.script = [Response.json({"detail": "busy"}, 503), Response(429, b"", headers={"Retry-After": "0"})]
    assert len(jina_reranker(jina).rerank("red", DOCS, top_n=2)) == 2
    assert len(jina.bodies) == 3
    jina.script = [Response.json({"detail": "down"}, 500)] * 3
    with pytest.raises(ProviderError, match=r"HTTP 500.*gave up after 3 attempts"):
        jina_reranker(jina).rerank("red", DOCS)
    jina.script = [Response.json({"detail": "bad input"}, 422)]
    with pytest.raises(ProviderError, match="HTTP 422: bad input"):
        jina_reranker(jina).rerank("red", DOCS)
    jina.script = [Response.json({"model": "x"})]
    with pytest.raises(ProviderError, match="without a results list"):
        jina_reranker(jina).rerank("red", DOCS)
    jina.script = [Response(200, b"<html>", "text/html")]
    with pytest.raises(ProviderError, match="not JSON"):
        jina_reranker(jina).rerank("red", DOCS)


# --------------------------------------------------------------------------- the BM25 reranker


def reference_bm25(query: str, docs: list[str], k1: float = 1.2, b: float = 0.75) -> list[float]:
    toks = [re.findall(r"[^\W_]+", d.casefold()) for d in docs]
    terms = set(re.findall(r"[^\W_]+", query.casefold()))
    avg = sum(map(len, toks)) / len(toks)
    out = []
    for tok in toks:
        counts = Counter(tok)
        score = 0.0
        for t in terms:
            df = sum(1 for other in toks if t in other)
            idf = math.log(1 + (len(toks) - df + 0.5) / (df + 0.5))
            tf = counts[t]
            score += idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * len(tok) / avg)) if avg else 0.0
        out.append(score)
    return out


words = st.sampled_from(["red", "Boots", "hat", "beach", "sea", "cat", "été", "x1"])


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.lists(words, max_size=8).map(" ".join), min_size=1, max_size=15),
    st.lists(words, min_size=1, max_size=3).map(" ".join),
    st.integers(1, 20),
)
def test_bm25_equals_reference(docs: list[str], query: str, top_n: int) -> None:
    got = BM25Reranker().rerank(query, docs, top_n)
    ref = reference_bm25(query, docs)
    expected = sorted(range(len(docs)), key=lambda i: (-ref[i], i))[:top_n]
    assert [r.index for r in got] == expected
    assert [r.relevance_score for r in got] == pytest.approx([ref[i] for i in expected])


def test_bm25_bad_parameters() -> None:
    with pytest.raises(ConfigurationError, match="k1"):
        BM25Reranker(k1=-1)
    with pytest.raises(ConfigurationError, match="b must be between 0 and 1"):
        BM25Reranker(b=1.5)


# --------------------------------------------------------------------------- the seam


class Scripted(BaseReranker):
    """A reranker that answers whatever it is told to (or raises it)."""

    def __init__(self, answer: Any) -> None:
        self.answer = answer

    def rerank(self, query: str, documents: list[str], top_n: int | None = None) -> Any:
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


ROWS = [{"id": i, "caption": d, "_score": 1.0 - i / 10} for i, d in enumerate(DOCS)]


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        ([(0, 1.0)], "returned 1 results for 5 documents"),
        ([(0, 0.9), (1, 0.8), (2, 0.7), (3, 0.6)], "returned 4 results for 5 documents"),
        ([(0, 0.9), (9, 0.8), (1, 0.1)], "index 9, outside 0..4"),
        ([(0, 0.9), (-1, 0.8), (1, 0.1)], "index -1, outside 0..4"),
        ([(0, 0.9), (0, 0.8), (1, 0.1)], "repeats index 0"),
        ([(0, "high"), (1, 0.8), (2, 0.1)], "score 'high', not a finite number"),
        ([(0, math.nan), (1, 0.8), (2, 0.1)], "not a finite number"),
        ([(0.5, 1.0), (1, 0.8), (2, 0.1)], "index 0.5, not an integer"),
        ([7, (1, 0.8), (2, 0.1)], "result 0 is 7, not"),
        (None, "not a list of results"),
        (RuntimeError("model crashed"), "RuntimeError: model crashed"),
    ],
)
def test_bad_reranker_answers(answer: Any, message: str) -> None:
    reranker = Scripted(answer)
    with pytest.raises(EngineError, match=r"reranker 'Scripted' failed: .*" + re.escape(message)) as info:
        rerank_rows(reranker, "red", ROWS, "caption", top_n=3 if answer != [(0, 1.0)] else 5)
    if isinstance(answer, Exception):
        assert info.value.__cause__ is answer
    with pytest.warns(RerankWarning, match="reranker 'Scripted' failed"):
        kept = rerank_rows(reranker, "red", ROWS, "caption", top_n=3, on_error="fallback")
    assert kept == ROWS[:3]


def test_answers_in_every_accepted_shape() -> None:
    class PytidbLike:
        def __init__(self, index: int, relevance_score: float) -> None:
            self.index, self.relevance_score = index, relevance_score

    for answer in (
        [RerankResult(2, 0.5), RerankResult(4, 0.9)],
        [(2, 0.5), (4, 0.9)],
        [{"index": 2, "relevance_score": 0.5}, {"index": 4, "relevance_score": 0.9}],
        [PytidbLike(2, 0.5), PytidbLike(4, 0.9)],
    ):
        rows = rerank_rows(Scripted(answer), "q", ROWS, "caption", top_n=2)
        assert [(r["id"], r["_score"]) for r in rows] == [(4, 0.9), (2, 0.5)]  # sorted by score
    index, score = RerankResult(1, 0.25)
    assert (index, score) == (1, 0.25)


def test_registry() -> None:
    assert {"bm25", "jina_ai"} <= set(known_rerankers())
    assert isinstance(Reranker("bm25"), BM25Reranker)
    assert Reranker("jina/jina-reranker-m0", api_key=KEY).name == "jina_ai/jina-reranker-m0"
    with pytest.raises(ConfigurationError, match="unknown reranker 'cohere/rerank-v3'"):
        Reranker("cohere/rerank-v3")
    with pytest.raises(ConfigurationError, match="needs a name"):
        Reranker("")

    class Reverse(BaseReranker):
        def __init__(self, model_name: str | None = None) -> None:
            self.model_name = model_name

        def rerank(self, query: str, documents: list[str], top_n: int | None = None) -> list[RerankResult]:
            order = list(reversed(range(len(documents))))[:top_n]
            return [RerankResult(i, float(i)) for i in order]

    register_reranker("reverse", Reverse)
    made = Reranker("reverse/v1")
    assert isinstance(made, Reverse) and made.model_name == "v1"


# --------------------------------------------------------------------------- on real searches

QUERY = "red boots"
VOCAB = ["red", "boots", "leather", "hat", "beach", "sea", "cat", "snow"]


def make_table(client: lookalike.Client, toy: ToyEmbedder, rows: int = 60) -> lookalike.Table:
    class Item(TableModel):
        __tablename__ = "rerank_items"
        id: int | None = Field(default=None, primary_key=True)
        caption: str | None = FullTextField(default=None)
        note: str | None = Field(default=None)
        vec: list[float] | None = toy.VectorField(source_field="caption", source_type="text")

    table = client.create_table(schema=Item, if_exists="overwrite")
    rng = random.Random(5)
    table.bulk_insert(
        [
            {
                "caption": " ".join(rng.choice(VOCAB) for _ in range(rng.randint(1, 5))) + f" n{i}",
                "note": f"#{i}",
            }
            for i in range(rows)
        ]
    )
    return table


def bm25_reference_order(rows: list[dict[str, Any]], limit: int) -> list[tuple[int, float]]:
    ref = reference_bm25(QUERY, [r["caption"] for r in rows])
    order = sorted(range(len(rows)), key=lambda i: (-ref[i], i))[:limit]
    return [(rows[i]["id"], ref[i]) for i in order]


def test_vector_search_rerank(client: lookalike.Client, toy: ToyEmbedder) -> None:
    table = make_table(client, toy)
    pool = table.search(QUERY).limit(40).to_list()  # max(4 × 5, 40)
    expected = bm25_reference_order(pool, 5)
    rows = table.search(QUERY).rerank(Reranker("bm25")).limit(5).to_list()  # default: the source field
    assert [(r["id"], r["_score"]) for r in rows] == [(i, pytest.approx(s)) for i, s in expected]
    by_id = {r["id"]: r["_distance"] for r in pool}
    assert all(r["_distance"] == pytest.approx(by_id[r["id"]]) for r in rows)
    selected = table.search(QUERY).select("note").rerank(Reranker("bm25"), "caption").limit(5).to_list()
    assert [r["note"] for r in selected] == [f"#{i - 1}" for i, _ in expected]
    assert all("caption" not in r for r in selected)  # read for the reranker, then left out


def test_fulltext_search_rerank(client: lookalike.Client, toy: ToyEmbedder) -> None:
    table = make_table(client, toy)
    pool = table.search(QUERY, search_type="fulltext").limit(40).to_list()  # max(4 × 5, 40)
    assert 5 < len(pool) <= 40
    expected = bm25_reference_order(pool, 5)
    search = table.search(QUERY, search_type="fulltext")
    rows = search.rerank(Reranker("bm25")).limit(5).to_list()  # default: the searched text column
    assert [(r["id"], r["_score"]) for r in rows] == [(i, pytest.approx(s)) for i, s in expected]
    assert all("_distance" not in r for r in rows)
    selected = search.select("note").rerank(Reranker("bm25"), "caption").limit(5).to_list()
    assert [r["note"] for r in selected] == [f"#{i - 1}" for i, _ in expected]
    # the caption is read for the reranker only; _match_score keeps the full-text relevance
    assert all(set(r) == {"note", "_score", "_match_score"} for r in selected)
    if client.engine.name == "tidb":
        return  # TiDB's FTS_MATCH_WORD has no operator syntax for a raw query
    # a raw query (engine syntax) is ranked against the text given as query=
    raw = "red OR boots" if client.engine.name == "sqlite" else "red | boots"
    raw_search = table.search(raw, search_type="fulltext").raw()
    want = bm25_reference_order(raw_search.limit(40).to_list(), 5)
    got = raw_search.rerank(Reranker("bm25"), query=QUERY).limit(5).to_list()
    assert [(r["id"], r["_score"]) for r in got] == [(i, pytest.approx(s)) for i, s in want]


def test_fulltext_rerank_failure_and_bad_arguments(
    client: lookalike.Client, toy: ToyEmbedder, jina: JinaRerankStub
) -> None:
    table = make_table(client, toy, rows=20)
    search = table.search(QUERY, search_type="fulltext").limit(3)
    plain = search.to_list()
    jina.script = ["out_of_range"]
    with pytest.warns(RerankWarning, match="outside"):
        kept = search.rerank(jina_reranker(jina), on_error="fallback").to_list()
    assert kept == plain
    jina.script = ["wrong_count"]
    with pytest.raises(EngineError, match="failed: it returned 2"):
        search.rerank(jina_reranker(jina)).to_list()
    with pytest.raises(ConfigurationError, match="rerank column 'nope' is not a column"):
        search.rerank(Reranker("bm25"), "nope")
    with pytest.raises(ConfigurationError, match="rerank\\(\\) needs a reranker"):
        search.rerank(None)
    with pytest.raises(ConfigurationError, match="rerank query must be text"):
        search.rerank(Reranker("bm25"), query=b"red")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="on_error must be"):
        search.rerank(Reranker("bm25"), on_error="ignore")


def test_hybrid_rerank_with_jina(client: lookalike.Client, toy: ToyEmbedder, jina: JinaRerankStub) -> None:
    table = make_table(client, toy)
    # the reranker sees the best 40 fused rows of the two pools of max(4 × 4, 40) rows
    vec = table.search(QUERY).limit(40).to_list()
    txt = table.search(QUERY, search_type="fulltext").limit(40).to_list()
    fused = rrf_fusion(vec, txt, key="id")[:40]
    rows = table.search(QUERY, search_type="hybrid").rerank(jina_reranker(jina)).limit(4).to_list()
    sent = jina.bodies[-1]
    assert sent["top_n"] == 4 and sorted(sent["documents"]) == sorted(r["caption"] for r in fused)
    scores = sorted(
        ((stub_relevance(QUERY, d), i) for i, d in enumerate(sent["documents"])), key=lambda p: -p[0]
    )
    assert [r["caption"] for r in rows] == [sent["documents"][i] for _, i in scores[:4]]
    assert [r["_score"] for r in rows] == [s for s, _ in scores[:4]]
    assert all("_distance" in r and "_match_score" in r for r in rows)


def test_hybrid_rerank_failure_and_fallback(
    client: lookalike.Client, toy: ToyEmbedder, jina: JinaRerankStub
) -> None:
    table = make_table(client, toy, rows=20)
    plain = table.search(QUERY, search_type="hybrid").limit(3).to_list()
    jina.script = ["wrong_count"]
    search = table.search(QUERY, search_type="hybrid").limit(3)
    with pytest.raises(
        EngineError, match="jina_ai/jina-reranker-v2-base-multilingual' failed: it returned 2"
    ):
        search.rerank(jina_reranker(jina)).to_list()
    jina.script = ["out_of_range"]
    with pytest.warns(RerankWarning, match="outside"):
        kept = search.rerank(jina_reranker(jina), on_error="fallback").to_list()
    assert kept == plain
    jina.script = [Response.json({"detail": "down"}, 500)] * 3
    with pytest.raises(EngineError, match="HTTP 500") as info:
        search.rerank(jina_reranker(jina)).to_list()
    assert isinstance(info.value.__cause__, ProviderError)


def test_bad_rerank_arguments(client: lookalike.Client, toy: ToyEmbedder) -> None:
    table = make_table(client, toy, rows=3)
    search = table.search(QUERY)
    with pytest.raises(ConfigurationError, match="rerank\\(\\) needs a reranker"):
        search.rerank("bm25")
    with pytest.raises(ConfigurationError, match="rerank column 'nope' is not a column"):
        search.rerank(Reranker("bm25"), "nope")
    with pytest.raises(ConfigurationError, match="on_error must be 'raise' or 'fallback'"):
        search.rerank(Reranker("bm25"), on_error="skip")
    by_vector = table.search(vector=[0.25] * 16).rerank(Reranker("bm25"), "caption")
    with pytest.raises(ConfigurationError, match="rerank needs a text query"):
        by_vector.to_list()
    rows = by_vector.rerank(Reranker("bm25"), "caption", query=QUERY).limit(2).to_list()
    assert len(rows) == 2
    hybrid = table.search(QUERY, search_type="hybrid")
    with pytest.raises(ConfigurationError, match="rerank column 'nope'"):
        hybrid.rerank(Reranker("bm25"), "nope")
