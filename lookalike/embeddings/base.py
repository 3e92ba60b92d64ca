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
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np

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
from lookalike.images.refs import is_image_ref, looks_like_path

if TYPE_CHECKING:
    from lookalike.cache import EmbeddingCache, SourceInfo

Purpose = Literal["query", "document"]
SourceType = Literal["auto", "text", "image"]
OnError = Literal["raise", "skip"]
ProgressHook = Callable[[int, int], None]
"""Called as ``hook(done, total)`` while a batch of sources is embedded."""

_SOURCE_TYPES = ("auto", "text", "image")

# Classes defined inside functions can't be imported back by name; remember them for this process.
_LOCAL_CLASSES: dict[str, type[BaseEmbeddingFunction]] = {}


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


def check_source_type(source_type: str) -> SourceType:
    """Validate a ``source_type`` argument."""
    if source_type not in _SOURCE_TYPES:
        raise ConfigurationError(f"source_type must be one of {_SOURCE_TYPES}, got {source_type!r}")
    return source_type  # type: ignore[return-value]


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

    def __init__(
        self,
        model_name: str = "",
        *,
        dimensions: int | None = None,
        multimodal: bool = False,
        batch_size: int | None = None,
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

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _LOCAL_CLASSES[_class_path(cls)] = cls

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(model_name={self.model_name!r}, dimensions={self.dimensions}, "
            f"multimodal={self.multimodal})"
        )

    # ----------------------------------------------------------------- hooks for subclasses
    def embed_texts(self, texts: list[str], *, purpose: Purpose) -> np.ndarray:
        """Embed a batch of strings; return an ``(N, d)`` array."""
        raise NotImplementedError(f"{type(self).__name__} does not implement embed_texts")

    def prepare_image(self, ref: Any) -> Any:
        """Turn an image reference into what :meth:`embed_images` takes (default: an RGB PIL image).

        Runs in worker threads during bulk work, so it must be thread-safe.
        """
        from lookalike.images import load_image

        return load_image(ref)

    def embed_images(self, images: list[Any], *, purpose: Purpose) -> np.ndarray:
        """Embed a batch of prepared images; return an ``(N, d)`` array."""
        raise EmbeddingError(f"{self.model_name} cannot embed images")

    def config_options(self) -> dict[str, Any]:
        """Keyword arguments that rebuild this object in another process (JSON-able, no secrets)."""
        return {}

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
        obj = cls(**config.get("options", {}))
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
            self._embed_images_pipelined(
                images, sources, results, job.purpose, job.on_error, job.advance, job.cache, job.infos
            )

    # pytidb's names
    def get_query_embedding(self, query: Any, source_type: SourceType = "auto", **_: Any) -> list[float]:
        """pytidb-compatible alias of :meth:`embed_query` returning a list."""
        return self.embed_query(query, source_type=source_type).tolist()

    def get_source_embedding(self, source: Any, source_type: SourceType = "auto", **_: Any) -> list[float]:
        """pytidb-compatible: embed one stored item."""
        out = self.embed_sources([source], source_type=source_type)[0]
        if out is None:
            raise EmbeddingError("cannot embed an empty source", item=source)
        return out.tolist()  # type: ignore[union-attr]

    def get_source_embeddings(
        self, sources: list[Any], source_type: SourceType = "auto", **_: Any
    ) -> list[list[float] | None]:
        """pytidb-compatible: embed many stored items."""
        out = self.embed_sources(sources, source_type=source_type)
        return [None if v is None else v.tolist() for v in out]  # type: ignore[union-attr]

    # ----------------------------------------------------------------- internals
    def _embed_images_pipelined(
        self,
        images: list[int],
        sources: Sequence[Any],
        results: list[Any],
        purpose: Purpose,
        on_error: OnError,
        advance: Callable[[int], None],
        cache: EmbeddingCache | None,
        infos: dict[int, SourceInfo] | None,
    ) -> None:
        """Read (+hash) → cache lookup → decode → batched inference, one window ahead of the model."""
        window = max(self.batch_size, 1)
        windows = [images[s : s + window] for s in range(0, len(images), window)]
        workers = max(1, self.prepare_workers)
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="lookalike-decode") as pool:

            def read(win: list[int]) -> list[Future[Any]]:
                return [pool.submit(_read_with_info, sources[i]) for i in win] if cache is not None else []

            def decode(win: list[int], read_futs: list[Future[Any]]) -> list[tuple[int, Any, list[int]]]:
                """Submit decoding for the window's cache misses: (index, future, aliases)."""
                if cache is None:
                    return [(i, pool.submit(self._prepare_safe, sources[i]), []) for i in win]
                got: list[tuple[int, Any]] = []
                for i, fut in zip(win, read_futs):
                    value = fut.result()
                    if isinstance(value, LookalikeError):
                        self._fail(results, i, sources[i], value, on_error)
                        advance(1)
                    else:
                        got.append((i, value))
                hits = cache.lookup([info.hash for _, (_, info) in got])
                out: list[tuple[int, Any, list[int]]] = []
                first: dict[str, tuple[int, Any, list[int]]] = {}
                for i, (src, info) in got:
                    if infos is not None:
                        infos[i] = info
                    if info.hash in hits:
                        results[i] = hits[info.hash]
                        advance(1)
                    elif info.hash in first:  # the same bytes twice in one window: embed once
                        first[info.hash][2].append(i)
                    else:
                        entry = (i, pool.submit(self._prepare_safe, src), [])
                        first[info.hash] = entry
                        out.append(entry)
                return out

            def infer(batch: list[tuple[int, Any, list[int]]]) -> None:
                ok: list[int] = []
                prepared: list[Any] = []
                aliases: dict[int, list[int]] = {}
                for i, fut, alias in batch:
                    value = fut.result()
                    if isinstance(value, LookalikeError):
                        for j in [i, *alias]:
                            self._fail(results, j, sources[j], value, on_error)
                        advance(1 + len(alias))
                        continue
                    ok.append(i)
                    prepared.append(value)
                    aliases[i] = alias
                for start in range(0, len(ok), self.batch_size):
                    idx = ok[start : start + self.batch_size]
                    self._embed_isolated(
                        self.embed_images,
                        prepared[start : start + self.batch_size],
                        idx,
                        sources,
                        results,
                        purpose,
                        on_error,
                    )
                    for i in idx:
                        for j in aliases[i]:
                            results[j] = results[i]
                        if cache is not None and infos is not None and isinstance(results[i], np.ndarray):
                            cache.remember(infos[i].hash, results[i])
                        advance(1 + len(aliases[i]))

            pending: list[tuple[int, Any, list[int]]] | None = None
            reads = read(windows[0])
            for k, win in enumerate(windows):
                current_reads = reads
                if k + 1 < len(windows):
                    reads = read(windows[k + 1])
                submitted = decode(win, current_reads)
                if pending is not None:
                    infer(pending)  # the model runs on window k-1 while threads decode window k
                pending = submitted
            if pending is not None:
                infer(pending)

    def _prepare(self, ref: Any) -> Any:
        try:
            return self.prepare_image(ref)
        except LookalikeError as exc:
            if exc.item is None:
                exc.item = ref
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
            if on_error == "raise" and getattr(exc, "index", None) is None and not _item_specific(exc):
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


