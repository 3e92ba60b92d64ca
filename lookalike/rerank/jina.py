"""Jina AI's hosted rerankers (``jina_ai/…``): ``POST {api_base}/rerank``.

Request (``Authorization: Bearer <key>``, JSON)::

    {"model": "jina-reranker-v2-base-multilingual", "query": "red boots",
     "documents": ["red leather boots", "a blue hat"], "top_n": 2, "return_documents": false}

Response: ``{"model", "usage": {"total_tokens"}, "results": [{"index", "relevance_score"}, …]}``, best
first (``document`` is left out because we ask ``return_documents: false``; the rows are ours already).

The key comes from ``api_key=`` (kept in memory only: never stored, printed, logged or pickled) or the
``JINA_API_KEY`` / ``JINA_AI_API_KEY`` environment variables, read at request time; ``JINA_API_BASE``
overrides the endpoint. 429, 5xx, timeouts and connection errors are retried (``max_retries``) with
exponential backoff, honouring ``Retry-After`` up to ``max_retry_wait`` seconds.
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
from typing import Any

import httpx

from lookalike.embeddings.http_api import Secret, check_positive, parse_retry_after, snippet
from lookalike.errors import AuthenticationError, ConfigurationError, ProviderError
from lookalike.rerank.base import BaseReranker, RerankResult

__all__ = ["DEFAULT_JINA_RERANKER", "JinaReranker"]

DEFAULT_JINA_RERANKER = "jina-reranker-v2-base-multilingual"
API_KEY_ENVS = ("JINA_API_KEY", "JINA_AI_API_KEY")  # the second is pytidb's spelling
_RETRYABLE = frozenset({408, 409, 425, 429, 500, 502, 503, 504})


class JinaReranker(BaseReranker):
    """``Reranker("jina_ai/jina-reranker-v2-base-multilingual", api_key=...)`` (see the module notes)."""

    def __init__(
        self,
        model_name: str = DEFAULT_JINA_RERANKER,
        *,
        api_key: str | None = None,
        api_base: str | None = None,
        api_key_env: str | None = None,
        timeout: float = 30.0,
        max_retries: int = 2,
        backoff_base: float = 0.5,
        max_retry_wait: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not isinstance(model_name, str) or not model_name.strip():
            raise ConfigurationError(f"JinaReranker needs a model name, got {model_name!r}")
        check_positive("timeout", timeout)
        check_positive("max_retries", max_retries, allow_zero=True)
        check_positive("backoff_base", backoff_base, allow_zero=True)
        self.model_name = model_name.removeprefix("jina_ai/")
        self.api_base = (api_base or os.environ.get("JINA_API_BASE") or "https://api.jina.ai/v1").rstrip("/")
        if not self.api_base.lower().startswith(("http://", "https://")):
            raise ConfigurationError(f"api_base must be an http(s) URL, got {self.api_base!r}")
        self.api_key_env = api_key_env
        self.timeout = float(timeout)
        self.max_retries = int(max_retries)
        self.backoff_base = float(backoff_base)
        self.max_retry_wait = float(max_retry_wait)
        self._api_key = Secret(api_key) if api_key else None
        self._transport = transport
        self._client: httpx.Client | None = None
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return f"jina_ai/{self.model_name}"

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state.update(_client=None, _lock=None, _api_key=None)  # a pickle falls back to the env var
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def close(self) -> None:
        """Close the connection pool (reopened on the next request)."""
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    # ------------------------------------------------------------------ the API
    def rerank(self, query: str, documents: list[str], top_n: int | None = None) -> list[RerankResult]:
        """Jina's ranking of ``documents`` for ``query``, best first, at most ``top_n``."""
        if not documents:
            return []
        payload: dict[str, Any] = {
            "model": self.model_name,
            "query": query,
            "documents": list(documents),
            "return_documents": False,
        }
        if top_n is not None:
            payload["top_n"] = int(top_n)
        return self._parse(self._post("/rerank", payload), len(documents))

    def _parse(self, body: Any, n: int) -> list[RerankResult]:
        results = body.get("results") if isinstance(body, dict) else None
        if not isinstance(results, list):
            raise ProviderError(f"{self.name} answered without a results list: {snippet(body)!r}")
        out = []
        for item in results:
            if not isinstance(item, dict) or "index" not in item or "relevance_score" not in item:
                raise ProviderError(f"{self.name} answered a malformed result: {snippet(item)!r}")
            out.append(RerankResult(item["index"], item["relevance_score"]))
        return out

    def _key(self) -> str:
        if self._api_key is not None:
            return self._api_key.get()
        names = [self.api_key_env] if self.api_key_env else []
        for env in [*names, *API_KEY_ENVS]:
            value = os.environ.get(env)
            if value:
                return value
        raise AuthenticationError(
            f"no API key for the Jina reranker: pass api_key= or set {' or '.join([*names, *API_KEY_ENVS])}"
        )

    def _http(self) -> httpx.Client:
        with self._lock:
            if self._client is None:
                self._client = httpx.Client(
                    timeout=httpx.Timeout(self.timeout, connect=min(self.timeout, 10.0)),
                    transport=self._transport,
                    headers={"Accept": "application/json", "User-Agent": "lookalike"},
                )
            return self._client

    def _post(self, path: str, payload: dict[str, Any]) -> Any:
        key = self._key()
        url = self.api_base + path
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {key}"}
        content = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        for attempt in range(self.max_retries + 1):
            retry_after: float | None = None
            try:
                resp = self._http().post(url, content=content, headers=headers)
            except httpx.TransportError as exc:  # timeouts included
                err = ProviderError(
                    f"could not reach {self.name} at {url}: {type(exc).__name__}", retryable=True
                )
                cause: BaseException | None = exc
            else:
                if 200 <= resp.status_code < 300:
                    try:
                        return resp.json()
                    except ValueError as exc:
                        raise ProviderError(
                            f"{self.name} answered a body that is not JSON: {snippet(resp.text)!r}",
                            status_code=resp.status_code,
                        ) from exc
                err, cause = self._status_error(resp, key), None
                retry_after = parse_retry_after(resp.headers.get("Retry-After"))
            if not err.retryable or attempt >= self.max_retries:
                if attempt:
                    err.add_remark(f"(gave up after {attempt + 1} attempts)")
                raise err from cause
            delay = self.backoff_base * (2**attempt) * random.uniform(0.5, 1.0)
            if retry_after is not None:
                if retry_after > self.max_retry_wait:
                    raise err from cause
                delay = retry_after
            time.sleep(delay)
        raise AssertionError("unreachable")  # the loop returns or raises

    def _status_error(self, resp: httpx.Response, key: str) -> ProviderError:
        status = resp.status_code
        try:
            body = resp.json()
            detail = body.get("detail") or body.get("error") or body if isinstance(body, dict) else body
        except ValueError:
            detail = resp.text
        text = snippet(detail if isinstance(detail, str) else json.dumps(detail))
        if len(key) >= 3:
            text = text.replace(key, "***")  # a server may echo the key back
        if status == 401:
            return AuthenticationError(
                f"{self.name} rejected the API key (HTTP 401): {text}", status_code=status
            )
        retryable = status in _RETRYABLE or status >= 500
        return ProviderError(
            f"{self.name} answered HTTP {status}: {text}", status_code=status, retryable=retryable
        )
