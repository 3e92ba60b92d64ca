"""Table definitions: :class:`TableModel`, :func:`Field`, :func:`VectorField`, :func:`FullTextField`,
:class:`FullTextIndex` and the vector column type.

A table is a SQLModel class (``table=True`` by default). Vector columns carry a :class:`VectorSpec` in
their SQLAlchemy ``Column.info`` so the engine, the auto-embedder and the search builder can find them;
full-text columns carry a :class:`FullTextSpec` the same way;
:class:`TableSpec` turns a model into a JSON-able description that is stored in the database, so
``open_table`` in a new process rebuilds the same columns and embedder.
"""

from __future__ import annotations

import datetime as _dt
import decimal
import enum
import os
import threading
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
    "FULLTEXT_PARSERS",
    "VECTOR",
    "DistanceMetric",
    "Field",
    "FullTextField",
    "FullTextIndex",
    "FullTextSpec",
    "TableModel",
    "TableSpec",
    "TagsField",
    "TagsSpec",
    "VectorCodec",
    "VectorField",
    "VectorIndex",
    "VectorSpec",
    "VectorType",
    "bind_vector_codec",
    "normalize_metric",
]

DISTANCE_METRICS = ("cosine", "l2", "inner_product", "l1")
FULLTEXT_PARSERS = ("MULTILINGUAL", "STANDARD")
"""TiDB's full-text parsers (pytidb's ``fts_parser``); the other engines record but don't need it."""
CATALOG_VERSION = 2
"""The stored description's format: 2 added ``"fulltext"``; version 1 descriptions still open."""
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


class DistanceMetric(str, enum.Enum):
    """pytidb's metric names as an enum; any lookalike call that takes a metric accepts them."""

    L1 = "L1"
    L2 = "L2"
    COSINE = "COSINE"
    NEGATIVE_INNER_PRODUCT = "NEGATIVE_INNER_PRODUCT"

    def to_sql_func(self) -> str:
        """TiDB's SQL function for this metric (``VEC_COSINE_DISTANCE`` ...)."""
        return (
            f"VEC_{self.value}"
            if self is DistanceMetric.NEGATIVE_INNER_PRODUCT
            else f"VEC_{self.value}_DISTANCE"
        )


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


VECTOR = VectorType
"""pytidb's name for the vector column type: ``Field(sa_column=Column(VECTOR(3)))``."""


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
    index_metric: str | None = None
    """The metric a declared :class:`VectorIndex` serves when it is not ``distance_metric``."""
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


@dataclass
class FullTextSpec:
    """What lookalike knows about one full-text column: whether it is indexed, and how words are cut.

    ``language``: ``None`` (words as written, accents folded) or a stemming language such as
    ``"english"``; engines differ in which they know (see ``Table.create_fts_index``). ``parser``:
    TiDB's ``WITH PARSER`` (``"MULTILINGUAL"`` or ``"STANDARD"``).
    """

    name: str
    index: bool = True
    language: str | None = None
    parser: str = "MULTILINGUAL"

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "language": self.language, "parser": self.parser}

    @classmethod
    def from_dict(cls, name: str, data: dict[str, Any]) -> FullTextSpec:
        return cls(
            name=name,
            index=bool(data.get("index", True)),
            language=data.get("language"),
            parser=str(data.get("parser") or "MULTILINGUAL"),
        )


_FULLTEXT_INFO = "lookalike_fulltext"


def check_fts_parser(parser: Any) -> str:
    """``"MULTILINGUAL"`` or ``"STANDARD"`` (any case), or a :class:`ConfigurationError`."""
    name = str(parser).upper() if isinstance(parser, str) else ""
    if name not in FULLTEXT_PARSERS:
        raise ConfigurationError(
            f"unknown full-text parser {parser!r}; use one of {', '.join(FULLTEXT_PARSERS)}"
        )
    return name


def check_fts_language(language: Any) -> str | None:
    """A language name as given (lower-cased), ``None`` for none; refuses what is not a plain name
    (it ends up in DDL on PostgreSQL, so only letters, digits and ``_`` pass)."""
    if language is None:
        return None
    if not isinstance(language, str) or not language.strip().replace("_", "a").isalnum():
        raise ConfigurationError(f"full-text language must be a name such as 'english', got {language!r}")
    return language.strip().lower()


