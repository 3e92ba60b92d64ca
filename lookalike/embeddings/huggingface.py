"""Hugging Face Inference Providers (``huggingface/<org>/<model>``, alias ``hf/…``), text only.

Request: ``POST {api_base}/{org}/{model}/pipeline/feature-extraction`` with ``{"inputs": [str, …],
"normalize": bool, "truncate": bool}``; the answer is a bare JSON array with one vector per input.
``api_base`` is the root of the models (``https://router.huggingface.co/hf-inference/models``; also
``HUGGINGFACE_API_BASE``). The key comes from ``HUGGINGFACE_API_KEY`` (pytidb's name), ``HF_TOKEN`` or
``HUGGING_FACE_HUB_TOKEN``, sent as ``Authorization: Bearer``.

What is accepted: one flat vector per input (sentence-embedding models). A model without a pooling
layer answers one vector *per token*; which pooling it was trained for (mean, CLS, last token) is not
in the answer, so lookalike refuses that with a :class:`~lookalike.errors.ProviderError` rather than
guess. Errors come as ``{"error": "…"}``; a model still loading answers 503 with ``estimated_time``
(seconds), which is used as the retry delay (capped by ``max_retry_wait``).
"""

from __future__ import annotations

import re
import threading
from typing import Any, ClassVar

import httpx

from lookalike.embeddings.http_api import snippet
from lookalike.embeddings.remote import Kind, ModelSpec, RemoteEmbeddingFunction
from lookalike.errors import ConfigurationError, ProviderError
from lookalike.types import Purpose

__all__ = ["HF_MODELS", "HuggingFaceEmbedding"]

# Output sizes of the models pytidb's dimension table names, plus common sentence-transformers models.
# Two of pytidb's entries are corrected from the models' own configs: BAAI/bge-small-en(-v1.5) is
# 384-d (pytidb says 512) and Alibaba-NLP/gte-Qwen2-1.5B-instruct is 1536-d (pytidb says 8960, the
# size of its feed-forward layer).
_BY_SIZE: dict[int, tuple[str, ...]] = {
    384: (
        "sentence-transformers/all-MiniLM-L6-v2",
        "sentence-transformers/all-MiniLM-L12-v2",
        "sentence-transformers/paraphrase-multilingual-MiniLM-L12-v2",
        "BAAI/bge-small-en",
        "BAAI/bge-small-en-v1.5",
        "Snowflake/snowflake-arctic-embed-s",
        "Snowflake/snowflake-arctic-embed-xs",
        "intfloat/e5-small",
        "intfloat/e5-small-v2",
        "intfloat/multilingual-e5-small",
    ),
    512: (
        "BAAI/bge-small-zh",
        "BAAI/bge-small-zh-v1.5",
        "jinaai/jina-embedding-s-en-v1",
        "jinaai/jina-embeddings-v2-small-en",
    ),
    768: (
        "sentence-transformers/all-mpnet-base-v2",
        "sentence-transformers/multi-qa-mpnet-base-dot-v1",
        "Alibaba-NLP/gte-multilingual-base",
        "Alibaba-NLP/gte-modernbert-base",
        "Alibaba-NLP/gte-base-en-v1.5",
        "BAAI/bge-base-en",
        "BAAI/bge-base-en-v1.5",
        "BAAI/bge-base-zh",
        "BAAI/bge-base-zh-v1.5",
        "Snowflake/snowflake-arctic-embed-m",
        "Snowflake/snowflake-arctic-embed-m-long",
        "Snowflake/snowflake-arctic-embed-m-v1.5",
        "Snowflake/snowflake-arctic-embed-m-v2.0",
        "intfloat/e5-base",
        "intfloat/e5-base-v2",
        "intfloat/multilingual-e5-base",
        "jinaai/jina-embedding-b-en-v1",
        "jinaai/jina-embeddings-v2-base-en",
        "nomic-ai/nomic-embed-text-v1.5",
    ),
    1024: (
        "BAAI/bge-large-en",
        "BAAI/bge-large-en-v1.5",
        "BAAI/bge-large-zh",
        "BAAI/bge-large-zh-v1.5",
        "BAAI/bge-m3",
        "BAAI/bge-m3-unsupervised",
        "Cohere/Cohere-embed-multilingual-v3.0",
        "Qwen/Qwen3-Embedding-0.6B",
        "Snowflake/snowflake-arctic-embed-l",
        "Snowflake/snowflake-arctic-embed-l-v2.0",
        "intfloat/e5-large",
        "intfloat/e5-large-v2",
        "intfloat/multilingual-e5-large",
        "intfloat/multilingual-e5-large-instruct",
        "jinaai/jina-embeddings-v3",
        "mixedbread-ai/mxbai-embed-large-v1",
        "thenlper/gte-large",
    ),
    1536: ("Alibaba-NLP/gme-Qwen2-VL-2B-Instruct", "Alibaba-NLP/gte-Qwen2-1.5B-instruct"),
    2048: ("jinaai/jina-embeddings-v4",),
    2560: ("Qwen/Qwen3-Embedding-4B",),
    3584: (
        "Alibaba-NLP/gme-Qwen2-VL-7B-Instruct",
        "Alibaba-NLP/gte-Qwen2-7B-instruct",
        "BAAI/bge-multilingual-gemma2",
    ),
    4096: (
        "Alibaba-NLP/gte-Qwen1.5-7B-instruct",
        "BAAI/bge-en-icl",
        "Qwen/Qwen3-Embedding-8B",
        "intfloat/e5-mistral-7b-instruct",
    ),
}

