"""Google's hosted embeddings: Vertex AI's multimodal model (``vertex_ai/…``) and Gemini (``gemini/…``).

**Vertex AI** ``multimodalembedding@001``: ``POST {api_base}/projects/{project}/locations/{location}/
publishers/google/models/multimodalembedding@001:predict`` with ``{"instances": [{"text": …} |
{"image": {"bytesBase64Encoded": …} | {"gcsUri": "gs://…"}}], "parameters": {"dimension": d}}``
(d one of 1408, 512, 256, 128); the answer is ``{"predictions": [{"textEmbedding": […]} |
{"imageEmbedding": […]}]}``. One instance per request (sent ``max_concurrency`` at a time). The
model reads at most 32 tokens of text and resizes images to 512x512, so texts are cut at 1,024
characters and images downscaled to about 512x512 pixels before upload.
Auth is an OAuth access token (``api_key=`` or ``GOOGLE_ACCESS_TOKEN``, e.g. from
``gcloud auth print-access-token``) as a bearer; the project comes from ``project=`` or
``VERTEXAI_PROJECT`` / ``GOOGLE_CLOUD_PROJECT``, the location from ``location=`` or ``VERTEXAI_LOCATION``
/ ``GOOGLE_CLOUD_LOCATION`` (default ``us-central1``). ``VERTEXAI_API_BASE`` overrides the endpoint.

**Gemini** ``gemini-embedding-001`` (text only): ``POST {api_base}/models/{model}:batchEmbedContents``
with ``{"requests": [{"model": "models/…", "content": {"parts": [{"text": …}]}, "taskType",
"outputDimensionality"?}]}`` (at most 100 per call) and the key in ``x-goog-api-key`` (``GEMINI_API_KEY``
as pytidb's examples name it, or ``GOOGLE_API_KEY``); the answer is ``{"embeddings": [{"values": […]}]}``.
"""

from __future__ import annotations

import os
from typing import Any, ClassVar

import httpx

from lookalike.embeddings.http_api import snippet
from lookalike.embeddings.remote import Kind, ModelSpec, PreparedImage, RemoteEmbeddingFunction
from lookalike.errors import AuthenticationError, ConfigurationError, ProviderError
from lookalike.types import Purpose

__all__ = ["GEMINI_MODELS", "VERTEX_MODELS", "GeminiEmbedding", "VertexMultimodalEmbedding"]

VERTEX_MODELS: dict[str, ModelSpec] = {
    "multimodalembedding@001": ModelSpec(
        1408,
        allowed_dimensions=(128, 256, 512, 1408),
        multimodal=True,
        image_max_pixels=512 * 512,
        max_batch=1,
    ),
}

GEMINI_MODELS: dict[str, ModelSpec] = {
    # Matryoshka-trained: 3072 by default, shorter sizes by truncation (Google recommends 768/1536/3072)
    "gemini-embedding-001": ModelSpec(3072, min_dimensions=128, max_batch=100),
}

PROJECT_ENVS = ("VERTEXAI_PROJECT", "GOOGLE_CLOUD_PROJECT")
LOCATION_ENVS = ("VERTEXAI_LOCATION", "GOOGLE_CLOUD_LOCATION")
DEFAULT_LOCATION = "us-central1"
# the model reads 32 tokens at most; longer texts only cost upload bytes (and may be refused)
_VERTEX_MAX_TEXT_CHARS = 1024


def _first_env(names: tuple[str, ...]) -> str | None:
    return next((os.environ[n] for n in names if os.environ.get(n)), None)


