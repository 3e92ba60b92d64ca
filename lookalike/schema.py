"""Table definitions: :class:`TableModel`, :func:`Field`, :func:`VectorField` and the vector column type.

A table is a SQLModel class (``table=True`` by default). Vector columns carry a :class:`VectorSpec` in
their SQLAlchemy ``Column.info`` so the engine, the auto-embedder and the search builder can find them;
:class:`TableSpec` turns a model into a JSON-able description that is stored in the database, so
``open_table`` in a new process rebuilds the same columns and embedder.
"""

from __future__ import annotations

import datetime as _dt
import decimal
import uuid
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, cast

import sqlalchemy as sa
from sqlalchemy.types import TypeDecorator, TypeEngine
from sqlmodel import Field as _SQLModelField
from sqlmodel import SQLModel
from sqlmodel.main import SQLModelMetaclass

from lookalike.errors import ConfigurationError, SchemaError
from lookalike.types import SourceType, check_source_type
from lookalike.vectors.base import float32_blob, vector_as_list

if TYPE_CHECKING:
    from lookalike.embeddings.base import BaseEmbeddingFunction

__all__ = [
    "DISTANCE_METRICS",
    "Field",
    "TableModel",
    "TableSpec",
    "VectorCodec",
    "VectorField",
    "VectorSpec",
    "VectorType",
    "bind_vector_codec",
    "normalize_metric",
]

DISTANCE_METRICS = ("cosine", "l2", "inner_product", "l1")
_METRIC_ALIASES = {
    "cosine": "cosine",
    "l2": "l2",
    "euclidean": "l2",
    "inner_product": "inner_product",
    "negative_inner_product": "inner_product",
    "ip": "inner_product",
    "dot": "inner_product",
    "l1": "l1",
    "manhattan": "l1",
}


def normalize_metric(metric: Any) -> str:
    """Accept ``"cosine"``, pytidb's ``"COSINE"``/``"NEGATIVE_INNER_PRODUCT"`` or an enum member."""
    name = getattr(metric, "value", metric)
    if isinstance(name, str):
        key = _METRIC_ALIASES.get(name.strip().lower())
        if key:
            return key
    raise ConfigurationError(f"unknown distance metric {metric!r}; use one of {', '.join(DISTANCE_METRICS)}")


# --------------------------------------------------------------------------- vector column type


class VectorCodec(Protocol):
    """How a database stores vector columns: each engine is one and binds itself to its dialect."""

    def vector_type(self, dimensions: int) -> TypeEngine[Any]:
        """The SQL column type."""
        ...

    def encode_vector(self, value: Any) -> Any:
        """A vector (array, list or float32 bytes) as the value to bind."""
        ...

    def decode_vector(self, value: Any) -> list[float]:
        """A stored (non-null) value as a list of floats."""
        ...


_CODEC_ATTRIBUTE = "lookalike_vector_codec"


def bind_vector_codec(dialect: sa.Dialect, codec: VectorCodec) -> None:
    """Make vector columns compiled or bound with ``dialect`` use ``codec`` (an engine's own dialect)."""
    setattr(dialect, _CODEC_ATTRIBUTE, codec)


def _codec(dialect: sa.Dialect) -> VectorCodec | None:
    return getattr(dialect, _CODEC_ATTRIBUTE, None)


class VectorType(TypeDecorator[Any]):
    """A fixed-size float vector column; values are read back as lists of floats.

    The engine that owns the dialect decides the SQL type and how values travel
    (:meth:`lookalike.engines.base.Engine.vector_type` and its ``encode_vector``/``decode_vector``):
    float32 blobs on the embedded engine, pgvector's ``vector(n)``, TiDB's ``VECTOR(n)``. A dialect no
    engine owns (a statement compiled outside lookalike) gets the portable form, float32 blobs.
    """

    impl = sa.LargeBinary
    cache_ok = True

    def __init__(self, dimensions: int) -> None:
        super().__init__()
        self.dimensions = dimensions

    def load_dialect_impl(self, dialect: sa.Dialect) -> TypeEngine[Any]:
        codec = _codec(dialect)
        storage = sa.LargeBinary() if codec is None else codec.vector_type(self.dimensions)
        return dialect.type_descriptor(storage)

    def process_bind_param(self, value: Any, dialect: sa.Dialect) -> Any:
        if value is None:
            return None
        codec = _codec(dialect)
        return float32_blob(value) if codec is None else codec.encode_vector(value)

    def process_result_value(self, value: Any, dialect: sa.Dialect) -> Any:
        if value is None:
            return None
        codec = _codec(dialect)
        return vector_as_list(value) if codec is None else codec.decode_vector(value)