def FullTextField(
    index: bool | None = True,
    fts_parser: str | None = "MULTILINGUAL",
    *,
    language: str | None = None,
    **kwargs: Any,
) -> Any:
    """A text column searched with ``table.search(..., search_type="fulltext")`` (pytidb's name).

    ``index=True`` (the default) builds the full-text index when the table is created;
    ``index=False`` only marks the column (build it later with ``table.create_fts_index``).
    ``fts_parser`` is TiDB's parser; ``language`` picks stemming where the engine has it. Other
    arguments go to :func:`Field` (``default=``, ``nullable=``...).
    """
    spec = FullTextSpec(
        name="",
        index=bool(index) if index is not None else True,
        language=check_fts_language(language),
        parser=check_fts_parser(fts_parser or "MULTILINGUAL"),
    )
    column = kwargs.pop("sa_column", None)
    if column is not None:  # pytidb lets a caller bring the whole column
        column.info[_FULLTEXT_INFO] = spec
        return _SQLModelField(sa_column=column, **kwargs)
    column_kwargs = dict(kwargs.pop("sa_column_kwargs", None) or {})
    column_kwargs["info"] = {**column_kwargs.get("info", {}), _FULLTEXT_INFO: spec}
    kwargs.setdefault("sa_type", sa.Text)
    return _SQLModelField(sa_column_kwargs=column_kwargs, **kwargs)


class FullTextIndex(sa.Index):
    """A full-text index in ``__table_args__`` (pytidb's name): ``FullTextIndex("fts_caption", "caption")``.

    It creates no SQL index of its own: each named column is marked as a full-text column (as
    :func:`FullTextField` does) and the engine builds its own kind of index when the table is created.
    """

    def __init__(
        self,
        name: str,
        *columns: Any,
        fts_parser: str = "MULTILINGUAL",
        language: str | None = None,
        **kw: Any,
    ) -> None:
        if not columns:
            raise SchemaError(f"FullTextIndex {name!r} names no column")
        self.fts_parser = check_fts_parser(fts_parser)
        self.language = check_fts_language(language)
        super().__init__(name, *columns, **kw)


class VectorIndex(sa.Index):
    """A vector index in ``__table_args__`` (pytidb's name): ``VectorIndex("idx_vec", "vec")``.

    Like :class:`FullTextIndex` it creates no SQL index of its own: it marks the one named vector
    column as indexed for ``distance_metric``, and the engine builds its own ANN index when the table
    is created (HNSW on PostgreSQL and TiDB, the IVF index on the embedded engine).
    ``ensure_columnar_replica`` is accepted for pytidb code; TiDB's replica follows the engine's
    ``tiflash_replica`` setting.
    """

    def __init__(
        self,
        name: str,
        *columns: Any,
        distance_metric: Any = "cosine",
        algorithm: str = "HNSW",
        ensure_columnar_replica: bool = True,
        **kw: Any,
    ) -> None:
        if len(columns) != 1:
            raise SchemaError(f"VectorIndex {name!r} must name exactly one vector column, got {len(columns)}")
        if not isinstance(algorithm, str) or algorithm.upper() != "HNSW":
            raise ConfigurationError(f"VectorIndex {name!r}: unknown algorithm {algorithm!r}; use 'HNSW'")
        self.distance_metric = normalize_metric(distance_metric)
        self.ensure_columnar_replica = ensure_columnar_replica
        super().__init__(name, *columns, **kw)


