"""Embedding models: the :class:`EmbeddingFunction` entry point, the base class and the registry."""

from lookalike.embeddings.base import BaseEmbeddingFunction, EmbedInput, classify, l2_normalize
from lookalike.embeddings.function import EmbeddingFunction
from lookalike.embeddings.registry import (
    DEFAULT_MODEL,
    build_from_config,
    known_providers,
    register_provider,
)

__all__ = [
    "DEFAULT_MODEL",
    "BaseEmbeddingFunction",
    "EmbedInput",
    "EmbeddingFunction",
    "build_from_config",
    "classify",
    "known_providers",
    "l2_normalize",
    "register_provider",
]
