"""Strict local stand-ins for hosted embedding APIs (Jina AI, OpenAI/Infinity, Voyage AI, Cohere,
NVIDIA NIM, Hugging Face's feature-extraction API).

``StubProvider(flavor)`` runs a real HTTP server on 127.0.0.1 (:class:`tests.helpers.http_server.
LocalHTTPServer`) that checks every request against the provider's documented schema: path, method,
``Content-Type``, ``Authorization: Bearer``, known model, known fields only, input shapes, task /
input_type values, allowed output sizes, per-request item limits and image sizes. A request that breaks
the schema is answered 400 *and* recorded in ``violations``, so a test can assert the client never
sent one. The stub's model table is its own (not imported from lookalike), so a wrong client table is
caught.

Vectors are deterministic: text → a seeded random unit vector from a hash (a colour word such as
"orange" maps to the vector of a solid image of that colour, so a text search means something);
images → a fixed random projection of an 8x8 thumbnail, so the same picture sent as a URL (fetched
from a 127.0.0.1 server) or inline base64 gives (nearly) the same vector. Matryoshka sizes truncate
and re-normalise the full vector.

Faults: ``latency``, ``rate_limit_fraction`` (429 with ``Retry-After``), ``bad_markers`` (400 for an
input containing a marker), ``valid_keys`` / ``no_quota_keys`` (401 / 402-403-429), and
``script(Fault…)`` for one-off 500s, 429s, slow answers, non-JSON bodies, too few vectors, wrong sizes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import json
import random
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlsplit

import numpy as np
from PIL import Image

from tests.helpers.http_server import LocalHTTPServer, Request, Response

__all__ = [
    "COLOURS",
    "STUB_ACCESS_KEY",
    "STUB_SECRET_KEY",
    "CloudStub",
    "Fault",
    "StubModel",
    "StubProvider",
    "content_vector",
    "solid_jpeg",
]

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "orange": (245, 140, 20),
    "yellow": (240, 220, 40),
    "green": (40, 170, 60),
    "blue": (30, 60, 220),
    "purple": (130, 40, 170),
    "black": (10, 10, 10),
    "white": (245, 245, 245),
}


@dataclass(frozen=True)
class StubModel:
    """What the stub accepts for one model."""

    dimensions: int
    min_dimensions: int | None = None
    allowed_dimensions: tuple[int, ...] | None = None
    multimodal: bool = False
    tasks: tuple[str, ...] = ()
    max_items: int = 2048
    max_image_pixels: int | None = None  # lookalike promises to downscale inline images to this
    max_image_side: int | None = None  # ... and to a shortest side of at most this
    images_per_request: int | None = None
    token_level: bool = False  # answers one vector per token (a Hugging Face model without pooling)

    def allows(self, dims: Any) -> bool:
        if not isinstance(dims, int) or isinstance(dims, bool):
            return False
        if dims == self.dimensions:
            return True
        if self.allowed_dimensions is not None:
            return dims in self.allowed_dimensions
        return self.min_dimensions is not None and self.min_dimensions <= dims <= self.dimensions


_V4_TASKS = ("retrieval.query", "retrieval.passage", "text-matching", "code.query", "code.passage")
_V3_TASKS = ("retrieval.query", "retrieval.passage", "text-matching", "classification", "separation")

MODELS: dict[str, dict[str, StubModel]] = {
    "jina": {
        "jina-embeddings-v4": StubModel(
            2048, 128, multimodal=True, tasks=_V4_TASKS, max_items=512, max_image_pixels=602_112
        ),
        "jina-clip-v2": StubModel(1024, 64, multimodal=True, tasks=_V3_TASKS, max_image_side=512),
        "jina-clip-v1": StubModel(768, multimodal=True, max_image_side=224),
        "jina-embeddings-v3": StubModel(1024, 32, tasks=_V3_TASKS),
        "jina-embeddings-v2-base-en": StubModel(768),
    },
    "openai": {
        "text-embedding-3-small": StubModel(1536, 1),
        "text-embedding-3-large": StubModel(3072, 1),
        "text-embedding-ada-002": StubModel(1536),
    },
    "voyage": {
        "voyage-multimodal-3": StubModel(1024, multimodal=True, max_items=1000, max_image_pixels=16_000_000),
        "voyage-multimodal-3.5": StubModel(
            1024,
            allowed_dimensions=(256, 512, 1024, 2048),
            multimodal=True,
            max_items=1000,
            max_image_pixels=16_000_000,
        ),
        "voyage-3.5": StubModel(1024, allowed_dimensions=(256, 512, 1024, 2048), max_items=1000),
    },
    "cohere": {
        "embed-v4.0": StubModel(
            1536,
            allowed_dimensions=(256, 512, 1024, 1536),
            multimodal=True,
            max_items=96,
            max_image_pixels=2_458_624,
        ),
        "embed-english-v3.0": StubModel(
            1024, multimodal=True, max_items=96, max_image_pixels=2_458_624, images_per_request=1
        ),
    },
    "nvidia_nim": {
        "baai/bge-m3": StubModel(1024),
        "nvidia/nv-embedqa-e5-v5": StubModel(1024, tasks=("query", "passage")),
    },
    # the model is in the URL path; Text Embeddings Inference takes at most 32 inputs a request
    "huggingface": {
        "sentence-transformers/all-MiniLM-L6-v2": StubModel(384, max_items=32),
        "BAAI/bge-base-en-v1.5": StubModel(768, max_items=32),
        "google-bert/bert-base-uncased": StubModel(768, max_items=32, token_level=True),
    },
}

PATHS = {
    "jina": {"/v1/embeddings"},
    "openai": {"/v1/embeddings"},
    "voyage": {"/v1/multimodalembeddings", "/v1/embeddings"},
    "cohere": {"/v2/embed"},
    "nvidia_nim": {"/v1/embeddings"},
    "huggingface": {"/hf-inference/models/"},  # + {org}/{model}/pipeline/feature-extraction
}


@dataclass(frozen=True)
class Fault:
    """A one-off answer for the next request (see :meth:`StubProvider.script`)."""

    kind: str  # "status" | "delay" | "malformed" | "wrong_count" | "wrong_dims" | "nan" | "loading"
    status: int = 500
    retry_after: str | None = None
    seconds: float = 0.0

    @classmethod
    def http(cls, status: int, retry_after: str | None = None) -> Fault:
        return cls("status", status=status, retry_after=retry_after)

    @classmethod
    def delay(cls, seconds: float) -> Fault:
        return cls("delay", seconds=seconds)

    @classmethod
    def malformed(cls) -> Fault:
        return cls("malformed")

    @classmethod
    def wrong_count(cls) -> Fault:
        return cls("wrong_count")

    @classmethod
    def wrong_dims(cls) -> Fault:
        return cls("wrong_dims")

    @classmethod
    def nan(cls) -> Fault:
        return cls("nan")

    @classmethod
    def loading(cls, estimated_time: float) -> Fault:
        """Hugging Face's 503 for a model still loading, with ``estimated_time`` in the body."""
        return cls("loading", status=503, seconds=estimated_time)


