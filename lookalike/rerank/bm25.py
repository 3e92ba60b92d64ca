"""A reranker that needs no network and no model: Okapi BM25 over the documents it is given.

``Reranker("bm25")`` scores each candidate's text against the query's words with BM25, the document
frequencies taken from the candidates themselves (the search's pool, not the whole table)::

    score(d) = Σ_{t in query} idf(t) · tf(t, d) · (k1 + 1) / (tf(t, d) + k1 · (1 - b + b · |d| / avg|d|))
    idf(t)   = ln(1 + (N - n(t) + 0.5) / (n(t) + 0.5))

with ``k1 = 1.2``, ``b = 0.75`` by default; words are runs of Unicode letters and digits, compared
case-insensitively, each query word counted once.

Why this one: it costs microseconds per candidate, is deterministic, works offline on every engine,
and scores the same way whatever the engine's own full-text ranking is (SQLite FTS5's bm25 and
PostgreSQL's ``ts_rank`` differ), so it is the lexical re-ordering to put after a *vector* search over
a caption or tag column. Scoring text against the table's own multimodal embedder was the other
choice; it would re-embed every candidate on each query, which on CPU costs more than the search.
"""

from __future__ import annotations

import math
import re
from collections import Counter

from lookalike.errors import ConfigurationError
from lookalike.rerank.base import BaseReranker, RerankResult

__all__ = ["BM25Reranker", "words"]

_WORD = re.compile(r"[^\W_]+")


def words(text: str) -> list[str]:
    """Case-folded runs of letters and digits (any script)."""
    return [w.casefold() for w in _WORD.findall(text)]


class BM25Reranker(BaseReranker):
    """Okapi BM25 over the candidates (see the module notes); ``Reranker("bm25")``."""

    def __init__(self, model_name: str | None = None, *, k1: float = 1.2, b: float = 0.75) -> None:
        if isinstance(k1, bool) or not isinstance(k1, (int, float)) or not k1 >= 0 or math.isinf(k1):
            raise ConfigurationError(f"BM25Reranker k1 must be a finite number >= 0, got {k1!r}")
        if isinstance(b, bool) or not isinstance(b, (int, float)) or not 0 <= b <= 1:
            raise ConfigurationError(f"BM25Reranker b must be between 0 and 1, got {b!r}")
        self.k1 = float(k1)
        self.b = float(b)

    @property
    def name(self) -> str:
        return "bm25"

    def scores(self, query: str, documents: list[str]) -> list[float]:
        """The BM25 score of every document (0 for one that shares no word with the query)."""
        terms = list(dict.fromkeys(words(query)))
        docs = [Counter(words(d)) for d in documents]
        lengths = [sum(c.values()) for c in docs]
        n = len(docs)
        avg = (sum(lengths) / n) if n else 0.0
        idf = {}
        for t in terms:
            df = sum(1 for c in docs if t in c)
            idf[t] = math.log(1.0 + (n - df + 0.5) / (df + 0.5))
        out = []
        for counts, length in zip(docs, lengths):
            norm = self.k1 * (1.0 - self.b + self.b * (length / avg if avg else 0.0))
            total = 0.0
            for t in terms:
                tf = counts.get(t, 0)
                if tf:
                    total += idf[t] * tf * (self.k1 + 1.0) / (tf + norm)
            out.append(total)
        return out

    def rerank(self, query: str, documents: list[str], top_n: int | None = None) -> list[RerankResult]:
        """Documents by BM25 score, best first (ties keep their input order)."""
        scored = self.scores(query, documents)
        order = sorted(range(len(documents)), key=lambda i: -scored[i])
        if top_n is not None:
            order = order[:top_n]
        return [RerankResult(i, scored[i]) for i in order]
