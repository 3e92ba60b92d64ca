"""Amazon Bedrock (``bedrock/…``): Titan embeddings through ``POST {api_base}/model/{modelId}/invoke``.

One item per request (Bedrock's InvokeModel takes one input), sent ``max_concurrency`` at a time by the
shared bulk path. Bodies: ``amazon.titan-embed-image-v1`` takes ``{"inputText"}`` or
``{"inputImage": <bare base64>}`` plus ``{"embeddingConfig": {"outputEmbeddingLength": 256|384|1024}}``;
``amazon.titan-embed-text-v2:0`` takes ``{"inputText", "dimensions", "normalize"}``. Answers are
``{"embedding": [...], "inputTextTokenCount": n}``; errors ``{"message": ...}``.

Requests are signed with AWS Signature Version 4 (service ``bedrock``) by the small signer below
(hmac/hashlib, no botocore), from ``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` /
``AWS_SESSION_TOKEN`` read at request time; the region comes from ``region=`` or ``AWS_REGION_NAME`` /
``AWS_REGION`` / ``AWS_DEFAULT_REGION``. A Bedrock API key (``api_key=`` or
``AWS_BEARER_TOKEN_BEDROCK``) is sent as a bearer token instead. No credential is ever stored with a
table: only the names of the variables are fixed here.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import io
import os
from collections.abc import Generator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import parse_qsl, quote, urlsplit

import httpx

from lookalike.embeddings.http_api import snippet
from lookalike.embeddings.remote import Kind, ModelSpec, PreparedImage, RemoteEmbeddingFunction
from lookalike.errors import AuthenticationError, ConfigurationError, ProviderError
from lookalike.types import Purpose

__all__ = ["BEDROCK_MODELS", "AWSCredentials", "BedrockEmbedding", "signing_key", "sigv4_headers"]

# Titan Multimodal Embeddings G1 accepts images up to 2048x2048 px; it embeds far fewer pixels, so
# lookalike sends about a megapixel (a few hundred KB of base64) and caps the longer side at 2048.
_TITAN_MAX_SIDE = 2048

BEDROCK_MODELS: dict[str, ModelSpec] = {
    "amazon.titan-embed-image-v1": ModelSpec(
        1024, allowed_dimensions=(256, 384, 1024), multimodal=True, image_max_pixels=1024 * 1024, max_batch=1
    ),
    "amazon.titan-embed-text-v2:0": ModelSpec(1024, allowed_dimensions=(256, 512, 1024), max_batch=1),
    "amazon.titan-embed-text-v1": ModelSpec(1536, max_batch=1),
}

KEY_ID_ENV = "AWS_ACCESS_KEY_ID"
SECRET_ENV = "AWS_SECRET_ACCESS_KEY"
TOKEN_ENV = "AWS_SESSION_TOKEN"
# AWS_REGION_NAME is litellm's (and so pytidb's) spelling; the other two are the AWS SDKs'
REGION_ENVS = ("AWS_REGION_NAME", "AWS_REGION", "AWS_DEFAULT_REGION")


@dataclass(frozen=True)
class AWSCredentials:
    """An access key pair (and session token) for one signature; ``repr`` hides the secrets."""

    access_key: str
    secret_key: str
    session_token: str | None = None

    def __repr__(self) -> str:
        return f"AWSCredentials(access_key={self.access_key[:4]!r}…, secret_key='***')"


def signing_key(secret_key: str, datestamp: str, region: str, service: str) -> bytes:
    """The SigV4 signing key: HMAC chain over the date, region, service and ``aws4_request``."""
    key = ("AWS4" + secret_key).encode("utf-8")
    for part in (datestamp, region, service, "aws4_request"):
        key = hmac.new(key, part.encode("utf-8"), hashlib.sha256).digest()
    return key


def _canonical_path(path: str) -> str:
    # every AWS service but S3 signs the path with empty, "." and ".." segments resolved (RFC 3986)
    # and then URI-encoded once more
    segments: list[str] = []
    for segment in path.split("/"):
        if segment == "..":
            if segments:
                segments.pop()
        elif segment and segment != ".":
            segments.append(segment)
    trailing = "/" if path.endswith("/") and segments else ""
    return quote("/" + "/".join(segments) + trailing, safe="/~")


def _canonical_query(query: str) -> str:
    pairs = sorted(
        (quote(k, safe="-_.~"), quote(v, safe="-_.~")) for k, v in parse_qsl(query, keep_blank_values=True)
    )
    return "&".join(f"{k}={v}" for k, v in pairs)


def sigv4_headers(
    *,
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes,
    credentials: AWSCredentials,
    region: str,
    service: str,
    now: dt.datetime | None = None,
) -> dict[str, str]:
    """The headers that sign one request with AWS Signature Version 4.

    ``headers`` are those the request will carry; ``host`` and every header named here are signed.
    Returns ``Authorization``, ``X-Amz-Date`` and, with a session token, ``X-Amz-Security-Token``.
    The path is URI-encoded once more, as every AWS service but S3 expects (a model ID's ``:``
    travels as ``%3A`` and is signed as ``%253A``).
    """
    when = (now or dt.datetime.now(dt.timezone.utc)).astimezone(dt.timezone.utc)
    amz_date = when.strftime("%Y%m%dT%H%M%SZ")
    parts = urlsplit(url)
    signed = {k.lower(): " ".join(str(v).split()) for k, v in headers.items()}
    signed.setdefault("host", parts.netloc)
    signed["x-amz-date"] = amz_date
    if credentials.session_token:
        signed["x-amz-security-token"] = credentials.session_token
    names = sorted(signed)
    canonical = "\n".join(
        [
            method.upper(),
            _canonical_path(parts.path),
            _canonical_query(parts.query),
            "".join(f"{name}:{signed[name]}\n" for name in names),
            ";".join(names),
            hashlib.sha256(body).hexdigest(),
        ]
    )
    scope = f"{amz_date[:8]}/{region}/{service}/aws4_request"
    to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode("utf-8")).hexdigest()]
    )
    key = signing_key(credentials.secret_key, amz_date[:8], region, service)
    signature = hmac.new(key, to_sign.encode("utf-8"), hashlib.sha256).hexdigest()
    out = {
        "Authorization": f"AWS4-HMAC-SHA256 Credential={credentials.access_key}/{scope}, "
        f"SignedHeaders={';'.join(names)}, Signature={signature}",
        "X-Amz-Date": amz_date,
    }
    if credentials.session_token:
        out["X-Amz-Security-Token"] = credentials.session_token
    return out


class _SigV4Auth(httpx.Auth):
    """Signs each request as it is sent (so every retry carries a fresh date), unless it already
    carries a bearer token."""

    requires_request_body = True

    def __init__(self, owner: BedrockEmbedding) -> None:
        self.owner = owner

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if "authorization" not in request.headers:
            wanted = {k: v for k, v in request.headers.items() if k.lower() in ("host", "content-type")}
            request.headers.update(
                sigv4_headers(
                    method=request.method,
                    url=str(request.url),
                    headers=wanted,
                    body=request.content,
                    credentials=self.owner.credentials(),
                    region=self.owner.signing_region(),
                    service="bedrock",
                )
            )
        yield request


class BedrockEmbedding(RemoteEmbeddingFunction):
    """Amazon Titan embeddings on Bedrock, e.g. ``EmbeddingFunction("bedrock/amazon.titan-embed-image-v1")``.

    Extra options: ``region`` (else the AWS region variables), and ``aws_access_key_id`` /
    ``aws_secret_access_key`` / ``aws_session_token`` (kept in memory only; else the AWS variables).
    """

    provider: ClassVar[str] = "bedrock"
    display_name: ClassVar[str] = "Amazon Bedrock"
    # a Bedrock API key; without one, requests are signed with the AWS access key variables
    api_key_envs: ClassVar[tuple[str, ...]] = ("AWS_BEARER_TOKEN_BEDROCK",)
    api_base_envs: ClassVar[tuple[str, ...]] = ("AWS_BEDROCK_RUNTIME_ENDPOINT",)
    default_api_base: ClassVar[str] = "https://bedrock-runtime.us-east-1.amazonaws.com"
    models: ClassVar[dict[str, ModelSpec]] = BEDROCK_MODELS
    accepts_image_urls: ClassVar[bool] = False  # Bedrock takes only inline base64
    default_batch_size: ClassVar[int] = 1
    default_max_concurrency: ClassVar[int] = 4
    one_input_per_request: ClassVar[bool] = True

    def __init__(
        self,
        model: str,
        *,
        region: str | None = None,
        aws_access_key_id: str | None = None,
        aws_secret_access_key: str | None = None,
        aws_session_token: str | None = None,
        **kwargs: Any,
    ) -> None:
        if region is not None and (not isinstance(region, str) or not region.strip()):
            raise ConfigurationError(f"region must be an AWS region name such as 'us-east-1', got {region!r}")
        if (aws_access_key_id is None) != (aws_secret_access_key is None):
            raise ConfigurationError("pass aws_access_key_id and aws_secret_access_key together")
        self.region = region
        self._explicit = (
            AWSCredentials(aws_access_key_id, aws_secret_access_key, aws_session_token)
            if aws_access_key_id and aws_secret_access_key
            else None
        )
        super().__init__(model, **kwargs)
        region_now = self._env_region()
        if region_now and self._api_base_arg is None and self._env_api_base() is None:
            self.api_base = _regional_endpoint(region_now)

    # ----------------------------------------------------------------- region and endpoint
    def _env_region(self) -> str | None:
        return self.region or next((os.environ[n] for n in REGION_ENVS if os.environ.get(n)), None)

    def signing_region(self) -> str:
        """The region requests are signed for: ``region=``, the AWS variables, or the endpoint's host."""
        region = self._env_region()
        if region:
            return region
        host = urlsplit(self.api_base).hostname or ""
        if host.startswith("bedrock-runtime.") and host.endswith(".amazonaws.com"):
            return host.split(".")[1]
        raise ConfigurationError(
            f"no AWS region for {self.display_name}: pass region= or set {' or '.join(REGION_ENVS)}"
        )

    def post(self, path: str, payload: dict[str, Any]) -> Any:
        """POST to the region's endpoint (chosen per request, as the variables may change)."""
        if self._api_base_arg is None and self._env_api_base() is None:
            # the stored configuration holds no region unless one was passed: read it now
            self.api_base = _regional_endpoint(self.signing_region())
        return super().post(path, payload)

    def endpoint(self, kind: Kind) -> str:
        return f"/model/{quote(self.model_name, safe='')}/invoke"

    # ----------------------------------------------------------------- credentials
    def _bearer(self) -> str | None:
        try:
            return super()._key()
        except AuthenticationError:
            return None

    def credentials(self) -> AWSCredentials:
        """The access key pair to sign with: explicit arguments, else the AWS variables."""
        if self._explicit is not None:
            return self._explicit
        key_id, secret = os.environ.get(KEY_ID_ENV), os.environ.get(SECRET_ENV)
        if not key_id or not secret:
            missing = " and ".join(n for n, v in ((KEY_ID_ENV, key_id), (SECRET_ENV, secret)) if not v)
            raise AuthenticationError(
                f"no AWS credentials for {self.display_name}: set {missing} (and {TOKEN_ENV} for "
                f"temporary credentials), pass aws_access_key_id=/aws_secret_access_key=, or use a Bedrock "
                f"API key (api_key= or {self.api_key_envs[0]})"
            )
        return AWSCredentials(key_id, secret, os.environ.get(TOKEN_ENV) or None)

    def _key(self) -> str | None:
        # the bearer token when there is one; else the secret key (so error texts are scrubbed of it)
        token = self._bearer()
        return token if token is not None else self.credentials().secret_key

    def ensure_ready(self, kind: Any = "image") -> None:
        """Check that credentials and a region are at hand (no network)."""
        self._key()
        self.signing_region()

    def auth_headers(self, key: str | None) -> dict[str, str]:
        token = self._bearer()
        return {"Authorization": f"Bearer {token}"} if token else {}

    def _http(self) -> httpx.Client:
        client = super()._http()
        if not isinstance(client.auth, _SigV4Auth):
            client.auth = _SigV4Auth(self)
        return client

    def _status_error(self, resp: httpx.Response) -> ProviderError:
        if resp.status_code in (401, 403):
            # AWS answers 403 for a bad signature, an unknown key and a missing IAM permission alike
            detail = self._scrub(snippet(_message(resp)))
            return AuthenticationError(
                f"{self.display_name} ({self.provider}/{self.model_name}) refused the credentials (HTTP "
                f"{resp.status_code}): {detail}. Check {KEY_ID_ENV}/{SECRET_ENV} (or the Bedrock API key), "
                "the region, and that the identity may call bedrock:InvokeModel on this model",
                status_code=resp.status_code,
            )
        return super()._status_error(resp)

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state["_explicit"] = None  # like api_key: a pickle falls back to the environment variables
        return state

    def config_options(self) -> dict[str, Any]:
        opts = super().config_options()
        if self.region is not None:
            opts["region"] = self.region
        return opts

    # ----------------------------------------------------------------- requests
    def build_payload(self, kind: Kind, items: list[Any], purpose: Purpose) -> dict[str, Any]:
        (item,) = items  # one input per InvokeModel request
        if kind == "image":
            payload: dict[str, Any] = {"inputImage": item.b64 or ""}
        else:
            payload = {"inputText": item}
        if self.model_name == "amazon.titan-embed-text-v2:0":
            payload["dimensions"] = self.dimensions
            payload["normalize"] = True
        elif self.sends_dimensions:
            payload["embeddingConfig"] = {"outputEmbeddingLength": self.dimensions}
        return payload

    def parse_embeddings(self, body: Any, n: int) -> list[Any]:
        vector = body.get("embedding") if isinstance(body, dict) else None
        if not isinstance(vector, list):
            raise ProviderError(
                f"{self.display_name} answered without an 'embedding' list: {snippet(body)!r}"
            )
        return [vector]

    def prepare_image(self, ref: Any) -> PreparedImage:
        """As the base class, then cap the longer side at Titan's 2048 px (a very wide panorama)."""
        prepared = super().prepare_image(ref)
        if prepared.size is None or max(prepared.size) <= _TITAN_MAX_SIDE or prepared.b64 is None:
            return prepared
        from PIL import Image

        img = Image.open(io.BytesIO(base64.b64decode(prepared.b64)))
        img.thumbnail((_TITAN_MAX_SIDE, _TITAN_MAX_SIDE), Image.Resampling.BICUBIC)
        buf = io.BytesIO()
        img.convert("RGB").save(buf, format="JPEG", quality=self.jpeg_quality)
        return PreparedImage(b64=base64.b64encode(buf.getvalue()).decode("ascii"), size=img.size)


def _regional_endpoint(region: str) -> str:
    return f"https://bedrock-runtime.{region}.amazonaws.com"


def _message(resp: httpx.Response) -> str:
    try:
        body = resp.json()
    except ValueError:
        return resp.text or resp.reason_phrase
    if isinstance(body, dict) and isinstance(body.get("message") or body.get("Message"), str):
        return str(body.get("message") or body.get("Message"))
    return snippet(body)
