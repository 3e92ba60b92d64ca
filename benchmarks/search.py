"""Embedded-engine search speed: lookalike vs bare numpy, sqlite-vec and plain executemany.

Usage::

    python benchmarks/search.py                 # 100k and 1M rows
    python benchmarks/search.py --sizes 100000  # quicker

Prints, for each size, ratios measured in the same run (machines are noisy, ratios less so):
top-10 exact search vs ``matvec + argpartition`` (target ≤ 1.3×), vs sqlite-vec's
``ORDER BY vec_distance_cosine`` (run with Debian's /usr/bin/python3, which can load SQLite extensions,
when sqlite-vec is installed there or in .bench/sqlite-vec), filtered search at 1 % selectivity, bulk
insert of precomputed vectors vs plain ``executemany`` (target ≥ 0.5×), and the cold cost of the
first search after opening the table in a new client.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import lookalike
from benchmarks.common import clustered_vectors, ms, timed
from lookalike import Field, TableModel, VectorField

ROOT = Path(__file__).resolve().parents[1]
SQLITE_VEC_DIR = ROOT / ".bench" / "sqlite-vec"

SQLITE_VEC_SCRIPT = """
import json, sqlite3, sys, time
sys.path.insert(0, sys.argv[3])
import sqlite_vec
db = sqlite3.connect(sys.argv[1])
db.enable_load_extension(True)
sqlite_vec.load(db)
qs = json.load(open(sys.argv[2]))
times = []
for q in qs:
    blob = bytes.fromhex(q)
    t0 = time.perf_counter()
    db.execute("SELECT id, vec_distance_cosine(vec, ?) AS d FROM bench ORDER BY d LIMIT 10", (blob,)).fetchall()
    times.append(time.perf_counter() - t0)
