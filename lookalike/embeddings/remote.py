"""The shared base of HTTP embedding providers (Jina AI, OpenAI-compatible, Voyage, Cohere).

:class:`RemoteEmbeddingFunction` holds what every hosted API needs on top of the HTTP side (the API key,
one pooled ``httpx`` client and retries, in :mod:`lookalike.embeddings.http_api`): a table of known
models so construction needs no network call, and a bulk path that packs items into requests bounded
by item count *and* bytes, sends them concurrently and isolates an item the provider rejects by
splitting its request. Images are sent as URLs when the provider fetches them itself; anything else
is decoded, downscaled to the largest size the model uses and re-encoded.

A provider module subclasses it with a table of known models (:class:`ModelSpec`) and three methods:
``endpoint(kind)``, ``build_payload(kind, items, purpose)`` and ``parse_embeddings(body, n)``.
"""

from __future__ import annotations

import base64
import io
import math
import threading
import warnings
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import httpx
import numpy as np

from lookalike.embeddings.base import ITEM_STATUS, BulkJob, check_vector
from lookalike.embeddings.http_api import HTTPEmbeddingFunction, check_positive, snippet
from lookalike.errors import (
    AuthenticationError,
    ConfigurationError,
    EmbeddingError,
    ImageInputError,
    LookalikeError,
    ProviderError,
    describe_item,
)
from lookalike.images.refs import is_url
from lookalike.types import OnError, Purpose

__all__ = ["HTTPEmbeddingFunction", "ModelSpec", "PreparedImage", "RemoteEmbeddingFunction", "fit_image"]

Kind = Literal["text", "image"]
# These hit every request alike, so even on_error="skip" stops at the first one.
_FATAL_STATUS = frozenset({401, 402, 403, 404, 405})


@dataclass(frozen=True)
class ModelSpec:
    """What lookalike knows about one hosted model, so construction needs no network call.

    ``dimensions`` is the default output size. Sizes the model can also produce are either the range
    ``min_dimensions..dimensions`` (Matryoshka truncation) or the set ``allowed_dimensions``; with
    neither, the size is fixed. Images sent inline are downscaled to at most ``image_max_pixels``
    pixels and a shortest side of ``image_max_side`` (the sizes the model itself resizes to).
    """

    dimensions: int
    min_dimensions: int | None = None
    allowed_dimensions: tuple[int, ...] | None = None
    multimodal: bool = False
    tasks: bool = True
    image_max_pixels: int | None = None
    image_max_side: int | None = None
    max_batch: int | None = None
    max_images_per_request: int | None = None

    def can_produce(self, dims: int) -> bool:
        """True when the model can return vectors of ``dims`` dimensions."""
        if dims == self.dimensions:
            return True
        if self.allowed_dimensions is not None:
            return dims in self.allowed_dimensions
        if self.min_dimensions is not None:
            return self.min_dimensions <= dims <= self.dimensions
        return False

    def describe_dimensions(self) -> str:
        """Human-readable list of the sizes this model can produce."""
        if self.allowed_dimensions is not None:
            return "one of " + ", ".join(str(d) for d in sorted(self.allowed_dimensions))
        if self.min_dimensions is not None:
            return f"{self.min_dimensions}..{self.dimensions}"
        return f"only {self.dimensions}"


@dataclass(frozen=True)
class PreparedImage:
    """An image ready to send: either a URL the provider fetches, or encoded bytes as base64."""

    url: str | None = None
    b64: str | None = None
    mime: str = "image/jpeg"
    size: tuple[int, int] | None = None

    @property
    def data_uri(self) -> str:
        """``data:<mime>;base64,…`` (inline images only)."""
        if self.b64 is None:
            raise ValueError("a URL image has no data URI")
        return f"data:{self.mime};base64,{self.b64}"

    @property
    def payload_bytes(self) -> int:
        """Approximate bytes this image adds to a request body."""
        return len(self.url or "") + len(self.b64 or "") + 40

    def __repr__(self) -> str:  # never dump a few MB of base64 into a traceback
        if self.url is not None:
            return f"PreparedImage(url={describe_item(self.url)!r})"
        return f"PreparedImage({self.mime}, {self.size}, {len(self.b64 or '')} base64 chars)"


