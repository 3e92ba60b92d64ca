"""Model files for the local ONNX provider: the known models, where their files live, downloading them.

A local model is named by a short alias (``clip-vit-b-32``), a Hugging Face repo id with ONNX exports in
the transformers.js layout (``Xenova/clip-vit-base-patch32``: ``onnx/{vision,text}_model{,_quantized}.onnx``
next to ``tokenizer.json``, ``preprocessor_config.json`` and ``config.json``), or a local directory with the
same files (``onnx/`` or flat). Files are fetched one by one with ``huggingface_hub`` into its standard
cache (``HF_HOME`` / ``HF_HUB_CACHE``), only those needed, and only when first needed; with
``HF_HUB_OFFLINE=1`` nothing touches the network and a missing file is a :class:`ModelNotFoundError` that
says how to get it.
"""

from __future__ import annotations

import json
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from lookalike.errors import ConfigurationError, MissingDependencyError, ModelNotFoundError

__all__ = [
    "KNOWN_MODELS",
    "KnownModel",
    "ModelFiles",
    "ModelSource",
    "Precision",
    "Tower",
    "check_precision",
    "download_model",
    "list_models",
    "resolve_model",
]

Precision = Literal["fp32", "int8"]
Tower = Literal["text", "vision"]
PRECISIONS: tuple[Precision, ...] = ("fp32", "int8")

# transformers.js suffixes: int8 is "_quantized" (dynamic quantisation, uint8/int8 weights).
_SUFFIX = {"fp32": "", "int8": "_quantized"}
TEXT_FILES = ("tokenizer.json",)
TEXT_EXTRA_FILES = ("tokenizer_config.json", "special_tokens_map.json", "config.json")
VISION_FILES = ("preprocessor_config.json",)
VISION_EXTRA_FILES = ("config.json",)
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.\-]*/[\w.\-]+$")


@dataclass(frozen=True)
class KnownModel:
    """A model with a short alias: where it lives and what it gives."""

    alias: str
    repo_id: str
    family: Literal["clip", "siglip", "siglip2"]
    dimensions: int
    image_size: int
    license: str
    description: str

    def as_dict(self) -> dict[str, Any]:
        """A JSON-able description (for ``lookalike models list``)."""
        return {
            "name": self.alias,
            "repo_id": self.repo_id,
            "family": self.family,
            "dimensions": self.dimensions,
            "image_size": self.image_size,
            "license": self.license,
            "description": self.description,
        }


KNOWN_MODELS: dict[str, KnownModel] = {
    m.alias: m
    for m in [
        KnownModel(
            "clip-vit-b-32", "Xenova/clip-vit-base-patch32", "clip", 512, 224, "MIT",
            "OpenAI CLIP ViT-B/32: the default; fast, good general image search",
        ),
        KnownModel(
            "clip-vit-b-16", "Xenova/clip-vit-base-patch16", "clip", 512, 224, "MIT",
            "OpenAI CLIP ViT-B/16: finer detail, about 4x the compute of B/32",
        ),
        KnownModel(
            "siglip-base-224", "Xenova/siglip-base-patch16-224", "siglip", 768, 224, "Apache-2.0",
            "Google SigLIP base/16 at 224 px: better text-image matching than CLIP",
        ),
        KnownModel(
            "siglip-base-256", "Xenova/siglip-base-patch16-256", "siglip", 768, 256, "Apache-2.0",
            "Google SigLIP base/16 at 256 px",
        ),
        KnownModel(
            "siglip2-base-224", "onnx-community/siglip2-base-patch16-224-ONNX", "siglip2", 768, 224,
            "Apache-2.0", "Google SigLIP 2 base/16 at 224 px (multilingual)",
        ),
    ]
}  # fmt: skip
_BY_REPO = {m.repo_id.lower(): m for m in KNOWN_MODELS.values()}


