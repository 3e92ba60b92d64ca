"""The HTTP side every hosted embedding provider shares: the API key, one pooled client, retries.

:class:`HTTPEmbeddingFunction` reads the API key from the provider's environment variable at request
time (an explicit key lives only in memory: never stored, printed or pickled), keeps one pooled
``httpx`` client per embedder (a copy or a pickle gets its own), and POSTs JSON with retries: 429, 5xx,
timeouts and connection errors are retried with exponential backoff and jitter, honouring
``Retry-After`` up to a cap; errors name the provider and the model and never echo the key.

:class:`~lookalike.embeddings.remote.RemoteEmbeddingFunction` builds on it with the model table, image
preparation and the packed, concurrent bulk path.
"""

from __future__ import annotations

import email.utils
import json
import os
import random
import threading
import time
from typing import Any, ClassVar, Literal, TypeVar

import httpx

from lookalike.embeddings.base import ITEM_STATUS, BaseEmbeddingFunction
from lookalike.errors import AuthenticationError, ConfigurationError, ProviderError

__all__ = [
    "HTTPEmbeddingFunction",
    "Secret",
    "check_positive",
    "configure_provider_key",
    "parse_retry_after",
    "snippet",
]

_RETRYABLE_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})

_H = TypeVar("_H", bound="HTTPEmbeddingFunction")


class Secret:
    """Holds an API key so that no repr, log line or pickle of a provider (or reranker) shows it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "'***'"

    def __reduce__(self) -> Any:
        raise TypeError("an API key is not picklable; pass it again or use the environment variable")


# keys given to client.configure_embedding_provider(): this process's memory only, never a table's
_PROVIDER_KEYS: dict[str, Secret] = {}
_PROVIDER_KEYS_LOCK = threading.Lock()


def configure_provider_key(provider: str, api_key: str | None) -> None:
    """Use ``api_key`` for every embedder of ``provider`` (a canonical registry name) that was given
    no ``api_key=``, in this process; ``None`` forgets it. Environment variables still come after."""
    with _PROVIDER_KEYS_LOCK:
        if api_key is None:
            _PROVIDER_KEYS.pop(provider, None)
        else:
            _PROVIDER_KEYS[provider] = Secret(api_key)


class HTTPEmbeddingFunction(BaseEmbeddingFunction):
    """Base class of embedders that POST JSON to a hosted API (see the module notes).

    Subclasses set ``provider``, ``display_name``, ``api_key_envs``, ``api_base_envs`` and
    ``default_api_base``, and call :meth:`_init_http` from their constructor.
    """

    remote: ClassVar[bool] = True
    display_name: ClassVar[str] = "remote provider"
    api_key_envs: ClassVar[tuple[str, ...]] = ()
    api_base_envs: ClassVar[tuple[str, ...]] = ()
    default_api_base: ClassVar[str] = ""
    default_max_concurrency: ClassVar[int] = 8

    def _init_http(
        self,
        *,
        api_key: str | None,
        api_base: str | None,
        api_key_env: str | None,
        timeout: float | None,
        max_concurrency: int | None,
        max_retries: int,
        backoff_base: float,
        backoff_max: float,
        max_retry_wait: float,
        transport: httpx.BaseTransport | None,
    ) -> None:
        """Check and keep the connection, key and retry options."""
        check_positive("max_retries", max_retries, allow_zero=True)
        check_positive("backoff_base", backoff_base, allow_zero=True)
        self.timeout = float(timeout) if timeout is not None else 60.0
        check_positive("timeout", self.timeout)
        self.max_concurrency = int(max_concurrency or self.default_max_concurrency)
        check_positive("max_concurrency", self.max_concurrency)
        self.max_retries = int(max_retries)
        self.backoff_base = float(backoff_base)
        self.backoff_max = float(backoff_max)
        self.max_retry_wait = float(max_retry_wait)
        # key handling: an explicit key lives only in memory; otherwise the env var is read per request
        self.api_key_env = api_key_env or (self.api_key_envs[0] if self.api_key_envs else None)
        self._api_key = Secret(api_key) if api_key else None
        self._api_base_arg = api_base
        self.api_base = (api_base or self._env_api_base() or self.default_api_base).rstrip("/")
        if not self.api_base.lower().startswith(("http://", "https://")):
            raise ConfigurationError(f"api_base must be an http(s) URL, got {self.api_base!r}")
        self._transport = transport
        self._client: httpx.Client | None = None
        self._client_lock = threading.Lock()

    # ----------------------------------------------------------------- keys
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

    def ensure_ready(self, kind: Literal["text", "image"] = "image") -> None:
        """Check that an API key is at hand (no network)."""
        self._key()

    def _key(self) -> str | None:
        if self._api_key is not None:
            return self._api_key.get()
        configured = _PROVIDER_KEYS.get(self.provider)
        if configured is not None:
            return configured.get()
        names = [self.api_key_env] if self.api_key_env else []
        names += [n for n in self.api_key_envs if n not in names]
        for name in names:
            value = os.environ.get(name) if name else None
            if value:
                return value
        if self.requires_api_key:
            raise AuthenticationError(
                f"no API key for {self.display_name}: pass api_key= to EmbeddingFunction or set the "
                f"{' or '.join(n for n in names if n)} environment variable"
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

    # ----------------------------------------------------------------- the connection pool
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

    def __enter__(self: _H) -> _H:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __copy__(self: _H) -> _H:
        # a copy in the same process keeps the in-memory key but gets its own connection pool
        dup = type(self).__new__(type(self))
        dup.__dict__.update(self.__dict__)
        dup._client = None
        dup._client_lock = threading.Lock()
        return dup

    def __deepcopy__(self: _H, memo: dict[int, Any]) -> _H:
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

    # ----------------------------------------------------------------- requests and retries
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
                            f"JSON ({snippet(resp.text)!r}); is api_base={self.api_base!r} right?",
                            status_code=resp.status_code,
                        ) from exc
                err = self._status_error(resp)
                retry_after = parse_retry_after(resp.headers.get("Retry-After"))
            if not err.retryable or attempt >= self.max_retries:
                if attempt:
                    err.add_remark(f"(gave up after {attempt + 1} attempts)")
                raise err from cause
            delay = self._backoff(attempt)
            if retry_after is not None:
                if retry_after > self.max_retry_wait:
                    err.add_remark(
                        f"(the server asked to retry after {retry_after:g}s; not waiting that long)"
                    )
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
        if status in ITEM_STATUS:
            return ProviderError(f"{where} rejected the input (HTTP {status}): {detail}", status_code=status)
        return ProviderError(
            f"{where} answered HTTP {status} at {self.api_base}: {detail}", status_code=status
        )


def check_positive(name: str, value: float, *, allow_zero: bool = False) -> None:
    """Raise :class:`ConfigurationError` naming ``name`` unless ``value`` is a positive number."""
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or value < 0
        or (value == 0 and not allow_zero)
    ):
        raise ConfigurationError(
            f"{name} must be a {'non-negative' if allow_zero else 'positive'} number, got {value!r}"
        )


def parse_retry_after(value: str | None) -> float | None:
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
        return snippet(resp.text) or resp.reason_phrase or "no details"
    if isinstance(body, dict):
        for key in ("detail", "error", "message"):
            value = body.get(key)
            if isinstance(value, dict):
                value = value.get("message") or value.get("detail") or value
            if value:
                return snippet(value if isinstance(value, str) else json.dumps(value))
    return snippet(json.dumps(body))


def snippet(value: Any, limit: int = 300) -> str:
    """``value`` as one short line of text, for error messages that quote a server's answer."""
    text = value if isinstance(value, str) else repr(value)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
