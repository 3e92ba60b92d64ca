"""Reranker registry: ``"provider/model"`` (or a bare provider name) → a reranker, imported lazily.

::

    Reranker("jina_ai/jina-reranker-v2-base-multilingual", api_key=...)   # Jina AI's hosted API
    Reranker("bm25")                                                       # offline, no model
    Reranker(model_name="jina_ai/jina-reranker-v2-base-multilingual")     # pytidb's spelling

Providers live in :data:`RERANKERS`, a :class:`~lookalike._registry.LazyRegistry` like the embedding
providers'; :func:`register_reranker` adds one.
"""

from __future__ import annotations

from typing import Any

from lookalike._registry import LazyRegistry
from lookalike.errors import ConfigurationError
from lookalike.rerank.base import BaseReranker

__all__ = ["RERANKERS", "Reranker", "known_rerankers", "register_reranker"]

RERANKERS: LazyRegistry[BaseReranker] = LazyRegistry("reranker provider", "the {name!r} reranker")
"""Reranker providers by the name before the ``/`` of a model name."""

RERANKERS.register("jina_ai", "lookalike.rerank.jina:JinaReranker", aliases=("jina", "jinaai"))
RERANKERS.register("bm25", "lookalike.rerank.bm25:BM25Reranker", aliases=("local",))


def register_reranker(
    name: str,
    target: str | type[BaseReranker],
    *,
    extra: str | None = None,
    package: str | None = None,
    aliases: tuple[str, ...] = (),
) -> None:
    """Register a reranker provider under ``name`` (a class, or ``"module:Class"`` imported lazily).

    The class is called with the model name (the part after ``/``, or None) and the keyword options.
    """
    RERANKERS.register(name, target, extra=extra, package=package, aliases=aliases)


def known_rerankers() -> list[str]:
    """Names accepted before the ``/`` of a reranker name."""
    return RERANKERS.names()


# named like a class: pytidb spells it Reranker(model_name=...)
def Reranker(model_name: str, **options: Any) -> BaseReranker:
    """The reranker for ``"provider/model"`` (``"jina_ai/jina-reranker-v2-base-multilingual"``) or a
    bare provider name (``"bm25"``); ``options`` go to its constructor (``api_key=``, ``api_base=``…)."""
    if not isinstance(model_name, str) or not model_name.strip():
        raise ConfigurationError(
            f"Reranker needs a name such as 'bm25' or 'jina_ai/<model>', got {model_name!r}"
        )
    provider, _, model = model_name.partition("/")
    if provider not in RERANKERS:
        raise ConfigurationError(
            f"unknown reranker {model_name!r}: use 'provider/model' or a provider name, with provider one "
            f"of {', '.join(known_rerankers())} (e.g. 'bm25', 'jina_ai/jina-reranker-v2-base-multilingual')"
        )
    # providers take the model name positionally; BaseReranker itself declares no constructor
    factory: Any = RERANKERS.load(provider)
    reranker: BaseReranker = factory(model, **options) if model else factory(**options)
    return reranker
