"""Remote embedding providers against strict local stubs (real HTTP on 127.0.0.1, no mocks)."""

from __future__ import annotations

import io
import json
import socket
import time
import warnings
from collections.abc import Iterator

import numpy as np
import pytest
from PIL import Image

from lookalike.embeddings import EmbeddingFunction, build_from_config
from lookalike.embeddings.cohere import CohereEmbedding
from lookalike.embeddings.jina import JinaEmbedding
from lookalike.embeddings.openai import OpenAIEmbedding
from lookalike.embeddings.remote import fit_image
from lookalike.embeddings.voyage import VoyageEmbedding
from lookalike.errors import (
    AuthenticationError,
    ConfigurationError,
    EmbeddingError,
    ImageInputError,
    ProviderError,
    VectorError,
)
from tests.helpers.http_server import LocalHTTPServer
from tests.stub_providers import COLOURS, Fault, StubModel, StubProvider, solid_jpeg

KEY = "test-key"
FAST = {"backoff_base": 0.001, "backoff_max": 0.01}  # keep retry tests quick
_ENV_VARS = (
    "JINA_API_KEY",
    "JINA_API_BASE",
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "OPENAI_API_BASE",
    "VOYAGE_API_KEY",
    "VOYAGE_API_BASE",
    "CO_API_KEY",
    "COHERE_API_KEY",
    "CO_API_URL",
)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _ENV_VARS:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def jina() -> Iterator[StubProvider]:
    with StubProvider("jina") as stub:
        yield stub
        assert stub.violations == []


@pytest.fixture
def images() -> Iterator[LocalHTTPServer]:
    with LocalHTTPServer() as server:
        for name in COLOURS:
            server.add_bytes(f"/{name}.jpg", solid_jpeg(name), "image/jpeg")
        yield server