# --------------------------------------------------------------------------- fields


@dataclass
class VectorSpec:
    """What lookalike knows about one vector column."""

    name: str
    dimensions: int
    source_field: str | None = None
    source_type: SourceType = "auto"
    distance_metric: str = "cosine"
    index: bool | None = None
    index_params: dict[str, Any] = field(default_factory=dict)
    embed_fn: BaseEmbeddingFunction | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        # not dataclasses.asdict: it would deep-copy the embedder (and its model sessions)
        return {f: getattr(self, f) for f in self.__dataclass_fields__ if f != "embed_fn"}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> VectorSpec:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__ and k != "embed_fn"}
        return cls(**known)


def Field(*args: Any, **kwargs: Any) -> Any:
    """A table column (SQLModel's ``Field``; every argument is passed through)."""
    return _SQLModelField(*args, **kwargs)


def VectorField(
    dimensions: int,
    source_field: str | None = None,
    embed_fn: BaseEmbeddingFunction | None = None,
    source_type: str = "auto",
    index: bool | None = None,
    distance_metric: str = "cosine",
    algorithm: str = "HNSW",
    **index_params: Any,
) -> Any:
    """A vector column of ``dimensions`` floats, optionally filled from ``source_field`` by ``embed_fn``.

    ``source_type`` is ``"auto"`` (each value decides: image references become images, words stay
    text), ``"text"`` or ``"image"``. ``index=True`` asks the engine for an ANN index.
    """
    if not isinstance(dimensions, int) or dimensions <= 0:
        raise SchemaError(f"VectorField dimensions must be a positive integer, got {dimensions!r}")
    checked_source_type = check_source_type(source_type)
    if embed_fn is not None and embed_fn.dimensions is not None and embed_fn.dimensions != dimensions:
        raise SchemaError(
            f"VectorField has {dimensions} dimensions but {embed_fn.model_name} produces {embed_fn.dimensions}"
        )
    if algorithm.upper() != "HNSW":
        index_params["algorithm"] = algorithm
    spec = VectorSpec(
        name="",
        dimensions=dimensions,
        source_field=source_field,
        source_type=checked_source_type,
        distance_metric=normalize_metric(distance_metric),
        index=index,
        index_params=index_params,
        embed_fn=embed_fn,
    )
    return _SQLModelField(
        default=None,
        sa_type=VectorType(dimensions),
        nullable=True,
        sa_column_kwargs={"info": {"lookalike_vector": spec}},
    )


# --------------------------------------------------------------------------- TableModel


class _TableModelMeta(SQLModelMetaclass):
    def __new__(mcs, name: str, bases: tuple[type, ...], namespace: dict[str, Any], **kwargs: Any) -> Any:
        if not namespace.get("_lookalike_base", False):
            kwargs.setdefault("table", True)
            # each model gets its own MetaData so redefining a table (if_exists="overwrite", tests,
            # notebooks) never merges columns of an old definition into the new one
            namespace.setdefault("metadata", sa.MetaData())
        with warnings.catch_warnings():
            # redefining a model of the same name is normal here (own MetaData per model); SQLAlchemy's
            # string-lookup table for relationships is all that the warning is about
            warnings.filterwarnings("ignore", message=".*same class name and module name.*")
            return super().__new__(mcs, name, bases, namespace, **kwargs)

    def __init__(cls, name: str, bases: tuple[type, ...], namespace: dict[str, Any], **kwargs: Any) -> None:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*same class name and module name.*")
            super().__init__(name, bases, namespace, **kwargs)