@dataclass
class Seen:
    """One request the stub received (no key values: just whether the key was right)."""

    path: str
    model: str | None
    kinds: list[str]
    items: list[str]  # short descriptions: text, URL, or "b64:WxH"
    task: str | None
    dimensions: int | None
    body_bytes: int
    status: int = 200
    image_sizes: list[tuple[int, int]] = field(default_factory=list)


class _Reject(Exception):
    def __init__(self, status: int, message: str, *, violation: bool = True, code: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.violation = violation
        self.code = code


def _hash_vector(key: str, dims: int) -> np.ndarray:
    seed = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "little")
    vec = np.random.default_rng(seed).standard_normal(dims)
    return vec / np.linalg.norm(vec)


_PROJECTIONS: dict[int, np.ndarray] = {}
_PROJ_LOCK = threading.Lock()


def content_vector(img: Image.Image, dims: int) -> np.ndarray:
    """The stub's image vector: a fixed random projection of an 8x8 thumbnail (unit length)."""
    with _PROJ_LOCK:
        proj = _PROJECTIONS.get(dims)
        if proj is None:
            proj = np.random.default_rng(12345).standard_normal((8 * 8 * 3, dims))
            _PROJECTIONS[dims] = proj
    thumb = np.asarray(img.convert("RGB").resize((8, 8), Image.Resampling.BOX), dtype=np.float64)
    x = thumb.reshape(-1) / 255.0 - 0.5
    vec = x @ proj
    norm = np.linalg.norm(vec)
    return vec / norm if norm else _hash_vector("blank", dims)


def solid_jpeg(colour: tuple[int, int, int] | str, size: tuple[int, int] = (64, 48)) -> bytes:
    """JPEG bytes of a solid-colour picture (a colour name from :data:`COLOURS` or an RGB tuple)."""
    rgb = COLOURS[colour] if isinstance(colour, str) else colour
    buf = io.BytesIO()
    Image.new("RGB", size, rgb).save(buf, format="JPEG", quality=95)
    return buf.getvalue()


_StubT = TypeVar("_StubT", bound="_Served")


