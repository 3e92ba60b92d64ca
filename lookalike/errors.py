"""The one error tree of lookalike.

Every error the library raises on purpose is a :class:`LookalikeError`::

    LookalikeError
    ├── ConfigurationError        bad arguments, unknown names, a closed client (also a ValueError)
    │   └── MissingDependencyError   an optional extra is not installed (says what to install)
    ├── SchemaError               table definitions, unknown/ambiguous columns, existing/missing tables
    │   └── TableNotFoundError
    ├── FilterError               unknown column or operator in a filter
    ├── VectorError               wrong dimension, NaN/Inf, not a vector
    ├── ImageInputError           a URL, path, bytes or picture that cannot become an RGB image
    ├── EmbeddingError            a model or provider failed to embed an item
    │   ├── ModelNotFoundError       unknown model name, missing or corrupt model files
    │   └── ProviderError            a remote provider answered with an error
    │       └── AuthenticationError  missing or rejected API key
    ├── EngineError               the database failed (translated from the driver)
    │   └── ConnectionFailedError    server down, refusing connections, wrong password
    └── BulkInsertError           a bulk operation failed on one item (``item`` and ``index`` say which)

Driver and library errors are translated at the engine/provider boundary with ``raise ... from exc``,
so the original is always on ``__cause__``. Errors about one input carry ``item`` (a short, safe
description of the input) and, in bulk work, ``index`` (its position).
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AuthenticationError",
    "BulkInsertError",
    "ColumnChoiceError",
    "ConfigurationError",
    "ConnectionFailedError",
    "EmbeddingError",
    "EngineError",
    "FilterError",
    "ImageInputError",
    "LookalikeError",
    "MissingDependencyError",
    "ModelNotFoundError",
    "ProviderError",
    "SchemaError",
    "TableNotFoundError",
    "VectorError",
    "describe_item",
]


def describe_item(item: Any, limit: int = 120) -> str:
    """A short, printable description of an input item for error messages (never its full bytes)."""
    if item is None:
        return "None"
    if isinstance(item, (bytes, bytearray, memoryview)):
        return f"<{len(item)} bytes>"
    if isinstance(item, str):
        if item.startswith("data:"):
            head = item[: item.find(",")] if "," in item else item[:40]
            return f"<{head},… ({len(item)} chars)>"
        return item if len(item) <= limit else item[: limit - 1] + "…"
    name = type(item).__name__
    size = getattr(item, "size", None)
    mode = getattr(item, "mode", None)
    if mode is not None and size is not None:  # a PIL image
        return f"<{name} {mode} {size[0]}x{size[1]}>"
    shape = getattr(item, "shape", None)
    if shape is not None:
        return f"<{name} shape={tuple(shape)}>"
    text = repr(item)
    return text if len(text) <= limit else text[: limit - 1] + "…"


_UNSET: Any = object()


class LookalikeError(Exception):
    """Base class of every error lookalike raises on purpose.

    The error is data: ``detail`` says what went wrong, and the optional context fields say where:
    ``index`` (the item's position in bulk work), ``item`` (the input itself; only a short description
    of it is ever printed) and ``column``. ``remarks`` are short notes added by the layers the error
    passes through ("gave up after 3 attempts"). ``str(error)`` builds the text from these fields, so
    no code ever parses or rewrites a message: it sets fields (:meth:`with_context`, :meth:`add_remark`).
    """

    def __init__(
        self,
        message: str = "",
        *,
        item: Any = None,
        index: int | None = None,
        column: str | None = None,
    ) -> None:
        super().__init__(message)
        self.detail = message
        self.item = item
        self.index = index
        self.column = column
        self.remarks: list[str] = []

    @property
    def message(self) -> str:
        """The full text, as ``str(error)`` gives it."""
        return str(self)

    def with_context(
        self, *, index: int | None = _UNSET, item: Any = _UNSET, column: str | None = _UNSET
    ) -> LookalikeError:
        """Set the given context fields (``item`` only when none is set yet) and return the error."""
        if index is not _UNSET:
            self.index = index
        if item is not _UNSET and self.item is None:
            self.item = item
        if column is not _UNSET:
            self.column = column
        return self

    def for_item(self, *, item: Any, index: int | None = None) -> LookalikeError:
        """A copy of this error about another input: the same failure met at several items (a
        duplicate of a bad image), each of which must carry its own ``index`` and ``item``."""
        cls = type(self)
        copy = cls.__new__(cls)
        Exception.__init__(copy, *self.args)  # subclasses' __init__ take other arguments
        copy.__dict__.update(self.__dict__)
        copy.remarks = list(self.remarks)
        copy.item, copy.index = item, index
        copy.__cause__ = self.__cause__
        return copy

    def add_remark(self, remark: str) -> None:
        """Append a remark to the text ("gave up after 3 attempts")."""
        self.remarks.append(remark)

    def context(self) -> str:
        """Where the error happened: ``item 3 (photo.jpg), column 'vec'``, or ``""`` when unknown."""
        parts = []
        if self.index is not None:
            parts.append(f"item {self.index} ({describe_item(self.item)})")
        if self.column is not None:
            parts.append(f"column {self.column!r}")
        return ", ".join(parts)

    def __str__(self) -> str:
        text = " ".join([self.detail, *self.remarks]) if self.remarks else self.detail
        where = self.context()
        return f"{where}: {text}" if where else text


class ConfigurationError(LookalikeError, ValueError):
    """Bad arguments, unknown names, or use of a closed client.

    Also a ``ValueError``, as pytidb raises for bad arguments, so pytidb code that catches it works.
    """


class MissingDependencyError(ConfigurationError, ImportError):
    """An optional part is not installed; the message says which extra to install."""

    def __init__(self, what: str, extra: str, *, package: str | None = None) -> None:
        hint = f"pip install 'lookalike[{extra}]'"
        if package:
            hint += f" (or pip install {package})"
        super().__init__(f"{what} needs an optional dependency that is not installed: {hint}")
        self.extra = extra


class SchemaError(LookalikeError):
    """A table definition or a column reference is wrong."""


class ColumnChoiceError(SchemaError, ConfigurationError):
    """A search names no usable column, or the table has several that fit and none is named.

    A :class:`SchemaError` and, like pytidb's error for it, a ``ValueError``.
    """


class TableNotFoundError(SchemaError):
    """The named table does not exist."""


class FilterError(LookalikeError):
    """A filter names an unknown column or operator, or has a malformed value."""


class VectorError(LookalikeError):
    """A vector has the wrong dimension, holds NaN/Inf, or is not a vector at all."""


class ImageInputError(LookalikeError):
    """An input could not be turned into an RGB image (missing, unreadable, not an image, too big...)."""


class EmbeddingError(LookalikeError):
    """A model or provider could not embed an item."""


class ModelNotFoundError(EmbeddingError):
    """Unknown model name, or model files missing or corrupt.

    ``precision`` is set when what is missing is the export for one precision (``"int8"``: the model
    has no quantised files), so a caller can fall back to another precision without reading the text.
    """

    def __init__(self, message: str = "", *, precision: str | None = None, **context: Any) -> None:
        super().__init__(message, **context)
        self.precision = precision


class ProviderError(EmbeddingError):
    """A remote embedding provider answered with an error."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        retryable: bool = False,
        item: Any = None,
        index: int | None = None,
    ) -> None:
        super().__init__(message, item=item, index=index)
        self.status_code = status_code
        self.retryable = retryable


class AuthenticationError(ProviderError):
    """The API key is missing or was rejected."""


class EngineError(LookalikeError):
    """The database engine failed; the driver's error is on ``__cause__``."""


class ConnectionFailedError(EngineError):
    """The database server could not be reached or refused the credentials."""


class BulkInsertError(LookalikeError):
    """A bulk operation failed on one item; nothing of its chunk was written.

    The error that stopped it is on ``__cause__`` and ``error``; ``index``/``item``/``column`` are its.
    """

    def __init__(self, error: LookalikeError, *, index: int, item: Any = None) -> None:
        super().__init__(
            error.detail,
            item=item if item is not None else error.item,
            index=index,
            column=error.column,
        )
        self.error = error
        self.remarks = list(error.remarks)

    def __str__(self) -> str:
        return f"bulk_insert failed, nothing of its chunk was written: {super().__str__()}"
