"""The lazy registry (``lookalike._registry``) and the embedding providers registered on it."""

from __future__ import annotations

import sys
import types
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import lookalike
from lookalike._registry import LazyRegistry, import_target
from lookalike.embeddings import registry
from lookalike.embeddings.base import BaseEmbeddingFunction
from lookalike.errors import ConfigurationError, MissingDependencyError


class Part:
    """A class the tests register."""


class Other:
    """Another one."""


@pytest.fixture
def parts() -> LazyRegistry[object]:
    reg: LazyRegistry[object] = LazyRegistry("test part", "the {name} part")
    reg.register("part", f"{__name__}:Part", aliases=("p", "piece"))
    reg.register("other", Other)
    return reg


@pytest.fixture
def fake_module() -> Iterator[types.ModuleType]:
    """A module importable as ``lookalike_test_fake`` whose body the test sets."""
    module = types.ModuleType("lookalike_test_fake")
    sys.modules[module.__name__] = module
    yield module
    del sys.modules[module.__name__]


# ---------------------------------------------------------------------- LazyRegistry


def test_names_aliases_and_entries(parts: LazyRegistry[object]) -> None:
    assert parts.names() == ["other", "part"]  # sorted, aliases left out
    assert parts.canonical("piece") == parts.canonical("p") == "part"
    assert parts.canonical("part") == "part" and parts.canonical("nope") == "nope"
    assert "p" in parts and "part" in parts and "nope" not in parts and 3 not in parts
    assert parts.entry("p").target == f"{__name__}:Part"
    assert [name for name, _ in parts.items()] == ["other", "part"]


def test_load_imports_the_target_by_name_or_alias(parts: LazyRegistry[object]) -> None:
    assert parts.load("part") is Part and parts.load("piece") is Part
    assert parts.load("other") is Other
    assert import_target(f"{__name__}:Part") is Part
    assert import_target("lookalike.errors:MissingDependencyError") is MissingDependencyError


def test_a_class_registered_as_an_object_loads_even_when_not_importable_by_name() -> None:
    class Local:  # defined in a function: "module:<locals>.Local" cannot be imported back
        pass

    reg: LazyRegistry[object] = LazyRegistry("test part", "the {name} part")
    reg.register("local", Local)
    assert reg.entry("local").target.endswith("<locals>.Local")
    assert reg.load("local") is Local


def test_unknown_name_lists_the_known_ones(parts: LazyRegistry[object]) -> None:
    with pytest.raises(ConfigurationError, match=r"unknown test part 'nope'; known: other, part$"):
        parts.load("nope")
    with pytest.raises(ConfigurationError, match="known: other, part"):
        parts.entry("nope")


def test_register_replaces_and_unregister_removes_aliases_too(parts: LazyRegistry[object]) -> None:
    parts.register("part", Other)
    assert parts.load("p") is Other
    parts.unregister("piece")  # by alias: the entry and every alias of it go
    assert parts.names() == ["other"] and "p" not in parts and "piece" not in parts
    with pytest.raises(KeyError):
        parts.unregister("part")


def test_missing_extra_names_the_extra_and_the_package() -> None:
    reg: LazyRegistry[object] = LazyRegistry("test part", "the {name} part")
    reg.register("fancy", "lookalike_no_such_module_anywhere:Fancy", extra="fancy", package="fancy-sdk")
    with pytest.raises(MissingDependencyError) as info:
        reg.load("fancy")
    message = str(info.value)
    assert message.startswith("the fancy part needs an optional dependency that is not installed")
    assert "pip install 'lookalike[fancy]'" in message and "(or pip install fancy-sdk)" in message
    assert info.value.extra == "fancy" and isinstance(info.value, ImportError)
    assert isinstance(info.value.__cause__, ImportError)


def test_an_import_error_without_an_extra_is_a_bug_and_propagates_as_it_is() -> None:
    reg: LazyRegistry[object] = LazyRegistry("test part", "the {name} part")
    reg.register("plain", "lookalike_no_such_module_anywhere:Plain")
    with pytest.raises(ImportError) as info:
        reg.load("plain")
    assert not isinstance(info.value, MissingDependencyError)
    assert info.value.name == "lookalike_no_such_module_anywhere"


