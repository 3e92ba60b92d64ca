"""The reranker seam: :class:`BaseReranker` and how a search applies one to its rows.

A reranker scores documents against a query::

    reranker.rerank("red boots", ["red leather boots", "a blue hat"], top_n=2)
    # -> [RerankResult(index=0, relevance_score=0.93), RerankResult(index=1, relevance_score=0.02)]

It returns ``min(top_n, len(documents))`` results, one per chosen document: its position in
``documents`` and a relevance score, higher is better. Plain ``(index, score)`` tuples and pytidb's
result objects (``.index``, ``.relevance_score``) are accepted too, so pytidb rerankers plug in.

:func:`rerank_rows` is what ``.rerank(reranker, column)`` on a search runs: it sends each row's
``column`` value as a document, checks the answer (the count, each index in range and used once, each
score a finite number) and reorders the rows by score. ``_score`` becomes the reranker's score; the
search's own fields (``_distance``, ``_match_score``) stay. A reranker that fails (raises, or answers
something the checks reject) is an :class:`~lookalike.errors.EngineError` naming it, with the cause on
``__cause__``; with ``on_error="fallback"`` the search keeps its own order instead and warns.
"""

from __future__ import annotations

import math
import numbers
import warnings
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from lookalike.errors import ConfigurationError, EngineError, describe_item

__all__ = [
    "BaseReranker",
    "RerankOnError",
    "RerankResult",
    "RerankStep",
    "RerankWarning",
    "check_on_error",
    "check_reranker",
    "rerank_pool",
    "rerank_rows",
    "reranker_name",
]

RerankOnError = Literal["raise", "fallback"]
"""What a search does when its reranker fails: raise an ``EngineError``, or keep its own order."""


class RerankWarning(UserWarning):
    """A reranker failed and ``on_error="fallback"`` kept the search's own order."""


@dataclass(frozen=True)
class RerankResult:
    """One reranked document: its position in the documents sent and its relevance (higher is better).

    Unpacks as a tuple: ``index, score = result``.
    """

    index: int
    relevance_score: float

    def __iter__(self) -> Iterator[Any]:
        return iter((self.index, self.relevance_score))


class BaseReranker(ABC):
    """Base class of rerankers (pytidb's name): implement :meth:`rerank`."""

    @property
    def name(self) -> str:
        """How errors name this reranker (``"jina_ai/jina-reranker-v2-base-multilingual"``)."""
        return type(self).__name__

    @abstractmethod
    def rerank(self, query: str, documents: list[str], top_n: int | None = None) -> Sequence[Any]:
        """The ``min(top_n, len(documents))`` most relevant documents, best first, as
        :class:`RerankResult` (or ``(index, score)`` tuples); ``top_n=None`` means all."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"


def reranker_name(reranker: Any) -> str:
    """A reranker's name for messages: its ``name``, else its model name, else its class name."""
    for attr in ("name", "model_name"):
        value = getattr(reranker, attr, None)
        if isinstance(value, str) and value:
            return value
    return type(reranker).__name__


def check_reranker(reranker: Any) -> Any:
    """``reranker`` if it has a ``rerank(query, documents, top_n)`` method, else ConfigurationError."""
    if not callable(getattr(reranker, "rerank", None)):
        raise ConfigurationError(
            f"rerank() needs a reranker (a BaseReranker, e.g. lookalike.Reranker('bm25')), got "
            f"{describe_item(reranker, limit=60)}"
        )
    return reranker


def check_on_error(on_error: Any) -> RerankOnError:
    """Validate ``on_error`` for ``.rerank()``."""
    if on_error not in ("raise", "fallback"):
        raise ConfigurationError(f"rerank on_error must be 'raise' or 'fallback', got {on_error!r}")
    return on_error


def rerank_pool(limit: int) -> int:
    """How many rows a search fetches for its reranker to choose ``limit`` from: ``max(4 × limit, 40)``
    (a reranker can only promote what the search found; 40 documents is one cheap request)."""
    return max(4 * limit, 40)