class VertexMultimodalEmbedding(RemoteEmbeddingFunction):
    """Vertex AI's multimodal embeddings, e.g. ``EmbeddingFunction("vertex_ai/multimodalembedding@001")``.

    Text and images share one 1408-d space (or 512/256/128 with ``dimensions=``). Extra options:
    ``project`` and ``location``; ``gs://`` image references are passed to Vertex as Cloud Storage URIs.
    """

    provider: ClassVar[str] = "vertex_ai"
    display_name: ClassVar[str] = "Google Vertex AI"
    api_key_envs: ClassVar[tuple[str, ...]] = ("GOOGLE_ACCESS_TOKEN", "VERTEXAI_ACCESS_TOKEN")
    api_base_envs: ClassVar[tuple[str, ...]] = ("VERTEXAI_API_BASE",)
    default_api_base: ClassVar[str] = f"https://{DEFAULT_LOCATION}-aiplatform.googleapis.com/v1"
    models: ClassVar[dict[str, ModelSpec]] = VERTEX_MODELS
    accepts_image_urls: ClassVar[bool] = False  # Vertex reads inline bytes or gs:// only
    default_batch_size: ClassVar[int] = 1
    default_max_concurrency: ClassVar[int] = 4
    one_input_per_request: ClassVar[bool] = True

    def __init__(
        self, model: str, *, project: str | None = None, location: str | None = None, **kwargs: Any
    ) -> None:
        for name, value in (("project", project), ("location", location)):
            if value is not None and (not isinstance(value, str) or not value.strip() or "/" in value):
                raise ConfigurationError(f"{name} must be a Google Cloud {name} name, got {value!r}")
        self.project = project
        self.location = location
        super().__init__(model, **kwargs)

    @classmethod
    def _canonical_model(cls, model: str) -> str:
        # Google's docs name the model both with and without its version
        return (
            "multimodalembedding@001" if model == "multimodalembedding" else super()._canonical_model(model)
        )

    def _where(self) -> tuple[str, str]:
        project = self.project or _first_env(PROJECT_ENVS)
        if not project:
            raise ConfigurationError(
                f"no Google Cloud project for {self.display_name}: pass project= or set "
                f"{' or '.join(PROJECT_ENVS)}"
            )
        return project, self.location or _first_env(LOCATION_ENVS) or DEFAULT_LOCATION

    def ensure_ready(self, kind: Any = "image") -> None:
        """Check that a token and a project are at hand (no network)."""
        self._key()
        self._where()

    def post(self, path: str, payload: dict[str, Any]) -> Any:
        """POST to the location's endpoint (read per request: the variables may change)."""
        if self._api_base_arg is None and self._env_api_base() is None:
            self.api_base = f"https://{self._where()[1]}-aiplatform.googleapis.com/v1"
        return super().post(path, payload)

    def endpoint(self, kind: Kind) -> str:
        project, location = self._where()
        return f"/projects/{project}/locations/{location}/publishers/google/models/{self.model_name}:predict"

    def config_options(self) -> dict[str, Any]:
        opts = super().config_options()
        opts.update({k: v for k, v in (("project", self.project), ("location", self.location)) if v})
        return opts

    def prepare_image(self, ref: Any) -> PreparedImage:
        if isinstance(ref, str) and ref.startswith("gs://"):
            return PreparedImage(url=ref)
        return super().prepare_image(ref)

    def build_payload(self, kind: Kind, items: list[Any], purpose: Purpose) -> dict[str, Any]:
        (item,) = items  # one instance per request
        if kind == "text":
            instance: dict[str, Any] = {"text": item[:_VERTEX_MAX_TEXT_CHARS]}
        elif item.url is not None:
            instance = {"image": {"gcsUri": item.url}}
        else:
            instance = {"image": {"bytesBase64Encoded": item.b64 or ""}}
        payload: dict[str, Any] = {"instances": [instance]}
        if self.sends_dimensions:
            payload["parameters"] = {"dimension": self.dimensions}
        return payload

    def parse_embeddings(self, body: Any, n: int) -> list[Any]:
        predictions = body.get("predictions") if isinstance(body, dict) else None
        if not isinstance(predictions, list) or len(predictions) != n:
            raise ProviderError(f"{self.display_name} answered without {n} predictions: {snippet(body)!r}")
        rows = []
        for entry in predictions:
            vector = None
            if isinstance(entry, dict):
                vector = entry.get("textEmbedding", entry.get("imageEmbedding"))
            if not isinstance(vector, list):
                raise ProviderError(
                    f"{self.display_name} returned a malformed prediction: {snippet(entry)!r}"
                )
            rows.append(vector)
        return rows


_GEMINI_TASKS = {"document": "RETRIEVAL_DOCUMENT", "query": "RETRIEVAL_QUERY"}


class GeminiEmbedding(RemoteEmbeddingFunction):
    """Google's Gemini text embeddings, e.g. ``EmbeddingFunction("gemini/gemini-embedding-001")``."""

    provider: ClassVar[str] = "gemini"
    display_name: ClassVar[str] = "Google Gemini API"
    api_key_envs: ClassVar[tuple[str, ...]] = ("GEMINI_API_KEY", "GOOGLE_API_KEY")
    api_base_envs: ClassVar[tuple[str, ...]] = ("GEMINI_API_BASE",)
    default_api_base: ClassVar[str] = "https://generativelanguage.googleapis.com/v1beta"
    models: ClassVar[dict[str, ModelSpec]] = GEMINI_MODELS
    default_batch_size: ClassVar[int] = 100

    def auth_headers(self, key: str | None) -> dict[str, str]:
        return {"x-goog-api-key": key} if key else {}

    def _status_error(self, resp: httpx.Response) -> ProviderError:
        # Google answers a wrong key with 400 INVALID_ARGUMENT (reason API_KEY_INVALID): it is not the
        # input's fault, so it must not be retried item by item
        if resp.status_code == 400 and "API_KEY_INVALID" in resp.text[:4000]:
            return AuthenticationError(
                f"{self.display_name} ({self.provider}/{self.model_name}) rejected the API key (HTTP 400 "
                f"API_KEY_INVALID). Check api_key= or {self.api_key_env}",
                status_code=401,
            )
        return super()._status_error(resp)

    def endpoint(self, kind: Kind) -> str:
        return f"/models/{self.model_name}:batchEmbedContents"

    def build_payload(self, kind: Kind, items: list[Any], purpose: Purpose) -> dict[str, Any]:
        requests = []
        for text in items:
            entry: dict[str, Any] = {
                "model": f"models/{self.model_name}",
                "content": {"parts": [{"text": text}]},
                "taskType": _GEMINI_TASKS[purpose],
            }
            if self.sends_dimensions:
                entry["outputDimensionality"] = self.dimensions
            requests.append(entry)
        return {"requests": requests}

    def parse_embeddings(self, body: Any, n: int) -> list[Any]:
        embeddings = body.get("embeddings") if isinstance(body, dict) else None
        if not isinstance(embeddings, list) or len(embeddings) != n:
            raise ProviderError(f"{self.display_name} answered without {n} embeddings: {snippet(body)!r}")
        rows = []
        for entry in embeddings:
            values = entry.get("values") if isinstance(entry, dict) else None
            if not isinstance(values, list):
                raise ProviderError(f"{self.display_name} returned a malformed embedding: {snippet(entry)!r}")
            rows.append(values)
        return rows
