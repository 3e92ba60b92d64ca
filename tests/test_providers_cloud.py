"""Bedrock (Titan), Vertex AI multimodal, Gemini and NVIDIA NIM embeddings against strict local stubs.

Real HTTP on 127.0.0.1, no mocks: the Bedrock stub recomputes every SigV4 signature with the known
test secret, the Google stubs check paths, tokens and bodies field by field (tests/stub_providers.py).
"""

from __future__ import annotations

import datetime as dt
import io
import pickle
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from lookalike.embeddings import EmbeddingFunction, build_from_config
from lookalike.embeddings.bedrock import AWSCredentials, signing_key, sigv4_headers
from lookalike.embeddings.registry import configure_embedding_provider, known_providers
from lookalike.errors import (
    AuthenticationError,
    ConfigurationError,
    ImageInputError,
    ProviderError,
    VectorError,
)
from tests.helpers.http_server import LocalHTTPServer
from tests.stub_providers import (
    COLOURS,
    STUB_ACCESS_KEY,
    STUB_SECRET_KEY,
    CloudStub,
    Fault,
    StubProvider,
    content_vector,
    solid_jpeg,
)

FAST = {"backoff_base": 0.001, "backoff_max": 0.01}
_ENV_VARS = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_REGION",
    "AWS_REGION_NAME",
    "AWS_DEFAULT_REGION",
    "AWS_BEARER_TOKEN_BEDROCK",
    "AWS_BEDROCK_RUNTIME_ENDPOINT",
    "GOOGLE_ACCESS_TOKEN",
    "VERTEXAI_ACCESS_TOKEN",
    "VERTEXAI_PROJECT",
    "GOOGLE_CLOUD_PROJECT",
    "VERTEXAI_LOCATION",
    "GOOGLE_CLOUD_LOCATION",
    "VERTEXAI_API_BASE",
    "GEMINI_API_KEY",
    "GOOGLE_API_KEY",
    "GEMINI_API_BASE",
    "NVIDIA_NIM_API_KEY",
    "NVIDIA_API_KEY",
    "NVIDIA_NIM_API_BASE",
)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in _ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    yield
    for provider in ("bedrock", "vertex_ai", "gemini", "nvidia_nim"):
        configure_embedding_provider(provider, None)


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", STUB_ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", STUB_SECRET_KEY)
    monkeypatch.setenv("AWS_REGION", "us-east-1")


@pytest.fixture
def bedrock() -> Iterator[CloudStub]:
    with CloudStub("bedrock") as stub:
        yield stub
        assert stub.violations == []


@pytest.fixture
def vertex(monkeypatch: pytest.MonkeyPatch) -> Iterator[CloudStub]:
    monkeypatch.setenv("VERTEXAI_PROJECT", "test-project")
    with CloudStub("vertex") as stub:
        yield stub
        assert stub.violations == []


@pytest.fixture
def gemini() -> Iterator[CloudStub]:
    with CloudStub("gemini") as stub:
        yield stub
        assert stub.violations == []


@pytest.fixture
def images() -> Iterator[LocalHTTPServer]:
    with LocalHTTPServer() as server:
        for name in COLOURS:
            server.add_bytes(f"/{name}.jpg", solid_jpeg(name), "image/jpeg")
        yield server


def _titan(stub: CloudStub, model: str = "amazon.titan-embed-image-v1", **kw: object) -> EmbeddingFunction:
    return EmbeddingFunction(f"bedrock/{model}", api_base=stub.api_base, **{**FAST, **kw})


def _vertex(stub: CloudStub, **kw: object) -> EmbeddingFunction:
    return EmbeddingFunction(
        "vertex_ai/multimodalembedding@001", api_key="test-key", api_base=stub.api_base, **{**FAST, **kw}
    )


