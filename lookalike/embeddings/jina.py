"""Jina AI embeddings (``jina_ai/…``): ``POST {api_base}/embeddings``.

Request: ``{"model", "input": [{"text": …} | {"image": URL or bare base64}], "task", "dimensions"}``
with ``Authorization: Bearer $JINA_API_KEY``; response: ``{"data": [{"index", "embedding"}], "usage"}``.
Stored items are sent with ``task="retrieval.passage"``, queries with ``"retrieval.query"`` (models
without task adapters get no ``task``). ``dimensions`` is sent only when it differs from the model's
default (Matryoshka truncation). ``JINA_API_BASE`` overrides the endpoint.
"""

from __future__ import annotations

from typing import Any, ClassVar

from lookalike.embeddings.remote import Kind, ModelSpec, PreparedImage, RemoteEmbeddingFunction
from lookalike.types import Purpose

__all__ = ["JINA_MODELS", "JinaEmbedding"]

JINA_MODELS: dict[str, ModelSpec] = {
    # v4: Matryoshka 128..2048 (model card); images are resized to at most 768 patches of 28x28 px;
    # the API takes at most 512 inputs per request.
    "jina-embeddings-v4": ModelSpec(
        2048, min_dimensions=128, multimodal=True, image_max_pixels=768 * 28 * 28, max_batch=512
    ),
    # clip-v2: 1024 down to 64 (Jina's clip-v2 post); its processor resizes the shortest side to 512.
    "jina-clip-v2": ModelSpec(1024, min_dimensions=64, multimodal=True, image_max_side=512),
    "jina-clip-v1": ModelSpec(768, multimodal=True, tasks=False, image_max_side=224),
    "jina-embeddings-v3": ModelSpec(1024, min_dimensions=32, max_batch=2048),
    "jina-embeddings-v2-base-en": ModelSpec(768, tasks=False),
    "jina-embeddings-v2-base-de": ModelSpec(768, tasks=False),
    "jina-embeddings-v2-base-es": ModelSpec(768, tasks=False),
    "jina-embeddings-v2-base-zh": ModelSpec(768, tasks=False),
    "jina-embeddings-v2-base-code": ModelSpec(768, tasks=False),
}

_TASKS: dict[str, str] = {"document": "retrieval.passage", "query": "retrieval.query"}


class JinaEmbedding(RemoteEmbeddingFunction):
    """Jina AI's hosted embedding models, e.g. ``EmbeddingFunction("jina_ai/jina-embeddings-v4")``.

    Multimodal models (v4, clip-v2, clip-v1) take text, image URLs (Jina fetches them) and inline
    images (downscaled to the size the model uses, sent as base64 JPEG). The guide's misspelling
    ``jina-embedding-v4`` is accepted with a warning.
    """

    provider: ClassVar[str] = "jina_ai"
    display_name: ClassVar[str] = "Jina AI"
    # JINA_AI_API_KEY is the name pytidb's docs and examples use (litellm's); JINA_API_KEY is Jina's own
    api_key_envs: ClassVar[tuple[str, ...]] = ("JINA_API_KEY", "JINA_AI_API_KEY")
    api_base_envs: ClassVar[tuple[str, ...]] = ("JINA_API_BASE",)
    default_api_base: ClassVar[str] = "https://api.jina.ai/v1"
    models: ClassVar[dict[str, ModelSpec]] = JINA_MODELS
    model_aliases: ClassVar[dict[str, str]] = {
        "jina-embedding-v4": "jina-embeddings-v4",
        "jina-embedding-v3": "jina-embeddings-v3",
    }
    default_batch_size: ClassVar[int] = 64
    # Jina's free tier allows 5 concurrent requests; stay under it by default
    default_max_concurrency: ClassVar[int] = 4

    def endpoint(self, kind: Kind) -> str:
        return "/embeddings"

    def build_payload(self, kind: Kind, items: list[Any], purpose: Purpose) -> dict[str, Any]:
        if kind == "text":
            inputs: list[Any] = [{"text": t} for t in items]
        else:
            inputs = [_image_input(im) for im in items]
        payload: dict[str, Any] = {"model": self.model_name, "input": inputs}
        if self.spec is None or self.spec.tasks:
            payload["task"] = _TASKS[purpose]
        if self.sends_dimensions:
            payload["dimensions"] = self.dimensions
        return payload


def _image_input(image: PreparedImage) -> dict[str, str]:
    # Jina's documented examples send bare base64 (no data: prefix) or an http(s) URL
    if image.url is not None:
        return {"image": image.url}
    return {"image": image.b64 or ""}
