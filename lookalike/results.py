"""What table calls return: query and search rows (lists of dicts with pytidb's conversion methods),
and the outcome of bulk inserts (the rows written plus the items skipped and why)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from lookalike.errors import ConfigurationError, LookalikeError, MissingDependencyError


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
