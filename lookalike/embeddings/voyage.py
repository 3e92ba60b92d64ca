"""Voyage AI (``voyageai/…``): multimodal models use ``POST {api_base}/multimodalembeddings``.

Request: ``{"model", "inputs": [{"content": [{"type": "text", "text"} | {"type": "image_url",
"image_url"} | {"type": "image_base64", "image_base64": "data:image/jpeg;base64,…"}]}], "input_type":
"document"|"query", "output_dimension"?}``; text-only models use ``/embeddings`` with ``"input": [str]``.
Responses carry ``data[].index/embedding``. ``VOYAGE_API_BASE`` overrides the endpoint.
"""

from __future__ import annotations

from typing import Any, ClassVar

from lookalike.embeddings.remote import Kind, ModelSpec, PreparedImage, RemoteEmbeddingFunction
from lookalike.types import Purpose

__all__ = ["VOYAGE_MODELS", "VoyageEmbedding"]

_MATRYOSHKA = (256, 512, 1024, 2048)
# Voyage's documented image limit is 16 million pixels (and 20 MB); it bills per pixel, so lower
# image_max_pixels= to trade detail for cost.
_VOYAGE_PIXELS = 16_000_000

VOYAGE_MODELS: dict[str, ModelSpec] = {
    "voyage-multimodal-3": ModelSpec(1024, multimodal=True, image_max_pixels=_VOYAGE_PIXELS, max_batch=1000),
    "voyage-multimodal-3.5": ModelSpec(
        1024, allowed_dimensions=_MATRYOSHKA, multimodal=True, image_max_pixels=_VOYAGE_PIXELS, max_batch=1000
    ),
    "voyage-3.5": ModelSpec(1024, allowed_dimensions=_MATRYOSHKA, max_batch=1000),
    "voyage-3.5-lite": ModelSpec(1024, allowed_dimensions=_MATRYOSHKA, max_batch=1000),
    "voyage-3-large": ModelSpec(1024, allowed_dimensions=_MATRYOSHKA, max_batch=1000),
    "voyage-3": ModelSpec(1024, max_batch=1000),
}


class VoyageEmbedding(RemoteEmbeddingFunction):
    """Voyage AI's embedding models, e.g. ``EmbeddingFunction("voyageai/voyage-multimodal-3")``."""

    provider: ClassVar[str] = "voyageai"
    display_name: ClassVar[str] = "Voyage AI"
    api_key_envs: ClassVar[tuple[str, ...]] = ("VOYAGE_API_KEY",)
    api_base_envs: ClassVar[tuple[str, ...]] = ("VOYAGE_API_BASE",)
    default_api_base: ClassVar[str] = "https://api.voyageai.com/v1"
    models: ClassVar[dict[str, ModelSpec]] = VOYAGE_MODELS
    default_batch_size: ClassVar[int] = 32
    default_max_request_bytes: ClassVar[int] = 16 * 1024 * 1024

    def endpoint(self, kind: Kind) -> str:
        return "/multimodalembeddings" if self.multimodal else "/embeddings"

    def build_payload(self, kind: Kind, items: list[Any], purpose: Purpose) -> dict[str, Any]:
        payload: dict[str, Any] = {"model": self.model_name, "input_type": purpose}
        if self.multimodal:
            if kind == "text":
                payload["inputs"] = [{"content": [{"type": "text", "text": t}]} for t in items]
            else:
                payload["inputs"] = [{"content": [_image_part(im)]} for im in items]
        else:
            payload["input"] = list(items)
        if self.sends_dimensions:
            payload["output_dimension"] = self.dimensions
        return payload


def _image_part(image: PreparedImage) -> dict[str, str]:
    if image.url is not None:
        return {"type": "image_url", "image_url": image.url}
    # Voyage's own client sends inline images as data URIs
    return {"type": "image_base64", "image_base64": image.data_uri}
