"""What table calls return: query and search rows (lists of dicts with pytidb's conversion methods),
and the outcome of bulk inserts (the rows written plus the items skipped and why)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from lookalike.errors import ConfigurationError, LookalikeError, MissingDependencyError, SchemaError


class QueryResult:
    """Rows as dicts, with ``to_list``, ``to_rows``, ``to_pandas``, ``to_pydantic``, ``scalar``, ``one``."""

    def __init__(self, rows: list[dict[str, Any]], model: type | None = None) -> None:
        self._rows = rows
        self._model = model

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self._rows)

    def __len__(self) -> int:
        return len(self._rows)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return self._rows[i]

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {len(self._rows)} rows>"

    def to_list(self) -> list[dict[str, Any]]:
        """The rows as a list of dicts."""
        return [dict(r) for r in self._rows]

    def to_rows(self) -> list[tuple[Any, ...]]:
        """The rows as tuples, in column order."""
        return [tuple(r.values()) for r in self._rows]

    def to_pandas(self) -> Any:
        """The rows as a pandas DataFrame (needs ``lookalike[pandas]``)."""
        try:
            import pandas as pd
        except ImportError as exc:
            raise MissingDependencyError("to_pandas()", "pandas", package="pandas") from exc
        return pd.DataFrame(self.to_list())

    def to_arrow(self, *, vector_dimensions: Mapping[str, int] | None = None) -> Any:
        """The rows as a ``pyarrow.Table`` (needs ``lookalike[arrow]``).

        Vector columns become fixed-size lists of float32; the others, ``_distance`` and ``_score``
        included, keep pyarrow's inferred types. ``vector_dimensions`` names the vector columns and
        their sizes (default: the vector columns of the table's model; searches pass their own).
        """
        try:
            import pyarrow as pa
        except ImportError as exc:
            raise MissingDependencyError("to_arrow()", "arrow", package="pyarrow") from exc
        vectors = self._vector_sizes(vector_dimensions)
        arrays = {}
        for name, values in self._columns().items():
            if name in vectors:
                size = _vector_size(name, values, vectors[name])
                flat = pa.array(
                    [None if v is None else np.asarray(v, dtype=np.float32) for v in values],
                    type=pa.list_(pa.float32()),
                )
                arrays[name] = flat.cast(pa.list_(pa.float32(), size))
            else:
                arrays[name] = pa.array(values)
        return pa.table(arrays)

    def to_polars(self, *, vector_dimensions: Mapping[str, int] | None = None) -> Any:
        """The rows as a ``polars.DataFrame`` (needs ``lookalike[polars]``); vector columns are
        ``Array(Float32, n)`` columns, the rest as polars infers them (see :meth:`to_arrow`)."""
        try:
            import polars as pl
        except ImportError as exc:
            raise MissingDependencyError("to_polars()", "polars", package="polars") from exc
        vectors = self._vector_sizes(vector_dimensions)
        series = []
        for name, values in self._columns().items():
            if name in vectors:
                size = _vector_size(name, values, vectors[name])
                rows = [None if v is None else np.asarray(v, dtype=np.float32).tolist() for v in values]
                series.append(pl.Series(name, rows, dtype=pl.Array(pl.Float32, size)))
            else:
                series.append(pl.Series(name, values))
        return pl.DataFrame(series)

    def _columns(self) -> dict[str, list[Any]]:
        """Column name -> values; a key some rows lack is None there (rows of one result share keys)."""
        names: dict[str, None] = {}
        for row in self._rows:
            names.update(dict.fromkeys(row))
        return {name: [row.get(name) for row in self._rows] for name in names}

    def _vector_sizes(self, given: Mapping[str, int] | None) -> dict[str, int | None]:
        """The vector columns of these rows and their sizes (None: taken from the values)."""
        if given is not None:
            return dict(given)
        table = getattr(self._model, "__table__", None)  # SQLModel sets it on table models
        if table is None:
            return {}
        # vector columns are lookalike's VectorType, known here by its ``dimensions`` (no schema import:
        # results.py sits below schema.py)
        return {
            col.name: dims
            for col in table.columns
            if isinstance(dims := getattr(col.type, "dimensions", None), int)
        }

    def to_pydantic(self, model: type | None = None) -> list[Any]:
        """The rows as instances of ``model`` (default: the table's model).

        Extra keys such as ``_distance`` and ``_score`` are set as attributes when the model allows.
        """
        model = model or self._model
        if model is None:
            raise ConfigurationError("to_pydantic() needs a model class for raw SQL results")
        out = []
        for row in self._rows:
            fields = {k: v for k, v in row.items() if not k.startswith("_")}
            try:
                obj = model.model_validate(fields) if hasattr(model, "model_validate") else model(**fields)
            except Exception as exc:
                raise LookalikeError(f"row does not fit {model.__name__}: {exc}") from exc
            for k, v in row.items():
                if k.startswith("_"):
                    try:
                        object.__setattr__(obj, k, v)
                    except (AttributeError, TypeError):
                        pass
            out.append(obj)
        return out

    def scalar(self) -> Any:
        """The first column of the first row, or None."""
        if not self._rows:
            return None
        return next(iter(self._rows[0].values()), None)

    def one(self) -> dict[str, Any]:
        """Exactly one row (raises otherwise)."""
        if len(self._rows) != 1:
            raise LookalikeError(f"expected exactly one row, got {len(self._rows)}")
        return dict(self._rows[0])

    def first(self) -> dict[str, Any] | None:
        """The first row or None."""
        return dict(self._rows[0]) if self._rows else None


def _vector_size(name: str, values: list[Any], size: int | None) -> int:
    """The one length of column ``name``'s vectors (``size`` when known), or an error naming the row."""
    for i, value in enumerate(values):
        if value is None:
            continue
        n = len(value)
        if size is None:
            size = n
        elif n != size:
            raise SchemaError(f"row {i}: column {name!r} holds a vector of {n} values, expected {size}")
    if size is None:
        raise SchemaError(f"column {name!r} holds no vector to take a size from; pass vector_dimensions=")
    return size


class RowDict(dict[str, Any]):
    """A dict whose keys also read as attributes (``row.id``), for code written against pytidb, which
    returns model objects where lookalike returns dicts. It compares, copies and serialises as a dict."""

    def __getattr__(self, key: str) -> Any:
        try:
            return self[key]
        except KeyError:
            raise AttributeError(key) from None


class ColumnInfo(RowDict):
    """One column of :meth:`Table.columns`: a dict (``name``, ``type``, ``nullable``, ``primary_key``,
    ``vector``) that pytidb code can also read as ``.column_name`` and ``.column_type``."""

    @property
    def column_name(self) -> str:
        """The column's name (pytidb's attribute)."""
        return str(self["name"])

    @property
    def column_type(self) -> str:
        """The column's SQL type as this engine writes it (pytidb's attribute)."""
        return str(self["type"])


@dataclass(frozen=True, eq=False)
class ExecuteResult:
    """What :meth:`Client.execute` returns (pytidb's ``SQLExecuteResult``).

    ``success`` is False only with ``raise_error=False``, and then ``message`` says why. Compared with
    an int it compares its ``rowcount``, so code written when ``execute`` returned the count still works.
    """

    rowcount: int = 0
    success: bool = False
    message: str | None = None

    def __eq__(self, other: object) -> bool:
        if isinstance(other, ExecuteResult):
            return (self.rowcount, self.success, self.message) == (
                other.rowcount,
                other.success,
                other.message,
            )
        if isinstance(other, int) and not isinstance(other, bool):
            return self.rowcount == other
        return NotImplemented

    def __hash__(self) -> int:
        return hash((self.rowcount, self.success, self.message))

    def __int__(self) -> int:
        return self.rowcount


SQLExecuteResult = ExecuteResult
"""pytidb's name for :class:`ExecuteResult`."""


@dataclass(frozen=True)
class FailedItem:
    """An item that bulk work skipped: its position, a short description of it, and the error.

    The error carries the item's position (and the column, when one was at fault), so its text,
    ``item 3 (photo.jpg), column 'vec': …``, is the failed item's text.
    """

    index: int
    item: str
    error: LookalikeError

    def __str__(self) -> str:
        return str(self.error)


class InsertResult(list[Any]):
    """The inserted rows (model instances or dicts, with ids), plus ``failed`` items when skipping."""

    def __init__(self, rows: Iterable[Any] = (), failed: list[FailedItem] | None = None) -> None:
        super().__init__(rows)
        self.failed: list[FailedItem] = failed or []