class _Served:
    """What every stub shares: its :class:`LocalHTTPServer` started and stopped (also as a context),
    faults scripted for the next requests, and the requests it has seen."""

    server: LocalHTTPServer
    seen: list[Seen]
    _faults: list[Fault]
    _lock: threading.Lock

    def script(self, *faults: Fault) -> None:
        """Answer the next requests with these faults, in order (then normally again)."""
        with self._lock:
            self._faults.extend(faults)

    @property
    def request_count(self) -> int:
        with self._lock:
            return len(self.seen)

    def start(self: _StubT) -> _StubT:
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop()

    def __enter__(self: _StubT) -> _StubT:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class StubProvider(_Served):
    """A strict fake of one provider's embeddings endpoint, served on 127.0.0.1."""

    def __init__(
        self,
        flavor: str = "jina",
        *,
        valid_keys: Iterable[str] = ("test-key",),
        no_quota_keys: Iterable[str] = (),
        require_key: bool = True,
        latency: float = 0.0,
        rate_limit_fraction: float = 0.0,
        retry_after: str = "0.01",
        seed: int = 0,
        infinity: bool = False,
        extra_models: dict[str, StubModel] | None = None,
    ) -> None:
        if flavor not in MODELS:
            raise ValueError(f"unknown flavor {flavor!r}")
        self.flavor = flavor
        self.models = {**MODELS[flavor], **(extra_models or {})}
        self.valid_keys = set(valid_keys)
        self.no_quota_keys = set(no_quota_keys)
        self.require_key = require_key
        self.latency = latency
        self.rate_limit_fraction = rate_limit_fraction
        self.retry_after = retry_after
        self.infinity = infinity
        self.bad_markers: set[str] = set()
        self.seen: list[Seen] = []
        self.violations: list[str] = []
        self.rate_limited = 0
        self._faults: list[Fault] = []
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self.server = LocalHTTPServer()
        # socketserver listens with a backlog of 5; a burst of concurrent connects then waits ~1 s for
        # a SYN retry, which would make latency measurements lie. Re-listen with a deeper queue.
        self.server._httpd.socket.listen(128)
        for path in PATHS[flavor]:
            self.server.route(path, self._handle, prefix=flavor == "huggingface")

    @property
    def api_base(self) -> str:
        """What to pass as ``api_base`` (or the provider's base-URL env var)."""
        if self.flavor == "huggingface":
            return self.server.base_url + "/hf-inference/models"
        return self.server.base_url + ("" if self.flavor == "cohere" else "/v1")

    def reset(self) -> None:
        with self._lock:
            self.seen.clear()
            self.violations.clear()
            self._faults.clear()
            self.rate_limited = 0

    # ------------------------------------------------------------------ serving
    def _handle(self, request: Request) -> Response:
        with self._lock:
            fault = self._faults.pop(0) if self._faults else None
            limited = self.rate_limit_fraction > 0 and self._rng.random() < self.rate_limit_fraction
        delay = self.latency + (fault.seconds if fault and fault.kind == "delay" else 0.0)
        if fault is not None and fault.kind == "loading":
            seen = Seen(request.path, None, [], [], None, None, len(request.body), status=503)
            self._record(seen)
            answer = {"error": "Model is currently loading", "estimated_time": fault.seconds}
            return Response.json(answer, 503)
        seen = Seen(request.path, None, [], [], None, None, len(request.body))
        try:
            if request.method != "POST":
                raise _Reject(405, f"{request.method} not allowed")
            self._check_auth(request)
            if fault is not None and fault.kind == "status":
                headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
                return self._error(
                    seen, fault.status, "injected failure", headers, delay=delay, violation=False
                )
            if limited:
                with self._lock:
                    self.rate_limited += 1
                return self._error(
                    seen,
                    429,
                    "rate limit exceeded",
                    {"Retry-After": self.retry_after},
                    delay=delay,
                    violation=False,
                )
            body = self._check_json(request)
            vectors = self._embed(request.path, body, seen)
        except _Reject as exc:
            return self._error(
                seen, exc.status, exc.message, delay=delay, violation=exc.violation, code=exc.code
            )
        if fault is not None and fault.kind == "malformed":
            self._record(seen)
            return Response(200, b"<html><body>502 Bad Gateway</body></html>", "text/html", delay=delay)
        if fault is not None and fault.kind == "wrong_count":
            vectors = vectors[:-1]
        if fault is not None and fault.kind == "wrong_dims":
            vectors = [v[:-1] for v in vectors]
        if fault is not None and fault.kind == "nan":
            vectors[0][0] = float("nan")
        self._record(seen)
        resp = Response.json(self._answer(body, vectors, seen))
        resp.delay = delay
        return resp

    def _record(self, seen: Seen) -> None:
        with self._lock:
            self.seen.append(seen)

    def _violation(self, message: str) -> None:
        with self._lock:
            self.violations.append(message)

    def _error(
        self,
        seen: Seen,
        status: int,
        message: str,
        headers: dict[str, str] | None = None,
        *,
        delay: float = 0.0,
        violation: bool = False,
        code: str = "",
    ) -> Response:
        seen.status = status
        self._record(seen)
        if violation:
            self._violation(f"{seen.path}: {message}")
        if self.flavor == "openai":
            body: dict[str, Any] = {
                "error": {
                    "message": message,
                    "type": code or "invalid_request_error",
                    "param": None,
                    "code": code or None,
                }
            }
        elif self.flavor == "cohere":
            body = {"message": message}
        elif self.flavor == "huggingface":
            body = {"error": message}
        else:
            body = {"detail": message}
        resp = Response.json(body, status, headers)
        resp.delay = delay
        return resp

    def _check_auth(self, request: Request) -> None:
        ctype = request.headers.get("content-type", "")
        if not ctype.startswith("application/json"):
            raise _Reject(415, f"Content-Type must be application/json, got {ctype!r}")
        auth = request.headers.get("authorization")
        if auth is None:
            if self.require_key:
                raise _Reject(401, "missing Authorization header", code="invalid_api_key")
            return
        if not auth.startswith("Bearer ") or not auth[7:].strip():
            raise _Reject(401, "Authorization must be 'Bearer <key>'", code="invalid_api_key")
        key = auth[7:]
        if key in self.no_quota_keys:
            status = {
                "jina": 403,
                "openai": 429,
                "voyage": 403,
                "cohere": 402,
                "nvidia_nim": 402,
                "huggingface": 402,
            }[self.flavor]
            raise _Reject(
                status,
                "insufficient balance: top up your account",
                violation=False,
                code="insufficient_quota",
            )
        if self.require_key and key not in self.valid_keys:
            # echo the key, as a careless server might, so tests can check the client scrubs it
            raise _Reject(401, f"Invalid API key: {key}", violation=False, code="invalid_api_key")

    @staticmethod
    def _check_json(request: Request) -> dict[str, Any]:
        try:
            body = request.json()
        except ValueError as exc:
            raise _Reject(400, f"body is not JSON: {exc}") from exc
        if not isinstance(body, dict):
            raise _Reject(400, "body must be a JSON object")
        return body

    def _model(self, body: dict[str, Any], seen: Seen) -> StubModel:
        name = body.get("model")
        seen.model = name
        if name not in self.models:
            raise _Reject(400, f"unknown model {name!r}")
        return self.models[name]

    @staticmethod
    def _only(body: dict[str, Any], allowed: set[str], required: set[str]) -> None:
        unknown = set(body) - allowed
        if unknown:
            raise _Reject(400, f"unknown fields {sorted(unknown)}")
        missing = required - set(body)
        if missing:
            raise _Reject(400, f"missing fields {sorted(missing)}")

    def _dims(self, model: StubModel, value: Any, seen: Seen, field_name: str) -> int:
        if value is None:
            return model.dimensions
        if model.min_dimensions is None and model.allowed_dimensions is None:
            raise _Reject(400, f"{seen.model} does not support {field_name}")
        if not model.allows(value):
            raise _Reject(400, f"{field_name}={value!r} is not supported by {seen.model}")
        seen.dimensions = value
        return value

    # -- per flavor -------------------------------------------------------------------------------
    def _embed(self, path: str, body: dict[str, Any], seen: Seen) -> list[list[float]]:
        return getattr(self, f"_embed_{self.flavor}")(path, body, seen)

    def _embed_jina(self, path: str, body: dict[str, Any], seen: Seen) -> list[list[float]]:
        self._only(
            body,
            {
                "model",
                "input",
                "task",
                "dimensions",
                "embedding_type",
                "late_chunking",
                "truncate",
                "normalized",
                "return_multivector",
            },
            {"model", "input"},
        )
        model = self._model(body, seen)
        if "task" in body:
            seen.task = body["task"]
            if body["task"] not in model.tasks:
                raise _Reject(400, f"task {body['task']!r} is not valid for {seen.model}")
        if body.get("embedding_type", "float") != "float":
            raise _Reject(400, "lookalike must ask for float embeddings")
        dims = self._dims(model, body.get("dimensions"), seen, "dimensions")
        raw = body["input"]
        items = [raw] if isinstance(raw, str) else raw
        if not isinstance(items, list) or not items:
            raise _Reject(400, "input must be a non-empty string or array")
        if len(items) > model.max_items:
            raise _Reject(400, f"Each input list can contain at most {model.max_items} items")
        out = []
        for i, item in enumerate(items):
            if isinstance(item, str):
                out.append(self._text_vector(item, dims, seen))
            elif isinstance(item, dict) and set(item) == {"text"} and isinstance(item["text"], str):
                out.append(self._text_vector(item["text"], dims, seen))
            elif isinstance(item, dict) and set(item) == {"image"} and isinstance(item["image"], str):
                if not model.multimodal:
                    raise _Reject(400, f"{seen.model} does not accept images (input {i})")
                out.append(self._image_vector(item["image"], dims, seen, model, i, data_uri_ok=True))
            else:
                raise _Reject(400, f"input {i} must be a string, {{'text': …}} or {{'image': …}}")
        return out

    def _embed_openai(self, path: str, body: dict[str, Any], seen: Seen) -> list[list[float]]:
        allowed = {"model", "input", "encoding_format", "dimensions", "user"}
        if self.infinity:
            allowed.add("modality")
        self._only(body, allowed, {"model", "input"})
        model = self._model(body, seen)
        if body.get("encoding_format", "float") != "float":
            raise _Reject(400, "encoding_format must be 'float'")
        dims = self._dims(model, body.get("dimensions"), seen, "dimensions")
        modality = body.get("modality", "text")
        if modality not in ("text", "image"):
            raise _Reject(400, f"modality {modality!r} unknown")
        raw = body["input"]
        items = [raw] if isinstance(raw, str) else raw
        if not isinstance(items, list) or not items or not all(isinstance(t, str) for t in items):
            raise _Reject(400, "input must be a string or a non-empty array of strings")
        limit = 32 if modality == "image" else min(model.max_items, 2048)
        if len(items) > limit:
            raise _Reject(400, f"at most {limit} inputs per request")
        if modality == "image":
            if not model.multimodal:
                raise _Reject(400, f"{seen.model} does not accept images")
            return [
                self._image_vector(t, dims, seen, model, i, data_uri_ok=True, bare_ok=False)
                for i, t in enumerate(items)
            ]
        return [self._text_vector(t, dims, seen) for t in items]

    def _embed_nvidia_nim(self, path: str, body: dict[str, Any], seen: Seen) -> list[list[float]]:
        # NIM's /v1/embeddings is OpenAI's plus input_type, which its asymmetric models require
        model = self.models.get(body.get("model", ""))
        if model is not None and model.tasks:
            seen.task = body.get("input_type")
            if seen.task not in model.tasks:
                raise _Reject(400, f"input_type must be one of {model.tasks} for {body.get('model')}")
        elif "input_type" in body:
            raise _Reject(400, f"{body.get('model')} takes no input_type")
        rest = {k: v for k, v in body.items() if k != "input_type"}
        return self._embed_openai(path, rest, seen)

    def _embed_huggingface(self, path: str, body: dict[str, Any], seen: Seen) -> list[list[float]]:
        # POST /hf-inference/models/{org}/{model}/pipeline/feature-extraction, the model in the path
        prefix, suffix = "/hf-inference/models/", "/pipeline/feature-extraction"
        if not path.endswith(suffix) or path.count("/") > 6:
            raise _Reject(404, f"no route {path!r}")
        name = urllib.parse.unquote(path[len(prefix) : -len(suffix)])
        seen.model = name
        if name not in self.models:
            # a model lookalike does not know is the user's choice, not a client bug
            raise _Reject(404, f"Model {name} does not exist", violation=False)
        model = self.models[name]
        self._only(
            body, {"inputs", "normalize", "prompt_name", "truncate", "truncation_direction"}, {"inputs"}
        )
        for flag in ("normalize", "truncate"):
            if flag in body and not isinstance(body[flag], bool):
                raise _Reject(422, f"{flag} must be a boolean")
        raw = body["inputs"]
        items = [raw] if isinstance(raw, str) else raw
        if not isinstance(items, list) or not items or not all(isinstance(t, str) for t in items):
            raise _Reject(422, "inputs must be a string or a non-empty array of strings")
        if len(items) > model.max_items:
            # not a violation: batch_size= is the user's to raise (a self-hosted server may take more);
            # lookalike's default keeps to 32, which the tests check from the request sizes
            raise _Reject(
                413,
                f"batch size {len(items)} > maximum allowed batch size {model.max_items}",
                violation=False,
            )
        return [self._text_vector(t, model.dimensions, seen) for t in items]

    def _embed_voyage(self, path: str, body: dict[str, Any], seen: Seen) -> list[list[float]]:
        model = self._model(body, seen)
        if "input_type" in body:
            seen.task = body["input_type"]
            if body["input_type"] not in (None, "query", "document"):
                raise _Reject(400, f"input_type {body['input_type']!r} invalid")
        dims = self._dims(model, body.get("output_dimension"), seen, "output_dimension")
        if path.endswith("/embeddings"):
            self._only(
                body,
                {
                    "model",
                    "input",
                    "input_type",
                    "truncation",
                    "output_dimension",
                    "output_dtype",
                    "encoding_format",
                },
                {"model", "input"},
            )
            items = body["input"]
            if not isinstance(items, list) or not items or not all(isinstance(t, str) for t in items):
                raise _Reject(400, "input must be a non-empty list of strings")
            if len(items) > model.max_items:
                raise _Reject(400, f"at most {model.max_items} inputs")
            return [self._text_vector(t, dims, seen) for t in items]
        self._only(
            body,
            {"model", "inputs", "input_type", "truncation", "output_encoding", "output_dimension"},
            {"model", "inputs"},
        )
        if not model.multimodal:
            raise _Reject(400, f"{seen.model} is not a multimodal model")
        inputs = body["inputs"]
        if not isinstance(inputs, list) or not inputs or len(inputs) > model.max_items:
            raise _Reject(400, f"inputs must be a list of 1..{model.max_items} items")
        out = []
        for i, entry in enumerate(inputs):
            if (
                not isinstance(entry, dict)
                or set(entry) != {"content"}
                or not isinstance(entry["content"], list)
            ):
                raise _Reject(400, f"inputs[{i}] must be {{'content': [...]}}")
            parts = entry["content"]
            if len(parts) != 1:
                raise _Reject(400, f"inputs[{i}]: lookalike sends one part per input")
            part = parts[0]
            kind = part.get("type") if isinstance(part, dict) else None
            if kind == "text" and set(part) == {"type", "text"}:
                out.append(self._text_vector(part["text"], dims, seen))
            elif kind == "image_url" and set(part) == {"type", "image_url"}:
                if not str(part["image_url"]).startswith(("http://", "https://")):
                    raise _Reject(400, f"inputs[{i}]: image_url must be http(s)")
                out.append(self._image_vector(part["image_url"], dims, seen, model, i))
            elif kind == "image_base64" and set(part) == {"type", "image_base64"}:
                if not str(part["image_base64"]).startswith("data:image/"):
                    raise _Reject(400, f"inputs[{i}]: image_base64 must be a data URI")
                out.append(self._image_vector(part["image_base64"], dims, seen, model, i, data_uri_ok=True))
            else:
                raise _Reject(400, f"inputs[{i}]: unknown content part {part!r}"[:200])
        return out

    def _embed_cohere(self, path: str, body: dict[str, Any], seen: Seen) -> list[list[float]]:
        self._only(
            body,
            {
                "model",
                "input_type",
                "embedding_types",
                "texts",
                "images",
                "inputs",
                "output_dimension",
                "max_tokens",
                "truncate",
            },
            {"model", "input_type", "embedding_types"},
        )
        model = self._model(body, seen)
        seen.task = body["input_type"]
        if body["input_type"] not in (
            "search_document",
            "search_query",
            "classification",
            "clustering",
            "image",
        ):
            raise _Reject(400, f"input_type {body['input_type']!r} invalid")
        if body["embedding_types"] != ["float"]:
            raise _Reject(400, "lookalike must ask for embedding_types=['float']")
        if "output_dimension" in body and seen.model != "embed-v4.0":
            raise _Reject(400, "output_dimension is only supported by embed-v4.0")
        dims = self._dims(model, body.get("output_dimension"), seen, "output_dimension")
        given = [k for k in ("texts", "images", "inputs") if k in body]
        if len(given) != 1:
            raise _Reject(400, "send exactly one of texts, images, inputs")
        items = body[given[0]]
        if not isinstance(items, list) or not items or len(items) > model.max_items:
            raise _Reject(400, f"{given[0]} must hold 1..{model.max_items} items")
        if given[0] == "texts":
            if body["input_type"] == "image":
                raise _Reject(400, "input_type 'image' needs images")
            return [self._text_vector(t, dims, seen) for t in items]
        if given[0] != "images" or not model.multimodal:
            raise _Reject(400, f"{seen.model} does not take {given[0]}")
        if model.images_per_request is not None:
            if len(items) > model.images_per_request or body["input_type"] != "image":
                raise _Reject(400, f"{seen.model}: one image per request, with input_type 'image'")
        out = []
        for i, uri in enumerate(items):
            if not isinstance(uri, str) or not uri.startswith("data:image/"):
                raise _Reject(400, f"images[{i}] must be a data URI")
            out.append(self._image_vector(uri, dims, seen, model, i, data_uri_ok=True))
        return out

    def _answer(self, body: dict[str, Any], vectors: list[list[float]], seen: Seen) -> Any:
        if self.flavor == "huggingface":
            if self.models[seen.model or ""].token_level:
                # one vector per token: "[CLS]", the words, "[SEP]"
                return [[v, v[::-1], v] for v in vectors]
            return vectors
        if self.flavor == "cohere":
            return {
                "id": "stub",
                "embeddings": {"float": vectors},
                "meta": {"api_version": {"version": "2"}},
                "response_type": "embeddings_by_type",
            }
        return {
            "object": "list",
            "model": body.get("model"),
            "data": [{"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(vectors)],
            "usage": {"total_tokens": len(vectors), "prompt_tokens": len(vectors)},
        }

    # -- vectors ----------------------------------------------------------------------------------
    def _check_bad(self, value: str, position: int) -> None:
        for marker in self.bad_markers:
            if marker in value:
                raise _Reject(400, f"input {position} could not be processed: {value[:120]}", violation=False)

    def _text_vector(self, text: Any, dims: int, seen: Seen) -> list[float]:
        if not isinstance(text, str) or not text:
            raise _Reject(400, "texts must be non-empty strings")
        seen.kinds.append("text")
        seen.items.append(text[:80])
        self._check_bad(text, len(seen.items) - 1)
        words = {w.strip(".,!?").lower() for w in text.split()}
        colour = next((c for c in COLOURS if c in words), None)
        if colour is not None:
            vec = content_vector(Image.new("RGB", (8, 8), COLOURS[colour]), self._full(seen))
        else:
            vec = _hash_vector(f"text:{text}", self._full(seen))
        return _truncate(vec, dims)

    def _full(self, seen: Seen) -> int:
        return self.models[seen.model or ""].dimensions

    def _image_vector(
        self,
        value: str,
        dims: int,
        seen: Seen,
        model: StubModel,
        position: int,
        *,
        data_uri_ok: bool = False,
        bare_ok: bool = True,
    ) -> list[float]:
        seen.kinds.append("image")
        if value.startswith(("http://", "https://")):
            seen.items.append(value)
            self._check_bad(value, position)
            host = urlsplit(value).hostname
            if host in ("127.0.0.1", "localhost"):
                try:
                    with urllib.request.urlopen(value, timeout=5) as resp:
                        img = Image.open(io.BytesIO(resp.read()))
                        img.load()
                except Exception as exc:
                    raise _Reject(400, f"could not fetch image {value}: {exc}", violation=False) from exc
                return _truncate(content_vector(img, self._full(seen)), dims)
            return _truncate(_hash_vector(f"url:{value}", self._full(seen)), dims)
        if value.startswith("data:"):
            if not data_uri_ok:
                raise _Reject(400, f"input {position}: data URIs are not accepted here")
            head, _, b64 = value.partition(",")
            if not head.startswith("data:image/") or not head.endswith(";base64"):
                raise _Reject(400, f"input {position}: malformed data URI {head!r}")
        elif bare_ok:
            b64 = value
        else:
            raise _Reject(400, f"input {position}: expected a URL or data URI")
        try:
            raw = base64.b64decode(b64, validate=True)
            img = Image.open(io.BytesIO(raw))
            img.load()
        except (binascii.Error, ValueError, OSError) as exc:
            raise _Reject(400, f"input {position}: not a base64 image ({exc})") from exc
        w, h = img.size
        seen.items.append(f"b64:{w}x{h}")
        seen.image_sizes.append((w, h))
        if model.max_image_pixels is not None and w * h > model.max_image_pixels:
            raise _Reject(400, f"input {position}: {w}x{h} image exceeds {model.max_image_pixels} pixels")
        if model.max_image_side is not None and min(w, h) > model.max_image_side:
            raise _Reject(
                400, f"input {position}: {w}x{h} image was not downscaled to {model.max_image_side}"
            )
        return _truncate(content_vector(img, self._full(seen)), dims)


def _truncate(vec: np.ndarray, dims: int) -> list[float]:
    out = vec[:dims]
    return (out / np.linalg.norm(out)).round(6).tolist()


# ---------------------------------------------------------------------------------------------------
# Cloud providers with their own request shapes and auth: Bedrock (SigV4), Vertex AI, Gemini.

CLOUD_MODELS: dict[str, dict[str, StubModel]] = {
    "bedrock": {
        # Titan multimodal: 2048x2048 px at most (AWS docs); lookalike promises about a megapixel
        "amazon.titan-embed-image-v1": StubModel(
            1024, allowed_dimensions=(256, 384, 1024), multimodal=True, max_image_pixels=1024 * 1024
        ),
        "amazon.titan-embed-text-v2:0": StubModel(1024, allowed_dimensions=(256, 512, 1024)),
    },
    "vertex": {
        # the model resizes to 512x512; lookalike promises to send no more than that many pixels
        "multimodalembedding@001": StubModel(
            1408, allowed_dimensions=(128, 256, 512, 1408), multimodal=True, max_image_pixels=512 * 512
        ),
    },
    "gemini": {"gemini-embedding-001": StubModel(3072, 128, max_items=100)},
}

STUB_ACCESS_KEY = "AKIDLOOKALIKETEST"
STUB_SECRET_KEY = "stub/secret+key/for-sigv4-tests"
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~")
_BEDROCK_ERRORS = {400: "ValidationException", 403: "AccessDeniedException", 429: "ThrottlingException"}
_GOOGLE_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}


def _aws_encode(text: str) -> str:
    """AWS's URI encoding of one canonical-request part, byte by byte ('/' kept)."""
    return "".join(
        ch if ch in _UNRESERVED or ch == "/" else "".join(f"%{b:02X}" for b in ch.encode("utf-8"))
        for ch in text
    )


def _hmac(key: bytes, text: str) -> bytes:
    import hmac

    return hmac.new(key, text.encode("utf-8"), hashlib.sha256).digest()


class CloudStub(_Served):
    """A strict fake of Bedrock's InvokeModel, Vertex AI's ``:predict`` or Gemini's
    ``:batchEmbedContents``, served on 127.0.0.1.

    Bedrock checks the SigV4 signature by recomputing it from the request it received with the known
    test secret (or accepts a bearer token from ``bearer_tokens``); Vertex takes a bearer token from
    ``valid_keys``; Gemini an ``x-goog-api-key``. Bodies are checked field by field; errors are shaped
    as each service shapes them. ``violations`` lists requests lookalike should never have sent.
    """

    def __init__(
        self,
        flavor: str,
        *,
        access_key: str = STUB_ACCESS_KEY,
        secret_key: str = STUB_SECRET_KEY,
        session_token: str | None = None,
        region: str = "us-east-1",
        bearer_tokens: Iterable[str] = ("bedrock-api-key",),
        valid_keys: Iterable[str] = ("test-key",),
        project: str = "test-project",
        location: str = "us-central1",
        latency: float = 0.0,
    ) -> None:
        if flavor not in CLOUD_MODELS:
            raise ValueError(f"unknown flavor {flavor!r}")
        self.flavor = flavor
        self.models = dict(CLOUD_MODELS[flavor])
        self.access_key, self.secret_key, self.session_token = access_key, secret_key, session_token
        self.region = region
        self.bearer_tokens = set(bearer_tokens)
        self.valid_keys = set(valid_keys)
        self.project, self.location = project, location
        self.latency = latency
        self.bad_markers: set[str] = set()
        self.seen: list[Seen] = []
        self.violations: list[str] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        self.server = LocalHTTPServer()
        prefix = {"bedrock": "/model/", "vertex": "/v1/projects/", "gemini": "/v1beta/models/"}[flavor]
        self.server.route(prefix, self._handle, prefix=True)

    @property
    def api_base(self) -> str:
        """What to pass as ``api_base``."""
        suffix = {"bedrock": "", "vertex": "/v1", "gemini": "/v1beta"}[self.flavor]
        return self.server.base_url + suffix

    # ------------------------------------------------------------------ serving
    def _handle(self, request: Request) -> Response:
        with self._lock:
            fault = self._faults.pop(0) if self._faults else None
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        seen = Seen(request.path, None, [], [], None, None, len(request.body))
        try:
            time.sleep(self.latency + (fault.seconds if fault and fault.kind == "delay" else 0.0))
            return self._serve(request, seen, fault)
        finally:
            with self._lock:
                self.in_flight -= 1

    def _serve(self, request: Request, seen: Seen, fault: Fault | None) -> Response:
        try:
            if request.method != "POST":
                raise _Reject(405, f"{request.method} not allowed")
            if not request.headers.get("content-type", "").startswith("application/json"):
                raise _Reject(415, "Content-Type must be application/json")
            model = getattr(self, f"_auth_{self.flavor}")(request, seen)
            if fault is not None and fault.kind == "status":
                return self._error(seen, fault.status, "injected failure", fault.retry_after)
            try:
                body = json.loads(request.body)
            except ValueError as exc:
                raise _Reject(400, f"body is not JSON: {exc}") from exc
            if not isinstance(body, dict):
                raise _Reject(400, "body must be a JSON object")
            vectors = getattr(self, f"_embed_{self.flavor}")(body, model, seen)
        except _Reject as exc:
            if exc.violation:
                with self._lock:
                    self.violations.append(f"{request.path}: {exc.message}")
            return self._error(seen, exc.status, exc.message)
        with self._lock:
            self.seen.append(seen)
        if fault is not None and fault.kind == "malformed":
            return Response(200, b"<html>502 Bad Gateway</html>", "text/html")
        if fault is not None and fault.kind == "wrong_dims":
            vectors = [v[:-1] for v in vectors]
        if fault is not None and fault.kind == "nan":
            vectors = [[float("nan"), *v[1:]] for v in vectors]
        if fault is not None and fault.kind == "wrong_count":
            vectors = vectors[:-1] if len(vectors) > 1 else vectors + vectors
        return Response.json(self._answer(vectors, seen))

    def _answer(self, vectors: list[list[float]], seen: Seen) -> dict[str, Any]:
        if self.flavor == "bedrock":
            if len(vectors) != 1:  # Bedrock has no list answer; a wrong count becomes a bad body
                return {"embeddings": vectors}
            return {"embedding": vectors[0], "inputTextTokenCount": sum(k == "text" for k in seen.kinds)}
        if self.flavor == "vertex":
            key = "imageEmbedding" if seen.kinds == ["image"] else "textEmbedding"
            return {"predictions": [{key: v} for v in vectors], "deployedModelId": "stub"}
        return {"embeddings": [{"values": v} for v in vectors]}

    def _error(self, seen: Seen, status: int, message: str, retry_after: str | None = None) -> Response:
        seen.status = status
        with self._lock:
            self.seen.append(seen)
        headers = {"Retry-After": retry_after} if retry_after else {}
        if self.flavor == "bedrock":
            kind = _BEDROCK_ERRORS.get(status, "InternalServerException")
            headers["x-amzn-ErrorType"] = f"{kind}:http://internal.amazon.com/coral/com.amazon.bedrock/"
            return Response.json({"message": message}, status, headers)
        body = {
            "error": {"code": status, "message": message, "status": _GOOGLE_STATUS.get(status, "UNKNOWN")}
        }
        if self.flavor == "gemini" and message.startswith("API key not valid"):
            body["error"]["details"] = [
                {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"}
            ]
        return Response.json(body, status, headers)

    # ------------------------------------------------------------------ auth and paths
    def _auth_bedrock(self, request: Request, seen: Seen) -> StubModel:
        parts = request.path.split("/")
        if len(parts) != 4 or parts[1] != "model" or parts[3] != "invoke":
            raise _Reject(404, f"no route {request.path}")
        seen.model = urllib.parse.unquote(parts[2])
        if ":" in parts[2]:
            raise _Reject(400, "the model ID must travel URL-encoded (':' as %3A), as AWS SDKs send it")
        auth = request.headers.get("authorization", "")
        if auth.startswith("Bearer "):
            if auth[7:] not in self.bearer_tokens:
                raise _Reject(
                    403, "Invalid API Key format: Must start with pre-defined prefix", violation=False
                )
        else:
            self._check_sigv4(request, auth)
        if seen.model not in self.models:
            raise _Reject(400, f"The provided model identifier is invalid: {seen.model}")
        return self.models[seen.model]

    def _check_sigv4(self, request: Request, auth: str) -> None:
        if not auth.startswith("AWS4-HMAC-SHA256 "):
            raise _Reject(403, "Missing Authentication Token", violation=False)
        fields = dict(p.strip().split("=", 1) for p in auth[len("AWS4-HMAC-SHA256 ") :].split(","))
        key_id, date, region, service, term = fields["Credential"].split("/")
        if key_id != self.access_key:
            raise _Reject(403, "The security token included in the request is invalid.", violation=False)
        amz_date = request.headers.get("x-amz-date", "")
        if region != self.region or service != "bedrock" or term != "aws4_request" or date != amz_date[:8]:
            raise _Reject(
                403, f"Credential should be scoped to a valid region/service: {fields['Credential']}"
            )
        signed = fields["SignedHeaders"].split(";")
        if "host" not in signed or "x-amz-date" not in signed or signed != sorted(signed):
            raise _Reject(403, f"SignedHeaders must be sorted and include host and x-amz-date: {signed}")
        when = time.mktime(time.strptime(amz_date, "%Y%m%dT%H%M%SZ")) - time.timezone
        if abs(time.time() - when) > 300:
            raise _Reject(403, "Signature expired", violation=False)
        token = request.headers.get("x-amz-security-token")
        if self.session_token is not None and (
            token != self.session_token or "x-amz-security-token" not in signed
        ):
            raise _Reject(403, "The security token included in the request is invalid.", violation=False)
        query = "&".join(
            sorted(f"{_aws_encode(k)}={_aws_encode(v)}" for k, vs in request.query.items() for v in vs)
        )
        headers = "".join(f"{h}:{' '.join(request.headers.get(h, '').split())}\n" for h in signed)
        canonical = "\n".join(
            [
                "POST",
                _aws_encode(request.path),
                query,
                headers,
                ";".join(signed),
                hashlib.sha256(request.body).hexdigest(),
            ]
        )
        scope = f"{date}/{region}/{service}/aws4_request"
        digest = hashlib.sha256(canonical.encode("utf-8")).hexdigest()
        key = ("AWS4" + self.secret_key).encode("utf-8")
        for part in (date, region, service, "aws4_request"):
            key = _hmac(key, part)
        expected = _hmac(key, f"AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{digest}").hex()
        if fields.get("Signature") != expected:
            raise _Reject(
                403,
                "The request signature we calculated does not match the signature you provided.",
            )

    def _auth_vertex(self, request: Request, seen: Seen) -> StubModel:
        prefix = f"/v1/projects/{self.project}/locations/{self.location}/publishers/google/models/"
        if not request.path.startswith(prefix) or not request.path.endswith(":predict"):
            raise _Reject(404, f"no route {request.path} (project {self.project}, location {self.location})")
        auth = request.headers.get("authorization", "")
        if not auth.startswith("Bearer ") or auth[7:] not in self.valid_keys:
            raise _Reject(
                401,
                "Request had invalid authentication credentials. Expected OAuth 2 access token.",
                violation=False,
            )
        seen.model = request.path[len(prefix) : -len(":predict")]
        if seen.model not in self.models:
            raise _Reject(404, f"Publisher Model `{seen.model}` not found.")
        return self.models[seen.model]

    def _auth_gemini(self, request: Request, seen: Seen) -> StubModel:
        if not request.path.endswith(":batchEmbedContents"):
            raise _Reject(404, f"no route {request.path}")
        if "authorization" in request.headers:
            raise _Reject(400, "Gemini keys travel in x-goog-api-key, not Authorization")
        key = request.headers.get("x-goog-api-key")
        if key is None:
            raise _Reject(403, "Method doesn't allow unregistered callers", violation=False)
        if key not in self.valid_keys:
            raise _Reject(400, "API key not valid. Please pass a valid API key.", violation=False)
        seen.model = request.path[len("/v1beta/models/") : -len(":batchEmbedContents")]
        if seen.model not in self.models:
            raise _Reject(404, f"models/{seen.model} is not found")
        return self.models[seen.model]

    # ------------------------------------------------------------------ bodies
    def _check_bad(self, value: str) -> None:
        if any(marker in value for marker in self.bad_markers):
            raise _Reject(400, f"Malformed input request: {value[:80]}", violation=False)

    def _text(self, text: Any, model: StubModel, dims: int, seen: Seen) -> list[float]:
        if not isinstance(text, str) or not text:
            raise _Reject(400, "text must be a non-empty string")
        seen.kinds.append("text")
        seen.items.append(text[:80])
        self._check_bad(text)
        words = {w.strip(".,!?").lower() for w in text.split()}
        colour = next((c for c in COLOURS if c in words), None)
        full = model.dimensions
        if colour is not None:
            vec = content_vector(Image.new("RGB", (8, 8), COLOURS[colour]), full)
        else:
            vec = _hash_vector(f"text:{text}", full)
        return _truncate(vec, dims)

    def _image(self, b64: Any, model: StubModel, dims: int, seen: Seen, *, max_side: int) -> list[float]:
        if not isinstance(b64, str) or b64.startswith("data:"):
            raise _Reject(400, "image must be bare base64 (no data: prefix)")
        try:
            raw = base64.b64decode(b64, validate=True)
            img = Image.open(io.BytesIO(raw))
            img.load()
        except (binascii.Error, ValueError, OSError) as exc:
            raise _Reject(400, f"not a base64 image ({exc})") from exc
        w, h = img.size
        seen.kinds.append("image")
        seen.items.append(f"b64:{w}x{h}")
        seen.image_sizes.append((w, h))
        if max(w, h) > max_side:
            raise _Reject(400, f"image {w}x{h} is over the {max_side}x{max_side} limit")
        if model.max_image_pixels is not None and w * h > model.max_image_pixels:
            raise _Reject(400, f"{w}x{h} image was not downscaled to {model.max_image_pixels} pixels")
        return _truncate(content_vector(img, model.dimensions), dims)

    @staticmethod
    def _only(body: dict[str, Any], allowed: set[str]) -> None:
        unknown = set(body) - allowed
        if unknown:
            raise _Reject(400, f"extraneous key {sorted(unknown)} is not permitted")

    def _dims(self, model: StubModel, value: Any, seen: Seen, name: str) -> int:
        if value is None:
            return model.dimensions
        if not model.allows(value):
            raise _Reject(400, f"{name}={value!r} is not supported by {seen.model}")
        seen.dimensions = value
        return int(value)

    def _embed_bedrock(self, body: dict[str, Any], model: StubModel, seen: Seen) -> list[list[float]]:
        if model.multimodal:
            self._only(body, {"inputText", "inputImage", "embeddingConfig"})
            config = body.get("embeddingConfig")
            if config is not None and (
                not isinstance(config, dict) or set(config) != {"outputEmbeddingLength"}
            ):
                raise _Reject(400, "embeddingConfig must be {'outputEmbeddingLength': n}")
            dims = self._dims(
                model, (config or {}).get("outputEmbeddingLength"), seen, "outputEmbeddingLength"
            )
        else:
            self._only(body, {"inputText", "dimensions", "normalize", "embeddingTypes"})
            if "normalize" in body and not isinstance(body["normalize"], bool):
                raise _Reject(400, "normalize must be a boolean")
            dims = self._dims(model, body.get("dimensions"), seen, "dimensions")
        given = [k for k in ("inputText", "inputImage") if k in body]
        if len(given) != 1:
            # both would be averaged into one vector: lookalike sends one input per request
            raise _Reject(400, f"lookalike must send exactly one of inputText/inputImage, got {given}")
        if given == ["inputImage"]:
            if len(body["inputImage"]) > 25 * 1024 * 1024:
                raise _Reject(400, "inputImage is over 25 MB")
            return [self._image(body["inputImage"], model, dims, seen, max_side=2048)]
        text = body["inputText"]
        if isinstance(text, str) and len(text.split()) > (128 if model.multimodal else 8192):
            raise _Reject(400, "Malformed input request: too many input tokens", violation=False)
        return [self._text(text, model, dims, seen)]

    def _embed_vertex(self, body: dict[str, Any], model: StubModel, seen: Seen) -> list[list[float]]:
        self._only(body, {"instances", "parameters"})
        params = body.get("parameters", {})
        if not isinstance(params, dict) or set(params) - {"dimension"}:
            raise _Reject(400, f"unknown parameters {params!r}")
        dims = self._dims(model, params.get("dimension"), seen, "dimension")
        instances = body.get("instances")
        if not isinstance(instances, list) or len(instances) != 1:
            raise _Reject(400, "lookalike sends exactly one instance per request")
        instance = instances[0]
        if not isinstance(instance, dict) or len(instance) != 1 or set(instance) - {"text", "image"}:
            raise _Reject(400, "an instance holds exactly one of text or image")
        if "text" in instance:
            if isinstance(instance["text"], str) and len(instance["text"]) > 1024:
                raise _Reject(400, "text is longer than 1024 characters")
            return [self._text(instance["text"], model, dims, seen)]
        image = instance["image"]
        if not isinstance(image, dict) or len(set(image) & {"bytesBase64Encoded", "gcsUri"}) != 1:
            raise _Reject(400, "image needs exactly one of bytesBase64Encoded or gcsUri")
        if set(image) - {"bytesBase64Encoded", "gcsUri", "mimeType"}:
            raise _Reject(400, f"unknown image fields {sorted(image)}")
        if "gcsUri" in image:
            if not str(image["gcsUri"]).startswith("gs://"):
                raise _Reject(400, "gcsUri must be gs://bucket/object")
            seen.kinds.append("image")
            seen.items.append(image["gcsUri"])
            self._check_bad(image["gcsUri"])
            return [_truncate(_hash_vector(f"gcs:{image['gcsUri']}", model.dimensions), dims)]
        if len(image["bytesBase64Encoded"]) > 20 * 1024 * 1024:
            raise _Reject(400, "image is over 20 MB")
        return [self._image(image["bytesBase64Encoded"], model, dims, seen, max_side=4096)]

    def _embed_gemini(self, body: dict[str, Any], model: StubModel, seen: Seen) -> list[list[float]]:
        self._only(body, {"requests"})
        requests = body.get("requests")
        if not isinstance(requests, list) or not 1 <= len(requests) <= model.max_items:
            raise _Reject(400, f"requests must hold 1..{model.max_items} items")
        out = []
        for i, req in enumerate(requests):
            if not isinstance(req, dict):
                raise _Reject(400, f"requests[{i}] must be an object")
            self._only(req, {"model", "content", "taskType", "title", "outputDimensionality"})
            if req.get("model") != f"models/{seen.model}":
                raise _Reject(
                    400, f"requests[{i}].model must be models/{seen.model}, got {req.get('model')!r}"
                )
            if req.get("taskType") not in ("RETRIEVAL_DOCUMENT", "RETRIEVAL_QUERY", None):
                raise _Reject(400, f"requests[{i}].taskType {req.get('taskType')!r} is not expected")
            seen.task = req.get("taskType")
            dims = self._dims(model, req.get("outputDimensionality"), seen, "outputDimensionality")
            parts = (req.get("content") or {}).get("parts") if isinstance(req.get("content"), dict) else None
            if not isinstance(parts, list) or len(parts) != 1 or set(parts[0]) != {"text"}:
                raise _Reject(400, f"requests[{i}].content must be {{'parts': [{{'text': …}}]}}")
            out.append(self._text(parts[0]["text"], model, dims, seen))
        return out