class TableModel(SQLModel, metaclass=_TableModelMeta):
    """Base class of table definitions (a SQLModel model with ``table=True`` by default)."""

    _lookalike_base: ClassVar[bool] = True


# --------------------------------------------------------------------------- stored description

_PY_TYPES: dict[str, Any] = {
    "int": int,
    "float": float,
    "str": str,
    "bool": bool,
    "datetime": _dt.datetime,
    "date": _dt.date,
    "time": _dt.time,
    "bytes": bytes,
    "json": dict,
    "decimal": decimal.Decimal,
    "uuid": uuid.UUID,
}


def _column_kind(col: sa.Column[Any]) -> str:
    t = col.type
    if isinstance(t, VectorType):
        return "vector"
    if isinstance(t, sa.JSON):
        return "json"
    if isinstance(t, sa.Boolean):
        return "bool"
    if isinstance(t, sa.Integer):
        return "int"
    if isinstance(t, sa.Numeric) and not isinstance(t, sa.Float):
        return "decimal"
    if isinstance(t, sa.Float):
        return "float"
    if isinstance(t, sa.DateTime):
        return "datetime"
    if isinstance(t, sa.Date):
        return "date"
    if isinstance(t, sa.Time):
        return "time"
    if isinstance(t, sa.LargeBinary):
        return "bytes"
    if isinstance(t, sa.Uuid):
        return "uuid"
    return "str"


def _sa_type(kind: str, col: dict[str, Any]) -> TypeEngine[Any] | type[TypeEngine[Any]]:
    if kind == "vector":
        return VectorType(int(col["dimensions"]))
    length = col.get("length")
    return {
        "int": sa.BigInteger if col.get("big") else sa.Integer,
        "float": sa.Float,
        "str": sa.String(length) if length else sa.Text,
        "bool": sa.Boolean,
        "datetime": sa.DateTime,
        "date": sa.Date,
        "time": sa.Time,
        "bytes": sa.LargeBinary,
        "json": sa.JSON,
        "decimal": sa.Numeric,
        "uuid": sa.Uuid,
    }[kind]


RESERVED_PREFIX = "_lookalike"
"""Table and column names starting with this belong to lookalike (catalogue, caches, result labels)."""
RESERVED_COLUMNS = frozenset({"rowid", "_distance", "_score"})
"""Column names lookalike's own SQL and results use: ``rowid`` is SQLite's row id (a column of that
name would hide it from the embedded engine's search), ``_distance``/``_score`` are result fields."""


def check_names(table: sa.Table) -> None:
    """Refuse table and column names that would collide with lookalike's own."""
    if table.name.lower().startswith(RESERVED_PREFIX):
        raise SchemaError(
            f"table name {table.name!r} is reserved: names starting with {RESERVED_PREFIX!r} are "
            "lookalike's own tables; pick another __tablename__"
        )
    for col in table.columns:
        low = col.name.lower()
        if low in RESERVED_COLUMNS or low.startswith(RESERVED_PREFIX):
            raise SchemaError(
                f"column name {col.name!r} of table {table.name!r} is reserved "
                f"({', '.join(sorted(RESERVED_COLUMNS))} and names starting with {RESERVED_PREFIX!r} "
                "are lookalike's own); rename the field"
            )


