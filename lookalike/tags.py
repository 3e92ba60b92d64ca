"""Words for pictures that have none: tags from the model itself.

A multimodal model scores an image against any words. A vocabulary (the built-in
``lookalike/data/vocabulary.txt``, about 1,450 common visual concepts, or your own) is embedded once
per model with its text side (each phrase wrapped in a prompt such as ``"a photo of {}"``); at insert,
one matrix product of a chunk's image vectors with that matrix gives each image's top tags, so tagging
costs no extra inference.

The vocabulary's vectors are cached as a ``.npy`` file in the user cache directory
(``$LOOKALIKE_CACHE_DIR``, else ``$XDG_CACHE_HOME/lookalike``, else ``~/.cache/lookalike``), under
``tags/``, keyed by the model's ``full_name``, its dimensions, the prompt and a hash of the
vocabulary. A file rather than the database's embedding cache: that cache is keyed by image content
and lives in each database, while these vectors belong to the model and serve every database; one
file loads in milliseconds.

Scores are cosine similarities (higher is better); with random-weight test models they mean
nothing, so tests check the mechanism against a reference computation, not tag quality.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lookalike.errors import ConfigurationError, EmbeddingError
from lookalike.schema import TagsSpec

if TYPE_CHECKING:
    from lookalike.embeddings.base import BaseEmbeddingFunction

__all__ = [
    "Tagger",
    "Vocabulary",
    "builtin_vocabulary",
    "load_vocabulary",
    "tag_cache_dir",
    "top_tags",
    "vocabulary_vectors",
]

TAG_SEPARATOR = ", "
"""How the tags of one image are joined in the text column (``"beach, sea, sand"``)."""


@dataclass(frozen=True)
class Vocabulary:
    """A cleaned list of phrases (lowercase, unique, none empty) and its hash."""

    words: tuple[str, ...]

    @property
    def digest(self) -> str:
        """sha256 of the phrases, one a line: what the cached vectors are keyed by."""
        return hashlib.sha256("\n".join(self.words).encode("utf-8")).hexdigest()

    def __len__(self) -> int:
        return len(self.words)


def builtin_vocabulary() -> Vocabulary:
    """The vocabulary shipped with lookalike (package data)."""
    text = resources.files("lookalike").joinpath("data/vocabulary.txt").read_text(encoding="utf-8")
    return clean_vocabulary(text.splitlines(), "the built-in vocabulary")


def load_vocabulary(vocabulary: str | os.PathLike[str] | Sequence[str] | None) -> Vocabulary:
    """A vocabulary from a file path (one phrase a line), a list of phrases, or ``None`` (built-in).

    Phrases are lowercased and trimmed; empty lines are ignored and duplicates dropped with one
    warning naming them. A missing file or a vocabulary with no phrase is a :class:`ConfigurationError`.
    """
    if vocabulary is None:
        return builtin_vocabulary()
    if isinstance(vocabulary, (str, os.PathLike)):
        path = Path(vocabulary).expanduser()
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigurationError(f"cannot read tag vocabulary {os.fspath(vocabulary)!r}: {exc}") from exc
        return clean_vocabulary(lines, os.fspath(vocabulary))
    if not isinstance(vocabulary, Sequence):
        raise ConfigurationError(f"a tag vocabulary is a file path or a list of phrases, got {vocabulary!r}")
    bad = [w for w in vocabulary if not isinstance(w, str)]
    if bad:
        raise ConfigurationError(f"tag vocabulary phrases must be strings, got {bad[0]!r}")
    return clean_vocabulary(list(vocabulary), "the tag vocabulary")


def clean_vocabulary(lines: Sequence[str], where: str) -> Vocabulary:
    """Lowercase, trim, skip empty lines and drop duplicates (warning once, naming them)."""
    words: dict[str, None] = {}
    duplicates: dict[str, None] = {}
    for line in lines:
        word = " ".join(line.split()).lower()
        if not word:
            continue
        if word in words:
            duplicates[word] = None
        words[word] = None
    if not words:
        raise ConfigurationError(f"{where} has no phrases")
    with_comma = [w for w in words if "," in w]
    if with_comma:  # the tag column joins tags with commas: a comma inside one would split it
        raise ConfigurationError(f"{where}: phrase {with_comma[0]!r} holds a comma; remove it")
    if duplicates:
        shown = ", ".join(repr(w) for w in list(duplicates)[:10])
        more = f" and {len(duplicates) - 10} more" if len(duplicates) > 10 else ""
        warnings.warn(f"{where}: duplicate phrases dropped: {shown}{more}", UserWarning, stacklevel=3)
    return Vocabulary(tuple(words))


# ---------------------------------------------------------------------- the vocabulary's vectors


def tag_cache_dir() -> Path:
    """Where tag vectors are cached (``$LOOKALIKE_CACHE_DIR``, ``$XDG_CACHE_HOME/lookalike``, ...)."""
    if os.environ.get("LOOKALIKE_CACHE_DIR"):
        return Path(os.environ["LOOKALIKE_CACHE_DIR"]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg).expanduser() / "lookalike"


_MEMO: dict[str, np.ndarray] = {}
_MEMO_LOCK = threading.Lock()


def _cache_key(embed_fn: BaseEmbeddingFunction, vocab: Vocabulary, prompt: str) -> str:
    ident = json.dumps([embed_fn.full_name, embed_fn.dimensions, prompt, vocab.digest])
    return hashlib.sha256(ident.encode("utf-8")).hexdigest()[:40]


def vocabulary_vectors(
    embed_fn: BaseEmbeddingFunction, vocab: Vocabulary, prompt: str = "a photo of {}"
) -> np.ndarray:
    """The vocabulary's unit-length text vectors, ``(len(vocab), d)`` float32: from memory, the disk
    cache, or embedded now with the model's text side (then saved)."""
    key = _cache_key(embed_fn, vocab, prompt)
    with _MEMO_LOCK:
        cached = _MEMO.get(key)
    if cached is not None:
        return cached
    path = tag_cache_dir() / "tags" / f"{key}.npy"
    matrix = _read_cached(path, len(vocab), embed_fn.dimensions)
    if matrix is None:
        matrix = _embed_vocabulary(embed_fn, vocab, prompt)
        _write_cached(path, matrix, embed_fn, vocab, prompt)
    with _MEMO_LOCK:
        _MEMO[key] = matrix
    return matrix


