"""Provider registry: ``"provider/model"`` names resolve to provider classes, imported lazily."""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from typing import Any

from lookalike.embeddings.base import BaseEmbeddingFunction, resolve_class
from lookalike.errors import ConfigurationError, MissingDependencyError


@dataclass(frozen=True)
class ProviderSpec:
    """Where a provider lives and which extra installs its dependencies."""

    target: str  # "module:ClassName"
    extra: str | None = None
    package: str | None = None


_PROVIDERS: dict[str, ProviderSpec] = {
    "local": ProviderSpec("lookalike.embeddings.local_onnx:LocalOnnxEmbedding", "local", "onnxruntime"),
    "jina_ai": ProviderSpec("lookalike.embeddings.jina:JinaEmbedding"),
    "openai": ProviderSpec("lookalike.embeddings.openai:OpenAIEmbedding"),
    "voyageai": ProviderSpec("lookalike.embeddings.voyage:VoyageEmbedding"),
    "cohere": ProviderSpec("lookalike.embeddings.cohere:CohereEmbedding"),
}
_ALIASES = {"jina": "jina_ai", "jinaai": "jina_ai", "voyage": "voyageai", "onnx": "local"}

DEFAULT_MODEL = "local/clip-vit-b-32"
"""The model used when ``EmbeddingFunction()`` is given no name: offline, no API key."""


def register_provider(
    name: str, target: str | type[BaseEmbeddingFunction], *, extra: str | None = None
) -> None:
    """Register a provider under ``name`` (a class, or ``"module:Class"`` to import lazily)."""
    if isinstance(target, type):
        target = f"{target.__module__}:{target.__qualname__}"
    _PROVIDERS[name] = ProviderSpec(target, extra)


def known_providers() -> list[str]:
    """Names accepted before the ``/`` of a model name."""
    return sorted(_PROVIDERS)


def split_model_name(model_name: str) -> tuple[str, str]:
    """``"jina_ai/jina-embeddings-v4"`` → ``("jina_ai", "jina-embeddings-v4")``.

    A folder (``"./my-clip"``, ``"/models/clip"``, ``"~/clip"``) holding a model's files is a local model.
    """
    provider, sep, model = model_name.partition("/")
    provider = _ALIASES.get(provider, provider)
    if provider not in _PROVIDERS and model_name.startswith(("/", "./", "../", "~", ".\\")):
        if not os.path.isdir(os.path.expanduser(model_name)):
            raise ConfigurationError(f"model folder {model_name!r} does not exist")
        return "local", model_name
    if not sep or not model or provider not in _PROVIDERS:
        raise ConfigurationError(
            f"unknown embedding model {model_name!r}: use 'provider/model' with provider one of "
            f"{', '.join(known_providers())} (e.g. 'local/clip-vit-b-32', 'jina_ai/jina-embeddings-v4')"
        )
    return provider, model


def provider_class(provider: str) -> type[BaseEmbeddingFunction]:
    """Import and return the class registered for ``provider``."""
    provider = _ALIASES.get(provider, provider)
    spec = _PROVIDERS.get(provider)
    if spec is None:
        raise ConfigurationError(
            f"unknown embedding provider {provider!r}; known: {', '.join(known_providers())}"
        )
    module_name, _, cls_name = spec.target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        if spec.extra:
            raise MissingDependencyError(
                f"the {provider!r} embedding provider", spec.extra, package=spec.package
            ) from exc
        raise
    return getattr(module, cls_name)


def build_from_config(config: dict[str, Any]) -> BaseEmbeddingFunction:
    """Rebuild an embedder from the configuration stored with a table."""
    provider = config.get("provider", "python")
    if provider == "python":
        cls = resolve_class(config["class"])
    else:
        cls = provider_class(provider)
    return cls.from_config(config)