def fit_image(img: Any, *, max_pixels: int | None = None, max_side: int | None = None) -> Any:
    """Downscale a PIL image (never upscale) so it has at most ``max_pixels`` pixels and a shortest
    side of at most ``max_side``; aspect ratio is kept."""
    w, h = img.size
    scale = 1.0
    if max_pixels is not None and w * h > max_pixels:
        scale = min(scale, math.sqrt(max_pixels / (w * h)))
    if max_side is not None and min(w, h) > max_side:
        scale = min(scale, max_side / min(w, h))
    if scale >= 1.0:
        return img
    from PIL import Image

    size = (max(1, math.floor(w * scale)), max(1, math.floor(h * scale)))
    return img.resize(size, Image.Resampling.BICUBIC, reducing_gap=2.0)


class RemoteEmbeddingFunction(HTTPEmbeddingFunction):
    """Base class of embedding models served over HTTP.

    Options every provider takes (keyword-only):

    * ``api_key`` — else read at request time from ``api_key_env`` (default: the provider's usual
      variable, e.g. ``JINA_API_KEY``); never stored with a table, never printed.
    * ``api_base`` — else the provider's ``*_API_BASE`` variable, else its public endpoint.
    * ``timeout`` — seconds per request (default 60).
    * ``max_concurrency`` — requests in flight during bulk work.
    * ``max_retries``, ``backoff_base``, ``backoff_max``, ``max_retry_wait`` — retry policy for
      429/5xx/timeouts/connection errors; 400/401/403 are never retried.
    * ``batch_size``, ``max_request_bytes`` — how many items / bytes go in one request.
    * ``fetch_urls`` — fetch http(s) image URLs locally and send the pixels instead of the URL.
    * ``image_max_pixels``, ``image_max_side`` — override the downscale size for inline images.
    * ``transport`` — an ``httpx.BaseTransport`` (tests, proxies).
    """

    provider: ClassVar[str] = "remote"
    models: ClassVar[dict[str, ModelSpec]] = {}
    model_aliases: ClassVar[dict[str, str]] = {}
    accepts_image_urls: ClassVar[bool] = True
    default_batch_size: ClassVar[int] = 64
    default_max_request_bytes: ClassVar[int] = 8 * 1024 * 1024
    default_image_max_pixels: ClassVar[int] = 1024 * 1024
    jpeg_quality: ClassVar[int] = 90
    one_input_per_request: ClassVar[bool] = False
    """The API takes one input a request (Bedrock's InvokeModel, Vertex AI's multimodal model)."""

    def __init__(
        self,
        model: str,
        *,
        dimensions: int | None = None,
        api_key: str | None = None,
        api_base: str | None = None,
        timeout: float | None = None,
        multimodal: bool | None = None,
        api_key_env: str | None = None,
        max_concurrency: int | None = None,
        max_retries: int = 5,
        backoff_base: float = 0.5,
        backoff_max: float = 20.0,
        max_retry_wait: float = 120.0,
        batch_size: int | None = None,
        max_request_bytes: int | None = None,
        fetch_urls: bool = False,
        image_max_pixels: int | None = None,
        image_max_side: int | None = None,
        send_dimensions: bool | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        model = self._canonical_model(model)
        spec = self.models.get(model)
        dims = self._resolve_dimensions(model, spec, dimensions)
        if multimodal is None:
            multimodal = bool(spec and spec.multimodal)
        elif multimodal and spec is not None and not spec.multimodal:
            raise ConfigurationError(
                f"{self.provider}/{model} is a text-only model; it cannot embed images "
                "(drop multimodal=True or pick a multimodal model)"
            )
        super().__init__(model, dimensions=dims, multimodal=bool(multimodal))
        self.spec = spec
        self._init_http(
            api_key=api_key,
            api_base=api_base,
            api_key_env=api_key_env,
            timeout=timeout,
            max_concurrency=max_concurrency,
            max_retries=max_retries,
            backoff_base=backoff_base,
            backoff_max=backoff_max,
            max_retry_wait=max_retry_wait,
            transport=transport,
        )
        limit = (spec.max_batch if spec else None) or self.default_batch_size
        self._batch_size_arg = batch_size
        self.batch_size = int(batch_size) if batch_size is not None else min(self.default_batch_size, limit)
        check_positive("batch_size", self.batch_size)
        if spec is not None and spec.max_batch is not None and self.batch_size > spec.max_batch:
            raise ConfigurationError(
                f"batch_size={batch_size} exceeds the {spec.max_batch} items {self.provider}/{model} "
                "accepts per request"
            )
        self._max_request_bytes_arg = max_request_bytes
        self.max_request_bytes = int(max_request_bytes or self.default_max_request_bytes)
        check_positive("max_request_bytes", self.max_request_bytes)
        self.fetch_urls = bool(fetch_urls)
        self._image_max_pixels_arg = image_max_pixels
        self._image_max_side_arg = image_max_side
        self.image_max_pixels = image_max_pixels or (
            spec.image_max_pixels if spec and (spec.image_max_pixels or spec.image_max_side) else None
        )
        self.image_max_side = image_max_side or (spec.image_max_side if spec else None)
        if self.image_max_pixels is None and self.image_max_side is None:
            self.image_max_pixels = self.default_image_max_pixels
        self.send_dimensions = send_dimensions
        self._validate_options()

    # ----------------------------------------------------------------- model names and sizes
    @classmethod
    def _canonical_model(cls, model: str) -> str:
        if not model or not isinstance(model, str):
            raise ConfigurationError(f"{cls.provider}: a model name is required")
        canonical = cls.model_aliases.get(model)
        if canonical is not None:
            warnings.warn(
                f"{cls.provider} model {model!r} does not exist; using {canonical!r}",
                UserWarning,
                stacklevel=4,
            )
            return canonical
        return model

    def _resolve_dimensions(self, model: str, spec: ModelSpec | None, dimensions: int | None) -> int:
        if dimensions is not None and (
            not isinstance(dimensions, int) or isinstance(dimensions, bool) or dimensions <= 0
        ):
            raise ConfigurationError(f"dimensions must be a positive integer, got {dimensions!r}")
        if spec is None:
            if dimensions is None:
                known = ", ".join(sorted(self.models)) or "none"
                raise ConfigurationError(
                    f"{self.provider}/{model} is not a model lookalike knows, so its vector size is "
                    f"unknown: pass dimensions= (known models: {known})"
                )
            return dimensions
        if dimensions is None:
            return spec.dimensions
        if not spec.can_produce(dimensions):
            raise ConfigurationError(
                f"{self.provider}/{model} cannot produce {dimensions}-dimensional vectors "
                f"(it produces {spec.describe_dimensions()})"
            )
        return dimensions

    def _validate_options(self) -> None:
        """Hook for provider-specific checks at construction."""

    @property
    def sends_dimensions(self) -> bool:
        """Whether requests carry the output size (only when it differs from the model default)."""
        if self.send_dimensions is not None:
            return self.send_dimensions
        return self.spec is not None and self.dimensions != self.spec.dimensions

    @property
    def preferred_chunk_size(self) -> int:
        """Items per ``embed_sources`` call that keep every concurrent request slot busy."""
        return self.batch_size * self.max_concurrency

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(model_name={self.model_name!r}, dimensions={self.dimensions}, "
            f"multimodal={self.multimodal}, api_base={self.api_base!r}, api_key_env={self.api_key_env!r})"
        )

    # ----------------------------------------------------------------- configuration
    def config_options(self) -> dict[str, Any]:
        """Everything needed to rebuild this embedder except the key (stored as its env var name)."""
        opts: dict[str, Any] = {
            "api_key_env": self.api_key_env,
            "api_base": self._api_base_arg,
            "timeout": self.timeout,
            "multimodal": self.multimodal,
            "max_concurrency": self.max_concurrency,
            "max_retries": self.max_retries,
            "fetch_urls": self.fetch_urls,
        }
        for name, value in (
            ("batch_size", self._batch_size_arg),
            ("max_request_bytes", self._max_request_bytes_arg),
            ("image_max_pixels", self._image_max_pixels_arg),
            ("image_max_side", self._image_max_side_arg),
            ("send_dimensions", self.send_dimensions),
        ):
            if value is not None:
                opts[name] = value
        return opts

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> RemoteEmbeddingFunction:
        """Rebuild from :meth:`config` output; the key is read from ``api_key_env`` when first needed."""
        options = dict(config.get("options", {}))
        options.pop("api_key", None)  # never honoured from stored config
        return cls(config["model"], dimensions=config.get("dimensions"), **options)

    # ----------------------------------------------------------------- provider hooks
    def endpoint(self, kind: Kind) -> str:
        """Path (appended to ``api_base``) that embeds items of ``kind``."""
        raise NotImplementedError

    def build_payload(self, kind: Kind, items: list[Any], purpose: Purpose) -> dict[str, Any]:
        """The JSON body for one request (texts are ``str``, images :class:`PreparedImage`)."""
        raise NotImplementedError

    def parse_embeddings(self, body: Any, n: int) -> list[Any]:
        """The vectors of a response, in input order (OpenAI-style ``data[].index/embedding``)."""
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, list):
            raise ProviderError(f"{self.display_name} answered without a 'data' list: {snippet(body)!r}")
        return self._ordered(data, n)

    def _ordered(self, data: list[Any], n: int) -> list[Any]:
        if len(data) != n:
            raise ProviderError(f"{self.display_name} returned {len(data)} vectors for {n} inputs")
        rows: list[Any] = [None] * n
        for pos, entry in enumerate(data):
            if not isinstance(entry, dict) or "embedding" not in entry:
                raise ProviderError(f"{self.display_name} returned a malformed entry: {snippet(entry)!r}")
            index = entry.get("index", pos)
            if not isinstance(index, int) or not 0 <= index < n or rows[index] is not None:
                raise ProviderError(f"{self.display_name} returned a bad or repeated index {index!r}")
            rows[index] = entry["embedding"]
        return rows

    def item_bytes(self, kind: Kind, item: Any) -> int:
        """Approximate bytes an item adds to a request body."""
        if kind == "image":
            return item.payload_bytes if isinstance(item, PreparedImage) else 1024
        return len(str(item).encode("utf-8")) + 16

    def max_items(self, kind: Kind) -> int:
        """Items per request for ``kind``."""
        if kind == "image" and self.spec is not None and self.spec.max_images_per_request:
            return min(self.batch_size, self.spec.max_images_per_request)
        return self.batch_size

    # ----------------------------------------------------------------- seam hooks
    def prepare_image(self, ref: Any) -> PreparedImage:
        """URL → passed through (unless ``fetch_urls``); anything else → downscaled JPEG as base64."""
        if isinstance(ref, PreparedImage):
            return ref
        if isinstance(ref, str) and is_url(ref) and self.accepts_image_urls and not self.fetch_urls:
            return PreparedImage(url=ref)
        from lookalike.images import load_image

        side = self.image_max_side or math.isqrt(self.image_max_pixels or 0) or None
        img = load_image(ref, draft_size=(side, side)) if side else load_image(ref)
        img = fit_image(img, max_pixels=self.image_max_pixels, max_side=self.image_max_side)
        if img.mode != "RGB":
            img = img.convert("RGB")
        buf = io.BytesIO()
        img.save(buf, format="JPEG", quality=self.jpeg_quality, optimize=False)
        encoded = base64.b64encode(buf.getvalue()).decode("ascii")
        prepared = PreparedImage(b64=encoded, mime="image/jpeg", size=img.size)
        if prepared.payload_bytes > self.max_request_bytes:
            raise ImageInputError(
                f"{describe_item(ref)} is {len(encoded)} base64 bytes after downscaling, over the "
                f"{self.max_request_bytes}-byte request limit",
                item=ref,
            )
        return prepared

    def embed_texts(self, texts: list[str], *, purpose: Purpose) -> np.ndarray:
        """Embed strings in one request (bulk work goes through :meth:`embed_sources`)."""
        return self._matrix(self._embed_batch("text", texts, purpose), len(texts))

    def embed_images(self, images: list[Any], *, purpose: Purpose) -> np.ndarray:
        """Embed prepared images in one request."""
        if not self.multimodal:
            raise EmbeddingError(f"{self.provider}/{self.model_name} is text-only; it cannot embed images")
        prepared = [self.prepare_image(im) for im in images]
        return self._matrix(self._embed_batch("image", prepared, purpose), len(images))

    def _embed_batch(self, kind: Kind, items: list[Any], purpose: Purpose) -> list[Any]:
        if self.one_input_per_request and len(items) > 1:
            return self._embed_each(kind, items, purpose)
        body = self.post(self.endpoint(kind), self.build_payload(kind, items, purpose))
        return self.parse_embeddings(body, len(items))

    def _embed_each(self, kind: Kind, items: list[Any], purpose: Purpose) -> list[Any]:
        """One request per item, ``max_concurrency`` at a time (a direct ``embed_texts`` call of
        several items to an API that takes one input); a failure names its item."""

        def one(pair: tuple[int, Any]) -> Any:
            i, item = pair
            try:
                return self._embed_batch(kind, [item], purpose)[0]
            except LookalikeError as exc:
                raise exc.with_context(index=i, item=item) from exc.__cause__

        workers = min(self.max_concurrency, len(items))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"lookalike-{self.provider}") as pool:
            return list(pool.map(one, enumerate(items)))

    def _matrix(self, rows: list[Any], n: int) -> np.ndarray:
        try:
            return np.asarray(rows, dtype=np.float32).reshape(n, -1)
        except (TypeError, ValueError) as exc:
            raise ProviderError(
                f"{self.display_name} returned vectors of mixed or non-numeric shape"
            ) from exc

    # ----------------------------------------------------------------- bulk path
    def _embed_sorted(self, job: BulkJob, texts: list[int], images: list[int]) -> None:
        """The bulk path of :meth:`embed_sources`: packed requests sent ``max_concurrency`` at a time.

        ``job.cache`` and ``job.infos`` (the local content cache) are ignored: a remote provider sends
        URLs as URLs without reading their bytes, so there is nothing to hash. Key, quota and endpoint
        errors stop the whole call even with ``on_error="skip"``, since every item would fail the same
        way.
        """
        sources, results, on_error = job.sources, job.results, job.on_error
        self._key()  # a missing key fails before any work starts
        state = _CallState(on_error)
        pending: set[Future[list[tuple[int, Any]]]] = set()
        senders = ThreadPoolExecutor(max_workers=self.max_concurrency, thread_name_prefix="lookalike-embed")
        preparers: ThreadPoolExecutor | None = None

        def collect(block: bool) -> None:
            nonlocal pending
            if not pending:
                return
            finished, pending = wait(pending, timeout=None if block else 0, return_when=FIRST_COMPLETED)
            for fut in finished:
                outcomes = fut.result()
                for i, out in outcomes:
                    if isinstance(out, LookalikeError):
                        if _is_fatal(out):
                            raise out.with_context(index=i, item=sources[i])
                        self._fail(results, i, sources[i], out, on_error)
                    else:
                        results[i] = out
                job.advance(len(outcomes))

        def submit(kind: Kind, idx: list[int], items: list[Any]) -> None:
            # keep at most 2x max_concurrency requests queued so prepared images don't pile up
            while len(pending) >= 2 * self.max_concurrency:
                collect(block=True)
            pending.add(senders.submit(self._send_isolated, kind, idx, items, sources, job.purpose, state))

        try:
            for idx, items in self._pack("text", [(i, sources[i]) for i in texts]):
                submit("text", idx, items)
            if images:
                preparers = ThreadPoolExecutor(
                    max_workers=max(1, self.prepare_workers), thread_name_prefix="lookalike-prepare"
                )
                ready = self._prepared_stream(preparers, images, sources, results, on_error, job.advance)
                for idx, items in self._pack("image", ready):
                    submit("image", idx, items)
                    collect(block=False)
            while pending:
                collect(block=True)
        except BaseException:
            # under on_error="raise" (or a fatal error) stop: drop queued work, let in-flight calls end
            if preparers is not None:
                preparers.shutdown(wait=False, cancel_futures=True)
            senders.shutdown(wait=False, cancel_futures=True)
            raise
        if preparers is not None:
            preparers.shutdown(wait=True)
        senders.shutdown(wait=True)

    def _prepared_stream(
        self,
        pool: ThreadPoolExecutor,
        images: list[int],
        sources: Sequence[Any],
        results: list[Any],
        on_error: OnError,
        advance: Callable[[int], None],
    ) -> Iterator[tuple[int, PreparedImage]]:
        for i, value in zip(images, pool.map(self._prepare_safe, [sources[i] for i in images])):
            if isinstance(value, LookalikeError):
                self._fail(results, i, sources[i], value, on_error)
                advance(1)
            else:
                yield i, value

    def _pack(self, kind: Kind, entries: Any) -> Iterator[tuple[list[int], list[Any]]]:
        """Group ``(index, item)`` pairs into requests under the item and byte limits."""
        limit_items = self.max_items(kind)
        # leave room for the envelope (model name, task, JSON punctuation)
        limit_bytes = max(1, self.max_request_bytes - 1024)
        idx: list[int] = []
        items: list[Any] = []
        size = 0
        for i, item in entries:
            nbytes = self.item_bytes(kind, item)
            if idx and (len(idx) >= limit_items or size + nbytes > limit_bytes):
                yield idx, items
                idx, items, size = [], [], 0
            idx.append(i)
            items.append(item)
            size += nbytes
        if idx:
            yield idx, items

    def _send_isolated(
        self,
        kind: Kind,
        idx: list[int],
        items: list[Any],
        sources: Sequence[Any],
        purpose: Purpose,
        state: _CallState,
    ) -> list[tuple[int, Any]]:
        """Send one request; if the provider rejects an input, split to find it. Runs in a worker."""
        if state.stopped:
            return []  # on_error="raise" already has its error: don't spend more requests
        try:
            rows = self._embed_batch(kind, items, purpose)
        except ProviderError as exc:
            if exc.status_code in ITEM_STATUS and len(items) > 1:
                mid = len(items) // 2
                left = self._send_isolated(kind, idx[:mid], items[:mid], sources, purpose, state)
                return left + self._send_isolated(kind, idx[mid:], items[mid:], sources, purpose, state)
            if exc.status_code in ITEM_STATUS:
                state.item_rejected(exc)
            return self._failed(idx, sources, exc, state)
        except LookalikeError as exc:
            return self._failed(idx, sources, exc, state)
        except Exception as exc:  # a bug or an unexpected library error: report it per item
            err = EmbeddingError(f"{self.display_name} failed to embed a batch: {exc}")
            err.__cause__ = exc
            return self._failed(idx, sources, err, state)
        state.succeeded()
        out: list[tuple[int, Any]] = []
        # the provider is at fault, not the input: the message says so up front
        what = f"{self.display_name} returned a bad vector: embedding"
        for i, row in zip(idx, rows):
            try:
                out.append((i, check_vector(row, self.dimensions, item=sources[i], what=what)))
            except LookalikeError as exc:
                out.append((i, exc))
        return out

    @staticmethod
    def _failed(
        idx: list[int], sources: Sequence[Any], exc: LookalikeError, state: _CallState
    ) -> list[tuple[int, Any]]:
        if state.on_error == "raise":
            state.stopped = True
        if len(idx) > 1 and exc.item is None:
            # the request failed as a whole: say so, and name the items it carried, so the first
            # item is not taken for the culprit
            shown = ", ".join(describe_item(sources[i], limit=40) for i in idx[:5])
            more = f" and {len(idx) - 5} more" if len(idx) > 5 else ""
            exc.add_remark(f"(the whole request failed; it carried {len(idx)} items: {shown}{more})")
        # one copy per item, so that each names its own index (and its item, unless the error has one)
        return [(i, exc.for_item(item=sources[i] if exc.item is None else exc.item, index=i)) for i in idx]


