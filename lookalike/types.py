"""Shared type aliases and the one argument check they need; imports only :mod:`lookalike.errors`.

Every layer uses these names, so they live below all of them; a module that needs ``OnError`` must
not have to import the table or the embedder to get it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, cast

from lookalike.errors import ConfigurationError

__all__ = [
    "SOURCE_TYPES",
    "Metric",
    "OnError",
    "Progress",
    "ProgressHook",
    "Purpose",
    "SourceType",
    "check_source_type",
]

SourceType = Literal["auto", "text", "image"]
"""How a source value is embedded: decided from the value, or forced to text or image."""

SOURCE_TYPES: tuple[str, ...] = ("auto", "text", "image")

Purpose = Literal["query", "document"]
"""What an embedding is for: a search query or a stored item (remote providers map it to their task)."""

OnError = Literal["raise", "skip"]
"""Bulk work's policy for a failing item: stop with an error naming it, or skip it and go on."""

Progress = Callable[[int, int], None]
"""``progress(done, total)``: items handled so far (including failed ones) out of the total."""

ProgressHook = Progress
"""The embedders' name for :data:`Progress`."""

Metric = Literal["cosine", "l2", "inner_product", "l1"]
"""Distance metrics a vector column can use."""


def check_source_type(source_type: str) -> SourceType:
    """Validate a ``source_type`` argument (raises ``ConfigurationError`` naming the choices)."""
    if source_type not in SOURCE_TYPES:
        raise ConfigurationError(f"source_type must be one of {SOURCE_TYPES}, got {source_type!r}")
    return cast(SourceType, source_type)
