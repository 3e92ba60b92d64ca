"""The embedding seam: :class:`BaseEmbeddingFunction` and the helpers every provider shares.

A provider (local ONNX model, Jina AI, an OpenAI-compatible server, or a user's own class) subclasses
:class:`BaseEmbeddingFunction` and fills in three hooks:

* ``embed_texts(texts, *, purpose)`` → ``(N, d)`` array;
* ``prepare_image(ref)`` → whatever ``embed_images`` takes (runs in worker threads: decode, resize,
  or for a remote provider pass a URL through / encode bytes); the default decodes to an RGB PIL image;
* ``embed_images(prepared, *, purpose)`` → ``(N, d)`` array.

``purpose`` is ``"query"`` for search queries and ``"document"`` for stored items (remote providers map
it to their ``task``/``input_type``). The base class classifies inputs as text or image, batches them,
isolates bad items, checks every vector (dimension, NaN/Inf) and offers the public calls
:meth:`embed_query` and :meth:`embed_sources` (and pytidb's ``get_query_embedding`` /
``get_source_embeddings`` names).

Layering: this module imports only errors, types, the image helpers and the registry's importer. The
vector cache is the :class:`EmbeddingCache` protocol declared here (``lookalike.cache`` implements it),
so embedders never import the database side. The one import of a higher layer is
:meth:`BaseEmbeddingFunction.VectorField`'s lazy import of :mod:`lookalike.schema`.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Protocol

import numpy as np
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from lookalike._registry import import_target
from lookalike.errors import (
    AuthenticationError,
    ConfigurationError,
    EmbeddingError,
    ImageInputError,
    LookalikeError,
    ModelNotFoundError,
    VectorError,
    describe_item,
)
from lookalike.images.info import SourceInfo, source_info
from lookalike.images.refs import is_image_ref, looks_like_path
from lookalike.types import OnError, ProgressHook, Purpose, SourceType, check_source_type

ITEM_STATUS = frozenset({400, 413, 422})
"""HTTP statuses a single bad input can cause: bulk paths split a failed batch to find the item."""

# Classes defined inside functions can't be imported back by name; remember them for this process.
_LOCAL_CLASSES: dict[str, type[BaseEmbeddingFunction]] = {}

# settings a subclass may not pass to super().__init__: they would change what a stored table's
# configuration means (provider) or shadow the base's own behaviour
_RESERVED_FIELDS = frozenset({"provider", "remote", "config", "VectorField"})


def _accepted_options(cls: type, options: dict[str, Any]) -> dict[str, Any]:
    """The stored options ``cls.__init__`` takes: a setting a subclass computed and passed to
    ``super().__init__`` (pytidb's style) may not be one of its own parameters."""
    try:
        params = inspect.signature(cls).parameters
    except (TypeError, ValueError):
        return options
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return options
    return {k: v for k, v in options.items() if k in params}


def _json_able(value: Any) -> bool:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True


class EmbeddingCache(Protocol):
    """Vectors by content hash for one model, as :meth:`BaseEmbeddingFunction.embed_sources` uses them.

    :class:`lookalike.cache.EmbeddingCache` implements it over the database; embedders only look up
    and remember, and the caller writes what was remembered with the rows.
    """

    def lookup(self, hashes: list[str]) -> dict[str, np.ndarray]:
        """The cached vectors among ``hashes`` (missing ones are left out)."""
        ...

    def remember(self, content_hash: str, vector: np.ndarray) -> None:
        """Keep a newly computed vector for ``content_hash``."""
        ...


@dataclass(frozen=True)
class EmbedInput:
    """One classified input: ``kind`` is "text" or "image"; ``value`` is the original object."""

    kind: Literal["text", "image"]
    value: Any


@dataclass
class BulkJob:
    """One :meth:`~BaseEmbeddingFunction.embed_sources` call as a provider's bulk path sees it.

    ``results`` gets one entry per source; ``total`` counts the sources to embed (not the empty ones).
    """

    sources: Sequence[Any]
    results: list[Any]
    purpose: Purpose
    on_error: OnError
    total: int
    progress: ProgressHook | None = None
    cache: EmbeddingCache | None = None
    infos: dict[int, SourceInfo] | None = None
    done: int = 0

    def advance(self, n: int) -> None:
        """``n`` more sources are done (calls ``progress(done, total)``)."""
        self.done += n
        if self.progress is not None:
            self.progress(self.done, self.total)


def classify(value: Any, source_type: SourceType, *, multimodal: bool) -> EmbedInput:
    """Decide whether ``value`` is embedded as text or as an image.

    ``source_type="image"`` forces an image (a string that is neither URL, data URI nor an existing
    path is an error, never silently text); ``"text"`` forces text; ``"auto"`` looks at the value.
    """
    if source_type == "text":
        if not isinstance(value, str):
            raise EmbeddingError(f"a text source must be a string, got {describe_item(value)}", item=value)
        return EmbedInput("text", value)
    if source_type == "image":
        if not multimodal:
            raise EmbeddingError(
                "this embedding model is text-only (multimodal=False); it cannot embed an image",
                item=value,
            )
        return EmbedInput("image", value)
    if isinstance(value, str) and not is_image_ref(value):
        return EmbedInput("text", value)
    if is_image_ref(value):
        if not multimodal:
            if isinstance(value, str) and looks_like_path(value):
                raise EmbeddingError(
                    f"{describe_item(value)!r} looks like an image path, but this embedding model is "
                    "text-only; pass source_type='text' to embed the string as words",
                    item=value,
                )
            raise EmbeddingError(
                f"{describe_item(value)} is an image, but this embedding model is text-only "
                "(multimodal=False)",
                item=value,
            )
        return EmbedInput("image", value)
    raise EmbeddingError(f"cannot embed {describe_item(value)}: expected text or an image", item=value)


def check_vector(
    vector: Any, dimensions: int | None, *, item: Any = None, what: str = "vector"
) -> np.ndarray:
    """Return ``vector`` as a 1-D float32 array, or raise :class:`VectorError` naming the item."""
    try:
        arr = np.asarray(vector, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise VectorError(f"{what} for {describe_item(item)} is not a list of numbers", item=item) from exc
    if arr.ndim != 1:
        raise VectorError(f"{what} for {describe_item(item)} must be 1-D, got shape {arr.shape}", item=item)
    if dimensions is not None and arr.shape[0] != dimensions:
        raise VectorError(
            f"{what} for {describe_item(item)} has {arr.shape[0]} dimensions, expected {dimensions}",
            item=item,
        )
    if not np.isfinite(arr).all():
        raise VectorError(f"{what} for {describe_item(item)} contains NaN or Inf", item=item)
    return arr


def l2_normalize(matrix: np.ndarray) -> np.ndarray:
    """Row-wise L2 normalisation (rows of zeros stay zero)."""
    matrix = np.asarray(matrix, dtype=np.float32)
    norms = np.linalg.norm(matrix, axis=-1, keepdims=True)
    norms[norms == 0] = 1.0
    return matrix / norms


def _class_path(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


class BaseEmbeddingFunction:
    """Base class of every embedding model, built-in or your own.

    Subclass it, set ``dimensions`` and implement ``embed_texts`` (and ``embed_images`` for
    multimodal models)::

        class MyEmbedder(BaseEmbeddingFunction):
            def __init__(self):
                super().__init__(model_name="my-model", dimensions=64, multimodal=True)
            def embed_texts(self, texts, *, purpose):
                ...  # -> (len(texts), 64) array
            def embed_images(self, images, *, purpose):
                ...  # images are RGB PIL images -> (len(images), 64) array
    """

    provider: ClassVar[str] = "python"
    """Registry name of the provider; "python" means "import the class stored in the config"."""

    remote: ClassVar[bool] = False
    """True for providers that embed on a server (they get URLs as URLs; no local content cache)."""

    batch_size: int = 32
    """Items per call to ``embed_texts``/``embed_images``."""

    prepare_workers: int = 4
    """Threads used by :meth:`prepare_image` (fetch + decode) in bulk work."""

    @property
    def full_name(self) -> str:
        """``"provider/model"`` as a user would pass it to ``EmbeddingFunction`` (a user's own class:
        just its model name)."""
        name = str(self.model_name)
        if self.provider == "python" or name.startswith(f"{self.provider}/"):
            return name
        return f"{self.provider}/{name}"

    @property
    def preferred_chunk_size(self) -> int:
        """Items per ``embed_sources`` call this embedder works best with (0: no preference; remote
        providers ask for enough to keep every concurrent request busy)."""
        return 0

    # defaults for subclasses that set up without calling __init__
    _model_name: str = ""
    _dimensions: int | None = None
    _multimodal: bool = False

    def __init__(
        self,
        model_name: str = "",
        *,
        dimensions: int | None = None,
        multimodal: bool = False,
        batch_size: int | None = None,
        **fields: Any,
    ) -> None:
        if dimensions is not None and (not isinstance(dimensions, int) or dimensions <= 0):
            raise ConfigurationError(f"dimensions must be a positive integer, got {dimensions!r}")
        self.model_name = model_name or type(self).__name__
        self.dimensions = dimensions
        self.multimodal = multimodal
        if batch_size is not None:
            if batch_size <= 0:
                raise ConfigurationError(f"batch_size must be positive, got {batch_size!r}")
            self.batch_size = batch_size
        self._set_fields(fields)

    def _set_fields(self, fields: dict[str, Any]) -> None:
        """Keep a subclass's own settings, passed to ``super().__init__`` as pytidb's (pydantic)
        embedders do; a class attribute declared with ``Field(default)`` gets its default."""
        for name, value in fields.items():
            if name.startswith("_") or name in _RESERVED_FIELDS:
                raise ConfigurationError(f"{type(self).__name__}: {name!r} can't be an embedder setting")
            setattr(self, name, value)
        self._extra_fields = dict(fields)
        for klass in type(self).__mro__:
            for name, value in vars(klass).items():
                if isinstance(value, FieldInfo) and name not in fields:
                    default = value.get_default(call_default_factory=True)
                    setattr(self, name, None if default is PydanticUndefined else default)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _LOCAL_CLASSES[_class_path(cls)] = cls

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(model_name={self.model_name!r}, dimensions={self.dimensions}, "
            f"multimodal={self.multimodal})"
        )

    # Properties rather than plain attributes so that a wrapper (EmbeddingFunction) can forward them
    # to the object it wraps while keeping them assignable.
    @property
    def model_name(self) -> str:
        """The model's name, as shown in messages and stored with a table."""
        return self._model_name or type(self).__name__

    @model_name.setter
    def model_name(self, value: str) -> None:
        self._model_name = value

    @property
    def dimensions(self) -> int | None:
        """The vector size (``None`` until known: then the first embedding sets it)."""
        return self._dimensions

    @dimensions.setter
    def dimensions(self, value: int | None) -> None:
        self._dimensions = value

    @property
    def multimodal(self) -> bool:
        """Whether the model embeds images as well as text."""
        return self._multimodal

    @multimodal.setter
    def multimodal(self, value: bool) -> None:
        self._multimodal = value

    # ----------------------------------------------------------------- hooks for subclasses
    def embed_texts(self, texts: list[str], *, purpose: Purpose) -> np.ndarray:
        """Embed a batch of strings; return an ``(N, d)`` array.

        Not overridden, it calls the pytidb-style methods a subclass overrides instead:
        ``get_query_embedding`` for a query, ``get_source_embeddings`` (else ``get_source_embedding``
        per item) for stored items.
        """
        out = self._pytidb_style(texts, "text", purpose)
        if out is None:
            raise NotImplementedError(
                f"{type(self).__name__} implements neither embed_texts nor get_query_embedding / "
                "get_source_embedding(s)"
            )
        return out

    def _overrides(self, name: str) -> bool:
        return getattr(type(self), name) is not getattr(BaseEmbeddingFunction, name)

    def _pytidb_style(self, items: list[Any], source_type: SourceType, purpose: Purpose) -> np.ndarray | None:
        """``items`` embedded by the subclass's pytidb-style overrides, or None when it has none."""
        vectors: list[list[float] | None]
        if purpose == "query" and self._overrides("get_query_embedding"):
            vectors = [self.get_query_embedding(item, source_type=source_type) for item in items]
        elif self._overrides("get_source_embeddings"):
            vectors = list(self.get_source_embeddings(items, source_type=source_type))
        elif self._overrides("get_source_embedding"):
            vectors = [self.get_source_embedding(item, source_type=source_type) for item in items]
        elif self._overrides("get_query_embedding"):  # only a query method: it embeds everything
            vectors = [self.get_query_embedding(item, source_type=source_type) for item in items]
        else:
            return None
        if any(v is None for v in vectors):
            raise EmbeddingError(f"{type(self).__name__} returned no vector for an item")
        return np.asarray(vectors, dtype=np.float32)

    def prepare_image(self, ref: Any) -> Any:
        """Turn an image reference into what :meth:`embed_images` takes (default: an RGB PIL image).

        Runs in worker threads during bulk work, so it must be thread-safe.
        """
        from lookalike.images import load_image

        return load_image(ref)

    def embed_images(self, images: list[Any], *, purpose: Purpose) -> np.ndarray:
        """Embed a batch of prepared images; return an ``(N, d)`` array (by default through the
        pytidb-style overrides, with ``source_type="image"``, for a multimodal embedder)."""
        out = self._pytidb_style(images, "image", purpose) if self.multimodal else None
        if out is None:
            raise EmbeddingError(f"{self.model_name} cannot embed images")
        return out

    def config_options(self) -> dict[str, Any]:
        """Keyword arguments that rebuild this object in another process (JSON-able, no secrets).

        By default: the JSON-able settings a subclass passed to ``super().__init__`` beyond the
        base's own (pytidb's way of writing an embedder).
        """
        extra = getattr(self, "_extra_fields", {})
        return {k: v for k, v in extra.items() if _json_able(v) and "key" not in k.lower()}

    def ensure_ready(self, kind: Literal["text", "image"] = "image") -> None:
        """Load (or check) now what embedding ``kind`` needs, so a setup problem shows before any item.

        Local models download and load their tower; remote ones check that an API key is there. Raises
        :class:`~lookalike.errors.ModelNotFoundError`, :class:`~lookalike.errors.AuthenticationError` or
        :class:`~lookalike.errors.MissingDependencyError`. The default does nothing.
        """

    # ----------------------------------------------------------------- configuration
    def config(self) -> dict[str, Any]:
        """The JSON-able configuration stored with a table, enough to rebuild this embedder.

        It never holds an API key: providers store the name of the environment variable instead.
        """
        return {
            "provider": self.provider,
            "class": _class_path(type(self)),
            "model": self.model_name,
            "dimensions": self.dimensions,
            "multimodal": self.multimodal,
            "options": self.config_options(),
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> BaseEmbeddingFunction:
        """Rebuild an embedder of this class from :meth:`config` output."""
        obj = cls(**_accepted_options(cls, config.get("options", {})))
        if obj.dimensions is None:
            obj.dimensions = config.get("dimensions")
        return obj

    def VectorField(
        self,
        source_field: str | None = None,
        source_type: SourceType = "auto",
        *,
        distance_metric: str = "cosine",
        index: bool | None = None,
        dimensions: int | None = None,
        **kwargs: Any,
    ) -> Any:
        """A vector column filled from ``source_field`` by this embedder."""
        # The one allowed upward import of the embedding layer (pytidb's convenience spelling): lazy,
        # so importing an embedder never imports the schema layer.
        from lookalike.schema import VectorField

        dims = dimensions or self.dimensions
        if dims is None:
            raise ConfigurationError(
                f"{self.model_name}: dimensions are unknown; pass dimensions= to the embedding function"
            )
        return VectorField(
            dimensions=dims,
            source_field=source_field,
            embed_fn=self,
            source_type=source_type,
            distance_metric=distance_metric,
            index=index,
            **kwargs,
        )

    # ----------------------------------------------------------------- public calls
    def embed_query(self, query: Any, *, source_type: SourceType = "auto") -> np.ndarray:
        """Embed one search query (text or image) as a 1-D float32 vector."""
        source_type = check_source_type(source_type)
        inp = classify(query, source_type, multimodal=self.multimodal)
        if inp.kind == "text":
            out = self._call(self.embed_texts, [inp.value], "query")
        else:
            prepared = self._prepare(inp.value)
            out = self._call(self.embed_images, [prepared], "query")
        return self._checked_rows(out, [query])[0]

    def embed_sources(
        self,
        sources: Sequence[Any],
        *,
        source_type: SourceType = "auto",
        on_error: OnError = "raise",
        purpose: Purpose = "document",
        progress: ProgressHook | None = None,
        cache: EmbeddingCache | None = None,
        infos: dict[int, SourceInfo] | None = None,
    ) -> list[np.ndarray | LookalikeError | None]:
        """Embed many stored items.

        Returns one entry per source: a float32 vector, ``None`` for a ``None``/empty source, or (with
        ``on_error="skip"``) the error for an item that failed. With ``on_error="raise"`` the first
        failure is raised with its ``index`` and ``item`` set.

        Images are read and decoded by a thread pool one window ahead of inference, so decoding and
        the model overlap. With ``cache``, each image's bytes are hashed first and cached vectors are
        reused (no decode, no inference); ``infos`` then receives each image's :class:`SourceInfo`.
        """
        source_type = check_source_type(source_type)
        if on_error not in ("raise", "skip"):
            raise ConfigurationError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
        results: list[np.ndarray | LookalikeError | None] = [None] * len(sources)
        texts: list[int] = []
        images: list[int] = []
        for i, src in enumerate(sources):
            if src is None or (isinstance(src, str) and not src.strip()):
                continue
            try:
                inp = classify(src, source_type, multimodal=self.multimodal)
            except LookalikeError as exc:
                self._fail(results, i, src, exc, on_error)
                continue
            (texts if inp.kind == "text" else images).append(i)
        if texts or images:
            job = BulkJob(
                sources, results, purpose, on_error, len(texts) + len(images), progress, cache, infos
            )
            self._embed_sorted(job, texts, images)
        return results

    def _embed_sorted(self, job: BulkJob, texts: list[int], images: list[int]) -> None:
        """Fill ``job.results`` at the positions ``texts`` and ``images`` (classified, not empty).

        The bulk strategy behind :meth:`embed_sources`: here batches of ``batch_size`` in this thread,
        with images decoded one window ahead; remote providers send packed requests concurrently.
        """
        sources, results = job.sources, job.results
        for batch in _chunks(texts, self.batch_size):
            self._embed_isolated(
                self.embed_texts,
                [sources[i] for i in batch],
                batch,
                sources,
                results,
                job.purpose,
                job.on_error,
            )
            job.advance(len(batch))
        if images:
            workers = max(1, self.prepare_workers)
            with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="lookalike-decode") as pool:
                _ImagePipeline(self, job, pool).run(images)

    # pytidb's names
    def get_query_embedding(self, query: Any, source_type: SourceType = "auto", **_: Any) -> list[float]:
        """pytidb-compatible alias of :meth:`embed_query` returning a list."""
        return self.embed_query(query, source_type=source_type).tolist()

    def get_source_embedding(self, source: Any, source_type: SourceType = "auto", **_: Any) -> list[float]:
        """pytidb-compatible: embed one stored item."""
        out = self.embed_sources([source], source_type=source_type)[0]
        if not isinstance(out, np.ndarray):  # None: with on_error="raise" no error is returned
            raise EmbeddingError("cannot embed an empty source", item=source)
        return out.tolist()

    def get_source_embeddings(
        self, sources: list[Any], source_type: SourceType = "auto", **_: Any
    ) -> list[list[float] | None]:
        """pytidb-compatible: embed many stored items."""
        out = self.embed_sources(sources, source_type=source_type)
        # with on_error="raise" an entry is a vector or None (an empty source), never an error
        return [v.tolist() if isinstance(v, np.ndarray) else None for v in out]

    # ----------------------------------------------------------------- internals
    def _prepare(self, ref: Any) -> Any:
        try:
            return self.prepare_image(ref)
        except LookalikeError as exc:
            exc.with_context(item=ref)  # fills the item only when the error names none
            raise
        except Exception as exc:  # a user's hook failed in an unexpected way
            raise ImageInputError(f"could not read image {describe_item(ref)}: {exc}", item=ref) from exc

    def _prepare_safe(self, ref: Any) -> Any:
        try:
            return self._prepare(ref)
        except LookalikeError as exc:
            return exc

    def _call(self, fn: Callable[..., Any], batch: list[Any], purpose: Purpose) -> Any:
        try:
            return fn(batch, purpose=purpose)
        except LookalikeError:
            raise
        except Exception as exc:
            raise EmbeddingError(f"{self.model_name} failed to embed a batch: {exc}") from exc

    def _checked_rows(self, out: Any, items: Sequence[Any]) -> list[np.ndarray]:
        try:
            matrix = np.asarray(out, dtype=np.float32)
        except (TypeError, ValueError) as exc:
            raise EmbeddingError(f"{self.model_name} returned something that is not a matrix") from exc
        if matrix.ndim != 2 or matrix.shape[0] != len(items):
            raise EmbeddingError(
                f"{self.model_name} returned {matrix.shape[0] if matrix.ndim else 0} vectors "
                f"for {len(items)} inputs (shape {matrix.shape})"
            )
        if self.dimensions is None:
            self.dimensions = int(matrix.shape[1])
        return [
            check_vector(row, self.dimensions, item=item, what="embedding")
            for row, item in zip(matrix, items)
        ]

    def _embed_isolated(
        self,
        fn: Callable[..., Any],
        batch: list[Any],
        idx: list[int],
        sources: Sequence[Any],
        results: list[Any],
        purpose: Purpose,
        on_error: OnError,
    ) -> None:
        """Embed a batch; when it fails, split it to find the items at fault."""
        try:
            rows = self._checked_rows(self._call(fn, batch, purpose), [sources[i] for i in idx])
        except (AuthenticationError, ModelNotFoundError):
            raise  # every item would fail the same way
        except LookalikeError as exc:
            if len(batch) == 1:
                self._fail(results, idx[0], sources[idx[0]], exc, on_error)
                return
            if on_error == "raise" and exc.index is None and not _item_specific(exc):
                raise
            mid = len(batch) // 2
            self._embed_isolated(fn, batch[:mid], idx[:mid], sources, results, purpose, on_error)
            self._embed_isolated(fn, batch[mid:], idx[mid:], sources, results, purpose, on_error)
            return
        for i, row in zip(idx, rows):
            results[i] = row

    @staticmethod
    def _fail(results: list[Any], index: int, item: Any, exc: LookalikeError, on_error: OnError) -> None:
        exc.with_context(index=index, item=item)
        if on_error == "raise":
            raise exc
        results[index] = exc


@dataclass
class _Pending:
    """An image of a window on its way to the model: its position, the future of its prepared form,
    its content hash (with a cache) and the positions of the same bytes later in the window."""

    index: int
    prepared: Future[Any]
    hash: str | None = None
    aliases: list[int] = field(default_factory=list)


class _ImagePipeline:
    """The local bulk path for images: read (+hash) → cache lookup → decode → batched inference.

    Images go in windows of ``batch_size``. Worker threads read window k+1 and decode window k while
    the model runs on window k-1, so decoding and inference overlap; every result lands at its source's
    position, so the input order holds whatever order the threads finish in. With a cache, a window's
    hashes are looked up at once: hits skip decoding and inference, and the same bytes twice in one
    window are embedded once.
    """

    def __init__(self, embedder: BaseEmbeddingFunction, job: BulkJob, pool: ThreadPoolExecutor) -> None:
        self.embedder = embedder
        self.job = job
        self.pool = pool

    def run(self, images: list[int]) -> None:
        """Embed the sources at positions ``images`` into ``job.results``."""
        windows = list(_chunks(images, self.embedder.batch_size))
        pending: list[_Pending] | None = None
        reads = self.read(windows[0])
        for k, window in enumerate(windows):
            current = reads
            if k + 1 < len(windows):
                reads = self.read(windows[k + 1])
            submitted = self.decode(window, current)
            if pending is not None:
                self.infer(pending)  # the model runs on window k-1 while threads decode window k
            pending = submitted
        if pending is not None:
            self.infer(pending)

    def read(self, window: list[int]) -> list[Future[tuple[Any, SourceInfo] | LookalikeError]]:
        """Submit reading and hashing the window's sources (with a cache only: else decoding reads)."""
        if self.job.cache is None:
            return []
        return [self.pool.submit(_read_with_info, self.job.sources[i]) for i in window]

    def decode(
        self, window: list[int], reads: list[Future[tuple[Any, SourceInfo] | LookalikeError]]
    ) -> list[_Pending]:
        """Submit decoding for the window's images the cache does not hold."""
        job, prepare = self.job, self.embedder._prepare_safe
        if job.cache is None:
            return [_Pending(i, self.pool.submit(prepare, job.sources[i])) for i in window]
        read: list[tuple[int, Any, SourceInfo]] = []
        for i, fut in zip(window, reads):
            value = fut.result()
            if isinstance(value, LookalikeError):
                self.fail([i], value)
            else:
                read.append((i, *value))
        hits = job.cache.lookup([info.hash for _, _, info in read])
        out: list[_Pending] = []
        first: dict[str, _Pending] = {}
        for i, src, info in read:
            if job.infos is not None:
                job.infos[i] = info
            if info.hash in hits:
                job.results[i] = hits[info.hash]
                job.advance(1)
            elif info.hash in first:  # the same bytes twice in one window: embed once
                first[info.hash].aliases.append(i)
            else:
                first[info.hash] = entry = _Pending(i, self.pool.submit(prepare, src), info.hash)
                out.append(entry)
        return out

    def infer(self, window: list[_Pending]) -> None:
        """Embed a window's decoded images in batches (a bad item is isolated, not its batch)."""
        ok: list[_Pending] = []
        prepared: list[Any] = []
        for entry in window:
            value = entry.prepared.result()
            if isinstance(value, LookalikeError):
                self.fail([entry.index, *entry.aliases], value)
            else:
                ok.append(entry)
                prepared.append(value)
        job, embedder = self.job, self.embedder
        size = embedder.batch_size
        for start in range(0, len(ok), size):
            batch = ok[start : start + size]
            idx = [entry.index for entry in batch]
            embedder._embed_isolated(
                embedder.embed_images,
                prepared[start : start + size],
                idx,
                job.sources,
                job.results,
                job.purpose,
                job.on_error,
            )
            for entry in batch:
                self.finish(entry)

    def finish(self, entry: _Pending) -> None:
        """Give an embedded image's outcome to its aliases and its vector to the cache."""
        results, sources = self.job.results, self.job.sources
        vector = results[entry.index]
        for j in entry.aliases:
            if isinstance(vector, LookalikeError):  # skipped: a copy that names its own index and item
                results[j] = vector.for_item(item=sources[j], index=j)
            else:
                results[j] = vector
        if self.job.cache is not None and entry.hash is not None and isinstance(vector, np.ndarray):
            self.job.cache.remember(entry.hash, vector)
        self.job.advance(1 + len(entry.aliases))

    def fail(self, positions: list[int], exc: LookalikeError) -> None:
        """Record (or, with ``on_error="raise"``, raise) one failure at each of ``positions``.

        Positions after the first hold the same bytes under other names: each gets its own copy of
        the error, naming its own index and item.
        """
        job = self.job
        for k, j in enumerate(positions):
            error = exc if k == 0 else exc.for_item(item=job.sources[j], index=j)
            self.embedder._fail(job.results, j, job.sources[j], error, job.on_error)
        job.advance(len(positions))


def _read_with_info(ref: Any) -> tuple[Any, SourceInfo] | LookalikeError:
    """Read an image's bytes and hash them (worker thread); errors are returned, not raised."""
    from lookalike.images import read_source  # Pillow and httpx load with the first image

    try:
        src = read_source(ref)
        return src, source_info(src)
    except LookalikeError as exc:
        return exc.with_context(item=ref)
    except Exception as exc:
        return ImageInputError(f"could not read image {describe_item(ref)}: {exc}", item=ref)


def _item_specific(exc: LookalikeError) -> bool:
    """Errors worth bisecting a batch for: those a single bad input can cause."""
    status = getattr(exc, "status_code", None)  # only ProviderError has one
    return status in ITEM_STATUS or isinstance(exc, (VectorError, ImageInputError))


def _chunks(seq: list[int], size: int) -> Iterator[list[int]]:
    step = max(1, size)
    for start in range(0, len(seq), step):
        yield seq[start : start + step]


def resolve_class(path: str) -> type[BaseEmbeddingFunction]:
    """Import ``module:QualName`` (or find a class defined earlier in this process)."""
    if path in _LOCAL_CLASSES:
        return _LOCAL_CLASSES[path]
    module_name = path.partition(":")[0]
    try:
        obj = import_target(path)
    except (ImportError, AttributeError) as exc:
        raise ConfigurationError(
            f"the embedding class {path!r} cannot be imported ({exc}): install the package that "
            f"provides {module_name.split('.')[0]!r}, or pass embed_fn= to open_table"
        ) from exc
    if not (isinstance(obj, type) and issubclass(obj, BaseEmbeddingFunction)):
        raise ConfigurationError(f"{path!r} is not a BaseEmbeddingFunction subclass")
    return obj