def list_models() -> list[KnownModel]:
    """The models known by a short alias (any other Hugging Face repo id or directory works too)."""
    return list(KNOWN_MODELS.values())


def downloaded(
    name: str, *, cache_dir: str | Path | None = None, revision: str | None = None
) -> dict[str, int]:
    """Which precisions of a model are fully in the local cache, with their size in bytes.

    ``{"fp32": 605_000_000, "int8": 153_000_000}`` when both are; ``{}`` when neither is complete.
    Reads the cache only: never the network.
    """
    source = resolve_model(name, revision=revision, cache_dir=cache_dir)
    files = ModelFiles(source)
    out: dict[str, int] = {}
    for precision in PRECISIONS:
        needed = [onnx_filename("text", precision), onnx_filename("vision", precision)]
        needed += [*TEXT_FILES, *VISION_FILES]
        sizes = [size for size in map(files.cached_size, needed) if size is not None]
        if len(sizes) == len(needed):
            out[precision] = sum(sizes)
    return out


def check_precision(precision: str) -> Precision:
    """Validate a ``precision`` argument."""
    for known in PRECISIONS:
        if precision == known:
            return known
    raise ConfigurationError(f"precision must be one of {PRECISIONS}, got {precision!r}")


def onnx_filename(tower: Tower, precision: Precision) -> str:
    """``text_model.onnx``, ``vision_model_quantized.onnx``, ..."""
    return f"{tower}_model{_SUFFIX[precision]}.onnx"


def _import_hub() -> Any:
    try:
        import huggingface_hub
    except ImportError as exc:
        raise MissingDependencyError("downloading local models", "local", package="huggingface_hub") from exc
    return huggingface_hub


def hub_offline() -> bool:
    """Whether ``HF_HUB_OFFLINE`` is set (read now, not when huggingface_hub was imported)."""
    value = os.environ.get("HF_HUB_OFFLINE")
    if value is not None:
        return value.strip().upper() in ("1", "ON", "YES", "TRUE")
    try:
        from huggingface_hub import constants
    except ImportError:
        return False
    return bool(constants.HF_HUB_OFFLINE)


def hub_cache_dir(cache_dir: str | Path | None = None) -> Path:
    """The Hugging Face hub cache in effect now (``cache_dir``, ``HF_HUB_CACHE``, ``HF_HOME``/hub)."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if os.environ.get(var):
            return Path(os.environ[var]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg).expanduser() / "huggingface" / "hub"


@dataclass(frozen=True)
class ModelSource:
    """Where a model's files come from: a local directory or a Hugging Face repo."""

    name: str
    repo_id: str | None = None
    directory: Path | None = None
    known: KnownModel | None = None
    revision: str | None = None
    cache_dir: Path | None = None

    @property
    def label(self) -> str:
        """How errors name the model."""
        if self.directory is not None:
            return f"model directory {str(self.directory)!r}"
        if self.known is not None and self.name != self.repo_id:
            return f"model {self.name!r} ({self.repo_id})"
        return f"model {self.repo_id!r}"


_HUB_CHECK_TIMEOUT = 5.0
_hub_checked: dict[str, str] = {}
_PROXY_VARS = ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy", "HTTP_PROXY", "http_proxy")


def hub_unreachable(timeout: float = _HUB_CHECK_TIMEOUT) -> str:
    """Why the Hugging Face hub can't be reached from here ("" when it can, or when we can't tell).

    A name that doesn't resolve or a connection that is refused fails in seconds here, where
    huggingface_hub would spend half a minute or more in back-off retries per file. The answer is kept
    for the process. Behind a proxy nothing is checked (the proxy resolves names, not us).
    """
    from urllib.parse import urlsplit

    endpoint = os.environ.get("HF_ENDPOINT", "").strip() or "https://huggingface.co"
    if any(os.environ.get(v) for v in _PROXY_VARS):
        return ""
    if endpoint in _hub_checked:
        return _hub_checked[endpoint]
    parts = urlsplit(endpoint)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    _hub_checked[endpoint] = reason = _probe(host, port, timeout) if host else ""
    return reason


