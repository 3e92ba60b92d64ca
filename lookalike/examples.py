"""Several examples in one query: "like these, not like those", with weights.

::

    table.search(positive=["golden retriever", ("pool.jpg", 2)], negative=["grass"]).limit(10)

Each example is words, an image (path, URL, bytes, PIL image, data URI — what ``search(image=...)``
takes), a vector, an ``(item, weight)`` tuple, or an :class:`Example`. The query vector is

    q = Σ wᵢ · pᵢ/‖pᵢ‖  −  Σ wⱼ · nⱼ/‖nⱼ‖,   then q/‖q‖

over the positive embeddings pᵢ and negative ones nⱼ (the approach of rclip's ``+``/``-`` queries),
and the search is an ordinary vector search with it: filters, limit, select and num_candidate work.
Unit-normalising each example first makes a weight mean the same for words and pictures, whose
embeddings may differ in length.

Decisions, each tested:

- At least one positive example is required. A query of negatives only ("anything but grass") would
  rank by the opposite direction of grass, which in CLIP-like spaces finds odd pictures rather than
  "everything else", so it is refused with a :class:`~lookalike.ConfigurationError`.
- A weight must be a finite number above 0 (0, negative, NaN and infinity are refused, naming the
  example): to push away from something, put it in ``negative``.
- Examples that cancel out (the same picture as positive and negative) leave no direction to search
  in: refused.
- Rows that are themselves examples are not left out of the results (they are usually the nearest);
  filter them out with ``.filter(...)`` when they should not show.

:func:`parse_terms` reads the command line's form, ``"2:golden retriever" + ./pool.jpg - grass``.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from lookalike.embeddings.base import check_vector, classify
from lookalike.errors import ConfigurationError, LookalikeError, describe_item
from lookalike.images import is_image_ref

if TYPE_CHECKING:
    from lookalike.embeddings.base import BaseEmbeddingFunction
    from lookalike.schema import VectorSpec

__all__ = [
    "Example",
    "ExampleKind",
    "Examples",
    "combine_vectors",
    "embed_examples",
    "examples_vector",
    "parse_terms",
    "read_examples",
]

ExampleKind = Literal["auto", "text", "image", "vector"]
_KINDS = ("auto", "text", "image", "vector")
_WEIGHT_PREFIX = re.compile(r"^([-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)):(.*)$", re.DOTALL)
_CANCELLED = 1e-6  # |q| below this share of the total weight: the examples cancelled each other out


@dataclass(frozen=True)
class Example:
    """One example: ``value`` read as ``kind`` (``"auto"`` decides from the value), counted ``weight`` times."""

    value: Any
    weight: float = 1.0
    kind: ExampleKind = "auto"


@dataclass(frozen=True)
class Examples:
    """The checked examples of one query (from :func:`read_examples`): weights valid, vectors as arrays."""

    positive: tuple[Example, ...]
    negative: tuple[Example, ...]

    def __repr__(self) -> str:
        return f"<Examples +{len(self.positive)} -{len(self.negative)}>"


# ---------------------------------------------------------------------- reading the examples


def read_examples(positive: Sequence[Any] | None, negative: Sequence[Any] | None = None) -> Examples:
    """Check the ``positive=`` / ``negative=`` lists and return them as :class:`Examples`.

    Raises :class:`~lookalike.ConfigurationError` naming the example (``positive example 2``) for a
    bad weight or an item that is neither words, an image nor a vector, and when there is no positive
    example at all.
    """
    pos = _read_side(positive, "positive")
    neg = _read_side(negative, "negative")
    if not pos:
        if neg:
            raise ConfigurationError(
                "negative examples need at least one positive example to move away from; "
                "add positive=[...] (a query of negatives only is not supported)"
            )
        raise ConfigurationError("positive= is empty: give at least one example to search for")
    return Examples(tuple(pos), tuple(neg))


def _read_side(items: Sequence[Any] | None, side: str) -> list[Example]:
    if items is None:
        return []
    if isinstance(items, (str, bytes, Example)) or not isinstance(items, (list, tuple)):
        raise ConfigurationError(
            f"{side}= takes a list of examples, e.g. {side}=['a dog', 'photo.jpg'], got {describe_item(items)}"
        )
    return [_read_one(item, f"{side} example {i}") for i, item in enumerate(items)]


def _read_one(item: Any, where: str) -> Example:
    if isinstance(item, Example):
        if item.kind not in _KINDS:
            raise ConfigurationError(f"{where}: kind must be one of {list(_KINDS)}, got {item.kind!r}")
        value, weight, kind = item.value, item.weight, item.kind
    elif _is_pair(item):
        value, weight, kind = item[0], item[1], "auto"
    else:
        value, weight, kind = item, 1.0, "auto"
    weight = _check_weight(weight, value, where)
    if kind == "vector" or (kind == "auto" and _is_vector(value)):
        return Example(np.asarray(value, dtype=np.float64), weight, "vector")
    if kind == "text":
        if not isinstance(value, str) or not value.strip():
            raise ConfigurationError(f"{where}: a text example must be non-empty words", item=value)
    elif kind == "auto" and not _is_text_or_image(value):
        raise ConfigurationError(
            f"{where} ({describe_item(value)}) is neither words, an image (path, URL, bytes, PIL image, "
            "data URI) nor a vector; pairs are (item, weight) tuples",
            item=value,
        )
    return Example(value, weight, kind)


def _is_pair(item: Any) -> bool:
    # (item, weight): a 2-tuple whose second element is a number (a bool too, to be refused as a
    # weight) and first is not: a 2-d vector is two numbers
    return (
        isinstance(item, tuple)
        and len(item) == 2
        and isinstance(item[1], (int, float, np.integer, np.floating))
        and not _is_number(item[0])
    )


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def _is_vector(value: Any) -> bool:
    if isinstance(value, np.ndarray):
        return value.ndim == 1 and value.size > 0 and value.dtype.kind in "fiu"
    if isinstance(value, (list, tuple)) and value:
        return all(_is_number(x) for x in value)
    return False


def _is_text_or_image(value: Any) -> bool:
    if isinstance(value, str):
        return bool(value.strip())
    return is_image_ref(value)


def _check_weight(weight: Any, value: Any, where: str) -> float:
    ok = _is_number(weight) and math.isfinite(float(weight)) and float(weight) > 0
    if not ok:
        raise ConfigurationError(
            f"{where} ({describe_item(value)}): weight must be a finite number above 0, got {weight!r}"
            " (to push away from an example, put it in negative=)",
            item=value,
        )
    return float(weight)


# ---------------------------------------------------------------------- combining


def combine_vectors(
    positive: Sequence[tuple[np.ndarray, float]], negative: Sequence[tuple[np.ndarray, float]] = ()
) -> np.ndarray:
    """``Σ w·p/‖p‖ − Σ w·n/‖n‖``, normalised to unit length, as float32.

    Each entry is ``(vector, weight)``. Raises :class:`~lookalike.ConfigurationError` for a vector of
    zero length (it has no direction) and when the examples cancel out.
    """
    if not positive:
        raise ConfigurationError("combine_vectors needs at least one positive vector")
    total = np.zeros(np.asarray(positive[0][0]).shape, dtype=np.float64)
    weights = 0.0
    for sign, side, entries in ((1.0, "positive", positive), (-1.0, "negative", negative)):
        for i, (vector, weight) in enumerate(entries):
            v = np.asarray(vector, dtype=np.float64)
            if v.shape != total.shape:
                raise ConfigurationError(f"{side} example {i} has {v.size} dimensions, expected {total.size}")
            norm = float(np.linalg.norm(v))
            if norm == 0.0 or not math.isfinite(norm):
                raise ConfigurationError(
                    f"{side} example {i} is a vector of length {norm}: it has no direction"
                )
            total += sign * weight * v / norm
            weights += weight
    length = float(np.linalg.norm(total))
    if length <= _CANCELLED * weights:
        raise ConfigurationError(
            "the examples cancel each other out (the negative examples are the positive ones): "
            "there is no direction left to search in"
        )
    return (total / length).astype(np.float32)


def embed_examples(
    examples: Sequence[Example], embed_fn: BaseEmbeddingFunction | None, dimensions: int | None, side: str
) -> list[np.ndarray]:
    """One vector per example: words embedded as text and images as images, each kind in batches.

    Vectors are checked for ``dimensions``; an error names the example (``item N``, ``side``).
    """
    out: list[np.ndarray | None] = [None] * len(examples)
    texts: list[int] = []
    images: list[int] = []
    for i, ex in enumerate(examples):
        if ex.kind == "vector":
            out[i] = check_vector(ex.value, dimensions, item=ex.value, what=f"{side} example {i}")
            continue
        if embed_fn is None:
            raise ConfigurationError(
                f"{side} example {i} ({describe_item(ex.value)}) needs an embedding function, and this "
                "vector column has none: give vectors, or open the table with embed_fn="
            )
        kind = ex.kind
        if kind == "auto":
            try:
                kind = classify(ex.value, "auto", multimodal=embed_fn.multimodal).kind
            except LookalikeError as exc:
                raise exc.with_context(index=i, item=ex.value) from None
        (texts if kind == "text" else images).append(i)
    groups: tuple[tuple[Literal["text", "image"], list[int]], ...] = (("text", texts), ("image", images))
    for kind, positions in groups:
        if not positions or embed_fn is None:
            continue
        try:
            vectors = embed_fn.embed_sources(
                [examples[i].value for i in positions], source_type=kind, purpose="query"
            )
        except LookalikeError as exc:
            where = positions[exc.index] if exc.index is not None and exc.index < len(positions) else None
            exc.with_context(index=where)
            exc.add_remark(f"({side} example)")
            raise
        for i, vector in zip(positions, vectors):
            out[i] = check_vector(vector, dimensions, item=examples[i].value, what=f"{side} example {i}")
    return [v for v in out if v is not None]


def examples_vector(examples: Examples, vec: VectorSpec) -> np.ndarray:
    """The query vector of ``examples`` for the vector column ``vec`` (embedded with its ``embed_fn``)."""
    pos = embed_examples(examples.positive, vec.embed_fn, vec.dimensions, "positive")
    neg = embed_examples(examples.negative, vec.embed_fn, vec.dimensions, "negative")
    return combine_vectors(
        [(v, ex.weight) for v, ex in zip(pos, examples.positive)],
        [(v, ex.weight) for v, ex in zip(neg, examples.negative)],
    )


# ---------------------------------------------------------------------- the command line's form


def parse_terms(
    args: Sequence[str], *, force: Literal["text", "image"] | None = None
) -> tuple[list[Example], list[Example]]:
    """Read ``"2:golden retriever" + ./pool.jpg - grass`` into ``(positive, negative)`` examples.

    Terms are joined by ``+`` (the next term is positive) or ``-`` (negative); the first term is
    positive unless a ``-`` comes before it. A term may start with a weight, ``N:`` (``2:``, ``0.5:``);
    a prefix that is not a plain decimal number is part of the words (``x:cat`` is the text "x:cat",
    so is ``1e3:cat``; write ``1:10:30 sunset`` to search for "10:30 sunset"). A term that is an
    existing file, an http(s) URL or a ``data:image/`` URI is an image, anything else words;
    ``force`` reads every term as text or as images instead.

    Raises :class:`~lookalike.ConfigurationError` for an operator with no term after it (``cat -``),
    two operators in a row (``+ +``), two terms with no operator between them, an empty term, and a
    weight that is 0, negative, or has nothing after it (``2:``).
    """
    positive: list[Example] = []
    negative: list[Example] = []
    sign: str | None = "+"  # the first term is positive; None: a term was read, an operator comes next
    written: str | None = None  # the operator just written, waiting for its term
    for n, arg in enumerate(args):
        if arg in ("+", "-"):
            if written is not None:
                raise ConfigurationError(
                    f"terms {n - 1} and {n} ({written!r} {arg!r}): two operators in a row"
                )
            sign = written = arg
            continue
        if sign is None:
            raise ConfigurationError(
                f"term {n} ({arg!r}) follows {args[n - 1]!r} with no + or - between them; join terms "
                'with + or -, or quote a phrase ("golden retriever")'
            )
        (positive if sign == "+" else negative).append(_parse_term(arg, n, force))
        sign = written = None
    if written is not None:
        raise ConfigurationError(f"{written!r} at the end has no term after it")
    if not positive and not negative:
        raise ConfigurationError("no search terms given")
    return positive, negative


def _parse_term(arg: str, n: int, force: Literal["text", "image"] | None) -> Example:
    weight, value = 1.0, arg
    match = _WEIGHT_PREFIX.match(arg)
    if match:
        weight = float(match.group(1))
        value = match.group(2)
        if not math.isfinite(weight) or weight <= 0:
            raise ConfigurationError(
                f"term {n} ({arg!r}): weight must be above 0, got {match.group(1)} (use - to push away)"
            )
        if not value.strip():
            raise ConfigurationError(f"term {n} ({arg!r}) has a weight but nothing to search for")
    if not value.strip():
        raise ConfigurationError(f"term {n} is empty")
    if force is not None:
        return Example(value, weight, force)
    if _is_image_term(value):
        # a file is read by its expanded path: "~" means nothing to the image reader
        local = os.path.expanduser(value) if not value.lower().startswith(("http", "data:")) else value
        return Example(local, weight, "image")
    return Example(value, weight, "text")


def _is_image_term(value: str) -> bool:
    lowered = value.lower()
    if lowered.startswith(("http://", "https://")) or lowered.startswith("data:image/"):
        return True
    try:
        return os.path.isfile(os.path.expanduser(value))
    except (OSError, ValueError):
        return False
