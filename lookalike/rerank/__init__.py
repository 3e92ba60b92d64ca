"""Rerankers: re-order a search's rows by a model's relevance of one text column to the query.

``search.rerank(reranker, column)`` on vector, full-text and hybrid searches; see
:mod:`lookalike.rerank.base` for the seam and how failures are handled, :mod:`~lookalike.rerank.bm25`
for the offline reranker and :mod:`~lookalike.rerank.jina` for Jina AI's API.
"""

from lookalike.rerank.base import BaseReranker, RerankResult, RerankWarning, rerank_rows
from lookalike.rerank.registry import RERANKERS, Reranker, known_rerankers, register_reranker

__all__ = [
    "RERANKERS",
    "BaseReranker",
    "RerankResult",
    "RerankWarning",
    "Reranker",
    "known_rerankers",
    "register_reranker",
    "rerank_rows",
]