def _probe(host: str, port: int, timeout: float) -> str:
    import socket
    from concurrent.futures import ThreadPoolExecutor
    from concurrent.futures import TimeoutError as FutureTimeout

    # getaddrinfo has no timeout of its own: a resolver that never answers must not hang the command
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lookalike-dns")
    try:
        addresses = pool.submit(socket.getaddrinfo, host, port, 0, socket.SOCK_STREAM).result(timeout)
    except FutureTimeout:
        return f"looking up {host} took over {timeout:g} s (no network, or no DNS server answers)"
    except socket.gaierror as exc:
        return f"{host} does not resolve ({exc.strerror or exc}: no network, or no DNS)"
    finally:
        pool.shutdown(wait=False)
    last = ""
    for family, kind, proto, _, address in addresses[:3]:
        try:
            with socket.socket(family, kind, proto) as sock:
                sock.settimeout(timeout)
                sock.connect(address)
            return ""
        except OSError as exc:
            last = f"cannot connect to {host} port {port} ({exc.strerror or exc})"
    return last


def _looks_like_path(name: str) -> bool:
    return name.startswith(("/", "./", "../", "~", ".\\")) or "\\" in name or name.count("/") > 1


def resolve_model(
    name: str, *, revision: str | None = None, cache_dir: str | os.PathLike[str] | None = None
) -> ModelSource:
    """Turn an alias, repo id or directory into a :class:`ModelSource` (no network, no big files read)."""
    if not isinstance(name, str) or not name.strip():
        raise ConfigurationError(f"a local model name must be a non-empty string, got {name!r}")
    name = name.strip()
    cache = Path(cache_dir).expanduser() if cache_dir is not None else None
    known = KNOWN_MODELS.get(name.lower()) or _BY_REPO.get(name.lower())
    if known is not None:
        return ModelSource(name, repo_id=known.repo_id, known=known, revision=revision, cache_dir=cache)
    path = Path(name).expanduser()
    if path.is_dir():
        return ModelSource(name, directory=path.resolve())
    if path.exists():
        raise ModelNotFoundError(f"model {name!r} is a file, not a directory holding the model's files")
    if _looks_like_path(name):
        raise ModelNotFoundError(f"model directory {name!r} does not exist")
    if _REPO_ID.match(name):
        return ModelSource(name, repo_id=name, revision=revision, cache_dir=cache)
    raise ModelNotFoundError(
        f"unknown local model {name!r}: use one of {', '.join(KNOWN_MODELS)}, a Hugging Face repo id "
        "with ONNX exports ('owner/name', e.g. 'Xenova/clip-vit-base-patch32'), or a local directory"
    )