def _read_with_info(ref: Any) -> tuple[Any, SourceInfo] | LookalikeError:
    """Read an image's bytes and hash them (worker thread); errors are returned, not raised."""
    from lookalike.cache import source_info
    from lookalike.images import read_source

    try:
        src = read_source(ref)
        return src, source_info(src)
    except LookalikeError as exc:
        if exc.item is None:
            exc.item = ref
        return exc
    except Exception as exc:
        return ImageInputError(f"could not read image {describe_item(ref)}: {exc}", item=ref)


def _item_specific(exc: LookalikeError) -> bool:
    """Errors worth bisecting a batch for: those a single bad input can cause."""
    status = getattr(exc, "status_code", None)
    return status in (400, 413, 422) or isinstance(exc, (VectorError, ImageInputError))


def _chunks(seq: list[int], size: int) -> Iterable[list[int]]:
    for start in range(0, len(seq), max(1, size)):
        yield seq[start : start + size]


def resolve_class(path: str) -> type[BaseEmbeddingFunction]:
    """Import ``module:QualName`` (or find a class defined earlier in this process)."""
    if path in _LOCAL_CLASSES:
        return _LOCAL_CLASSES[path]
    module_name, _, qualname = path.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise ConfigurationError(
            f"the embedding class {path!r} cannot be imported ({exc}): install the package that "
            f"provides {module_name.split('.')[0]!r}, or pass embed_fn= to open_table"
        ) from exc
    if not (isinstance(obj, type) and issubclass(obj, BaseEmbeddingFunction)):
        raise ConfigurationError(f"{path!r} is not a BaseEmbeddingFunction subclass")
    return obj