@dataclass
class TableSpec:
    """A table as lookalike sees it: columns, vector columns and the model class."""

    name: str
    sa_table: sa.Table
    model: type[SQLModel] | None
    vectors: dict[str, VectorSpec]

    def __post_init__(self) -> None:
        pks = [c.name for c in self.sa_table.primary_key.columns]
        if len(pks) != 1:
            raise SchemaError(f"table {self.name!r} must have exactly one primary key column, has {pks}")
        self.primary_key: str = pks[0]

    @classmethod
    def from_model(cls, model: type[SQLModel]) -> TableSpec:
        """Describe a SQLModel/TableModel class; checks vector fields and their sources."""
        table = getattr(model, "__table__", None)
        if not isinstance(table, sa.Table):
            raise SchemaError(f"{model.__name__} is not a table model (declare it with table=True)")
        check_names(table)
        vectors: dict[str, VectorSpec] = {}
        for col in table.columns:
            spec = col.info.get("lookalike_vector")
            if spec is None and isinstance(col.type, VectorType):
                spec = VectorSpec(name=col.name, dimensions=col.type.dimensions)
                col.info["lookalike_vector"] = spec
            if spec is None:
                continue
            spec.name = col.name
            if spec.source_field is not None and spec.source_field not in table.columns:
                raise SchemaError(
                    f"vector field {col.name!r} takes its source from {spec.source_field!r}, "
                    f"which is not a column of {table.name!r}"
                )
            if spec.source_field is not None and spec.embed_fn is None:
                raise SchemaError(f"vector field {col.name!r} has a source_field but no embedding function")
            vectors[col.name] = spec
        return cls(name=table.name, sa_table=table, model=model, vectors=vectors)

    def _model_default(self, name: str) -> Any:
        info = getattr(self.model, "model_fields", {}).get(name)
        return None if info is None else info.default

    def describe(self) -> dict[str, Any]:
        """The JSON-able description stored in the database (no secrets)."""
        columns = []
        for col in self.sa_table.columns:
            kind = _column_kind(col)
            entry: dict[str, Any] = {
                "name": col.name,
                "type": kind,
                "primary_key": bool(col.primary_key),
                "nullable": bool(col.nullable),
            }
            if isinstance(col.type, VectorType):
                entry["dimensions"] = col.type.dimensions
            length = getattr(col.type, "length", None)
            if kind == "str" and length:
                entry["length"] = length
            if kind == "int" and isinstance(col.type, sa.BigInteger):
                entry["big"] = True
            default = self._model_default(col.name)
            if isinstance(default, (int, float, str, bool)):
                entry["default"] = default
            columns.append(entry)
        vectors = {}
        for name, spec in self.vectors.items():
            data = spec.to_dict()
            data["embedder"] = spec.embed_fn.config() if spec.embed_fn is not None else None
            vectors[name] = data
        return {"version": 1, "name": self.name, "columns": columns, "vectors": vectors}

    @classmethod
    def from_description(
        cls, desc: dict[str, Any], embedders: dict[str, BaseEmbeddingFunction | None]
    ) -> TableSpec:
        """Rebuild a table (and a model class for ``to_pydantic``) from :meth:`describe` output."""
        name = desc["name"]
        annotations: dict[str, Any] = {}
        namespace: dict[str, Any] = {"__tablename__": name, "__module__": __name__}
        vectors: dict[str, VectorSpec] = {}
        for col in desc["columns"]:
            kind = col["type"]
            cname = col["name"]
            if kind == "vector":
                vspec = VectorSpec.from_dict(desc["vectors"].get(cname, {"name": cname, **col}))
                vspec.name = cname
                vspec.embed_fn = embedders.get(cname)
                vectors[cname] = vspec
                annotations[cname] = list[float] | None
                namespace[cname] = _SQLModelField(
                    default=None,
                    sa_type=VectorType(vspec.dimensions),
                    nullable=True,
                    sa_column_kwargs={"info": {"lookalike_vector": vspec}},
                )
                continue
            py = _PY_TYPES.get(kind, str)
            annotations[cname] = py if col.get("primary_key") else py | None
            namespace[cname] = _SQLModelField(
                default=col.get("default"),
                primary_key=bool(col.get("primary_key")),
                sa_type=_sa_type(kind, col),
                nullable=bool(col.get("nullable", True)),
            )
        namespace["__annotations__"] = annotations
        model = cast("type[TableModel]", _TableModelMeta(_class_name(name), (TableModel,), namespace))
        table = getattr(model, "__table__", None)  # SQLModel sets it on table models; not typed
        if not isinstance(table, sa.Table):  # the metaclass always makes one (table=True above)
            raise SchemaError(f"could not rebuild table {name!r} from its stored description")
        return cls(name=name, sa_table=table, model=model, vectors=vectors)


def _class_name(table: str) -> str:
    parts = [p for p in "".join(c if c.isalnum() else "_" for c in table).split("_") if p]
    name = "".join(p[:1].upper() + p[1:] for p in parts) or "Table"
    return name if name[0].isalpha() else "T" + name
