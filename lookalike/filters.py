"""Dict filters → SQLAlchemy expressions, always parameterised, never string-built.

Grammar (MongoDB-style, as in pytidb)::

    {"color": "red"}                          # bare value = $eq
    {"size": {"$gte": 10, "$lt": 20}}         # several operators on one field are ANDed
    {"$or": [{"a": 1}, {"b": {"$in": [2, 3]}}]}
    {"$not": {"tag": "x"}}
    {"meta.size.w": {"$gt": 100}}             # a dotted name reaches into a JSON column

Operators: ``$eq $ne $gt $gte $lt $lte $in $nin $like $contains $exists`` on fields and
``$and $or $not`` to combine. ``$contains`` is a substring test on text columns and an element test on
JSON arrays. ``$exists`` is true when the value is not NULL (JSON ``null`` counts as missing).
A SQL string is wrapped in ``text()`` as given (it is your SQL, not a value); a SQLAlchemy expression
passes through, except that a JSON element compared with a Python value (``Model.meta["s"] == "apple"``)
is compared as that value's type, which makes it mean the same on every engine.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.sql import operators
from sqlalchemy.sql.elements import BinaryExpression, BindParameter, ColumnElement, TextClause
from sqlalchemy.sql.visitors import replacement_traverse

from lookalike.errors import FilterError
from lookalike.schema import VectorType

FIELD_OPS = ("$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$like", "$contains", "$exists")
LOGIC_OPS = ("$and", "$or", "$not")

JsonContains = Callable[[Any, Any], Any]


Where = ColumnElement[bool] | TextClause
"""A WHERE expression: built from a dict or given as SQLAlchemy, or SQL text (kept as text)."""


def compile_filter(
    filters: Any, table: sa.Table, *, json_contains: JsonContains | None = None
) -> Where | None:
    """Turn ``filters`` (dict, SQL string, SQLAlchemy expression or None) into a WHERE expression."""
    if filters is None:
        return None
    if isinstance(filters, str):
        return sa.text(filters)
    if isinstance(filters, ColumnElement):
        return typed_json_comparisons(filters)
    if isinstance(filters, TextClause):
        return filters
    if isinstance(filters, Mapping):
        if not filters:
            return None
        return _Compiler(table, json_contains).mapping(filters)
    raise FilterError(
        f"a filter must be a dict, a SQL string or a SQLAlchemy expression, got {type(filters).__name__}"
    )


_COMPARISONS = (operators.eq, operators.ne, operators.lt, operators.le, operators.gt, operators.ge)
_JSON_ITEMS = (operators.json_getitem_op, operators.json_path_getitem_op)


def typed_json_comparisons(expr: ColumnElement[Any]) -> ColumnElement[Any]:
    """``json_col["key"] <op> value`` rewritten to compare the element as ``value``'s SQL type.

    SQLAlchemy compares a JSON element with a JSON-encoded value: MySQL and TiDB accept that, but
    SQLite compares the quoted text (so ``== "apple"`` never matches) and PostgreSQL refuses
    ``jsonb = varchar``. ``as_string()`` / ``as_float()`` (for ints too) / ``as_boolean()`` read the
    element as a plain value on every dialect.
    """

    def replace(element: Any, **_kw: Any) -> Any:
        node = element
        if not (
            isinstance(node, BinaryExpression)
            and node.operator in _COMPARISONS
            and isinstance(node.left, BinaryExpression)
            and node.left.operator in _JSON_ITEMS
            and isinstance(node.left.type, sa.JSON)  # not already read with as_float() & co.
            and isinstance(node.right, BindParameter)
        ):
            return None
        value = node.right.effective_value
        typed = json_element_as(node.left, value)
        if typed is None:
            return None
        return node.operator(typed, value)

    return cast("ColumnElement[Any]", replacement_traverse(expr, {}, replace))


class _Compiler:
    def __init__(self, table: sa.Table, json_contains: JsonContains | None) -> None:
        self.table = table
        self.json_contains = json_contains

    def mapping(self, filters: Mapping[str, Any]) -> ColumnElement[bool]:
        parts = []
        for key, value in filters.items():
            if not isinstance(key, str):
                raise FilterError(f"filter keys must be strings, got {key!r}")
            if key.startswith("$"):
                parts.append(self.logic(key, value))
            else:
                parts.append(self.field(key, value))
        return parts[0] if len(parts) == 1 else sa.and_(*parts)

    def logic(self, op: str, value: Any) -> ColumnElement[bool]:
        if op == "$not":
            if not isinstance(value, Mapping):
                raise FilterError(f"$not takes a filter dict, got {value!r}")
            # NOT of a NULL comparison is NULL, which would drop the row from both F and {"$not": F};
            # counting NULL as false first makes $not the complement of its filter
            return sa.not_(sa.func.coalesce(self.mapping(value), sa.false(), type_=sa.Boolean))
        if op in ("$and", "$or"):
            if not isinstance(value, (list, tuple)) or not value:
                raise FilterError(f"{op} takes a non-empty list of filter dicts, got {value!r}")
            subs = []
            for sub in value:
                if not isinstance(sub, Mapping):
                    raise FilterError(f"{op} takes a list of filter dicts, got an item {sub!r}")
                subs.append(self.mapping(sub))
            return sa.and_(*subs) if op == "$and" else sa.or_(*subs)
        raise FilterError(f"unknown filter operator {op!r}; known: {', '.join(LOGIC_OPS + FIELD_OPS)}")

    def column(self, name: str) -> tuple[Any, list[str]]:
        if name in self.table.c:
            return self.table.c[name], []
        head, _, rest = name.partition(".")
        if rest and head in self.table.c:
            col = self.table.c[head]
            if not isinstance(col.type, sa.JSON):
                raise FilterError(f"{name!r}: column {head!r} is not a JSON column, so it has no keys")
            return col, rest.split(".")
        raise FilterError(
            f"unknown column {name!r} in filter; columns of {self.table.name!r}: {', '.join(self.table.c.keys())}"
        )

    def field(self, name: str, cond: Any) -> ColumnElement[bool]:
        col, path = self.column(name)
        if isinstance(col.type, VectorType):
            raise FilterError(f"{name!r} is a vector column; filter on other columns")
        if isinstance(cond, Mapping) and cond and all(isinstance(k, str) and k.startswith("$") for k in cond):
            parts = [self.op(name, col, path, op, arg) for op, arg in cond.items()]
            return parts[0] if len(parts) == 1 else sa.and_(*parts)
        if isinstance(cond, Mapping) and any(isinstance(k, str) and k.startswith("$") for k in cond):
            raise FilterError(f"{name!r}: don't mix operators and plain keys in {dict(cond)!r}")
        return self.op(name, col, path, "$eq", cond)

    def op(self, name: str, col: Any, path: list[str], op: str, arg: Any) -> ColumnElement[bool]:
        if op not in FIELD_OPS:
            raise FilterError(f"unknown filter operator {op!r} on {name!r}; known: {', '.join(FIELD_OPS)}")
        if op == "$exists":
            missing = _missing(col, path)
            return sa.not_(missing) if arg else missing
        if op in ("$in", "$nin"):
            if not isinstance(arg, (list, tuple, set, frozenset)):
                raise FilterError(f"{op} on {name!r} takes a list, got {arg!r}")
            values = [v for v in arg if v is not None]
            # a None in the list stands for a missing value, as in {"$eq": None}: SQL's IN (NULL)
            # would never match it (and NOT IN (NULL) would match nothing at all)
            with_null = len(values) < len(arg)
            sample = values[0] if values else None
            expr = _json_value(col, path, sample) if path else col
            if path and _is_number(sample):
                # the list is bound with the first value's type: 0.25 after a 2 would become 0
                values = [float(v) if _is_number(v) else v for v in values]
            if not path and any(_fractional_on_int(col, v) for v in values):
                values = [_typed(col, v) for v in values]
            missing = _missing(col, path)
            if op == "$in":
                return sa.or_(expr.in_(values), missing) if with_null else expr.in_(values)
            if with_null:
                return sa.and_(expr.not_in(values), sa.not_(missing))
            return sa.or_(expr.not_in(values), missing)
        if op == "$contains":
            if path or isinstance(col.type, sa.JSON):
                target = col[tuple(path)] if path else col
                if self.json_contains is None:
                    raise FilterError(f"$contains on JSON {name!r} is not supported by this engine")
                return self.json_contains(target, arg)
            if not isinstance(arg, str):
                raise FilterError(f"$contains on text column {name!r} takes a string, got {arg!r}")
            return col.contains(arg, autoescape=True)
        if op == "$like":
            if not isinstance(arg, str):
                raise FilterError(f"$like on {name!r} takes a pattern string, got {arg!r}")
            expr = _json_value(col, path, "") if path else col
            return expr.like(arg)
        if isinstance(arg, (Mapping, list, tuple)) and not path and not isinstance(col.type, sa.JSON):
            raise FilterError(f"{op} on {name!r} takes a single value, got {arg!r}")
        expr = _json_value(col, path, arg) if path else col
        if arg is None:
            if op == "$eq":
                return _missing(col, path)
            if op == "$ne":
                return sa.not_(_missing(col, path))
            raise FilterError(f"{op} on {name!r} can't compare with null")
        if isinstance(arg, bool):
            # SQLAlchemy refuses `col < True` (only = and != take a bare True/False): bind it
            arg = sa.literal(arg, sa.Boolean())
        elif not path and _fractional_on_int(col, arg):
            arg = _typed(col, arg)
        return {
            "$eq": expr.__eq__,
            "$ne": lambda v: sa.or_(expr != v, expr.is_(None)),
            "$gt": expr.__gt__,
            "$gte": expr.__ge__,
            "$lt": expr.__lt__,
            "$lte": expr.__le__,
        }[op](arg)


def _fractional_on_int(col: Any, value: Any) -> bool:
    return isinstance(value, float) and isinstance(col.type, sa.Integer)


def _typed(col: Any, value: Any) -> Any:
    """A float compared with an integer column, bound as a float.

    Bound with the column's type, PostgreSQL's driver casts it (``%(p)s::INTEGER``): 0.001 becomes 0
    and ``i > 0.5`` becomes ``i > 1``.
    """
    return sa.literal(value, sa.Float()) if _fractional_on_int(col, value) else value


def _missing(col: Any, path: list[str]) -> ColumnElement[bool]:
    """True when ``col`` (at ``path``) holds no value: SQL NULL, a missing key or a JSON ``null``."""
    if path:
        return _json_value(col, path, None).is_(None)  # a JSON null at a path reads as SQL NULL
    if isinstance(col.type, sa.JSON):
        # a whole JSON column may hold JSON null (how SQLAlchemy writes None by default)
        return sa.or_(col.is_(None), sa.cast(col, sa.Text) == "null")
    return col.is_(None)


def _json_value(col: Any, path: list[str], sample: Any) -> Any:
    """``col`` at ``path`` typed after the value it is compared with (so each engine casts right)."""
    elem = col[tuple(path)]
    typed = json_element_as(elem, sample)
    if typed is None and (isinstance(sample, (dt.date, dt.datetime)) or sample is None):
        return elem.as_string()
    return elem if typed is None else typed


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def json_element_as(elem: Any, sample: Any) -> Any:
    """A JSON element read as ``sample``'s SQL type, or None for a value of another kind.

    Numbers, ints included, are read as floats: ``as_integer()`` would truncate ``1.5`` on SQLite
    (so ``== 1`` matched it) and refuses it on PostgreSQL.
    """
    if isinstance(sample, bool):
        return elem.as_boolean()
    if isinstance(sample, (int, float)):
        return elem.as_float()
    if isinstance(sample, str):
        return elem.as_string()
    return None
