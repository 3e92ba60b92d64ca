"""OpenAI and OpenAI-compatible servers (``openai/…``): ``POST {api_base}/embeddings``.

Request: ``{"model", "input": [str, …], "encoding_format": "float", "dimensions"?}``; response
``{"data": [{"index", "embedding"}]}``. OpenAI's endpoint is text-only. Images go only to servers that
document an image input: ``image_format="infinity"`` sends ``{"input": [URL or data URI], "modality":
"image"}`` as Infinity (michaelfeil/infinity) accepts. ``OPENAI_BASE_URL``/``OPENAI_API_BASE``
override the endpoint; a key is required only for api.openai.com.
"""

from __future__ import annotations

from typing import Any, ClassVar

from lookalike.embeddings.remote import Kind, ModelSpec, PreparedImage, RemoteEmbeddingFunction
from lookalike.errors import ConfigurationError
from lookalike.types import Purpose

__all__ = ["NIM_MODELS", "OPENAI_MODELS", "NvidiaNIMEmbedding", "OpenAIEmbedding"]

OPENAI_MODELS: dict[str, ModelSpec] = {
    # text-embedding-3-*: `dimensions` shortens the vector; ada-002 is fixed. At most 2048 inputs.
    "text-embedding-3-small": ModelSpec(1536, min_dimensions=1, max_batch=2048),
    "text-embedding-3-large": ModelSpec(3072, min_dimensions=1, max_batch=2048),
    "text-embedding-ada-002": ModelSpec(1536, max_batch=2048),
}

IMAGE_FORMATS = ("infinity",)


class OpenAIEmbedding(RemoteEmbeddingFunction):
    """OpenAI's embedding models, or any OpenAI-compatible ``/embeddings`` server via ``api_base``.

    Unknown model names (a self-hosted server's) need ``dimensions=``. Pass
    ``image_format="infinity"`` to embed images on an Infinity server; otherwise the model is text-only.
    """

    provider: ClassVar[str] = "openai"
    display_name: ClassVar[str] = "OpenAI-compatible API"
    api_key_envs: ClassVar[tuple[str, ...]] = ("OPENAI_API_KEY",)
    api_base_envs: ClassVar[tuple[str, ...]] = ("OPENAI_BASE_URL", "OPENAI_API_BASE")
    default_api_base: ClassVar[str] = "https://api.openai.com/v1"
    models: ClassVar[dict[str, ModelSpec]] = OPENAI_MODELS
    default_batch_size: ClassVar[int] = 256

    def __init__(self, model: str, *, image_format: str | None = None, **kwargs: Any) -> None:
        if image_format is not None and image_format not in IMAGE_FORMATS:
            raise ConfigurationError(
                f"image_format must be one of {IMAGE_FORMATS} (or None for text only), got {image_format!r}"
            )
        self.image_format = image_format
        if kwargs.get("multimodal") is None:
            kwargs["multimodal"] = image_format is not None
        elif kwargs["multimodal"] and image_format is None:
            raise ConfigurationError(
                f"openai/{model}: OpenAI's /embeddings API takes text only. For a server that documents "
                "image input pass image_format='infinity' (Infinity's modality='image'); otherwise use a "
                "multimodal provider such as jina_ai/jina-embeddings-v4"
            )
        super().__init__(model, **kwargs)

    @property
    def requires_api_key(self) -> bool:
        # self-hosted OpenAI-compatible servers usually run without keys
        return "api.openai.com" in self.api_base

    def max_items(self, kind: Kind) -> int:
        if kind == "image":
            return min(self.batch_size, 32)  # Infinity caps image batches at 32
        return self.batch_size

    def config_options(self) -> dict[str, Any]:
        opts = super().config_options()
        if self.image_format is not None:
            opts["image_format"] = self.image_format
        return opts

    def endpoint(self, kind: Kind) -> str:
        return "/embeddings"

    def build_payload(self, kind: Kind, items: list[Any], purpose: Purpose) -> dict[str, Any]:
        payload: dict[str, Any] = {"model": self.model_name, "encoding_format": "float"}
        if kind == "text":
            payload["input"] = list(items)
        else:
            payload["input"] = [_image_ref(im) for im in items]
            payload["modality"] = "image"
        if self.sends_dimensions:
            payload["dimensions"] = self.dimensions
        return payload


def _image_ref(image: PreparedImage) -> str:
    return image.url if image.url is not None else image.data_uri


NIM_MODELS: dict[str, ModelSpec] = {
    # the model names pytidb's dimension table knows, plus NVIDIA's retrieval models
    "baai/bge-m3": ModelSpec(1024),
    "nvidia/nv-embed-v1": ModelSpec(4096),
    "nvidia/nv-embedqa-e5-v5": ModelSpec(1024),
    "nvidia/llama-3.2-nv-embedqa-1b-v2": ModelSpec(2048, allowed_dimensions=(384, 512, 768, 1024, 2048)),
}


class NvidiaNIMEmbedding(OpenAIEmbedding):
    """NVIDIA NIM's OpenAI-compatible ``/v1/embeddings`` (``nvidia_nim/baai/bge-m3``), text only.

    Asymmetric retrieval models (``…embedqa…``) also get NIM's ``input_type`` (``query``/``passage``).
    The key comes from ``NVIDIA_NIM_API_KEY`` (pytidb's name) or ``NVIDIA_API_KEY``; a self-hosted NIM
    (``api_base=`` or ``NVIDIA_NIM_API_BASE``) needs none.
    """

    provider: ClassVar[str] = "nvidia_nim"
    display_name: ClassVar[str] = "NVIDIA NIM"
    api_key_envs: ClassVar[tuple[str, ...]] = ("NVIDIA_NIM_API_KEY", "NVIDIA_API_KEY")
    api_base_envs: ClassVar[tuple[str, ...]] = ("NVIDIA_NIM_API_BASE",)
    default_api_base: ClassVar[str] = "https://integrate.api.nvidia.com/v1"
    models: ClassVar[dict[str, ModelSpec]] = NIM_MODELS

    @property
    def requires_api_key(self) -> bool:
        return "api.nvidia.com" in self.api_base

    def build_payload(self, kind: Kind, items: list[Any], purpose: Purpose) -> dict[str, Any]:
        payload = super().build_payload(kind, items, purpose)
        if "embedqa" in self.model_name:
            payload["input_type"] = "query" if purpose == "query" else "passage"
        return payload
