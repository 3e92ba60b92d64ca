"""Full-text search next to vector search on the embedded engine, in the same run.

Usage::

    python benchmarks/fulltext.py                      # the issue's table: 100k rows
    python benchmarks/fulltext.py --rows 5000 --queries 20   # a smoke run

Data, all from ``--seed``: captions of 4-14 words drawn from a fixed 3,000-word vocabulary with
Zipf-like frequencies (word of rank r has weight 1 / r^1.1, so "the"-like words are in most rows and
the tail is rare, as in real text), and a 512-d unit vector per row. Queries: 1-4 words drawn from
the same distribution (so most hit common words and match many rows: the hard case for ranking),
and a random unit vector.

Each search kind is one function ``search_<kind>(table, query) -> rows`` registered in ``SEARCHES``;
every kind runs the same queries, warm (one untimed pass first), and the script prints p50/p95 per
kind and each p50 as a ratio to the vector search's p50. Add a kind by adding a function.
``fulltext_full`` runs the same words as a raw query, which the embedded engine never shortens
(see lookalike/engines/sqlite_fts.py): the full-text search as it was before its common-words shortcut.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import lookalike
from lookalike import Field, FullTextField, TableModel, VectorField
from lookalike.engines.sqlite_fts import fts5_match_query

DIMS = 512
K = 10
VOCAB_SIZE = 3_000
ZIPF_S = 1.1
CHUNK = 5_000


class Caption(TableModel):
    __tablename__ = "captions"
    id: int | None = Field(default=None, primary_key=True)
    caption: str | None = FullTextField(default=None)
    vec: list[float] | None = VectorField(dimensions=DIMS)


@dataclass(frozen=True)
class Query:
    text: str
    vector: np.ndarray


def vocabulary(rng: np.random.Generator) -> list[str]:
    """VOCAB_SIZE distinct pronounceable words (consonant-vowel syllables)."""
    consonants, vowels = "bcdfghklmnprstvz", "aeiou"
    words: set[str] = set()
    while len(words) < VOCAB_SIZE:
        n = int(rng.integers(1, 4))
        words.add("".join(rng.choice(list(consonants)) + rng.choice(list(vowels)) for _ in range(n)))
    return sorted(words, key=lambda w: (len(w), w))


def zipf_weights() -> np.ndarray:
    w = 1.0 / np.arange(1, VOCAB_SIZE + 1) ** ZIPF_S
    return w / w.sum()


def unit_vectors(rng: np.random.Generator, n: int) -> np.ndarray:
    v = rng.standard_normal((n, DIMS)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def load(table: lookalike.Table, rows: int, rng: np.random.Generator, words: list[str]) -> float:
    """Insert the rows in chunks; returns the seconds taken."""
    weights = zipf_weights()
    start = time.perf_counter()
    for first in range(0, rows, CHUNK):
        n = min(CHUNK, rows - first)
        lengths = rng.integers(4, 15, size=n)
        picks = rng.choice(VOCAB_SIZE, size=int(lengths.sum()), p=weights)
        vectors = unit_vectors(rng, n)
        items, at = [], 0
        for i, length in enumerate(lengths.tolist()):
            items.append({"caption": " ".join(words[j] for j in picks[at : at + length]), "vec": vectors[i]})
            at += length
        table.bulk_insert(items, chunk_size=CHUNK)
    return time.perf_counter() - start


def queries(count: int, rng: np.random.Generator, words: list[str]) -> list[Query]:
    weights = zipf_weights()
    out = []
    for vector in unit_vectors(rng, count):
        picks = rng.choice(VOCAB_SIZE, size=int(rng.integers(1, 5)), p=weights)
        out.append(Query(" ".join(words[j] for j in picks), vector))
    return out


# ---------------------------------------------------------------------- the search kinds


def search_vector(table: lookalike.Table, query: Query) -> list[dict[str, Any]]:
    return table.search(vector=query.vector).limit(K).select("id").to_list()


def search_fulltext(table: lookalike.Table, query: Query) -> list[dict[str, Any]]:
    return table.search(query.text, search_type="fulltext").limit(K).select("id").to_list()


def search_fulltext_full(table: lookalike.Table, query: Query) -> list[dict[str, Any]]:
    # the same words ORed but given raw, which the embedded engine never shortens: FTS5 ranks every
    # row holding any of them (what "fulltext" did before its common-words shortcut)
    raw = fts5_match_query(query.text)
    return table.search(raw, search_type="fulltext").raw().limit(K).select("id").to_list()


def search_hybrid(table: lookalike.Table, query: Query) -> list[dict[str, Any]]:
    # both searches fetch max(4 × K, 40) rows, fused by RRF (k = 60); the vector is given, not embedded
    search = table.search(query.text, search_type="hybrid", vector=query.vector)
    return search.limit(K).select("id").to_list()


SEARCHES: dict[str, Callable[[lookalike.Table, Query], list[dict[str, Any]]]] = {
    "vector": search_vector,
    "fulltext": search_fulltext,
    "fulltext_full": search_fulltext_full,
    "hybrid": search_hybrid,
}


def time_kind(table: lookalike.Table, kind: str, qs: list[Query]) -> list[float]:
    """Milliseconds per query, after one untimed warm-up pass over the same queries."""
    run = SEARCHES[kind]
    hits = [len(run(table, q)) for q in qs]
    times = []
    for q in qs:
        start = time.perf_counter()
        run(table, q)
        times.append((time.perf_counter() - start) * 1000)
    if kind != "vector":
        print(
            f"  {kind}: {sum(h > 0 for h in hits)}/{len(qs)} queries found rows, mean {np.mean(hits):.1f} hits"
        )
    return times


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--kinds", default=",".join(SEARCHES), help="comma-separated search kinds")
    args = parser.parse_args()
    kinds = [k for k in args.kinds.split(",") if k]
    rng = np.random.default_rng(args.seed)
    words = vocabulary(rng)
    with tempfile.TemporaryDirectory() as tmp:
        client = lookalike.connect(Path(tmp) / "fulltext.db")
        table = client.create_table(schema=Caption)
        seconds = load(table, args.rows, rng, words)
        print(f"{args.rows:,} rows inserted in {seconds:.1f} s (FTS5 index kept by triggers)")
        qs = queries(args.queries, rng, words)
        p50: dict[str, float] = {}
        for kind in kinds:
            times = time_kind(table, kind, qs)
            p50[kind] = statistics.median(times)
            p95 = float(np.percentile(times, 95))
            print(f"{kind:>13}: p50 {p50[kind]:7.2f} ms   p95 {p95:7.2f} ms")
        if "vector" in p50:
            for kind in kinds:
                print(f"{kind:>13}: {p50[kind] / p50['vector']:.2f}x the vector search p50")
        client.close()


if __name__ == "__main__":
    main()