def _jina(stub: StubProvider, model: str = "jina-embeddings-v4", **kw: object) -> EmbeddingFunction:
    return EmbeddingFunction(f"jina_ai/{model}", api_key=KEY, api_base=stub.api_base, **{**FAST, **kw})


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cos(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


# ---------------------------------------------------------------------------------- construction


def test_known_models_have_dimensions_without_network() -> None:
    # api_base points at a closed port: construction must not touch it
    base = f"http://127.0.0.1:{_closed_port()}/v1"
    expected = {
        "jina_ai/jina-embeddings-v4": 2048,
        "jina_ai/jina-clip-v2": 1024,
        "jina_ai/jina-embeddings-v3": 1024,
        "openai/text-embedding-3-small": 1536,
        "openai/text-embedding-3-large": 3072,
        "voyageai/voyage-multimodal-3": 1024,
        "cohere/embed-v4.0": 1536,
    }
    for name, dims in expected.items():
        ef = EmbeddingFunction(name, api_base=base)  # no key anywhere: still constructs
        assert ef.dimensions == dims, name
    assert EmbeddingFunction("jina_ai/jina-embeddings-v4").multimodal is True
    assert EmbeddingFunction("jina_ai/jina-embeddings-v3").multimodal is False


def test_unknown_model_needs_dimensions() -> None:
    with pytest.raises(ConfigurationError, match=r"dimensions="):
        EmbeddingFunction("openai/my-local-model", api_base="http://127.0.0.1:9/v1")
    ef = EmbeddingFunction("openai/my-local-model", api_base="http://127.0.0.1:9/v1", dimensions=384)
    assert ef.dimensions == 384


@pytest.mark.parametrize(
    ("name", "dims", "hint"),
    [
        ("jina_ai/jina-embeddings-v4", 4096, "128..2048"),
        ("jina_ai/jina-embeddings-v4", 64, "128..2048"),
        ("jina_ai/jina-clip-v2", 32, "64..1024"),
        ("jina_ai/jina-clip-v1", 512, "only 768"),
        ("openai/text-embedding-ada-002", 512, "only 1536"),
        ("voyageai/voyage-multimodal-3", 512, "only 1024"),
        ("cohere/embed-v4.0", 300, "256, 512, 1024, 1536"),
    ],
)
def test_dimensions_the_model_cannot_produce(name: str, dims: int, hint: str) -> None:
    with pytest.raises(ConfigurationError, match="cannot produce") as info:
        EmbeddingFunction(name, dimensions=dims)
    assert hint in str(info.value) and str(dims) in str(info.value)


def test_matryoshka_sizes_accepted() -> None:
    assert EmbeddingFunction("jina_ai/jina-clip-v2", dimensions=64).dimensions == 64
    assert EmbeddingFunction("jina_ai/jina-embeddings-v4", dimensions=512).dimensions == 512
    assert EmbeddingFunction("cohere/embed-v4.0", dimensions=256).dimensions == 256


def test_guide_misspelling_warns_and_maps() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ef = EmbeddingFunction("jina_ai/jina-embedding-v4", multimodal=True)
    assert ef.model_name == "jina-embeddings-v4"
    assert any("jina-embeddings-v4" in str(w.message) for w in caught)
    assert ef.config()["model"] == "jina-embeddings-v4"


def test_text_only_model_rejects_multimodal_flag() -> None:
    with pytest.raises(ConfigurationError, match="text-only"):
        EmbeddingFunction("jina_ai/jina-embeddings-v3", multimodal=True)
    with pytest.raises(ConfigurationError, match="image_format='infinity'"):
        EmbeddingFunction("openai/text-embedding-3-small", multimodal=True)


def test_text_only_model_asked_for_an_image(jina: StubProvider, images: LocalHTTPServer) -> None:
    ef = _jina(jina, "jina-embeddings-v3")
    with pytest.raises(EmbeddingError, match="text-only"):
        ef.embed_query(Image.new("RGB", (10, 10), "red"))
    out = ef.embed_sources([images.url("/red.jpg"), "red"], on_error="skip")
    assert isinstance(out[0], EmbeddingError) and "text-only" in str(out[0])
    assert out[1] is not None and out[1].shape == (1024,)
    assert all(s.kinds == ["text"] for s in jina.seen)


# ---------------------------------------------------------------------------------- requests


def test_jina_tasks_and_dimensions(jina: StubProvider) -> None:
    ef = _jina(jina, dimensions=512)
    docs = ef.embed_sources(["a cat", "a dog"])
    query = ef.embed_query("a cat")
    assert all(v.shape == (512,) for v in docs) and query.shape == (512,)
    assert abs(np.linalg.norm(query) - 1) < 1e-3
    assert [s.task for s in jina.seen] == ["retrieval.passage", "retrieval.query"]
    assert [s.dimensions for s in jina.seen] == [512, 512]
    # the default size is not sent at all
    _jina(jina).embed_query("x")
    assert jina.seen[-1].dimensions is None


def test_requests_are_chunked_by_items_and_bytes(jina: StubProvider) -> None:
    texts = [f"text number {i}" for i in range(150)]
    ef = _jina(jina, model="jina-embeddings-v3", batch_size=64)
    out = ef.embed_sources(texts)
    assert all(v is not None for v in out)
    assert sorted(len(s.items) for s in jina.seen) == [22, 64, 64]
    jina.reset()
    cap = 2048
    ef = _jina(jina, model="jina-embeddings-v3", max_request_bytes=cap)
    long_texts = [f"{i} " + "word " * 80 for i in range(30)]
    vecs = ef.embed_sources(long_texts)
    assert len(jina.seen) > 5
    assert all(s.body_bytes <= cap for s in jina.seen)
    # order is kept across concurrent requests
    again = ef.embed_sources(list(reversed(long_texts)))
    assert np.allclose(vecs[0], again[-1])


def test_requests_run_concurrently_with_progress() -> None:
    with StubProvider("jina", latency=0.2) as stub:
        ef = _jina(stub, "jina-embeddings-v3", batch_size=10, max_concurrency=8)
        seen: list[tuple[int, int]] = []
        start = time.monotonic()
        out = ef.embed_sources([f"t{i}" for i in range(80)], progress=lambda d, t: seen.append((d, t)))
        elapsed = time.monotonic() - start
        assert all(v is not None for v in out)
        assert stub.request_count == 8
        assert elapsed < 0.2 * 8 / 2  # sequential would take 1.6 s
        assert seen[-1] == (80, 80) and [d for d, _ in seen] == sorted(d for d, _ in seen)
        assert stub.violations == []


def test_image_urls_pass_through_or_are_fetched(jina: StubProvider, images: LocalHTTPServer) -> None:
    url = images.url("/orange.jpg")
    ef = _jina(jina)
    by_url = ef.embed_sources([url])[0]
    assert jina.seen[-1].items == [url]
    assert images.count("/orange.jpg") == 1  # the stub (standing in for Jina) fetched it
    fetched = _jina(jina, fetch_urls=True).embed_sources([url])[0]
    assert jina.seen[-1].items[0].startswith("b64:")
    assert images.count("/orange.jpg") == 2
    assert _cos(by_url, fetched) > 0.99


def test_large_images_are_downscaled_before_sending(jina: StubProvider) -> None:
    big = Image.new("RGB", (4000, 3000), COLOURS["blue"])
    v4 = _jina(jina)
    v4.embed_query(big)
    w, h = jina.seen[-1].image_sizes[0]
    assert w * h <= 768 * 28 * 28 and abs(w / h - 4 / 3) < 0.01
    clip = _jina(jina, "jina-clip-v2")
    clip.embed_query(big)
    assert min(jina.seen[-1].image_sizes[0]) == 512
    small = Image.new("RGB", (100, 80), "red")
    v4.embed_query(small)
    assert jina.seen[-1].image_sizes[0] == (100, 80)  # never upscaled


def test_image_still_too_big_is_refused_locally(jina: StubProvider) -> None:
    noisy = Image.fromarray(np.random.default_rng(0).integers(0, 255, (700, 700, 3), dtype=np.uint8))
    ef = _jina(jina, max_request_bytes=20_000)
    out = ef.embed_sources([noisy, "fine text"], on_error="skip")
    assert isinstance(out[0], ImageInputError) and "request limit" in str(out[0])
    assert out[1] is not None
    assert all(s.kinds == ["text"] for s in jina.seen)  # the image was never sent


def test_same_image_ranks_first(jina: StubProvider, images: LocalHTTPServer) -> None:
    names = ["red", "orange", "blue", "green"]
    ef = _jina(jina)
    stored = ef.embed_sources([images.url(f"/{n}.jpg") for n in names])
    query = ef.embed_query(Image.open(io.BytesIO(solid_jpeg("blue", (640, 480)))))
    scores = [_cos(query, v) for v in stored]
    assert names[int(np.argmax(scores))] == "blue"
    text = ef.embed_query("an orange tabby cat")
    assert names[int(np.argmax([_cos(text, v) for v in stored]))] == "orange"


# ---------------------------------------------------------------------------------- keys


def test_no_key_fails_at_first_request(jina: StubProvider) -> None:
    ef = EmbeddingFunction("jina_ai/jina-embeddings-v4", api_base=jina.api_base)
    with pytest.raises(AuthenticationError, match="JINA_API_KEY"):
        ef.embed_query("hello")
    with pytest.raises(AuthenticationError, match="JINA_API_KEY"):
        ef.embed_sources(["hello"], on_error="skip")
    assert jina.request_count == 0


def test_key_from_env_var(jina: StubProvider, monkeypatch: pytest.MonkeyPatch) -> None:
    ef = EmbeddingFunction("jina_ai/jina-embeddings-v4", api_base=jina.api_base)
    monkeypatch.setenv("JINA_API_KEY", KEY)  # set after construction: read at request time
    assert ef.embed_query("hello").shape == (2048,)


def test_wrong_key_is_401_not_retried_and_never_shown(jina: StubProvider) -> None:
    secret = "sk-very-secret-123"
    ef = EmbeddingFunction(
        "jina_ai/jina-embeddings-v4", api_key=secret, api_base=jina.api_base, max_retries=3
    )
    with pytest.raises(AuthenticationError) as info:
        ef.embed_sources(["a", "b"], on_error="skip")
    err = info.value
    assert err.status_code == 401 and "rejected the API key" in str(err)
    assert secret not in str(err) and secret not in repr(err) and secret not in repr(err.args)
    assert secret not in repr(ef) and secret not in str(ef)
    assert secret not in json.dumps(ef.config())
    assert ef.config()["options"]["api_key_env"] == "JINA_API_KEY"
    assert jina.request_count == 1


def test_config_round_trip_reads_key_from_env(jina: StubProvider, monkeypatch: pytest.MonkeyPatch) -> None:
    ef = EmbeddingFunction("jina_ai/jina-clip-v2", api_key=KEY, api_base=jina.api_base, dimensions=256)
    config = json.loads(json.dumps(ef.config()))
    rebuilt = build_from_config(config)  # no key in the env: construction still works
    assert rebuilt.dimensions == 256 and rebuilt.model_name == "jina-clip-v2"
    with pytest.raises(AuthenticationError):
        rebuilt.embed_query("x")
    monkeypatch.setenv("JINA_API_KEY", KEY)
    assert np.allclose(rebuilt.embed_query("x"), ef.embed_query("x"))


def test_api_base_from_env(jina: StubProvider, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JINA_API_BASE", jina.api_base)
    ef = EmbeddingFunction("jina_ai/jina-embeddings-v4", api_key=KEY)
    assert ef.embed_query("hi").shape == (2048,)
    assert jina.request_count == 1
    assert ef.config()["options"]["api_base"] is None  # a new process follows the env var again


# ---------------------------------------------------------------------------------- failures


def test_out_of_quota_403_stops_even_with_skip(jina: StubProvider) -> None:
    jina.no_quota_keys.add("poor-key")
    ef = EmbeddingFunction("jina_ai/jina-embeddings-v4", api_key="poor-key", api_base=jina.api_base)
    with pytest.raises(ProviderError, match="out of credit") as info:
        ef.embed_sources(["a", "b", "c"], on_error="skip")
    assert info.value.status_code == 403 and not info.value.retryable
    assert jina.request_count == 1


def test_cohere_402_payment_required() -> None:
    with StubProvider("cohere", no_quota_keys=["poor"]) as stub:
        ef = CohereEmbedding("embed-v4.0", api_key="poor", api_base=stub.api_base)
        with pytest.raises(ProviderError, match="HTTP 402") as info:
            ef.embed_sources(["a", "b"], on_error="skip")
        assert info.value.status_code == 402 and "insufficient balance" in str(info.value)
        assert stub.request_count == 1


def test_retry_after_forms() -> None:
    from email.utils import formatdate

    from lookalike.embeddings.http_api import parse_retry_after

    assert parse_retry_after("2") == 2.0 and parse_retry_after("0.25") == 0.25
    assert 8 < parse_retry_after(formatdate(time.time() + 10, usegmt=True)) <= 10
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None


def test_openai_insufficient_quota_429_not_retried() -> None:
    with StubProvider("openai", no_quota_keys=["poor"]) as stub:
        ef = EmbeddingFunction("openai/text-embedding-3-small", api_key="poor", api_base=stub.api_base)
        with pytest.raises(ProviderError, match="out of quota"):
            ef.embed_query("x")
        assert stub.request_count == 1


def test_persistent_429_gives_up_after_retries(jina: StubProvider) -> None:
    jina.rate_limit_fraction = 1.0
    ef = _jina(jina, max_retries=2)
    with pytest.raises(ProviderError, match="rate limiting") as info:
        ef.embed_sources(["a"])
    assert info.value.status_code == 429 and info.value.retryable
    assert "3 attempts" in str(info.value) and info.value.index == 0
    assert jina.request_count == 3


def test_retries_500_429_and_timeouts_then_succeeds(jina: StubProvider) -> None:
    jina.script(Fault.http(500), Fault.http(429, retry_after="0.3"), Fault.http(503))
    ef = _jina(jina)
    start = time.monotonic()
    assert ef.embed_query("hello").shape == (2048,)
    assert time.monotonic() - start >= 0.3  # Retry-After honoured
    assert jina.request_count == 4
    jina.reset()
    jina.script(Fault.delay(2.0))
    ef = _jina(jina, timeout=0.3)
    assert ef.embed_query("hello").shape == (2048,)
    assert jina.request_count == 2


def test_request_level_400_stops_splitting_early() -> None:
    # a model neither side knows: every request gets the same 400, whichever items it holds
    with StubProvider("jina") as stub:
        ef = JinaEmbedding("jina-embeddings-v9", api_key=KEY, api_base=stub.api_base, dimensions=16)
        with pytest.raises(ProviderError, match="every input was rejected") as info:
            ef.embed_sources([f"text {i}" for i in range(256)], on_error="skip")
        assert "unknown model" in str(info.value)
        assert stub.request_count < 80  # splitting every chunk down to single items would take 508


def test_copies_keep_the_key_pickles_drop_it(jina: StubProvider) -> None:
    import copy
    import pickle

    ef = _jina(jina)
    assert copy.deepcopy(ef.impl).embed_query("x").shape == (2048,)
    restored = pickle.loads(pickle.dumps(ef.impl))
    assert b"test-key" not in pickle.dumps(ef.impl)
    with pytest.raises(AuthenticationError):
        restored.embed_query("x")


def test_400_is_not_retried(jina: StubProvider) -> None:
    jina.bad_markers.add("poison")
    with pytest.raises(ProviderError, match="rejected the input") as info:
        _jina(jina).embed_query("poison pill")
    assert info.value.status_code == 400
    assert jina.request_count == 1


def test_network_unreachable() -> None:
    ef = EmbeddingFunction(
        "jina_ai/jina-embeddings-v4",
        api_key=KEY,
        api_base=f"http://127.0.0.1:{_closed_port()}/v1",
        max_retries=2,
        **FAST,
    )
    with pytest.raises(ProviderError, match="could not reach Jina AI") as info:
        ef.embed_sources(["a", "b"])
    assert info.value.retryable and "3 attempts" in str(info.value)


def test_non_json_body(jina: StubProvider) -> None:
    jina.script(Fault.malformed())
    with pytest.raises(ProviderError, match="not JSON"):
        _jina(jina).embed_sources(["a", "b"])


def test_fewer_vectors_than_inputs(jina: StubProvider) -> None:
    jina.script(Fault.wrong_count())
    with pytest.raises(ProviderError, match="returned 2 vectors for 3 inputs"):
        _jina(jina).embed_sources(["a", "b", "c"])
    jina.script(Fault.wrong_count())
    with pytest.raises(EmbeddingError, match="vectors for 2 inputs"):
        _jina(jina).embed_texts(["a", "b"], purpose="query")


def test_wrong_dimensions(jina: StubProvider) -> None:
    jina.script(Fault.wrong_dims())
    with pytest.raises(VectorError, match="2047 dimensions, expected 2048") as info:
        _jina(jina).embed_sources(["a", "b"])
    assert info.value.index in (0, 1)


def test_rejected_image_is_isolated(jina: StubProvider, images: LocalHTTPServer) -> None:
    images.add_bytes("/bad-cat.jpg", b"not really a jpeg", "image/jpeg")
    jina.bad_markers.add("bad-cat")
    urls = [images.url(f"/{n}.jpg") for n in COLOURS]
    urls.insert(3, images.url("/bad-cat.jpg"))
    ef = _jina(jina)
    out = ef.embed_sources(urls, on_error="skip")
    err = out[3]
    assert isinstance(err, ProviderError) and err.status_code == 400
    assert err.index == 3 and err.item == urls[3] and "bad-cat" in str(err)
    assert all(isinstance(v, np.ndarray) and v.shape == (2048,) for i, v in enumerate(out) if i != 3)
    with pytest.raises(ProviderError) as info:
        ef.embed_sources(urls, on_error="raise")
    assert info.value.index == 3 and "item 3" in str(info.value) and "bad-cat.jpg" in str(info.value)


# ---------------------------------------------------------------------------------- other providers


def test_openai_text_and_dimensions() -> None:
    with StubProvider("openai") as stub:
        ef = EmbeddingFunction(
            "openai/text-embedding-3-large", api_key=KEY, api_base=stub.api_base, dimensions=256
        )
        out = ef.embed_sources([f"doc {i}" for i in range(5)])
        assert all(v.shape == (256,) for v in out)
        assert stub.seen[-1].dimensions == 256
        with pytest.raises(EmbeddingError, match="text-only"):
            ef.embed_query(Image.new("RGB", (8, 8)))
        assert stub.violations == []


def test_openai_compatible_infinity_images(images: LocalHTTPServer) -> None:
    model = StubModel(512, multimodal=True)
    with StubProvider("openai", require_key=False, infinity=True, extra_models={"my-clip": model}) as stub:
        ef = OpenAIEmbedding("my-clip", api_base=stub.api_base, dimensions=512, image_format="infinity")
        assert ef.multimodal
        out = ef.embed_sources([images.url("/red.jpg"), Image.new("RGB", (900, 700), "green"), "a caption"])
        assert all(isinstance(v, np.ndarray) and v.shape == (512,) for v in out)
        kinds = sorted(tuple(s.kinds) for s in stub.seen)
        assert kinds == [("image", "image"), ("text",)]
        assert stub.violations == []  # no key needed, no Authorization header sent
        assert ef.config()["options"]["image_format"] == "infinity"


def test_voyage_multimodal(images: LocalHTTPServer) -> None:
    with StubProvider("voyage") as stub:
        ef = VoyageEmbedding("voyage-multimodal-3.5", api_key=KEY, api_base=stub.api_base, dimensions=512)
        out = ef.embed_sources(
            [images.url("/blue.jpg"), Image.new("RGB", (64, 64), COLOURS["blue"]), "blue sky"]
        )
        assert all(v.shape == (512,) for v in out)
        assert _cos(out[0], out[1]) > 0.99
        assert {s.task for s in stub.seen} == {"document"}
        ef.embed_query("sky")
        assert stub.seen[-1].task == "query"
        assert stub.violations == []


def test_cohere_texts_and_images(images: LocalHTTPServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COHERE_API_KEY", KEY)  # the second of Cohere's env var names
    with StubProvider("cohere") as stub:
        ef = CohereEmbedding("embed-v4.0", api_base=stub.api_base, dimensions=1024)
        big = Image.new("RGB", (3000, 2000), COLOURS["green"])
        out = ef.embed_sources([images.url("/green.jpg"), big, "green grass"])
        assert all(v.shape == (1024,) for v in out)
        # Cohere needs data URIs: the URL was fetched locally; the big image was downscaled
        assert images.count("/green.jpg") == 1
        sizes = [size for s in stub.seen for size in s.image_sizes]
        assert len(sizes) == 2 and all(w * h <= 2_458_624 for w, h in sizes)
        assert _cos(out[0], out[1]) > 0.99
        assert stub.violations == []


def test_cohere_v3_sends_one_image_per_request() -> None:
    with StubProvider("cohere") as stub:
        ef = CohereEmbedding("embed-english-v3.0", api_key=KEY, api_base=stub.api_base)
        out = ef.embed_sources([Image.new("RGB", (32, 32), c) for c in ("red", "blue", "green")])
        assert all(v.shape == (1024,) for v in out)
        assert stub.request_count == 3 and stub.violations == []


def test_fit_image_keeps_aspect_and_never_upscales() -> None:
    img = Image.new("RGB", (2000, 1000))
    assert fit_image(img, max_side=500).size == (1000, 500)
    assert fit_image(img, max_pixels=500_000).size == (1000, 500)
    assert fit_image(Image.new("RGB", (10, 10)), max_pixels=50, max_side=5).size == (5, 5)
    assert fit_image(Image.new("RGB", (10, 10)), max_side=50).size == (10, 10)


def test_repr_and_config_of_every_provider_hide_the_key() -> None:
    secret = "zz-secret-key-zz"
    for cls, model in (
        (JinaEmbedding, "jina-embeddings-v4"),
        (OpenAIEmbedding, "text-embedding-3-small"),
        (VoyageEmbedding, "voyage-multimodal-3"),
        (CohereEmbedding, "embed-v4.0"),
    ):
        ef = cls(model, api_key=secret)
        assert secret not in repr(ef) and secret not in json.dumps(ef.config())
        assert ef.config()["options"]["api_key_env"] in cls.api_key_envs
        assert "api_key" not in ef.config()["options"]