times.sort()
print(json.dumps({"median": times[len(times) // 2]}))
"""


def make_table(client: lookalike.Client, dims: int) -> lookalike.Table:
    class Bench(TableModel):
        __tablename__ = "bench"
        id: int = Field(primary_key=True)
        cat: int = Field(default=0, index=True)
        vec: list[float] | None = VectorField(dimensions=dims)

    return client.create_table(schema=Bench, if_exists="overwrite")


def numpy_top10(matrix: np.ndarray, q: np.ndarray) -> np.ndarray:
    scores = matrix @ q
    idx = np.argpartition(-scores, 10)[:10]
    return idx[np.argsort(-scores[idx])]


def sqlite_vec_median(db: Path, queries: np.ndarray) -> float | None:
    """Run sqlite-vec's scan in a Python that can load extensions; None when not possible."""
    py = shutil.which("python3", path="/usr/bin")
    if py is None:
        return None
    if not SQLITE_VEC_DIR.exists():
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "-q",
                "--target",
                str(SQLITE_VEC_DIR),
                "sqlite-vec==0.1.9",
            ],
            check=False,
            capture_output=True,
        )
    if not SQLITE_VEC_DIR.exists():
        return None
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump([q.astype("<f4").tobytes().hex() for q in queries], f)
    out = subprocess.run(
        [py, "-c", SQLITE_VEC_SCRIPT, str(db), f.name, str(SQLITE_VEC_DIR)], capture_output=True, text=True
    )
    os.unlink(f.name)
    if out.returncode != 0:
        print("  sqlite-vec run failed:", out.stderr.strip().splitlines()[-1:] or out.stderr)
        return None
    return json.loads(out.stdout)["median"]


def bench(n: int, dims: int, workdir: Path, queries: int) -> dict[str, float]:
    print(f"\n== {n:,} rows × {dims} dims ==")
    data = clustered_vectors(n, dims)
    cats = np.arange(n) % 100  # cat == 7 selects 1 %
    rng = np.random.default_rng(1)
    qs = clustered_vectors(queries, dims, seed=99)
    res: dict[str, float] = {}

    # --- bulk insert: plain executemany vs Table.bulk_insert (same chunking, same file settings)
    raw_db = workdir / f"raw-{n}.db"
    conn = sqlite3.connect(raw_db, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("CREATE TABLE bench (id INTEGER PRIMARY KEY, cat INTEGER, vec BLOB)")
    conn.execute("CREATE INDEX bench_cat ON bench(cat)")  # the same table shape as lookalike's
    t0 = time.perf_counter()
    chunk = 10_000
    for start in range(0, n, chunk):
        conn.execute("BEGIN")
        conn.executemany(
            "INSERT INTO bench (cat, vec) VALUES (?, ?)",
            ((int(cats[i]), data[i].tobytes()) for i in range(start, min(n, start + chunk))),
        )
        conn.execute("COMMIT")
    raw_s = time.perf_counter() - t0
    conn.close()

    db = workdir / f"lookalike-{n}.db"
    client = lookalike.connect(db)
    table = make_table(client, dims)
    t0 = time.perf_counter()
    table.bulk_insert(({"cat": int(cats[i]), "vec": data[i]} for i in range(n)), chunk_size=chunk)
    ours_s = time.perf_counter() - t0
    res["insert_ratio"] = raw_s / ours_s
    print(
        f"bulk insert: executemany {n / raw_s:,.0f} rows/s, lookalike {n / ours_s:,.0f} rows/s "
        f"→ {res['insert_ratio']:.2f}× (target ≥ 0.5×)"
    )
    client.close()

    # --- cold first search in a new client (matrix load)
    client = lookalike.connect(db)
    table = client.open_table("bench")
    t0 = time.perf_counter()
    table.search(qs[0]).limit(10).to_list()
    res["cold_s"] = time.perf_counter() - t0
    print(f"cold first search after open: {res['cold_s']:.2f} s ({n / res['cold_s']:,.0f} rows/s loaded)")

    # --- warm top-10 vs numpy
    matrix = np.ascontiguousarray(data)
    it = iter(range(10**9))

    def ours() -> None:
        table.search(qs[next(it) % queries]).limit(10).to_list()

    def bare() -> None:
        numpy_top10(matrix, qs[next(it) % queries])

    ours_med, _ = timed(ours, queries)
    bare_med, _ = timed(bare, queries)
    res["vs_numpy"] = ours_med / bare_med
    print(
        f"top-10 exact: lookalike {ms(ours_med)}, numpy {ms(bare_med)} → {res['vs_numpy']:.2f}× (target ≤ 1.3×)"
    )

    # same results as brute force
    for q in qs[:5]:
        got = [r["id"] - 1 for r in table.search(q).limit(10).to_list()]
        assert got == list(numpy_top10(matrix, q)), "lookalike and numpy disagree"

    # --- filtered at 1 %
    def filtered() -> None:
        table.search(qs[next(it) % queries]).filter({"cat": 7}).limit(10).to_list()

    filt_med, _ = timed(filtered, queries)
    sub = np.flatnonzero(cats == 7)
    got = [r["id"] - 1 for r in table.search(qs[0]).filter({"cat": 7}).limit(10).to_list()]
    ref = sub[numpy_top10(matrix[sub], qs[0])]
    recall = len(set(got) & set(ref.tolist())) / 10
    res["filtered_ms"] = filt_med * 1000
    print(f"filtered top-10 at 1 % selectivity: {ms(filt_med)}, recall@10 {recall:.2f}")
    client.close()

    # --- sqlite-vec (plain table scan)
    vec_med = sqlite_vec_median(raw_db, qs[: min(queries, 10)])
    if vec_med is None:
        print("sqlite-vec: not measured (no Python here that can load SQLite extensions with sqlite-vec)")
    else:
        res["vs_sqlite_vec"] = vec_med / ours_med
        print(
            f"sqlite-vec ORDER BY vec_distance_cosine: {ms(vec_med)} → lookalike is {res['vs_sqlite_vec']:.1f}× faster"
        )
    _ = rng
    return res


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--dims", type=int, default=512)
    parser.add_argument("--queries", type=int, default=30)
    parser.add_argument("--workdir", default=None, help="where the databases go (default: a temp dir)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        for n in (int(s) for s in args.sizes.split(",")):
            bench(n, args.dims, Path(tmp), args.queries)


if __name__ == "__main__":
    main()
