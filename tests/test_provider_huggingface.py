"""Hugging Face's feature-extraction API (``huggingface/<org>/<model>``) against a strict local stub.

Real HTTP on 127.0.0.1, no mocks: ``StubProvider("huggingface")`` checks the path (the model is in it),
the Bearer key and every body field, and answers as Hugging Face does — a bare array of vectors, or
``{"error": …}`` with 401/402/413/422/429/5xx and the 503 of a model still loading (``estimated_time``).
"""

from __future__ import annotations

import json
import math
import pickle
import socket
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import lookalike
from lookalike.embeddings import EmbeddingFunction
from lookalike.embeddings.huggingface import HF_MODELS, HuggingFaceEmbedding
from lookalike.embeddings.registry import configure_embedding_provider, split_model_name
from lookalike.errors import (
    AuthenticationError,
    ConfigurationError,
    EmbeddingError,
    ProviderError,
    VectorError,
)
from tests.helpers.http_server import LocalHTTPServer, Request, Response
from tests.stub_providers import Fault, StubModel, StubProvider

FAST = {"backoff_base": 0.001, "backoff_max": 0.01}
MINILM = "huggingface/sentence-transformers/all-MiniLM-L6-v2"
KEY_ENVS = ("HUGGINGFACE_API_KEY", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HUGGINGFACE_API_BASE")


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in KEY_ENVS:
        monkeypatch.delenv(name, raising=False)
    yield
    configure_embedding_provider("huggingface", None)


@pytest.fixture
def hf() -> Iterator[StubProvider]:
    with StubProvider("huggingface", extra_models={"my-org/my-model": StubModel(64, max_items=32)}) as stub:
        yield stub
        assert stub.violations == []


def _minilm(stub: StubProvider, **kw: Any) -> EmbeddingFunction:
    return EmbeddingFunction(MINILM, api_key="test-key", api_base=stub.api_base, **{**FAST, **kw})


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ---------------------------------------------------------------------------------- names and options


def test_pytidb_model_names_resolve_without_dimensions() -> None:
    ef = EmbeddingFunction("huggingface/BAAI/bge-base-en-v1.5")
    assert ef.provider == "huggingface" and ef.model_name == "BAAI/bge-base-en-v1.5"
    assert ef.dimensions == 768 and not ef.multimodal
    assert EmbeddingFunction(MINILM).dimensions == 384
    assert split_model_name("hf/BAAI/bge-m3") == ("huggingface", "BAAI/bge-m3")
    assert EmbeddingFunction("hf/BAAI/bge-m3").dimensions == 1024
    # sizes pytidb's table gets wrong, taken from the models' own configs
    assert HF_MODELS["BAAI/bge-small-en-v1.5"].dimensions == 384
    assert HF_MODELS["Alibaba-NLP/gte-Qwen2-1.5B-instruct"].dimensions == 1536
    assert all(name.count("/") == 1 for name in HF_MODELS)


def test_unknown_models_need_dimensions_and_bad_ids_are_refused() -> None:
    with pytest.raises(ConfigurationError, match=r"huggingface/my-org/new-model .*pass dimensions="):
        EmbeddingFunction("huggingface/my-org/new-model")
    assert EmbeddingFunction("huggingface/my-org/new-model", dimensions=64).dimensions == 64
    for bad in ("org/../secrets", "org/model/extra", "org/a model", "org/model?x=1", "/abs", "org/modèle"):
        with pytest.raises(ConfigurationError, match="is not a Hugging Face model id") as info:
            HuggingFaceEmbedding(bad, dimensions=8)
        assert repr(bad) in str(info.value)
    with pytest.raises(ConfigurationError, match=r"BAAI/bge-base-en-v1\.5.*cannot produce 256"):
        EmbeddingFunction("huggingface/BAAI/bge-base-en-v1.5", dimensions=256)


def test_multimodal_is_refused_naming_the_model() -> None:
    for name in ("huggingface/BAAI/bge-base-en-v1.5", "huggingface/my-org/vision-model"):
        with pytest.raises(ConfigurationError, match=r"huggingface/.*text only") as info:
            EmbeddingFunction(name, dimensions=768, multimodal=True)
        assert name.split("/", 1)[1] in str(info.value)


@pytest.mark.parametrize("option", ["normalize", "truncate"])
def test_flags_must_be_booleans(option: str) -> None:
    with pytest.raises(ConfigurationError, match=f"{option} must be True or False, got 'yes'"):
        EmbeddingFunction(MINILM, **{option: "yes"})


def test_request_shape_path_headers_and_body() -> None:
    """The exact request: model in the path, Bearer key, the body's three fields."""
    seen: list[Request] = []

    def answer(request: Request) -> Response:
        seen.append(request)
        return Response.json([[0.6, 0.8], [1.0, 0.0]])

    with LocalHTTPServer() as server:
        server.route("/models/my-org/tiny/pipeline/feature-extraction", answer)
        ef = EmbeddingFunction(
            "huggingface/my-org/tiny",
            dimensions=2,
            api_key="hf_secret",
            api_base=server.base_url + "/models",
            normalize=False,
        )
        out = ef.embed_texts(["first", "second"], purpose="document")
    np.testing.assert_allclose(out, [[0.6, 0.8], [1.0, 0.0]])
    (request,) = seen
    assert request.method == "POST"
    assert request.headers["authorization"] == "Bearer hf_secret"
    assert request.headers["content-type"].startswith("application/json")
    assert request.json() == {"inputs": ["first", "second"], "normalize": False, "truncate": True}


# ---------------------------------------------------------------------------------- a table


def test_round_trip_into_a_table(
    engine_url: str, client: lookalike.Client, hf: StubProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pytidb's auto-embedding flow with a Hugging Face model, then the table reopened by a new
    client with the key only in the environment; the key is never in the stored description."""
    from lookalike import Field, TableModel

    secret = "hf_very_secret_token"
    hf.valid_keys.add(secret)
    monkeypatch.setenv("HUGGINGFACE_API_BASE", hf.api_base)
    configure_embedding_provider("huggingface", secret)  # pytidb's client.configure_embedding_provider
    embed = EmbeddingFunction(MINILM, **FAST)

    class Note(TableModel):
        __tablename__ = "hf_notes"
        id: int = Field(primary_key=True)
        text: str | None = Field(default=None)
        text_vec: list[float] | None = embed.VectorField(source_field="text")

    table = client.create_table(schema=Note, if_exists="overwrite")
    texts = ["a red bicycle", "the orange sunset", "a blue whale", "green tea leaves"]
    table.bulk_insert([Note(id=i, text=t) for i, t in enumerate(texts)] + [Note(id=99)])
    assert table.query({"id": 99}).to_list()[0]["text_vec"] is None
    hit = table.search("the orange sunset").limit(1).to_list()[0]
    assert hit["text"] == "the orange sunset" and hit["_distance"] == pytest.approx(0.0, abs=1e-5)
    stored = client.query(
        "SELECT description FROM _lookalike_tables WHERE name = :n", {"n": "hf_notes"}
    ).scalar()
    assert secret not in str(stored) and "HUGGINGFACE_API_KEY" in str(stored)

    configure_embedding_provider("huggingface", None)
    monkeypatch.setenv("HF_TOKEN", secret)  # another of the names Hugging Face's tools read
    again = lookalike.connect(engine_url)
    try:
        reopened = again.open_table("hf_notes")
        assert reopened is not None
        assert reopened.search("a blue whale").limit(1).to_list()[0]["id"] == 2
        reopened.insert(Note(id=7, text="a yellow kite"))
        row = reopened.query({"id": 7}).to_list()[0]
        assert len(row["text_vec"]) == 384
    finally:
        again.close()
    assert {s.path for s in hf.seen} == {
        "/hf-inference/models/sentence-transformers/all-MiniLM-L6-v2/pipeline/feature-extraction"
    }


# ---------------------------------------------------------------------------------- batching


def test_bulk_requests_hold_at_most_32_texts_and_keep_order(hf: StubProvider) -> None:
    texts = [f"sentence number {i}" for i in range(70)]
    vectors = _minilm(hf).embed_sources(texts)
    assert sorted(len(s.items) for s in hf.seen) == [6, 32, 32]
    single = _minilm(hf)
    for text, vec in zip(texts[::9], vectors[::9]):
        np.testing.assert_allclose(vec, single.embed_query(text), atol=1e-6)  # type: ignore[arg-type]


def test_a_batch_over_the_server_limit_is_split(hf: StubProvider) -> None:
    """batch_size=64 over Text Embeddings Inference's 32: the 413 is split, every vector arrives."""
    out = _minilm(hf, batch_size=64).embed_sources([f"t{i}" for i in range(64)])
    assert all(isinstance(v, np.ndarray) and v.shape == (384,) for v in out)
    assert [s.status for s in hf.seen].count(413) == 1 and max(len(s.items) for s in hf.seen) == 32


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    texts=st.lists(st.text(min_size=1, max_size=12).filter(str.strip), min_size=1, max_size=40),
    batch_size=st.integers(1, 32),
)
def test_bulk_equals_one_text_at_a_time(hf: StubProvider, texts: list[str], batch_size: int) -> None:
    """Reference: each text embedded alone. Bulk results match it, in order, in ceil(n/b) requests."""
    hf.reset()
    bulk = _minilm(hf, batch_size=batch_size).embed_sources(texts, source_type="text")
    assert hf.request_count == math.ceil(len(texts) / batch_size)
    one = _minilm(hf)
    for text, vec in zip(texts, bulk):
        reference = one.embed_texts([text], purpose="document")[0]
        np.testing.assert_allclose(vec, reference, atol=1e-6)  # type: ignore[arg-type]
        assert np.linalg.norm(reference) == pytest.approx(1.0, abs=1e-5)


# ---------------------------------------------------------------------------------- bad input


def test_missing_key_names_the_variables_and_sends_nothing(hf: StubProvider) -> None:
    ef = EmbeddingFunction(MINILM, api_base=hf.api_base)
    assert not ef.requires_api_key  # a self-hosted server may run without one ...
    hosted = EmbeddingFunction(MINILM)
    for call in (lambda: hosted.embed_sources(["x"]), lambda: hosted.embed_query("x")):
        with pytest.raises(AuthenticationError) as info:
            call()
        assert "HUGGINGFACE_API_KEY or HF_TOKEN or HUGGING_FACE_HUB_TOKEN" in str(info.value)
    # ... and the stub, which requires one, answers 401 to a request without it
    with pytest.raises(AuthenticationError, match="HTTP 401"):
        ef.embed_query("hello")
    assert hf.request_count == 1
    assert [v.rsplit(": ", 1)[1] for v in hf.violations] == ["missing Authorization header"]
    hf.violations.clear()  # sent on purpose here


@pytest.mark.parametrize("env", ["HUGGINGFACE_API_KEY", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"])
def test_each_key_variable_works(env: str, hf: StubProvider, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(env, "test-key")
    ef = EmbeddingFunction(MINILM, api_base=hf.api_base, **FAST)
    assert ef.embed_query("hello").shape == (384,)


def test_wrong_key_stops_everything_and_is_never_echoed(hf: StubProvider) -> None:
    ef = EmbeddingFunction(MINILM, api_key="hf_wrong_key_123", api_base=hf.api_base, **FAST)
    with pytest.raises(AuthenticationError, match="HUGGINGFACE_API_KEY") as info:
        ef.embed_sources([f"t{i}" for i in range(40)], on_error="skip")
    assert "hf_wrong_key_123" not in str(info.value)
    assert hf.request_count <= 2  # two requests may be in flight; none are retried


def test_out_of_credit_is_not_retried(hf: StubProvider) -> None:
    hf.no_quota_keys.add("poor")
    ef = EmbeddingFunction(MINILM, api_key="poor", api_base=hf.api_base, **FAST)
    with pytest.raises(ProviderError, match="HTTP 402") as info:
        ef.embed_query("hello")
    assert info.value.status_code == 402 and hf.request_count == 1


@pytest.mark.parametrize("status", [429, 500, 503])
def test_transient_errors_are_retried(hf: StubProvider, status: int) -> None:
    hf.script(Fault.http(status, retry_after="0"))
    assert _minilm(hf).embed_query("hello").shape == (384,)
    assert [s.status for s in hf.seen] == [status, 200]


def test_a_loading_model_is_waited_for(hf: StubProvider) -> None:
    hf.script(Fault.loading(0.4))
    start = time.monotonic()
    assert _minilm(hf).embed_query("hello").shape == (384,)
    assert time.monotonic() - start >= 0.4  # the server's estimate, not the 1 ms backoff
    assert [s.status for s in hf.seen] == [503, 200]


def test_a_model_that_stays_loading_gives_up_with_the_estimate(hf: StubProvider) -> None:
    hf.script(Fault.loading(0.05), Fault.loading(0.05))
    with pytest.raises(ProviderError, match=r"HTTP 503.*loading.*estimates 0\.05s") as info:
        _minilm(hf, max_retries=1).embed_query("hello")
    assert info.value.status_code == 503 and "gave up after 2 attempts" in str(info.value)


def test_server_error_after_retries(hf: StubProvider) -> None:
    hf.script(Fault.http(500), Fault.http(500))
    with pytest.raises(ProviderError, match=r"Hugging Face .*HTTP 500.*injected failure"):
        _minilm(hf, max_retries=1).embed_query("hello")


def test_a_whole_failed_batch_names_its_items(hf: StubProvider) -> None:
    hf.script(Fault.http(500), Fault.http(500))
    out = _minilm(hf, max_retries=1).embed_sources(["alpha text", "beta text", "gamma text"], on_error="skip")
    assert all(isinstance(e, ProviderError) for e in out)
    assert [e.index for e in out] == [0, 1, 2]  # type: ignore[union-attr]
    message = str(out[1])
    assert "whole request failed" in message and "3 items" in message
    assert "alpha text" in message and "gamma text" in message


def test_a_rejected_text_is_isolated_and_named(hf: StubProvider) -> None:
    hf.bad_markers.add("BROKEN")
    out = _minilm(hf).embed_sources(["fine", "BROKEN text", "also fine"], on_error="skip")
    assert isinstance(out[0], np.ndarray) and isinstance(out[2], np.ndarray)
    assert isinstance(out[1], ProviderError) and out[1].item == "BROKEN text" and out[1].index == 1


def test_wrong_vector_length(hf: StubProvider) -> None:
    hf.script(Fault.wrong_dims())
    with pytest.raises(VectorError, match="383 dimensions, expected 384") as info:
        _minilm(hf).embed_sources(["some item"])
    assert "some item" in str(info.value)
    # a wrong dimensions= for an unknown model is caught on its first answer
    ef = EmbeddingFunction(
        "huggingface/my-org/my-model", dimensions=32, api_key="test-key", api_base=hf.api_base
    )
    with pytest.raises(VectorError, match="64 dimensions, expected 32"):
        ef.embed_sources(["anything"])
    ok = EmbeddingFunction("hf/my-org/my-model", dimensions=64, api_key="test-key", api_base=hf.api_base)
    assert ok.embed_query("anything").shape == (64,)


def test_nan_in_a_vector(hf: StubProvider) -> None:
    hf.script(Fault.nan())
    with pytest.raises(VectorError, match="NaN") as info:
        _minilm(hf).embed_sources(["first item", "second"])
    assert "first item" in str(info.value)


def test_wrong_vector_count(hf: StubProvider) -> None:
    hf.script(Fault.wrong_count())
    with pytest.raises(ProviderError, match="returned 1 vectors for 2 inputs"):
        _minilm(hf).embed_texts(["one", "two"], purpose="document")


def test_answers_lookalike_cannot_use(hf: StubProvider) -> None:
    hf.script(Fault.malformed())
    with pytest.raises(ProviderError, match="not JSON"):
        _minilm(hf).embed_query("hello")
    tokens = EmbeddingFunction(
        "huggingface/google-bert/bert-base-uncased", dimensions=768, api_key="test-key", api_base=hf.api_base
    )
    with pytest.raises(ProviderError, match="one vector per token"):
        tokens.embed_query("hello")
    unknown = EmbeddingFunction(
        "huggingface/nobody/nothing", dimensions=8, api_key="test-key", api_base=hf.api_base
    )
    with pytest.raises(ProviderError, match=r"HTTP 404.*nobody/nothing does not exist") as info:
        unknown.embed_sources(["a", "b"], on_error="skip")
    assert info.value.status_code == 404


def test_network_down() -> None:
    ef = EmbeddingFunction(
        MINILM, api_key="k", api_base=f"http://127.0.0.1:{_closed_port()}/models", max_retries=0
    )
    with pytest.raises(ProviderError, match="could not reach Hugging Face"):
        ef.embed_query("hello")


def test_images_are_refused_by_a_text_model(hf: StubProvider) -> None:
    with pytest.raises(EmbeddingError, match="text-only"):
        _minilm(hf).embed_images(["http://127.0.0.1/x.jpg"], purpose="document")
    assert hf.request_count == 0


# ---------------------------------------------------------------------------------- the key


def test_the_key_is_never_stored_printed_or_pickled(hf: StubProvider) -> None:
    secret = "hf_zz_secret_zz"
    ef = EmbeddingFunction(MINILM, api_key=secret, api_base=hf.api_base, normalize=False)
    config = ef.config()
    assert secret not in repr(ef) and secret not in json.dumps(config)
    assert "api_key" not in config["options"]
    assert config["options"]["api_key_env"] == "HUGGINGFACE_API_KEY"
    assert config["options"]["normalize"] is False
    rebuilt = EmbeddingFunction.from_config(config)
    assert isinstance(rebuilt, HuggingFaceEmbedding) and rebuilt.normalize is False
    assert rebuilt.dimensions == 384 and rebuilt.api_base == hf.api_base
    hosted = EmbeddingFunction(MINILM, api_key=secret)
    assert secret.encode() not in pickle.dumps(hosted.impl)
    clone = pickle.loads(pickle.dumps(hosted.impl))
    with pytest.raises(AuthenticationError, match="HF_TOKEN"):  # the copy falls back to the environment
        clone.embed_query("hello")
