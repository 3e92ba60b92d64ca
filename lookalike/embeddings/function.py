"""``EmbeddingFunction``: pytidb's entry point, resolving ``"provider/model"`` through the registry."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

from lookalike.embeddings.base import BaseEmbeddingFunction
from lookalike.embeddings.registry import DEFAULT_MODEL, build_from_config, provider_class, split_model_name
from lookalike.errors import LookalikeError
from lookalike.types import Purpose, SourceType


class EmbeddingFunction(BaseEmbeddingFunction):
    """An embedding model chosen by name, e.g. ``EmbeddingFunction("jina_ai/jina-embeddings-v4")``.

    ``model_name`` is ``"provider/model"``: ``local/…`` (ONNX, offline; the default
    ``local/clip-vit-b-32`` when no name is given), ``jina_ai/…``, ``openai/…`` and others registered
    in :mod:`lookalike.embeddings.registry`. Construction never calls the network. ``api_key`` may be
    omitted when the provider's usual environment variable is set; it is never stored with a table.
    pytidb's ``use_server=`` is accepted and unused: embeddings are computed in this process.
    """

    def __init__(
        self,
        model_name: str | None = None,
        dimensions: int | None = None,
        api_key: str | None = None,
        api_base: str | None = None,
        timeout: float | None = None,
        multimodal: bool | None = None,
        caching: bool = True,
        use_server: bool | None = None,
        **options: Any,
    ) -> None:
        # use_server: pytidb's switch for embedding inside TiDB Cloud. lookalike embeds in this process
        # on every engine, with the same model, so the vectors are the same either way: accepted, unused.
        del use_server
        provider, model = split_model_name(model_name or DEFAULT_MODEL)
        cls = provider_class(provider)
        kwargs: dict[str, Any] = {
            k: v
            for k, v in {
                "dimensions": dimensions,
                "api_key": api_key,
                "api_base": api_base,
                "timeout": timeout,
                "multimodal": multimodal,
            }.items()
            if v is not None
        }
        self._impl: BaseEmbeddingFunction = cls(model, **kwargs, **options)
        self.caching = caching

    # Everything below forwards to the provider object.
    @property
    def model_name(self) -> str:
        return self._impl.model_name

    @model_name.setter
    def model_name(self, value: str) -> None:
        self._impl.model_name = value

    @property
    def dimensions(self) -> int | None:
        return self._impl.dimensions

    @dimensions.setter
    def dimensions(self, value: int | None) -> None:
        self._impl.dimensions = value

    @property
    def multimodal(self) -> bool:
        return self._impl.multimodal

    @multimodal.setter
    def multimodal(self, value: bool) -> None:
        self._impl.multimodal = value

    # `provider` and `remote` are class constants on providers; this facade reads them per instance
    # from the object it wraps, which a property does and a ClassVar cannot.
    @property
    def provider(self) -> str:  # type: ignore[override]  # per-instance facade over a ClassVar
        return self._impl.provider

    @property
    def remote(self) -> bool:  # type: ignore[override]  # per-instance facade over a ClassVar
        return self._impl.remote

    @property
    def impl(self) -> BaseEmbeddingFunction:
        """The provider object doing the work."""
        return self._impl

    def __repr__(self) -> str:
        return f"EmbeddingFunction({self._impl!r})"

    def __getattr__(self, name: str) -> Any:
        # only reached for attributes not found normally: provider-specific extras
        if name == "_impl":
            raise AttributeError(name)
        return getattr(self._impl, name)

    def embed_texts(self, texts: list[str], *, purpose: Purpose) -> np.ndarray:
        return self._impl.embed_texts(texts, purpose=purpose)

    def ensure_ready(self, kind: Literal["text", "image"] = "image") -> None:
        self._impl.ensure_ready(kind)

    def prepare_image(self, ref: Any) -> Any:
        return self._impl.prepare_image(ref)

    def embed_images(self, images: list[Any], *, purpose: Purpose) -> np.ndarray:
        return self._impl.embed_images(images, purpose=purpose)

    def embed_query(self, query: Any, *, source_type: SourceType = "auto") -> np.ndarray:
        return self._impl.embed_query(query, source_type=source_type)

    def embed_sources(
        self, sources: Sequence[Any], **options: Any
    ) -> list[np.ndarray | LookalikeError | None]:
        # the provider applies the defaults and checks the options: see BaseEmbeddingFunction.embed_sources
        return self._impl.embed_sources(sources, **options)

    def config(self) -> dict[str, Any]:
        return self._impl.config()

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> BaseEmbeddingFunction:
        return build_from_config(config)
