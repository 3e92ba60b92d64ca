"""Provider registry: ``"provider/model"`` names resolve to provider classes, imported lazily.

The providers live in :data:`PROVIDERS`, a :class:`~lookalike._registry.LazyRegistry` (the same kind
that finds engines by URL scheme): a name, the ``"module:Class"`` to import on first use, the extra and
package that install its dependencies, and other spellings of the name.
"""

from __future__ import annotations

import os
from typing import Any

from lookalike._registry import LazyRegistry
from lookalike.embeddings.base import BaseEmbeddingFunction, resolve_class
from lookalike.errors import ConfigurationError

__all__ = [
    "DEFAULT_MODEL",
    "PROVIDERS",
    "TIDB_CLOUD_FREE",
    "build_from_config",
    "configure_embedding_provider",
    "known_providers",
    "provider_class",
    "register_provider",
    "split_model_name",
]

PROVIDERS: LazyRegistry[BaseEmbeddingFunction] = LazyRegistry(
    "embedding provider", "the {name!r} embedding provider"
)
"""Embedding providers by the name before the ``/`` of a model name."""

PROVIDERS.register(
    "local",
    "lookalike.embeddings.local_onnx:LocalOnnxEmbedding",
    extra="local",
    package="onnxruntime",
    aliases=("onnx",),
)
PROVIDERS.register("jina_ai", "lookalike.embeddings.jina:JinaEmbedding", aliases=("jina", "jinaai"))
PROVIDERS.register("openai", "lookalike.embeddings.openai:OpenAIEmbedding")
PROVIDERS.register("voyageai", "lookalike.embeddings.voyage:VoyageEmbedding", aliases=("voyage",))
PROVIDERS.register("cohere", "lookalike.embeddings.cohere:CohereEmbedding")
PROVIDERS.register("bedrock", "lookalike.embeddings.bedrock:BedrockEmbedding", aliases=("aws_bedrock",))
PROVIDERS.register(
    "vertex_ai",
    "lookalike.embeddings.google:VertexMultimodalEmbedding",
    aliases=("vertex", "vertexai", "google"),
)
PROVIDERS.register("gemini", "lookalike.embeddings.google:GeminiEmbedding")
PROVIDERS.register("nvidia_nim", "lookalike.embeddings.openai:NvidiaNIMEmbedding", aliases=("nvidia",))
PROVIDERS.register("huggingface", "lookalike.embeddings.huggingface:HuggingFaceEmbedding", aliases=("hf",))

DEFAULT_MODEL = "local/clip-vit-b-32"
"""The model used when ``EmbeddingFunction()`` is given no name: offline, no API key."""


def register_provider(
    name: str,
    target: str | type[BaseEmbeddingFunction],
    *,
    extra: str | None = None,
    package: str | None = None,
    aliases: tuple[str, ...] = (),
) -> None:
    """Register a provider under ``name`` (a class, or ``"module:Class"`` to import lazily).

    ``extra`` and ``package`` name what installs the provider's dependencies; they make the error
    when its import fails say what to install.
    """
    PROVIDERS.register(name, target, extra=extra, package=package, aliases=aliases)


def configure_embedding_provider(provider: str, api_key: str | None) -> None:
    """pytidb's ``client.configure_embedding_provider``: use ``api_key`` for the hosted ``provider``'s
    embedders that have no ``api_key=`` of their own, in this process (``None`` forgets it).

    The key stays in memory: a table stores only the name of the provider's environment variable,
    so another process needs this call again, or the variable.
    """
    if not isinstance(provider, str) or PROVIDERS.canonical(provider) not in PROVIDERS:
        raise ConfigurationError(
            f"unknown embedding provider {provider!r}; known: {', '.join(known_providers())}"
        )
    name = PROVIDERS.canonical(provider)
    if not PROVIDERS.load(name).remote:
        raise ConfigurationError(f"embedding provider {name!r} runs locally and takes no API key")
    if api_key is not None and (not isinstance(api_key, str) or not api_key.strip()):
        # never echo the value: it may be a key with a typo
        raise ConfigurationError(f"api_key for {name!r} must be a non-empty string or None")
    from lookalike.embeddings.http_api import configure_provider_key

    configure_provider_key(name, api_key)


def known_providers() -> list[str]:
    """Names accepted before the ``/`` of a model name."""
    return PROVIDERS.names()


TIDB_CLOUD_FREE = {
    "tidbcloud_free/amazon/titan-embed-text-v2": ("bedrock", "amazon.titan-embed-text-v2:0"),
    "tidbcloud_free/cohere/embed-english-v3": ("cohere", "embed-english-v3.0"),
    "tidbcloud_free/cohere/embed-multilingual-v3": ("cohere", "embed-multilingual-v3.0"),
}
"""The models TiDB Cloud serves free of charge, as pytidb names them, and the same models from
their makers' own APIs: lookalike runs them there (with that provider's key), as no TiDB Cloud
server computes them for the other engines."""


def split_model_name(model_name: str) -> tuple[str, str]:
    """``"jina_ai/jina-embeddings-v4"`` → ``("jina_ai", "jina-embeddings-v4")``.

    A folder (``"./my-clip"``, ``"/models/clip"``, ``"~/clip"``) holding a model's files is a local model;
    a TiDB Cloud free model is its maker's (:data:`TIDB_CLOUD_FREE`).
    """
    if model_name in TIDB_CLOUD_FREE:
        return TIDB_CLOUD_FREE[model_name]
    provider, sep, model = model_name.partition("/")
    provider = PROVIDERS.canonical(provider)
    if provider not in PROVIDERS and model_name.startswith(("/", "./", "../", "~", ".\\")):
        if not os.path.isdir(os.path.expanduser(model_name)):
            raise ConfigurationError(f"model folder {model_name!r} does not exist")
        return "local", model_name
    if not sep or not model or provider not in PROVIDERS:
        raise ConfigurationError(
            f"unknown embedding model {model_name!r}: use 'provider/model' with provider one of "
            f"{', '.join(known_providers())} (e.g. 'local/clip-vit-b-32', 'jina_ai/jina-embeddings-v4')"
        )
    return provider, model


def provider_class(provider: str) -> type[BaseEmbeddingFunction]:
    """Import and return the class registered for ``provider`` (a name or an alias).

    Raises :class:`~lookalike.errors.ConfigurationError` for an unknown name and
    :class:`~lookalike.errors.MissingDependencyError` when the provider's extra is not installed.
    """
    return PROVIDERS.load(provider)


def build_from_config(config: dict[str, Any]) -> BaseEmbeddingFunction:
    """Rebuild an embedder from the configuration stored with a table."""
    provider = config.get("provider", "python")
    if provider == "python":
        cls = resolve_class(config["class"])
    else:
        cls = provider_class(provider)
    return cls.from_config(config)