def _cos(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _noise_jpeg(size: tuple[int, int], seed: int = 0) -> bytes:
    arr = np.random.default_rng(seed).integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG", quality=95)
    return buf.getvalue()


# ---------------------------------------------------------------------------------- SigV4


def test_sigv4_matches_the_aws_documented_example() -> None:
    # AWS's "create a signed request" walkthrough (IAM ListUsers, 2015-08-30T12:36:00Z)
    secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
    assert signing_key(secret, "20150830", "us-east-1", "iam").hex() == (
        "c4afb1cc5771d871763a393e44b703571b55cc28424d1a5e86da6ed3c154a4b9"
    )
    headers = sigv4_headers(
        method="GET",
        url="https://iam.amazonaws.com/?Action=ListUsers&Version=2010-05-08",
        headers={
            "Content-Type": "application/x-www-form-urlencoded; charset=utf-8",
            "Host": "iam.amazonaws.com",
        },
        body=b"",
        credentials=AWSCredentials("AKIDEXAMPLE", secret),
        region="us-east-1",
        service="iam",
        now=dt.datetime(2015, 8, 30, 12, 36, tzinfo=dt.timezone.utc),
    )
    assert headers["X-Amz-Date"] == "20150830T123600Z"
    assert headers["Authorization"].endswith(
        "SignedHeaders=content-type;host;x-amz-date, "
        "Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7"
    )
    assert "EXAMPLEKEY" not in repr(AWSCredentials("AKIDEXAMPLE", secret))


@settings(max_examples=60, deadline=None)
@given(
    model=st.text(alphabet="abcdefghijklmnop.-:_~/ é+%0123456789", min_size=1, max_size=30),
    body=st.binary(max_size=200),
    token=st.one_of(st.none(), st.text(alphabet="ABCDEFabcdef0123456789/+=", min_size=1, max_size=40)),
    region=st.sampled_from(["us-east-1", "eu-west-3", "ap-southeast-2"]),
)
def test_sigv4_matches_botocore(model: str, body: bytes, token: str | None, region: str) -> None:
    """Reference computation: botocore's own signer, over model IDs with ':' and arbitrary bodies."""
    from urllib.parse import quote

    auth = pytest.importorskip("botocore.auth")
    awsrequest = pytest.importorskip("botocore.awsrequest")
    credentials = pytest.importorskip("botocore.credentials")
    url = f"https://bedrock-runtime.{region}.amazonaws.com/model/{quote(model, safe='')}/invoke"
    req = awsrequest.AWSRequest(
        method="POST", url=url, data=body, headers={"Content-Type": "application/json"}
    )
    auth.SigV4Auth(credentials.Credentials("AKIDX", "SECRETX", token), "bedrock", region).add_auth(req)
    when = dt.datetime.strptime(req.headers["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.timezone.utc)
    mine = sigv4_headers(
        method="POST",
        url=url,
        headers={"Content-Type": "application/json"},
        body=body,
        credentials=AWSCredentials("AKIDX", "SECRETX", token),
        region=region,
        service="bedrock",
        now=when,
    )
    assert mine["Authorization"] == req.headers["Authorization"]


# ---------------------------------------------------------------------------------- Bedrock


def test_titan_multimodal_texts_and_images_one_request_each(
    bedrock: CloudStub, aws_env: None, images: LocalHTTPServer
) -> None:
    ef = _titan(bedrock)
    assert ef.dimensions == 1024 and ef.multimodal
    sources = ["a red bicycle", images.url("/orange.jpg"), solid_jpeg("blue"), "orange"]
    out = ef.embed_sources(sources)
    assert [v.shape for v in out] == [(1024,)] * 4  # type: ignore[union-attr]
    assert bedrock.request_count == 4  # InvokeModel takes one input per request
    # the URL was fetched here (Bedrock takes only inline base64) and sent as bytes
    assert sorted(k for s in bedrock.seen for k in s.kinds) == ["image", "image", "text", "text"]
    assert images.count("/orange.jpg") == 1
    # reference: the stub's vector of the decoded picture; "orange" maps to the orange image
    ref = np.asarray(content_vector(Image.open(io.BytesIO(solid_jpeg("blue"))), 1024), dtype=np.float32)
    assert _cos(out[2], ref) > 0.999  # type: ignore[arg-type]
    assert _cos(out[3], out[1]) > 0.99  # type: ignore[arg-type]
    query = ef.embed_query("orange")
    assert _cos(query, out[1]) > _cos(query, out[2])  # type: ignore[arg-type]


def test_titan_runs_a_few_requests_in_parallel(aws_env: None) -> None:
    with CloudStub("bedrock", latency=0.15) as stub:
        ef = _titan(stub, max_concurrency=4)
        started = time.perf_counter()
        out = ef.embed_sources([f"text number {i}" for i in range(8)])
        elapsed = time.perf_counter() - started
        assert all(isinstance(v, np.ndarray) for v in out)
        assert 2 <= stub.max_in_flight <= 4
        assert elapsed < 8 * 0.15 * 0.75  # well under one-at-a-time
        direct = ef.embed_texts(["a", "b", "c"], purpose="document")  # the direct path too
        assert direct.shape == (3, 1024)
        assert stub.violations == []


def test_titan_dimensions(bedrock: CloudStub, aws_env: None) -> None:
    ef = _titan(bedrock, dimensions=256)
    assert ef.embed_query("hello").shape == (256,)
    assert bedrock.seen[-1].dimensions == 256
    with pytest.raises(ConfigurationError, match="256, 384, 1024") as info:
        EmbeddingFunction("bedrock/amazon.titan-embed-image-v1", dimensions=512)
    assert "512" in str(info.value)
    text = _titan(bedrock, "amazon.titan-embed-text-v2:0", dimensions=512)
    assert not text.multimodal
    assert text.embed_query("hello").shape == (512,)
    with pytest.raises(ConfigurationError, match="text-only"):
        EmbeddingFunction("bedrock/amazon.titan-embed-text-v2:0", multimodal=True)


def test_titan_wide_image_is_capped_at_2048_pixels(bedrock: CloudStub, aws_env: None) -> None:
    panorama = _noise_jpeg((5000, 600))
    vec = _titan(bedrock).embed_query(panorama)
    assert vec.shape == (1024,)
    (w, h) = bedrock.seen[-1].image_sizes[0]
    assert max(w, h) <= 2048 and w * h <= 1024 * 1024 and w / h == pytest.approx(5000 / 600, rel=0.05)


def test_titan_image_too_large_for_a_request_is_refused_locally(bedrock: CloudStub, aws_env: None) -> None:
    big = _noise_jpeg((900, 900))
    out = _titan(bedrock, max_request_bytes=20_000).embed_sources(["fine text", big], on_error="skip")
    assert isinstance(out[0], np.ndarray)
    assert isinstance(out[1], ImageInputError) and out[1].index == 1
    assert "request limit" in str(out[1]) and "item 1" in str(out[1])
    assert bedrock.request_count == 1  # the image never left


def test_bedrock_missing_credentials_names_the_variables(bedrock: CloudStub) -> None:
    ef = _titan(bedrock, region="us-east-1")
    with pytest.raises(AuthenticationError) as info:
        ef.embed_sources(["hello"])
    assert "AWS_ACCESS_KEY_ID" in str(info.value) and "AWS_SECRET_ACCESS_KEY" in str(info.value)
    with pytest.raises(AuthenticationError):
        ef.ensure_ready("text")
    assert bedrock.request_count == 0


def test_bedrock_missing_region_names_the_variables(
    bedrock: CloudStub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", STUB_ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", STUB_SECRET_KEY)
    ef = _titan(bedrock)
    with pytest.raises(ConfigurationError, match="AWS_REGION") as info:
        ef.embed_query("hello")
    assert "region=" in str(info.value)
    assert bedrock.request_count == 0
    monkeypatch.setenv("AWS_REGION_NAME", "us-east-1")  # litellm's (pytidb's) spelling
    assert ef.embed_query("hello").shape == (1024,)


def test_bedrock_wrong_secret_is_403_not_retried_and_never_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", STUB_ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "the-wrong-secret-value")
    with CloudStub("bedrock") as stub:
        ef = _titan(stub, region="us-east-1")
        with pytest.raises(AuthenticationError, match="HTTP 403") as info:
            ef.embed_sources(["a", "b", "c"], on_error="skip")
        assert "bedrock:InvokeModel" in str(info.value)
        assert "the-wrong-secret-value" not in str(info.value)
        assert stub.request_count >= 1 and all(s.status == 403 for s in stub.seen)
        assert stub.request_count <= ef.max_concurrency  # stopped, not retried per item
        assert any("signature" in v for v in stub.violations)


def test_bedrock_unknown_access_key(monkeypatch: pytest.MonkeyPatch, bedrock: CloudStub) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDSOMEONEELSE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", STUB_SECRET_KEY)
    with pytest.raises(AuthenticationError, match="security token"):
        _titan(bedrock, region="us-east-1").embed_query("hello")


def test_bedrock_session_token_is_signed(monkeypatch: pytest.MonkeyPatch, aws_env: None) -> None:
    with CloudStub("bedrock", session_token="session-token-xyz") as stub:
        with pytest.raises(AuthenticationError):
            _titan(stub).embed_query("hello")  # temporary credentials need their token
        monkeypatch.setenv("AWS_SESSION_TOKEN", "session-token-xyz")
        assert _titan(stub).embed_query("hello").shape == (1024,)
        assert stub.violations == []


def test_bedrock_explicit_credentials_and_region(bedrock: CloudStub) -> None:
    ef = _titan(
        bedrock, region="us-east-1", aws_access_key_id=STUB_ACCESS_KEY, aws_secret_access_key=STUB_SECRET_KEY
    )
    assert ef.embed_query("hello").shape == (1024,)
    config = ef.config()
    assert config["options"]["region"] == "us-east-1"
    assert STUB_SECRET_KEY not in repr(config) and STUB_SECRET_KEY not in repr(ef)
    clone = pickle.loads(pickle.dumps(ef.impl))
    with pytest.raises(AuthenticationError):  # a pickle drops the explicit secret
        clone.embed_query("hello")
    with pytest.raises(ConfigurationError, match="together"):
        EmbeddingFunction("bedrock/amazon.titan-embed-image-v1", aws_access_key_id="x")


def test_bedrock_api_key_is_a_bearer_token(bedrock: CloudStub, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_BEARER_TOKEN_BEDROCK", "bedrock-api-key")
    ef = _titan(bedrock, region="us-east-1")
    assert ef.embed_query("hello").shape == (1024,)
    monkeypatch.delenv("AWS_BEARER_TOKEN_BEDROCK")
    configure_embedding_provider("bedrock", "bedrock-api-key")  # pytidb's call, in memory only
    assert ef.embed_query("hello again").shape == (1024,)
    configure_embedding_provider("bedrock", "not-a-key")
    with pytest.raises(AuthenticationError, match="403"):
        ef.embed_query("hello")


def test_bedrock_config_round_trip_reads_credentials_from_env(bedrock: CloudStub, aws_env: None) -> None:
    ef = _titan(bedrock, dimensions=384)
    config = ef.config()
    assert STUB_SECRET_KEY not in repr(config) and STUB_ACCESS_KEY not in repr(config)
    again = build_from_config(config)
    assert again.dimensions == 384
    assert again.embed_query("hello").shape == (384,)


def test_bedrock_retries_429_and_500(bedrock: CloudStub, aws_env: None) -> None:
    bedrock.script(Fault.http(429, "0"), Fault.http(500))
    assert _titan(bedrock).embed_query("hello").shape == (1024,)
    assert [s.status for s in bedrock.seen] == [429, 500, 200]
    bedrock.script(*[Fault.http(429, "0")] * 3)
    with pytest.raises(ProviderError, match="rate limiting") as info:
        _titan(bedrock, max_retries=2).embed_query("hello")
    assert info.value.status_code == 429 and "gave up after 3 attempts" in str(info.value)


def test_bedrock_rejected_item_is_named(bedrock: CloudStub, aws_env: None) -> None:
    bedrock.bad_markers.add("POISON")
    out = _titan(bedrock).embed_sources(["fine", "POISON pill", "also fine"], on_error="skip")
    assert isinstance(out[0], np.ndarray) and isinstance(out[2], np.ndarray)
    err = out[1]
    assert isinstance(err, ProviderError) and err.index == 1 and err.item == "POISON pill"
    assert "HTTP 400" in str(err) and "Malformed input" in str(err)
    with pytest.raises(ProviderError) as info:
        _titan(bedrock).embed_sources(["fine", "POISON pill"])
    assert info.value.index == 1 and "POISON pill" in str(info.value)


@pytest.mark.parametrize(
    ("fault", "error", "text"),
    [
        (Fault.malformed(), ProviderError, "not JSON"),
        (Fault.nan(), VectorError, "NaN"),
        (Fault.wrong_dims(), VectorError, "1023 dimensions"),
        (Fault.wrong_count(), ProviderError, "without an 'embedding'"),
    ],
)
def test_bedrock_malformed_answers_name_the_item(
    bedrock: CloudStub, aws_env: None, fault: Fault, error: type[Exception], text: str
) -> None:
    bedrock.script(fault)
    with pytest.raises(error, match=text) as info:
        _titan(bedrock).embed_sources(["the item text"])
    assert "the item text" in str(info.value)


def test_bedrock_network_down(aws_env: None) -> None:
    ef = EmbeddingFunction(
        "bedrock/amazon.titan-embed-image-v1",
        api_base=f"http://127.0.0.1:{_closed_port()}",
        max_retries=1,
        **FAST,
    )
    with pytest.raises(ProviderError, match="could not reach Amazon Bedrock") as info:
        ef.embed_sources(["hello"])
    assert info.value.index == 0 and "hello" in str(info.value)


def test_bedrock_default_endpoint_follows_the_region(monkeypatch: pytest.MonkeyPatch) -> None:
    ef = EmbeddingFunction("bedrock/amazon.titan-embed-text-v2:0", region="eu-west-3")
    assert ef.impl.signing_region() == "eu-west-3"
    assert ef.api_base == "https://bedrock-runtime.eu-west-3.amazonaws.com"
    assert ef.impl.endpoint("text") == "/model/amazon.titan-embed-text-v2%3A0/invoke"
    monkeypatch.setenv("AWS_DEFAULT_REGION", "ap-south-1")
    assert EmbeddingFunction("bedrock/amazon.titan-embed-image-v1").api_base == (
        "https://bedrock-runtime.ap-south-1.amazonaws.com"
    )


@pytest.mark.parametrize(
    ("status", "error", "text", "attempts"),
    [
        (401, AuthenticationError, "HTTP 401.*AWS_ACCESS_KEY_ID", 1),
        (403, AuthenticationError, "bedrock:InvokeModel", 1),
        (429, ProviderError, "rate limiting", 2),
        (500, ProviderError, "HTTP 500", 2),
    ],
)
def test_bedrock_error_statuses(
    bedrock: CloudStub, aws_env: None, status: int, error: type[Exception], text: str, attempts: int
) -> None:
    bedrock.script(*[Fault.http(status, "0")] * 2)
    with pytest.raises(error, match=text) as info:
        _titan(bedrock, max_retries=1).embed_sources(["status item"])
    assert "status item" in str(info.value)
    assert [s.status for s in bedrock.seen] == [status] * attempts  # 401/403 are never retried


# ---------------------------------------------------------------------------------- Vertex AI


def test_vertex_texts_images_and_dimensions(vertex: CloudStub, images: LocalHTTPServer) -> None:
    ef = _vertex(vertex, dimensions=512)
    assert ef.multimodal and ef.dimensions == 512
    long_text = "word " * 400  # 2000 characters: cut to the 1024 the API takes
    out = ef.embed_sources(["a green field", images.url("/green.jpg"), _noise_jpeg((1600, 1200)), long_text])
    assert [v.shape for v in out] == [(512,)] * 4  # type: ignore[union-attr]
    assert vertex.request_count == 4 and all(s.dimensions == 512 for s in vertex.seen)
    sizes = [size for s in vertex.seen for size in s.image_sizes]
    assert all(w * h <= 512 * 512 for w, h in sizes) and len(sizes) == 2
    assert _cos(ef.embed_query("green"), out[1]) > 0.99  # type: ignore[arg-type]


def test_vertex_names_and_aliases() -> None:
    for name in (
        "vertex_ai/multimodalembedding@001",
        "google/multimodalembedding@001",
        "vertex/multimodalembedding",
    ):
        ef = EmbeddingFunction(name)
        assert (
            ef.provider == "vertex_ai"
            and ef.model_name == "multimodalembedding@001"
            and ef.dimensions == 1408
        )
    with pytest.raises(ConfigurationError, match="128, 256, 512, 1408"):
        EmbeddingFunction("vertex_ai/multimodalembedding@001", dimensions=1024)
    with pytest.raises(ConfigurationError, match="project"):
        EmbeddingFunction("vertex_ai/multimodalembedding@001", project="a/b")


def test_vertex_gcs_uris_pass_through(vertex: CloudStub) -> None:
    vec = _vertex(vertex).embed_query("gs://bucket/cat.jpg", source_type="image")
    assert vec.shape == (1408,) and vertex.seen[-1].items == ["gs://bucket/cat.jpg"]


def test_vertex_missing_token_and_project(monkeypatch: pytest.MonkeyPatch) -> None:
    with CloudStub("vertex") as stub:
        ef = EmbeddingFunction("vertex_ai/multimodalembedding@001", api_base=stub.api_base)
        with pytest.raises(AuthenticationError, match="GOOGLE_ACCESS_TOKEN"):
            ef.embed_sources(["hello"])
        monkeypatch.setenv("GOOGLE_ACCESS_TOKEN", "test-key")
        with pytest.raises(ConfigurationError, match="VERTEXAI_PROJECT or GOOGLE_CLOUD_PROJECT"):
            ef.embed_sources(["hello"])
        assert stub.request_count == 0
        monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "test-project")
        assert ef.embed_query("hello").shape == (1408,)
        wrong_place = EmbeddingFunction(
            "vertex_ai/multimodalembedding@001",
            api_base=stub.api_base,
            location="europe-west4",
            max_retries=0,
        )
        with pytest.raises(ProviderError, match="404"):
            wrong_place.embed_query("hello")


@pytest.mark.parametrize(
    ("status", "error", "text"), [(401, AuthenticationError, "401"), (403, ProviderError, "403")]
)
def test_vertex_auth_statuses_are_not_retried(
    vertex: CloudStub, status: int, error: type[Exception], text: str
) -> None:
    vertex.script(Fault.http(status))
    with pytest.raises(error, match=text):
        _vertex(vertex).embed_sources(["hello"])
    assert vertex.request_count == 1


def test_vertex_wrong_token_never_shown(vertex: CloudStub) -> None:
    ef = EmbeddingFunction(
        "vertex_ai/multimodalembedding@001", api_key="expired-token-123", api_base=vertex.api_base, **FAST
    )
    with pytest.raises(AuthenticationError, match="GOOGLE_ACCESS_TOKEN") as info:
        ef.embed_query("hello")
    assert "expired-token-123" not in str(info.value)


def test_vertex_retries_then_reports(vertex: CloudStub) -> None:
    vertex.script(Fault.http(429, "0"), Fault.http(503))
    assert _vertex(vertex).embed_query("hello").shape == (1408,)
    vertex.script(Fault.nan())
    with pytest.raises(VectorError, match="NaN") as info:
        _vertex(vertex).embed_sources(["x", "named item"][1:])
    assert "named item" in str(info.value)
    vertex.script(Fault.wrong_count())
    with pytest.raises(ProviderError, match="without 1 predictions"):
        _vertex(vertex).embed_query("hello")


def test_vertex_image_too_large_is_refused_locally(vertex: CloudStub) -> None:
    out = _vertex(vertex, max_request_bytes=5_000).embed_sources([_noise_jpeg((800, 800))], on_error="skip")
    assert isinstance(out[0], ImageInputError) and "request limit" in str(out[0])
    assert vertex.request_count == 0


# ---------------------------------------------------------------------------------- Gemini


def test_gemini_batches_tasks_and_dimensions(gemini: CloudStub, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GEMINI_API_KEY", "test-key")  # the name pytidb's examples use
    ef = EmbeddingFunction("gemini/gemini-embedding-001", dimensions=768, api_base=gemini.api_base, **FAST)
    out = ef.embed_sources([f"text {i}" for i in range(150)])
    assert len(out) == 150 and gemini.request_count == 2  # at most 100 per call
    assert gemini.seen[0].task == "RETRIEVAL_DOCUMENT" and gemini.seen[0].dimensions == 768
    ef.embed_query("a question")
    assert gemini.seen[-1].task == "RETRIEVAL_QUERY"
    monkeypatch.delenv("GEMINI_API_KEY")
    monkeypatch.setenv("GOOGLE_API_KEY", "test-key")
    assert ef.embed_query("again").shape == (768,)


def test_gemini_key_errors(gemini: CloudStub) -> None:
    ef = EmbeddingFunction("gemini/gemini-embedding-001", api_base=gemini.api_base, **FAST)
    with pytest.raises(AuthenticationError, match="GEMINI_API_KEY or GOOGLE_API_KEY"):
        ef.embed_sources(["hello"])
    assert gemini.request_count == 0
    wrong = EmbeddingFunction(
        "gemini/gemini-embedding-001", api_key="bad-key-77", api_base=gemini.api_base, **FAST
    )
    # Google answers 400 API_KEY_INVALID: not an item's fault, so no splitting and no retries
    with pytest.raises(AuthenticationError, match="API_KEY_INVALID") as info:
        wrong.embed_sources(["a", "b", "c", "d"], on_error="skip")
    assert "bad-key-77" not in str(info.value)
    assert gemini.request_count == 1


@pytest.mark.parametrize(("status", "attempts"), [(403, 1), (429, 2), (500, 2)])
def test_gemini_error_statuses(gemini: CloudStub, status: int, attempts: int) -> None:
    gemini.script(*[Fault.http(status, "0")] * 2)
    ef = EmbeddingFunction(
        "gemini/gemini-embedding-001", api_key="test-key", api_base=gemini.api_base, max_retries=1, **FAST
    )
    with pytest.raises(ProviderError, match=f"HTTP {status}") as info:
        ef.embed_sources(["gemini item"])
    assert info.value.status_code == status and "gemini item" in str(info.value)
    assert gemini.request_count == attempts


def test_gemini_is_text_only_and_checks_sizes(gemini: CloudStub) -> None:
    with pytest.raises(ConfigurationError, match="text-only"):
        EmbeddingFunction("gemini/gemini-embedding-001", multimodal=True)
    with pytest.raises(ConfigurationError, match=r"128\.\.3072"):
        EmbeddingFunction("gemini/gemini-embedding-001", dimensions=4096)
    gemini.script(Fault.wrong_dims())
    ef = EmbeddingFunction(
        "gemini/gemini-embedding-001", api_key="test-key", api_base=gemini.api_base, **FAST
    )
    with pytest.raises(VectorError, match="3071 dimensions"):
        ef.embed_sources(["one"])


# ---------------------------------------------------------------------------------- NVIDIA NIM


@pytest.mark.parametrize("env", ["NVIDIA_NIM_API_KEY", "NVIDIA_API_KEY"])
def test_nvidia_nim_openai_compatible(env: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with StubProvider("nvidia_nim") as stub:
        monkeypatch.setenv(env, "test-key")
        ef = EmbeddingFunction("nvidia_nim/baai/bge-m3", api_base=stub.api_base, **FAST)
        assert ef.dimensions == 1024 and not ef.multimodal
        assert ef.embed_sources(["one", "two"])[0].shape == (1024,)  # type: ignore[union-attr]
        qa = EmbeddingFunction("nvidia_nim/nvidia/nv-embedqa-e5-v5", api_base=stub.api_base, **FAST)
        qa.embed_sources(["a passage"])
        qa.embed_query("a question")
        assert [s.task for s in stub.seen[-2:]] == ["passage", "query"]
        assert stub.violations == []


def test_nvidia_nim_needs_a_key_for_the_hosted_api() -> None:
    ef = EmbeddingFunction("nvidia_nim/baai/bge-m3")
    with pytest.raises(AuthenticationError, match="NVIDIA_NIM_API_KEY or NVIDIA_API_KEY"):
        ef.ensure_ready("text")
    self_hosted = EmbeddingFunction("nvidia_nim/baai/bge-m3", api_base="http://127.0.0.1:9/v1")
    self_hosted.ensure_ready("text")  # a local NIM runs without a key
    with pytest.raises(ConfigurationError, match="dimensions="):
        EmbeddingFunction("nvidia_nim/some/unknown-model")


def test_nvidia_nim_wrong_key_bad_answers_and_network(monkeypatch: pytest.MonkeyPatch) -> None:
    with StubProvider("nvidia_nim") as stub:
        wrong = EmbeddingFunction(
            "nvidia_nim/baai/bge-m3", api_key="nv-wrong-key", api_base=stub.api_base, **FAST
        )
        with pytest.raises(AuthenticationError, match="NVIDIA_NIM_API_KEY") as info:
            wrong.embed_sources(["a", "b"], on_error="skip")
        assert "nv-wrong-key" not in str(info.value) and stub.request_count == 1
        ef = EmbeddingFunction("nvidia_nim/baai/bge-m3", api_key="test-key", api_base=stub.api_base, **FAST)
        stub.script(Fault.wrong_dims())
        with pytest.raises(VectorError, match="1023 dimensions") as bad:
            ef.embed_sources(["nim item"])
        assert "nim item" in str(bad.value)
        assert stub.violations == []
    down = EmbeddingFunction(
        "nvidia_nim/baai/bge-m3", api_key="k", api_base=f"http://127.0.0.1:{_closed_port()}/v1", max_retries=0
    )
    with pytest.raises(ProviderError, match="could not reach NVIDIA NIM"):
        down.embed_query("hello")


def test_cloud_providers_are_registered() -> None:
    names = set(known_providers())
    assert {"bedrock", "vertex_ai", "gemini", "nvidia_nim"} <= names


def test_gemini_whole_failed_batch_names_its_items(gemini: CloudStub) -> None:
    gemini.script(Fault.http(500), Fault.http(500))
    ef = EmbeddingFunction(
        "gemini/gemini-embedding-001", api_key="test-key", api_base=gemini.api_base, max_retries=1, **FAST
    )
    out = ef.embed_sources(["alpha text", "beta text", "gamma text"], on_error="skip")
    assert all(isinstance(e, ProviderError) for e in out)
    assert [e.index for e in out] == [0, 1, 2]  # type: ignore[union-attr]
    message = str(out[1])
    assert "whole request failed" in message and "3 items" in message
    assert "alpha text" in message and "gamma text" in message


def test_direct_multi_item_call_names_the_failing_item(vertex: CloudStub) -> None:
    vertex.bad_markers.add("BROKEN")
    with pytest.raises(ProviderError) as info:
        _vertex(vertex).embed_texts(["fine", "BROKEN one", "fine too"], purpose="document")
    assert info.value.index == 1 and info.value.item == "BROKEN one"


# ---------------------------------------------------------------------------------- with a table


@pytest.mark.parametrize("flavor", ["bedrock", "vertex"])
def test_image_table_on_every_engine(
    flavor: str,
    engine_url: str,
    tmp_path: Path,
    aws_env: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """pytidb's image-embedding test flow (insert, bulk insert with a missing image, update, search by
    text and by image) with each cloud provider, then the table reopened by a new client."""
    import lookalike
    from lookalike import Field, TableModel

    pictures = {}
    for name in ("red", "orange", "blue"):
        pictures[name] = tmp_path / f"{name}.jpg"
        pictures[name].write_bytes(solid_jpeg(name, (320, 240)))
    with CloudStub(flavor) as stub:
        if flavor == "bedrock":
            monkeypatch.setenv("AWS_BEDROCK_RUNTIME_ENDPOINT", stub.api_base)
            embed = EmbeddingFunction(
                model_name="bedrock/amazon.titan-embed-image-v1", multimodal=True, **FAST
            )
        else:
            monkeypatch.setenv("VERTEXAI_API_BASE", stub.api_base)
            monkeypatch.setenv("GOOGLE_ACCESS_TOKEN", "test-key")
            monkeypatch.setenv("VERTEXAI_PROJECT", "test-project")
            embed = EmbeddingFunction("vertex_ai/multimodalembedding@001", dimensions=256, **FAST)

        class Pet(TableModel):
            __tablename__ = f"cloud_pets_{flavor}"
            id: int = Field(primary_key=True)
            nickname: str
            image_uri: str | None = Field(default=None)
            image_vec: list[float] | None = embed.VectorField(
                source_field="image_uri", source_type="image", distance_metric="l2"
            )

        client = lookalike.connect(engine_url)
        try:
            table = client.create_table(schema=Pet, if_exists="overwrite")
            table.insert(Pet(nickname="Rusty", image_uri=str(pictures["red"])))
            table.bulk_insert(
                [Pet(nickname="Sunny", image_uri=str(pictures["orange"])), Pet(nickname="Bleu")]
            )
            assert table.query({"nickname": "Bleu"}).to_list()[0]["image_vec"] is None
            table.update({"image_uri": str(pictures["blue"])}, {"nickname": "Bleu"})
            assert table.query({"nickname": "Bleu"}).to_list()[0]["image_vec"] is not None
            hits = table.search("orange").distance_metric("l2").limit(1).to_list()
            assert hits[0]["nickname"] == "Sunny"
            assert len(table.query({"nickname": "Sunny"}).to_list()[0]["image_vec"]) == embed.dimensions
            by_image = table.search(Image.open(pictures["blue"])).limit(1).to_list()
            assert by_image[0]["nickname"] == "Bleu"
        finally:
            client.close()
        again = lookalike.connect(engine_url)
        try:
            reopened = again.open_table(f"cloud_pets_{flavor}")
            assert reopened is not None
            assert reopened.search("red").limit(1).to_list()[0]["nickname"] == "Rusty"
            again.drop_table(f"cloud_pets_{flavor}")
        finally:
            again.close()
        assert stub.violations == []
        assert all(kind in ("text", "image") for s in stub.seen for kind in s.kinds)