def read_json(path: Path, source: ModelSource) -> dict[str, Any]:
    """Read a model's JSON file, turning a broken file into a :class:`ModelNotFoundError`."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelNotFoundError(
            f"{source.label}: {path.name} is unreadable or not valid JSON ({exc}); the model files are "
            "corrupt or incomplete, download them again"
        ) from exc
    if not isinstance(data, dict):
        raise ModelNotFoundError(f"{source.label}: {path.name} does not hold a JSON object")
    return data


def dimensions_from_config(config: dict[str, Any]) -> int | None:
    """Embedding size from a transformers (or open_clip) ``config.json``, if it says."""
    model_type = str(config.get("model_type", ""))
    if model_type.startswith("siglip"):
        vision = config.get("vision_config") or {}
        return int(vision.get("hidden_size", 768))
    for key in ("projection_dim", "embed_dim"):
        if isinstance(config.get(key), int):
            return int(config[key])
    return None


class ModelFiles:
    """Finds (and, for hub models, downloads) the files of one model, each at most once."""

    def __init__(self, source: ModelSource) -> None:
        self.source = source
        self._lock = threading.Lock()
        self._found: dict[str, Path | None] = {}

    def cached_config(self) -> dict[str, Any] | None:
        """``config.json`` if it is already on disk (never downloads)."""
        path = self.cached_path("config.json")
        return read_json(path, self.source) if path is not None else None

    def cached_size(self, filename: str) -> int | None:
        """Size of ``filename`` if it is already on disk (never downloads)."""
        path = self.cached_path(filename)
        return path.stat().st_size if path is not None else None

    def cached_path(self, filename: str) -> Path | None:
        """``filename`` (``*.onnx`` under ``onnx/`` too) if it is already on disk (never downloads)."""
        for rel in self._candidates(filename):
            if self.source.directory is not None:
                path: Path | None = self.source.directory / rel
            else:
                try:
                    hub = _import_hub()
                except MissingDependencyError:
                    return None
                hit = hub.try_to_load_from_cache(
                    self.source.repo_id,
                    rel,
                    cache_dir=str(hub_cache_dir(self.source.cache_dir)),
                    revision=self.source.revision,
                )
                path = Path(hit) if isinstance(hit, str) else None
            if path is not None and path.is_file():
                return path
        return None

    def get(self, filename: str, *, required: bool = True) -> Path | None:
        """Local path of ``filename`` (``*.onnx`` is looked up under ``onnx/`` too).

        A missing required file raises :class:`ModelNotFoundError` saying how to fix it; a missing optional
        one gives ``None``.
        """
        with self._lock:  # one download per file even when the text and image towers load together
            if filename not in self._found:
                path = self._locate(filename, required)
                if path is None and required:
                    self._missing(filename)
                self._found[filename] = path
            return self._found[filename]

    def fetch(self, tower: Tower, precision: Precision) -> dict[str, Path | None]:
        """Every file one tower needs, by name (required ones are never ``None``)."""
        required = (*TEXT_FILES,) if tower == "text" else (*VISION_FILES,)
        optional = TEXT_EXTRA_FILES if tower == "text" else VISION_EXTRA_FILES
        try:
            found: dict[str, Path | None] = {"onnx": self.get(onnx_filename(tower, precision))}
        except ModelNotFoundError as exc:
            # absent, not cached while offline, not downloadable: the export of this precision can't
            # be had, and a caller may fall back to another (folders' precision="auto" does)
            exc.precision = precision
            raise
        found.update({n: self.get(n) for n in required})
        found.update({n: self.get(n, required=False) for n in optional})
        return found

    # ------------------------------------------------------------------ internals
    def _candidates(self, filename: str) -> list[str]:
        return [f"onnx/{filename}", filename] if filename.endswith(".onnx") else [filename]

    def _locate(self, filename: str, required: bool) -> Path | None:
        if self.source.directory is not None:
            for rel in self._candidates(filename):
                path = self.source.directory / rel
                if path.is_file():
                    return path
            return None
        return self._download(filename, required)

    def _download(self, filename: str, required: bool) -> Path | None:
        hub = _import_hub()
        from huggingface_hub import errors

        offline = hub_offline()
        cache = str(hub_cache_dir(self.source.cache_dir))
        # Cache first: no network round trip per file, and a table's model never changes under it
        # because the repo's main branch moved (vectors from other weights would not compare).
        absent = 0
        for rel in self._candidates(filename):
            hit = hub.try_to_load_from_cache(
                self.source.repo_id, rel, cache_dir=cache, revision=self.source.revision
            )
            if isinstance(hit, str):
                return Path(hit)
            absent += hit is not None  # huggingface_hub remembers files a repo does not have
        if absent == len(self._candidates(filename)) and not required:
            return None
        if not offline:
            unreachable = hub_unreachable()
            if unreachable:
                if not required:
                    return None
                raise ModelNotFoundError(
                    f"{self.source.label}: {filename} is not in the local Hugging Face cache and the "
                    f"Hugging Face hub can't be reached: {unreachable}. " + self._how_to_fix()
                )
        for rel in self._candidates(filename):
            try:
                return Path(
                    hub.hf_hub_download(
                        self.source.repo_id,
                        rel,
                        revision=self.source.revision,
                        cache_dir=cache,
                        local_files_only=offline,
                    )
                )
            except errors.LocalEntryNotFoundError as exc:
                # offline, or the hub is unreachable: another spelling won't be cached either
                if not required:
                    return None
                reason = (
                    "downloads are disabled (HF_HUB_OFFLINE=1)"
                    if offline
                    else f"the Hugging Face hub could not be reached ({_first_line(exc)})"
                )
                raise ModelNotFoundError(
                    f"{self.source.label}: {filename} is not in the local Hugging Face cache and {reason}. "
                    + self._how_to_fix()
                ) from exc
            except errors.EntryNotFoundError:
                continue  # not at this spelling: try the next
            except errors.RepositoryNotFoundError as exc:  # GatedRepoError too
                raise ModelNotFoundError(
                    f"{self.source.label}: no such Hugging Face repo, or it needs access rights "
                    f"({type(exc).__name__}); check the name, or use one of {', '.join(KNOWN_MODELS)}"
                ) from exc
            except errors.RevisionNotFoundError as exc:
                raise ModelNotFoundError(
                    f"{self.source.label}: revision {self.source.revision!r} does not exist"
                ) from exc
            except (OSError, ValueError) as exc:  # HTTP errors, disk full, invalid repo id
                raise ModelNotFoundError(
                    f"{self.source.label}: could not download {rel}: {_first_line(exc)}. "
                    + self._how_to_fix()
                ) from exc
        return None

    def _how_to_fix(self) -> str:
        name = self.source.known.alias if self.source.known else self.source.repo_id
        return (
            f"To set it up without a network here: on a computer with internet access run "
            f"`lookalike models download {name}` and copy its Hugging Face cache folder to "
            f"{hub_cache_dir(self.source.cache_dir)} on this one; or put the model's files "
            f"(https://huggingface.co/{self.source.repo_id}: onnx/, tokenizer.json, "
            "preprocessor_config.json, config.json) in a folder and use that folder as the model "
            "(`--model ./my-model` on the command line, `local/./my-model` in Python)"
        )

    def _missing(self, filename: str) -> None:
        where = " or ".join(self._candidates(filename))
        hint = ""
        if filename.endswith("_quantized.onnx"):
            hint = "; the model has no int8 (_quantized) export, use precision='fp32'"
        if self.source.directory is not None:
            raise ModelNotFoundError(f"{self.source.label} is incomplete: {where} is missing{hint}")
        if hint:
            raise ModelNotFoundError(f"{self.source.label} has no {where}{hint}")
        raise ModelNotFoundError(
            f"{self.source.label} has no {where}: it is not a CLIP-family ONNX export in the "
            "transformers.js layout (onnx/text_model.onnx, onnx/vision_model.onnx, tokenizer.json, "
            "preprocessor_config.json)"
        )


def _first_line(exc: BaseException, limit: int = 200) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"


def download_model(
    name: str = "clip-vit-b-32",
    *,
    precision: str = "fp32",
    towers: tuple[Tower, ...] = ("text", "vision"),
    revision: str | None = None,
    cache_dir: str | Path | None = None,
) -> Path:
    """Fetch the files a model needs (only those) into the Hugging Face cache; return its directory.

    For a local directory this only checks that the files are there.
    """
    prec = check_precision(precision)
    files = ModelFiles(resolve_model(name, revision=revision, cache_dir=cache_dir))
    root: Path | None = None
    for tower in towers:
        found = files.fetch(tower, prec)
        root = root or found["tokenizer.json" if tower == "text" else "preprocessor_config.json"]
    if files.source.directory is not None:
        return files.source.directory
    assert root is not None  # towers is not empty
    return root.parent