class _CallState:
    """Shared by the workers of one ``embed_sources`` call.

    Splitting a rejected request finds a bad item in log2(n) extra requests, but when the provider
    rejects *every* request (a model or option it does not take) splitting would cost 2n requests per
    chunk. So once a run of single items has been rejected with one identical message and nothing has
    succeeded yet, the call stops with that error.
    """

    breaker = 6

    def __init__(self, on_error: OnError) -> None:
        self.on_error = on_error
        self.stopped = False
        self._lock = threading.Lock()
        self._successes = 0
        self._same: tuple[str, int] = ("", 0)

    def succeeded(self) -> None:
        with self._lock:
            self._successes += 1

    def item_rejected(self, exc: ProviderError) -> None:
        with self._lock:
            if self._successes:
                return
            message, count = self._same
            self._same = (exc.detail, count + 1 if exc.detail == message else 1)
            if self._same[1] < self.breaker:
                return
        self.stopped = True
        raise ProviderError(
            f"every input was rejected with the same error, so the request itself is at fault: {exc.detail}",
            status_code=exc.status_code,
        ) from exc


def _is_fatal(exc: LookalikeError) -> bool:
    return isinstance(exc, (AuthenticationError, ConfigurationError)) or (
        isinstance(exc, ProviderError) and exc.status_code in _FATAL_STATUS
    )
