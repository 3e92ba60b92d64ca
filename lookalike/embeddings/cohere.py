"""Cohere (``cohere/…``): ``POST {api_base}/v2/embed``.

Request: ``{"model", "input_type": "search_document"|"search_query", "embedding_types": ["float"],
"texts": [str] | "images": ["data:image/jpeg;base64,…"], "output_dimension"?}`` (texts and images
never mixed in one request, at most 96 of either); response ``{"embeddings": {"float": [[…]]}}``.
Cohere takes images only as data URIs, so image URLs are always fetched locally. ``CO_API_URL``
overrides the endpoint; the key comes from ``CO_API_KEY`` or ``COHERE_API_KEY``.
"""

from __future__ import annotations

from typing import Any, ClassVar

from lookalike.embeddings.http_api import snippet
from lookalike.embeddings.remote import Kind, ModelSpec, PreparedImage, RemoteEmbeddingFunction
from lookalike.errors import ProviderError
from lookalike.types import Purpose

__all__ = ["COHERE_MODELS", "CohereEmbedding"]

# Cohere downsamples images over 2,458,624 pixels, so sending more is wasted bandwidth.
_COHERE_PIXELS = 2_458_624

COHERE_MODELS: dict[str, ModelSpec] = {
    "embed-v4.0": ModelSpec(
        1536,
        allowed_dimensions=(256, 512, 1024, 1536),
        multimodal=True,
        image_max_pixels=_COHERE_PIXELS,
        max_batch=96,
    ),
    # v3 models take one image per request (Cohere changelog) with input_type="image"
    "embed-english-v3.0": ModelSpec(
        1024, multimodal=True, image_max_pixels=_COHERE_PIXELS, max_batch=96, max_images_per_request=1
    ),
    "embed-multilingual-v3.0": ModelSpec(
        1024, multimodal=True, image_max_pixels=_COHERE_PIXELS, max_batch=96, max_images_per_request=1
    ),
    "embed-english-light-v3.0": ModelSpec(384, max_batch=96),
    "embed-multilingual-light-v3.0": ModelSpec(384, max_batch=96),
}

_INPUT_TYPES = {"document": "search_document", "query": "search_query"}


class CohereEmbedding(RemoteEmbeddingFunction):
    """Cohere's embedding models, e.g. ``EmbeddingFunction("cohere/embed-v4.0")``."""

    provider: ClassVar[str] = "cohere"
    display_name: ClassVar[str] = "Cohere"
    api_key_envs: ClassVar[tuple[str, ...]] = ("CO_API_KEY", "COHERE_API_KEY")
    api_base_envs: ClassVar[tuple[str, ...]] = ("CO_API_URL",)
    default_api_base: ClassVar[str] = "https://api.cohere.com"
    models: ClassVar[dict[str, ModelSpec]] = COHERE_MODELS
    accepts_image_urls: ClassVar[bool] = False
    default_batch_size: ClassVar[int] = 96

    def endpoint(self, kind: Kind) -> str:
        return "/v2/embed"

    def build_payload(self, kind: Kind, items: list[Any], purpose: Purpose) -> dict[str, Any]:
        input_type = _INPUT_TYPES[purpose]
        if kind == "image" and self.spec is not None and self.spec.max_images_per_request == 1:
            input_type = "image"
        payload: dict[str, Any] = {
            "model": self.model_name,
            "input_type": input_type,
            "embedding_types": ["float"],
        }
        if kind == "text":
            payload["texts"] = list(items)
        else:
            payload["images"] = [_data_uri(im) for im in items]
        if self.sends_dimensions:
            payload["output_dimension"] = self.dimensions
        return payload

    def parse_embeddings(self, body: Any, n: int) -> list[Any]:
        embeddings = body.get("embeddings") if isinstance(body, dict) else None
        rows = embeddings.get("float") if isinstance(embeddings, dict) else None
        if not isinstance(rows, list):
            raise ProviderError(f"Cohere answered without 'embeddings.float': {snippet(body)!r}")
        if len(rows) != n:
            raise ProviderError(f"Cohere returned {len(rows)} vectors for {n} inputs")
        return rows


def _data_uri(image: PreparedImage) -> str:
    return image.data_uri
