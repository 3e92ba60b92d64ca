"""The shared base of HTTP embedding providers (Jina AI, OpenAI-compatible, Voyage, Cohere).

:class:`RemoteEmbeddingFunction` holds what every hosted API needs: the API key (read from the
provider's environment variable at request time, never stored or printed), one pooled ``httpx``
client, retries with exponential backoff and jitter (honouring ``Retry-After``), and a bulk path that
packs items into requests bounded by item count *and* bytes, sends them concurrently and isolates an
item the provider rejects by splitting its request. Images are sent as URLs when the provider fetches
them itself; anything else is decoded, downscaled to the largest size the model uses and re-encoded.

A provider module subclasses it with a table of known models (:class:`ModelSpec`) and three methods:
``endpoint(kind)``, ``build_payload(kind, items, purpose)`` and ``parse_embeddings(body, n)``.
"""

from __future__ import annotations

import base64
import copy
import email.utils
import io
import json
import math
import os
import random
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import httpx
import numpy as np

from lookalike.embeddings.base import (
    BaseEmbeddingFunction,
    OnError,
    ProgressHook,
    Purpose,
    SourceType,
    check_source_type,
    check_vector,
    classify,
)
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

__all__ = ["ModelSpec", "PreparedImage", "RemoteEmbeddingFunction", "fit_image"]

Kind = Literal["text", "image"]
_RETRYABLE_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})
# A single bad input can cause these; the bulk path splits the request to find it.
_ITEM_STATUS = frozenset({400, 413, 422})
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