def _declared_vector_indexes(table: sa.Table, vectors: dict[str, VectorSpec]) -> None:
    """Turn :class:`VectorIndex` entries into ``index=True`` on their vector columns; they leave the
    table's SQL indexes (a B-tree over a vector column is useless and fails on some engines)."""
    seen: dict[str, str] = {}
    for idx in list(table.indexes):
        if not isinstance(idx, VectorIndex):
            continue
        (col,) = idx.columns
        vec = vectors.get(col.name)
        if vec is None:
            raise SchemaError(
                f"VectorIndex {idx.name!r} names {col.name!r}, which is not a vector column of {table.name!r}"
            )
        if col.name in seen:  # one ANN index per column: a second metric would be silently dropped
            raise SchemaError(
                f"VectorIndex {idx.name!r} and {seen[col.name]!r} both index {col.name!r} of "
                f"{table.name!r}; declare one index per vector column"
            )
        seen[col.name] = str(idx.name)
        vec.index = True
        if idx.distance_metric != vec.distance_metric:
            # the index serves another metric than the column's searches default to
            vec.index_metric = idx.distance_metric
        table.indexes.discard(idx)


def is_text_column(col: sa.Column[Any]) -> bool:
    """Whether ``col`` holds text (the only kind of column a full-text index accepts)."""
    return _column_kind(col) == "str"


def _fulltext_columns(table: sa.Table) -> dict[str, FullTextSpec]:
    """The table's full-text columns; :class:`FullTextIndex` entries become column marks and leave
    the table's SQL indexes (a B-tree over long text would fail on PostgreSQL)."""
    for idx in list(table.indexes):
        if isinstance(idx, FullTextIndex):
            for col in idx.columns:
                col.info[_FULLTEXT_INFO] = FullTextSpec("", True, idx.language, idx.fts_parser)
            table.indexes.discard(idx)
    out: dict[str, FullTextSpec] = {}
    for col in table.columns:
        spec = col.info.get(_FULLTEXT_INFO)
        if spec is None:
            continue
        if not is_text_column(col):
            raise SchemaError(
                f"full-text column {col.name!r} of {table.name!r} must hold text, not {_column_kind(col)}"
            )
        spec.name = col.name
        out[col.name] = spec
    return out


# --------------------------------------------------------------------------- tags (words for pictures)

_TAGS_INFO = "lookalike_tags"


@dataclass
class TagsSpec:
    """A text column filled at insert with the top words of a vocabulary for an image vector.

    ``vocabulary``: ``None`` for the built-in one, a file path (one phrase a line) or a list of
    phrases. ``prompt`` wraps each phrase before the model's text side embeds it.
    """

    name: str
    vector_field: str
    top: int = 5
    vocabulary: str | list[str] | None = None
    min_score: float | None = None
    scores_field: str | None = None
    prompt: str = "a photo of {}"

    def to_dict(self) -> dict[str, Any]:
        return {f: getattr(self, f) for f in self.__dataclass_fields__ if f != "name"}

    @classmethod
    def from_dict(cls, name: str, data: dict[str, Any]) -> TagsSpec:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__ and k != "name"}
        return cls(name=name, **known)


def TagsField(
    vector_field: str,
    *,
    top: int = 5,
    vocabulary: str | os.PathLike[str] | list[str] | None = None,
    min_score: float | None = None,
    scores_field: str | None = None,
    prompt: str = "a photo of {}",
    fulltext: bool = True,
    **kwargs: Any,
) -> Any:
    """A text column of an image's ``top`` tags (``"beach, sea, sand"``), computed at insert from the
    vector in ``vector_field`` and a vocabulary's text vectors (one matrix product per chunk, no
    extra inference). ``scores_field`` names a JSON column that receives ``{tag: score}``;
    ``min_score`` drops tags scoring below it (cosine similarity). ``fulltext=True`` also marks the
    column for full-text search. Other arguments go to :func:`Field`.
    """
    if not isinstance(top, int) or isinstance(top, bool) or top <= 0:
        raise SchemaError(f"TagsField top must be a positive integer, got {top!r}")
    if min_score is not None and (
        isinstance(min_score, bool) or not isinstance(min_score, (int, float)) or not -1 <= min_score <= 1
    ):
        raise SchemaError(f"TagsField min_score must be a number from -1 to 1, got {min_score!r}")
    if not isinstance(prompt, str) or prompt.count("{}") != 1:
        raise SchemaError(f"TagsField prompt must hold one '{{}}' for the phrase, got {prompt!r}")
    if vocabulary is not None and not isinstance(vocabulary, (str, os.PathLike, list, tuple)):
        raise SchemaError(
            f"TagsField vocabulary must be a file path or a list of phrases, got {vocabulary!r}"
        )
    vocab: str | list[str] | None
    if isinstance(vocabulary, (list, tuple)):
        vocab = [str(v) for v in vocabulary]
    else:
        vocab = None if vocabulary is None else os.fspath(vocabulary)
    spec = TagsSpec(
        "", vector_field, top, vocab, None if min_score is None else float(min_score), scores_field, prompt
    )
    info: dict[str, Any] = {_TAGS_INFO: spec}
    if fulltext:
        info[_FULLTEXT_INFO] = FullTextSpec(name="")
    kwargs.setdefault("default", None)
    kwargs.setdefault("sa_type", sa.Text)
    return _SQLModelField(nullable=True, sa_column_kwargs={"info": info}, **kwargs)