def test_a_module_broken_for_another_reason_propagates(
    fake_module: types.ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the module imports, but the class is not there: a bug, not a missing extra
    reg: LazyRegistry[object] = LazyRegistry("test part", "the {name} part")
    reg.register("typo", f"{fake_module.__name__}:Missing", extra="fancy", package="fancy-sdk")
    with pytest.raises(AttributeError, match="Missing"):
        reg.load("typo")
    # a module that fails while importing with an error of its own: that error, unchanged
    (tmp_path / "lookalike_test_broken.py").write_text('raise RuntimeError("broken on purpose")\n')
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "lookalike_test_broken", raising=False)
    reg.register("broken", "lookalike_test_broken:Broken", extra="fancy", package="fancy-sdk")
    with pytest.raises(RuntimeError, match="broken on purpose"):
        reg.load("broken")


# ---------------------------------------------------------------------- providers on the registry


class TinyEmbedder(BaseEmbeddingFunction):
    """Four dimensions, text only; enough to build through the registry."""

    def __init__(self, model: str = "tiny", **options: object) -> None:
        super().__init__(model, dimensions=4)
        self.options = options

    def embed_texts(self, texts: list[str], *, purpose: str) -> np.ndarray:
        return np.ones((len(texts), 4), dtype=np.float32)


@pytest.fixture
def tiny_provider() -> Iterator[str]:
    registry.register_provider("tiny", TinyEmbedder, aliases=("wee",))
    yield "tiny"
    registry.PROVIDERS.unregister("tiny")


def test_builtin_providers_and_their_aliases() -> None:
    assert registry.known_providers() == [
        "bedrock",
        "cohere",
        "gemini",
        "huggingface",
        "jina_ai",
        "local",
        "nvidia_nim",
        "openai",
        "vertex_ai",
        "voyageai",
    ]
    for alias, name in {
        "jina": "jina_ai",
        "jinaai": "jina_ai",
        "voyage": "voyageai",
        "onnx": "local",
        "hf": "huggingface",
    }.items():
        assert registry.split_model_name(f"{alias}/m") == (name, "m")
    from lookalike.embeddings.jina import JinaEmbedding

    assert registry.provider_class("jina") is registry.provider_class("jina_ai") is JinaEmbedding
    entry = registry.PROVIDERS.entry("local")
    assert (entry.extra, entry.package) == ("local", "onnxruntime")


def test_unknown_provider_and_model_names() -> None:
    with pytest.raises(
        ConfigurationError,
        match=r"unknown embedding provider 'nope'; known: bedrock, cohere, gemini, huggingface, jina_ai",
    ):
        registry.provider_class("nope")
    with pytest.raises(ConfigurationError, match=r"unknown embedding model 'nope/m': use 'provider/model'"):
        registry.split_model_name("nope/m")
    with pytest.raises(
        ConfigurationError, match="with provider one of bedrock, cohere, gemini, huggingface, jina_ai, local"
    ):
        registry.split_model_name("jina_ai")  # no model after the provider


def test_a_registered_provider_builds_by_name_and_alias(tiny_provider: str) -> None:
    assert tiny_provider in registry.known_providers()
    assert registry.split_model_name("wee/small") == ("tiny", "small")
    ef = lookalike.EmbeddingFunction("wee/small", colour="red")
    assert isinstance(ef.impl, TinyEmbedder) and ef.model_name == "small"
    assert ef.impl.options == {"colour": "red"} and ef.dimensions == 4
    assert ef.embed_query("hello").tolist() == [1.0, 1.0, 1.0, 1.0]


def test_register_provider_keeps_the_package_for_the_install_hint() -> None:
    registry.register_provider(
        "fancy", "lookalike_fancy_provider_missing:Fancy", extra="fancy", package="fancy-sdk"
    )
    try:
        with pytest.raises(MissingDependencyError) as info:
            lookalike.EmbeddingFunction("fancy/model-1")
        assert str(info.value) == (
            "the 'fancy' embedding provider needs an optional dependency that is not installed: "
            "pip install 'lookalike[fancy]' (or pip install fancy-sdk)"
        )
    finally:
        registry.PROVIDERS.unregister("fancy")
    assert "fancy" not in registry.known_providers()


def test_tidb_cloud_free_models_run_at_their_makers() -> None:
    """pytidb's TiDB Cloud free models are the same models from their makers' APIs."""
    assert registry.split_model_name("tidbcloud_free/cohere/embed-multilingual-v3") == (
        "cohere",
        "embed-multilingual-v3.0",
    )
    assert registry.split_model_name("tidbcloud_free/amazon/titan-embed-text-v2") == (
        "bedrock",
        "amazon.titan-embed-text-v2:0",
    )
    fn = lookalike.EmbeddingFunction("tidbcloud_free/cohere/embed-english-v3")
    assert fn.dimensions == 1024 and "cohere" in repr(fn).lower()
    with pytest.raises(lookalike.ConfigurationError, match="unknown embedding model"):
        registry.split_model_name("tidbcloud_free/cohere/no-such-model")