class _Secret:
    """Holds an API key so that no repr, log line or pickle of a provider shows it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "'***'"

    def __reduce__(self) -> Any:
        raise TypeError("an API key is not picklable; pass it again or use the environment variable")


class RemoteEmbeddingFunction(BaseEmbeddingFunction):
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
    remote: ClassVar[bool] = True
    display_name: ClassVar[str] = "remote provider"
    api_key_envs: ClassVar[tuple[str, ...]] = ()
    api_base_envs: ClassVar[tuple[str, ...]] = ()
    default_api_base: ClassVar[str] = ""
    models: ClassVar[dict[str, ModelSpec]] = {}
    model_aliases: ClassVar[dict[str, str]] = {}
    accepts_image_urls: ClassVar[bool] = True
    default_batch_size: ClassVar[int] = 64
    default_max_request_bytes: ClassVar[int] = 8 * 1024 * 1024
    default_max_concurrency: ClassVar[int] = 8
    default_image_max_pixels: ClassVar[int] = 1024 * 1024
    jpeg_quality: ClassVar[int] = 90

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
        _positive("max_retries", max_retries, allow_zero=True)
        _positive("backoff_base", backoff_base, allow_zero=True)
        self.timeout = float(timeout) if timeout is not None else 60.0
        _positive("timeout", self.timeout)
        self.max_concurrency = int(max_concurrency or self.default_max_concurrency)
        _positive("max_concurrency", self.max_concurrency)
        self.max_retries = int(max_retries)
        self.backoff_base = float(backoff_base)
        self.backoff_max = float(backoff_max)
        self.max_retry_wait = float(max_retry_wait)
        limit = (spec.max_batch if spec else None) or self.default_batch_size
        self._batch_size_arg = batch_size
        self.batch_size = int(batch_size) if batch_size is not None else min(self.default_batch_size, limit)
        _positive("batch_size", self.batch_size)
        if spec is not None and spec.max_batch is not None and self.batch_size > spec.max_batch:
            raise ConfigurationError(
                f"batch_size={batch_size} exceeds the {spec.max_batch} items {self.provider}/{model} "
                "accepts per request"
            )
        self._max_request_bytes_arg = max_request_bytes
        self.max_request_bytes = int(max_request_bytes or self.default_max_request_bytes)
        _positive("max_request_bytes", self.max_request_bytes)
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
        # key handling: an explicit key lives only in memory; otherwise the env var is read per request
        self.api_key_env = api_key_env or (self.api_key_envs[0] if self.api_key_envs else None)
        self._api_key = _Secret(api_key) if api_key else None
        self._api_base_arg = api_base
        self.api_base = (api_base or self._env_api_base() or self.default_api_base).rstrip("/")
        if not self.api_base.lower().startswith(("http://", "https://")):
            raise ConfigurationError(f"api_base must be an http(s) URL, got {self.api_base!r}")
        self._transport = transport
        self._client: httpx.Client | None = None
        self._client_lock = threading.Lock()
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

    # ----------------------------------------------------------------- keys and HTTP
    def _env_api_base(self) -> str | None:
        for name in self.api_base_envs:
            value = os.environ.get(name)
            if value:
                return value
        return None

    @property
    def requires_api_key(self) -> bool:
        """Hosted APIs need a key; a self-hosted OpenAI-compatible server may not."""
        return True

    def _key(self) -> str | None:
        if self._api_key is not None:
            return self._api_key.get()
        names = [self.api_key_env] if self.api_key_env else []
        names += [n for n in self.api_key_envs if n not in names]
        for name in names:
            value = os.environ.get(name) if name else None
            if value:
                return value
        if self.requires_api_key:
            raise AuthenticationError(
                f"no API key for {self.display_name}: pass api_key= to EmbeddingFunction or set the "
                f"{self.api_key_env} environment variable"
            )
        return None

    def _scrub(self, text: str) -> str:
        """Remove the API key from a message a server (or a library) might echo back."""
        try:
            key = self._key()
        except AuthenticationError:
            key = None
        if key and len(key) >= 3:
            text = text.replace(key, "***")
        return text

    def auth_headers(self, key: str | None) -> dict[str, str]:
        """Headers that carry the key (Bearer by default)."""
        return {"Authorization": f"Bearer {key}"} if key else {}

    def _http(self) -> httpx.Client:
        with self._client_lock:
            if self._client is None:
                limits = httpx.Limits(
                    max_connections=max(self.max_concurrency, 1) + 2,
                    max_keepalive_connections=max(self.max_concurrency, 1),
                )
                self._client = httpx.Client(
                    timeout=httpx.Timeout(self.timeout, connect=min(self.timeout, 10.0)),
                    limits=limits,
                    transport=self._transport,
                    headers={"Accept": "application/json", "User-Agent": "lookalike"},
                )
            return self._client

    def close(self) -> None:
        """Close the HTTP connection pool (it is reopened on the next request)."""
        with self._client_lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    def __enter__(self) -> RemoteEmbeddingFunction:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __copy__(self) -> RemoteEmbeddingFunction:
        # a copy in the same process keeps the in-memory key but gets its own connection pool
        dup = type(self).__new__(type(self))
        dup.__dict__.update(self.__dict__)
        dup._client = None
        dup._client_lock = threading.Lock()
        return dup

    def __deepcopy__(self, memo: dict[int, Any]) -> RemoteEmbeddingFunction:
        return self.__copy__()

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_client"] = None
        state["_client_lock"] = None
        state["_api_key"] = None  # a pickled provider falls back to the environment variable
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._client_lock = threading.Lock()

    def _backoff(self, attempt: int) -> float:
        # "equal jitter": half fixed, half random, so concurrent workers spread out
        delay = min(self.backoff_max, self.backoff_base * (2**attempt))
        return delay / 2 + random.uniform(0, delay / 2)

    def post(self, path: str, payload: dict[str, Any]) -> Any:
        """POST JSON to ``api_base + path`` with retries; return the decoded JSON body."""
        url = self.api_base + path
        headers = {"Content-Type": "application/json", **self.auth_headers(self._key())}
        content = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        attempt = 0
        while True:
            cause: BaseException | None = None
            retry_after: float | None = None
            try:
                resp = self._http().post(url, content=content, headers=headers)
            except httpx.TimeoutException as exc:
                cause = exc
                err = ProviderError(
                    f"{self.display_name} did not answer within {self.timeout:g}s ({url})", retryable=True
                )
            except httpx.TransportError as exc:
                cause = exc
                reason = self._scrub(str(exc)) or type(exc).__name__
                err = ProviderError(f"could not reach {self.display_name} at {url}: {reason}", retryable=True)
            else:
                if 200 <= resp.status_code < 300:
                    try:
                        return resp.json()
                    except ValueError as exc:
                        raise ProviderError(
                            f"{self.display_name} answered HTTP {resp.status_code} with a body that is not "
                            f"JSON ({_snippet(resp.text)!r}); is api_base={self.api_base!r} right?",
                            status_code=resp.status_code,
                        ) from exc
                err = self._status_error(resp)
                retry_after = _retry_after(resp.headers.get("Retry-After"))
            if not err.retryable or attempt >= self.max_retries:
                if attempt:
                    err.message += f" (gave up after {attempt + 1} attempts)"
                    err.args = (err.message,)
                raise err from cause
            delay = self._backoff(attempt)
            if retry_after is not None:
                if retry_after > self.max_retry_wait:
                    err.message += (
                        f" (the server asked to retry after {retry_after:g}s; not waiting that long)"
                    )
                    err.args = (err.message,)
                    raise err from cause
                delay = retry_after + random.uniform(0, min(0.1 * retry_after + 0.01, 1.0))
            time.sleep(delay)
            attempt += 1

    def _status_error(self, resp: httpx.Response) -> ProviderError:
        status = resp.status_code
        detail = self._scrub(_error_detail(resp))
        where = f"{self.display_name} ({self.provider}/{self.model_name})"
        if status == 401:
            return AuthenticationError(
                f"{where} rejected the API key (HTTP 401): {detail}. Check api_key= or {self.api_key_env}",
                status_code=status,
            )
        if status in (402, 403):
            return ProviderError(
                f"{where} refused the request (HTTP {status}: out of credit or not allowed): {detail}",
                status_code=status,
            )
        if status == 429 and "insufficient_quota" in detail + resp.text[:2000]:
            # OpenAI signals an empty account with 429; retrying cannot help
            return ProviderError(
                f"{where} says the account is out of quota (HTTP 429): {detail}", status_code=429
            )
        if status == 429:
            return ProviderError(
                f"{where} is rate limiting requests (HTTP 429): {detail}", status_code=429, retryable=True
            )
        if status in _RETRYABLE_STATUS or status >= 500:
            return ProviderError(
                f"{where} failed (HTTP {status}): {detail}", status_code=status, retryable=True
            )
        if status in _ITEM_STATUS:
            return ProviderError(f"{where} rejected the input (HTTP {status}): {detail}", status_code=status)
        return ProviderError(
            f"{where} answered HTTP {status} at {self.api_base}: {detail}", status_code=status
        )

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
            raise ProviderError(f"{self.display_name} answered without a 'data' list: {_snippet(body)!r}")
        return self._ordered(data, n)

    def _ordered(self, data: list[Any], n: int) -> list[Any]:
        if len(data) != n:
            raise ProviderError(f"{self.display_name} returned {len(data)} vectors for {n} inputs")
        rows: list[Any] = [None] * n
        for pos, entry in enumerate(data):
            if not isinstance(entry, dict) or "embedding" not in entry:
                raise ProviderError(f"{self.display_name} returned a malformed entry: {_snippet(entry)!r}")
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
        body = self.post(self.endpoint(kind), self.build_payload(kind, items, purpose))
        return self.parse_embeddings(body, len(items))

    def _matrix(self, rows: list[Any], n: int) -> np.ndarray:
        try:
            return np.asarray(rows, dtype=np.float32).reshape(n, -1)
        except (TypeError, ValueError) as exc:
            raise ProviderError(
                f"{self.display_name} returned vectors of mixed or non-numeric shape"
            ) from exc

    # ----------------------------------------------------------------- bulk path
    def embed_sources(
        self,
        sources: Sequence[Any],
        *,
        source_type: SourceType = "auto",
        on_error: OnError = "raise",
        purpose: Purpose = "document",
        progress: ProgressHook | None = None,
        cache: Any = None,
        infos: dict[int, Any] | None = None,
    ) -> list[np.ndarray | LookalikeError | None]:
        """Embed many stored items: packed requests sent ``max_concurrency`` at a time.

        ``cache`` and ``infos`` (the local content cache) are accepted for the seam and ignored: a
        remote provider sends URLs as URLs without reading their bytes, so there is nothing to hash.

        Same contract as :meth:`BaseEmbeddingFunction.embed_sources`: one entry per source (vector,
        ``None`` for an empty source, or the item's error with ``on_error="skip"``). Key, quota and
        endpoint errors stop the whole call even with ``on_error="skip"``, since every item would
        fail the same way.
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
        total = len(texts) + len(images)
        if total == 0:
            return results
        if texts or images:
            self._key()  # a missing key fails before any work starts
        done = 0

        def advance(n: int) -> None:
            nonlocal done
            done += n
            if progress is not None:
                progress(done, total)

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
                            raise self._for_item(out, i, sources[i])
                        self._fail(results, i, sources[i], out, on_error)
                    else:
                        results[i] = out
                advance(len(outcomes))

        def submit(kind: Kind, idx: list[int], items: list[Any]) -> None:
            # keep at most 2x max_concurrency requests queued so prepared images don't pile up
            while len(pending) >= 2 * self.max_concurrency:
                collect(block=True)
            pending.add(senders.submit(self._send_isolated, kind, idx, items, sources, purpose, state))

        try:
            for idx, items in self._pack("text", [(i, sources[i]) for i in texts]):
                submit("text", idx, items)
            if images:
                preparers = ThreadPoolExecutor(
                    max_workers=max(1, self.prepare_workers), thread_name_prefix="lookalike-prepare"
                )
                ready = self._prepared_stream(preparers, images, sources, results, on_error, advance)
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
        return results

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
            if exc.status_code in _ITEM_STATUS and len(items) > 1:
                mid = len(items) // 2
                left = self._send_isolated(kind, idx[:mid], items[:mid], sources, purpose, state)
                return left + self._send_isolated(kind, idx[mid:], items[mid:], sources, purpose, state)
            if exc.status_code in _ITEM_STATUS:
                state.item_rejected(exc)
            return self._failed(idx, exc, state)
        except LookalikeError as exc:
            return self._failed(idx, exc, state)
        except Exception as exc:  # a bug or an unexpected library error: report it per item
            err = EmbeddingError(f"{self.display_name} failed to embed a batch: {exc}")
            err.__cause__ = exc
            return self._failed(idx, err, state)
        state.succeeded()
        out: list[tuple[int, Any]] = []
        for i, row in zip(idx, rows):
            try:
                out.append((i, check_vector(row, self.dimensions, item=sources[i], what="embedding")))
            except LookalikeError as exc:
                exc.message = f"{self.display_name} returned a bad vector: {exc.message}"
                exc.args = (exc.message,)
                out.append((i, exc))
        return out

    @staticmethod
    def _failed(idx: list[int], exc: LookalikeError, state: _CallState) -> list[tuple[int, Any]]:
        if state.on_error == "raise":
            state.stopped = True
        return [(i, _copy_error(exc)) for i in idx]

    @staticmethod
    def _for_item(exc: LookalikeError, index: int, item: Any) -> LookalikeError:
        exc.index = index
        if exc.item is None:
            exc.item = item
        return exc


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
            self._same = (exc.message, count + 1 if exc.message == message else 1)
            if self._same[1] < self.breaker:
                return
        self.stopped = True
        raise ProviderError(
            f"every input was rejected with the same error, so the request itself is at fault: {exc.message}",
            status_code=exc.status_code,
        ) from exc


def _is_fatal(exc: LookalikeError) -> bool:
    return isinstance(exc, (AuthenticationError, ConfigurationError)) or (
        isinstance(exc, ProviderError) and exc.status_code in _FATAL_STATUS
    )


def _copy_error(exc: LookalikeError) -> LookalikeError:
    """A per-item copy, so setting ``index``/``item`` on one doesn't change the others."""
    dup = copy.copy(exc)
    dup.__cause__ = exc.__cause__
    return dup


def _positive(name: str, value: float, *, allow_zero: bool = False) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or value < 0
        or (value == 0 and not allow_zero)
    ):
        raise ConfigurationError(
            f"{name} must be a {'non-negative' if allow_zero else 'positive'} number, got {value!r}"
        )


def _retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds, possibly fractional, or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - time.time())


def _error_detail(resp: httpx.Response) -> str:
    """The human part of an error body: Jina/Voyage ``detail``, OpenAI ``error.message``, Cohere
    ``message``; else the start of the text."""
    try:
        body = resp.json()
    except ValueError:
        return _snippet(resp.text) or resp.reason_phrase or "no details"
    if isinstance(body, dict):
        for key in ("detail", "error", "message"):
            value = body.get(key)
            if isinstance(value, dict):
                value = value.get("message") or value.get("detail") or value
            if value:
                return _snippet(value if isinstance(value, str) else json.dumps(value))
    return _snippet(json.dumps(body))


def _snippet(value: Any, limit: int = 300) -> str:
    text = value if isinstance(value, str) else repr(value)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