HF_MODELS: dict[str, ModelSpec] = {
    name: ModelSpec(dims) for dims, names in _BY_SIZE.items() for name in names
}
"""Known models and their (fixed) output sizes; any other ``org/model`` needs ``dimensions=``."""

# a Hub repo id: "org/name" (or a legacy name without org), letters, digits, "-", "_", "."; it goes
# into the URL path, so nothing else is let through
_REPO_ID = re.compile(r"^(?:[A-Za-z0-9][\w.-]*/)?[A-Za-z0-9][\w.-]*$", re.ASCII)


class HuggingFaceEmbedding(RemoteEmbeddingFunction):
    """Text embeddings from Hugging Face's feature-extraction API, e.g.
    ``EmbeddingFunction("huggingface/BAAI/bge-base-en-v1.5")``.

    ``normalize`` (default True) asks for unit-length vectors; ``truncate`` (default True) lets the
    server cut texts longer than the model's window instead of refusing them. Models outside
    :data:`HF_MODELS` need ``dimensions=`` (the API cannot shorten vectors, so it must be the
    model's own size; a wrong one is caught on the first answer). Queries and documents are
    embedded alike: the API has no query/document switch.
    """

    provider: ClassVar[str] = "huggingface"
    display_name: ClassVar[str] = "Hugging Face"
    api_key_envs: ClassVar[tuple[str, ...]] = ("HUGGINGFACE_API_KEY", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")
    api_base_envs: ClassVar[tuple[str, ...]] = ("HUGGINGFACE_API_BASE",)
    default_api_base: ClassVar[str] = "https://router.huggingface.co/hf-inference/models"
    models: ClassVar[dict[str, ModelSpec]] = HF_MODELS
    # Text Embeddings Inference, which serves these models, takes at most 32 inputs and 2 MB a request
    # by default
    default_batch_size: ClassVar[int] = 32
    default_max_request_bytes: ClassVar[int] = 2_000_000

    def __init__(self, model: str, *, normalize: bool = True, truncate: bool = True, **kwargs: Any) -> None:
        if not isinstance(model, str) or not _REPO_ID.match(model) or ".." in model:
            raise ConfigurationError(
                f"huggingface: {model!r} is not a Hugging Face model id ('org/model', e.g. "
                "'BAAI/bge-base-en-v1.5')"
            )
        if kwargs.get("multimodal"):
            raise ConfigurationError(
                f"huggingface/{model}: Hugging Face's feature-extraction API embeds text only; drop "
                "multimodal=True or pick a multimodal provider such as jina_ai/jina-embeddings-v4"
            )
        for name, value in (("normalize", normalize), ("truncate", truncate)):
            if not isinstance(value, bool):
                raise ConfigurationError(f"{name} must be True or False, got {value!r}")
        self.normalize = normalize
        self.truncate = truncate
        super().__init__(model, **kwargs)
        # the `estimated_time` of a 503 "model is loading" answer, from _status_error to _backoff
        # (both run in the thread that sends the request)
        self._wait = threading.local()

    def _resolve_dimensions(self, model: str, spec: ModelSpec | None, dimensions: int | None) -> int:
        if spec is None and dimensions is None:
            # the base message lists every known model: too many here
            raise ConfigurationError(
                f"huggingface/{model} is not a model lookalike knows, so its vector size is unknown: "
                "pass dimensions= (the size on its model card; known models: "
                "lookalike.embeddings.huggingface.HF_MODELS)"
            )
        return super()._resolve_dimensions(model, spec, dimensions)

    @property
    def requires_api_key(self) -> bool:
        # a self-hosted Text Embeddings Inference server usually runs without a key
        return "huggingface.co" in self.api_base

    def config_options(self) -> dict[str, Any]:
        opts = super().config_options()
        opts["normalize"] = self.normalize
        opts["truncate"] = self.truncate
        return opts

    def endpoint(self, kind: Kind) -> str:
        return f"/{self.model_name}/pipeline/feature-extraction"

    def build_payload(self, kind: Kind, items: list[Any], purpose: Purpose) -> dict[str, Any]:
        return {"inputs": list(items), "normalize": self.normalize, "truncate": self.truncate}

    def parse_embeddings(self, body: Any, n: int) -> list[Any]:
        where = f"Hugging Face (huggingface/{self.model_name})"
        if not isinstance(body, list):
            raise ProviderError(f"{where} answered without a list of vectors: {snippet(body)!r}")
        if len(body) != n:
            raise ProviderError(f"{where} returned {len(body)} vectors for {n} inputs")
        for row in body:
            if isinstance(row, list) and row and isinstance(row[0], list):
                raise ProviderError(
                    f"{where} answered one vector per token, not one per text: the model has no "
                    "pooling layer, and lookalike does not guess which pooling it was trained for. "
                    "Use a sentence-embedding model (e.g. sentence-transformers/…, BAAI/bge-…) or a "
                    "custom EmbeddingFunction that pools the token vectors"
                )
            if not isinstance(row, list):
                raise ProviderError(f"{where} returned a malformed vector: {snippet(row)!r}")
        return body

    # ----------------------------------------------------------------- a model that is loading
    def post(self, path: str, payload: dict[str, Any]) -> Any:
        self._wait.seconds = None  # nothing left over from an earlier call in this thread
        return super().post(path, payload)

    def _status_error(self, resp: httpx.Response) -> ProviderError:
        err = super()._status_error(resp)
        self._wait.seconds = None
        if resp.status_code == 503:
            estimated = _estimated_time(resp)
            if estimated is not None:
                self._wait.seconds = min(estimated, self.max_retry_wait)
                err.add_remark(f"(the model is loading; Hugging Face estimates {estimated:g}s)")
        return err

    def _backoff(self, attempt: int) -> float:
        seconds = getattr(self._wait, "seconds", None)
        self._wait.seconds = None
        return seconds if seconds is not None else super()._backoff(attempt)

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state["_wait"] = None  # thread-local state does not pickle
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        self._wait = threading.local()


def _estimated_time(resp: httpx.Response) -> float | None:
    try:
        body = resp.json()
    except ValueError:
        return None
    value = body.get("estimated_time") if isinstance(body, dict) else None
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0:
        return float(value)
    return None