@dataclass(frozen=True)
class RerankStep:
    """A search's ``.rerank(...)`` settings: the reranker, the text column it reads, the failure policy
    and, optionally, the text to rank against (default: the search's own text query)."""

    reranker: Any
    column: str | None
    on_error: RerankOnError = "raise"
    query: str | None = None

    @classmethod
    def build(
        cls, reranker: Any, column: str | None, on_error: Any, query: str | None, columns: Any
    ) -> RerankStep:
        """Check the arguments (``columns``: the table's column names) and make the step."""
        check_reranker(reranker)
        if column is not None and column not in columns:
            raise ConfigurationError(
                f"rerank column {column!r} is not a column of the table; columns: {', '.join(columns)}"
            )
        if query is not None and not isinstance(query, str):
            raise ConfigurationError(f"rerank query must be text, got {describe_item(query, limit=40)}")
        return cls(reranker, column, check_on_error(on_error), query)

    def text_query(self, search_query: Any) -> str:
        """The text the reranker ranks against: ``query=`` or the search's query, which must be text."""
        query = self.query if self.query is not None else search_query
        if not isinstance(query, str) or not query.strip():
            raise ConfigurationError(
                f"rerank needs a text query, and this search's query is {describe_item(query, limit=40)}; "
                "pass it as .rerank(reranker, column, query='...')"
            )
        return query

    def apply(
        self, search_query: Any, rows: list[dict[str, Any]], column: str, limit: int
    ) -> list[dict[str, Any]]:
        """Rerank ``rows`` (the search's pool) and keep the best ``limit``."""
        query = self.text_query(search_query)
        return rerank_rows(self.reranker, query, rows, column, top_n=limit, on_error=self.on_error)


def rerank_rows(
    reranker: Any,
    query: str,
    rows: list[dict[str, Any]],
    column: str,
    *,
    top_n: int,
    on_error: RerankOnError = "raise",
) -> list[dict[str, Any]]:
    """The ``top_n`` best of ``rows`` by ``reranker``'s relevance of ``row[column]`` to ``query``.

    Rows get ``_score`` = the reranker's score. On failure: :class:`EngineError` naming the reranker,
    or, with ``on_error="fallback"``, the first ``top_n`` rows unchanged and a :class:`RerankWarning`.
    """
    if not rows:
        return rows
    documents = [_document(row.get(column)) for row in rows]
    want = min(top_n, len(rows))
    try:
        answer = reranker.rerank(query, documents, want)
        ranked = _check_answer(answer, len(documents), want)
    except Exception as exc:
        error = EngineError(f"reranker {reranker_name(reranker)!r} failed: {_reason(exc)}", column=column)
        if on_error == "fallback":
            warnings.warn(f"{error}; keeping the search's own order", RerankWarning, stacklevel=3)
            return rows[:top_n]
        raise error from exc
    out = []
    for index, score in ranked:
        row = dict(rows[index])
        row["_score"] = score
        out.append(row)
    return out


def _document(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, (list, tuple)):  # a tag list or similar
        return " ".join(str(v) for v in value)
    return str(value)


class _BadAnswer(Exception):
    """The reranker answered something :func:`rerank_rows` cannot use."""


def _check_answer(answer: Any, n: int, want: int) -> list[tuple[int, float]]:
    try:
        items = list(answer)
    except TypeError:
        raise _BadAnswer(f"it returned {describe_item(answer, limit=60)}, not a list of results") from None
    if len(items) != want:
        raise _BadAnswer(f"it returned {len(items)} results for {n} documents (expected {want})")
    seen: set[int] = set()
    out: list[tuple[int, float]] = []
    for position, item in enumerate(items):
        index, score = _unpack(item, position)
        if not 0 <= index < n:
            raise _BadAnswer(f"result {position} has index {index}, outside 0..{n - 1}")
        if index in seen:
            raise _BadAnswer(f"result {position} repeats index {index}")
        seen.add(index)
        out.append((index, score))
    # best first; a reranker's own order breaks ties (sorted() is stable)
    return sorted(out, key=lambda pair: -pair[1])


def _unpack(item: Any, position: int) -> tuple[int, float]:
    if isinstance(item, Mapping):
        index, score = item.get("index"), item.get("relevance_score", item.get("score"))
    elif hasattr(item, "index") and hasattr(item, "relevance_score") and not isinstance(item, tuple):
        index, score = item.index, item.relevance_score
    else:
        try:
            index, score = item
        except (TypeError, ValueError):
            raise _BadAnswer(
                f"result {position} is {describe_item(item, limit=60)}, not (index, score)"
            ) from None
    if isinstance(index, bool) or not isinstance(index, numbers.Integral):
        raise _BadAnswer(f"result {position} has index {index!r}, not an integer")
    if isinstance(score, bool) or not isinstance(score, numbers.Real) or not math.isfinite(score):
        raise _BadAnswer(f"result {position} has score {score!r}, not a finite number")
    return int(index), float(score)


def _reason(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if isinstance(exc, _BadAnswer) else f"{type(exc).__name__}: {text}"