def tag_fields(table: sa.Table) -> dict[str, TagsSpec]:
    """The table's tag columns (declared with :func:`TagsField`), by name."""
    out: dict[str, TagsSpec] = {}
    for col in table.columns:
        spec = col.info.get(_TAGS_INFO)
        if isinstance(spec, TagsSpec):
            spec.name = col.name
            out[col.name] = spec
    return out


def _check_tag_fields(table: sa.Table, vectors: dict[str, VectorSpec]) -> None:
    """Each tag column points at a vector column of the table, and its scores at a JSON column."""
    for name, spec in tag_fields(table).items():
        if spec.vector_field not in vectors:
            raise SchemaError(
                f"tag field {name!r} takes its tags from {spec.vector_field!r}, which is not a vector "
                f"column of {table.name!r}"
            )
        if vectors[spec.vector_field].embed_fn is None:
            raise SchemaError(
                f"tag field {name!r} needs an embedding function on {spec.vector_field!r}: its text side "
                "embeds the vocabulary"
            )
        scores = spec.scores_field
        if scores is not None and (
            scores not in table.columns or not isinstance(table.c[scores].type, sa.JSON)
        ):
            raise SchemaError(f"tag field {name!r} stores scores in {scores!r}, which is not a JSON column")


# --------------------------------------------------------------------------- TableModel


def check_foreign_keys(table: sa.Table) -> None:
    """Refuse a foreign key whose table or column no model defines, naming both (SQLAlchemy would
    fail later, while writing the DDL, with a message that does not say which model to define)."""
    for fk in table.foreign_keys:
        try:
            fk.column  # noqa: B018 - resolving the reference is the check
        except (sa.exc.NoReferencedTableError, sa.exc.NoReferencedColumnError) as exc:
            raise SchemaError(
                f"foreign key {fk.parent.name!r} of {table.name!r} references {fk.target_fullname!r}, "
                "which no TableModel defines; define that model (or fix the name) before creating this table"
            ) from exc


MODELS_METADATA = sa.MetaData()
"""The ``MetaData`` every :class:`TableModel` shares, so ``Field(foreign_key="users.id")`` finds the
table of the ``users`` model. A new definition of a table name replaces the old one here (see
:func:`forget_model_table`), so redefining a model never merges old columns into it."""
_MODELS_LOCK = threading.RLock()


def forget_model_table(name: str, schema: str | None = None) -> None:
    """Take table ``name`` out of :data:`MODELS_METADATA` (models already defined keep their table)."""
    key = f"{schema}.{name}" if schema else name
    with _MODELS_LOCK:
        old = MODELS_METADATA.tables.get(key)
        if old is not None:
            MODELS_METADATA.remove(old)


def _table_key(name: str, namespace: dict[str, Any]) -> tuple[str, str | None]:
    """The table name and schema a model class statement declares (SQLModel's default: the class name)."""
    tablename = namespace.get("__tablename__")
    args = namespace.get("__table_args__")
    opts = args if isinstance(args, dict) else args[-1] if args and isinstance(args[-1], dict) else {}
    return (tablename if isinstance(tablename, str) else name.lower()), opts.get("schema")