def _read_cached(path: Path, rows: int, dims: int | None) -> np.ndarray | None:
    try:
        matrix = np.load(path, allow_pickle=False)
    except (OSError, ValueError):
        return None  # absent or damaged: embed again
    if matrix.ndim != 2 or matrix.shape[0] != rows or (dims is not None and matrix.shape[1] != dims):
        return None
    return np.ascontiguousarray(matrix, dtype=np.float32)


def _write_cached(
    path: Path, matrix: np.ndarray, embed_fn: BaseEmbeddingFunction, vocab: Vocabulary, prompt: str
) -> None:
    """Save atomically (a reader never sees half a file); a cache that can't be written is skipped."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
        with open(tmp, "wb") as fh:
            np.save(fh, matrix, allow_pickle=False)
        os.replace(tmp, path)
        about = {"model": embed_fn.full_name, "prompt": prompt, "phrases": len(vocab), "sha256": vocab.digest}
        path.with_suffix(".json").write_text(json.dumps(about), encoding="utf-8")
    except OSError:
        pass  # a read-only home: tags still work, the vectors are embedded again next process


def _embed_vocabulary(embed_fn: BaseEmbeddingFunction, vocab: Vocabulary, prompt: str) -> np.ndarray:
    if not embed_fn.multimodal:
        raise ConfigurationError(
            f"{embed_fn.full_name} embeds only text, so it can't score images against words; "
            "tags need a multimodal model (CLIP, SigLIP, ...)"
        )
    phrases = [prompt.format(w) for w in vocab.words]
    out = embed_fn.embed_sources(phrases, source_type="text", on_error="raise", purpose="query")
    vectors = [v for v in out if isinstance(v, np.ndarray)]
    if len(vectors) != len(phrases):
        raise EmbeddingError(f"{embed_fn.full_name} did not embed every phrase of the tag vocabulary")
    return _unit_rows(np.stack(vectors).astype(np.float32))


def _unit_rows(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return np.ascontiguousarray(matrix / np.where(norms > 0, norms, 1.0), dtype=np.float32)


# ---------------------------------------------------------------------- tagging


def top_tags(
    image_vectors: np.ndarray,
    vocab_vectors: np.ndarray,
    words: Sequence[str],
    top: int,
    min_score: float | None = None,
) -> list[list[tuple[str, float]]]:
    """Each image's ``top`` phrases with their cosine scores, best first (one matrix product).

    Ties keep the vocabulary's order. Phrases scoring below ``min_score`` are left out.
    """
    if len(image_vectors) == 0:
        return []
    scores = _unit_rows(np.asarray(image_vectors, dtype=np.float32)) @ vocab_vectors.T
    k = min(top, scores.shape[1])
    # argpartition finds the k-th best score in linear time; every phrase at or above it is a
    # candidate (so ties at the cut are all seen), and only those are sorted: best first, then the
    # vocabulary's order
    kth = -np.partition(-scores, k - 1, axis=1)[:, k - 1]
    out: list[list[tuple[str, float]]] = []
    for row, cut in zip(scores, kth):
        cand = np.flatnonzero(row >= cut)
        best = cand[np.lexsort((cand, -row[cand]))][:k]
        out.append([(words[j], float(row[j])) for j in best if min_score is None or row[j] >= min_score])
    return out


class Tagger:
    """Tags for one tag column: the vocabulary and its vectors for the column's model, loaded once."""

    def __init__(self, spec: TagsSpec, embed_fn: BaseEmbeddingFunction) -> None:
        self.spec = spec
        self.embed_fn = embed_fn
        self._vocab: Vocabulary | None = None
        self._matrix: np.ndarray | None = None

    def _load(self) -> tuple[Vocabulary, np.ndarray]:
        if self._vocab is None or self._matrix is None:
            self._vocab = load_vocabulary(self.spec.vocabulary)
            self._matrix = vocabulary_vectors(self.embed_fn, self._vocab, self.spec.prompt)
        return self._vocab, self._matrix

    def tag(self, vectors: np.ndarray) -> list[tuple[str | None, dict[str, float] | None]]:
        """For each image vector: the tag text and ``{tag: score}`` (rounded to 4 places)."""
        vocab, matrix = self._load()
        if vectors.shape[1] != matrix.shape[1]:
            raise ConfigurationError(
                f"tag column {self.spec.name!r}: image vectors have {vectors.shape[1]} dimensions but "
                f"the vocabulary's text vectors have {matrix.shape[1]}"
            )
        out: list[tuple[str | None, dict[str, float] | None]] = []
        for tags in top_tags(vectors, matrix, vocab.words, self.spec.top, self.spec.min_score):
            if not tags:
                out.append((None, None))
                continue
            out.append((TAG_SEPARATOR.join(w for w, _ in tags), {w: round(s, 4) for w, s in tags}))
        return out


def tags_of(text: Any) -> list[str]:
    """The tags in a tag column's text (``"beach, sea"`` → ``["beach", "sea"]``)."""
    if not isinstance(text, str):
        return []
    return [t.strip() for t in text.split(",") if t.strip()]