class _TableModelMeta(SQLModelMetaclass):
    def __new__(mcs, name: str, bases: tuple[type, ...], namespace: dict[str, Any], **kwargs: Any) -> Any:
        if not namespace.get("_lookalike_base", False):
            kwargs.setdefault("table", True)
            # one shared MetaData, so foreign keys between models resolve; __init__ makes a new
            # definition replace an old one of the same name instead of merging columns into it
            namespace.setdefault("metadata", MODELS_METADATA)
        with warnings.catch_warnings():
            # redefining a model of the same name is normal here (a redefinition replaces the table);
            # SQLAlchemy's string-lookup table for relationships is all that the warning is about
            warnings.filterwarnings("ignore", message=".*same class name and module name.*")
            return super().__new__(mcs, name, bases, namespace, **kwargs)

    def __init__(cls, name: str, bases: tuple[type, ...], namespace: dict[str, Any], **kwargs: Any) -> None:
        # the lock spans forget + define: another thread rebuilding the same table (open_table in a
        # server) must not slip its definition in between
        with _MODELS_LOCK, warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*same class name and module name.*")
            table = kwargs.get("table", True) and not namespace.get("_lookalike_base")  # not a mixin
            if table and getattr(cls, "metadata", None) is MODELS_METADATA:
                forget_model_table(*_table_key(name, namespace))
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
    fulltext: dict[str, FullTextSpec] = field(default_factory=dict)
    """Full-text columns by name (those marked by :func:`FullTextField`, :class:`FullTextIndex` or
    ``Table.create_fts_index``)."""

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
        check_foreign_keys(table)
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
        _check_tag_fields(table, vectors)
        _declared_vector_indexes(table, vectors)
        fulltext = _fulltext_columns(table)
        return cls(name=table.name, sa_table=table, model=model, vectors=vectors, fulltext=fulltext)

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
            tags = col.info.get(_TAGS_INFO)
            if isinstance(tags, TagsSpec):
                entry["tags"] = tags.to_dict()
            columns.append(entry)
        vectors = {}
        for name, spec in self.vectors.items():
            data = spec.to_dict()
            data["embedder"] = spec.embed_fn.config() if spec.embed_fn is not None else None
            vectors[name] = data
        fulltext = {name: spec.to_dict() for name, spec in self.fulltext.items()}
        return {
            "version": CATALOG_VERSION,
            "name": self.name,
            "columns": columns,
            "vectors": vectors,
            "fulltext": fulltext,
        }

    @classmethod
    def from_description(
        cls, desc: dict[str, Any], embedders: dict[str, BaseEmbeddingFunction | None]
    ) -> TableSpec:
        """Rebuild a table (and a model class for ``to_pydantic``) from :meth:`describe` output."""
        name = desc["name"]
        annotations: dict[str, Any] = {}
        namespace: dict[str, Any] = {"__tablename__": name, "__module__": __name__}
        if name in MODELS_METADATA.tables:
            # a model of this name is defined here: foreign keys to ``name`` keep resolving to it
            namespace["metadata"] = sa.MetaData()
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
                # a tag column (TagsField) keeps its settings
                sa_column_kwargs={"info": {_TAGS_INFO: TagsSpec.from_dict(cname, col["tags"])}}
                if col.get("tags")
                else {},
            )
        namespace["__annotations__"] = annotations
        model = cast("type[TableModel]", _TableModelMeta(_class_name(name), (TableModel,), namespace))
        table = getattr(model, "__table__", None)  # SQLModel sets it on table models; not typed
        if not isinstance(table, sa.Table):  # the metaclass always makes one (table=True above)
            raise SchemaError(f"could not rebuild table {name!r} from its stored description")
        fulltext = {  # absent from version 1 descriptions
            col: FullTextSpec.from_dict(col, data)
            for col, data in (desc.get("fulltext") or {}).items()
            if col in table.columns
        }
        for col, text in fulltext.items():
            table.c[col].info[_FULLTEXT_INFO] = text
        return cls(name=name, sa_table=table, model=model, vectors=vectors, fulltext=fulltext)


def _class_name(table: str) -> str:
    parts = [p for p in "".join(c if c.isalnum() else "_" for c in table).split("_") if p]
    name = "".join(p[:1].upper() + p[1:] for p in parts) or "Table"
    return name if name[0].isalpha() else "T" + name
