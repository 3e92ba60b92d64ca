"""copy_table: embedded → PostgreSQL → embedded, without re-embedding, resumable."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sqlmodel import JSON

import lookalike
from lookalike import Field, SchemaError, TableModel
from lookalike.copy import copy_table
from tests.pg_support import postgres_url
from tests.toy_embedder import ToyEmbedder

PG = postgres_url()
pytestmark = pytest.mark.skipif(PG is None, reason="PostgreSQL + pgvector not available")


def _source(client: lookalike.Client, toy: ToyEmbedder, colour_images: dict[str, Path]) -> lookalike.Table:
    class Pic(TableModel):
        __tablename__ = "copy_pics"
        id: int = Field(primary_key=True)
        uri: str | None = Field(default=None)
        meta: dict | None = Field(default=None, sa_type=JSON)
        vec: list[float] | None = toy.VectorField(source_field="uri", index=True)

    t = client.create_table(schema=Pic, if_exists="overwrite")
    paths = list(colour_images.values())
    rows = [
        {"uri": str(paths[i % len(paths)]), "meta": {"n": i, "tags": ["a", str(i % 3)]}} for i in range(45)
    ]
    rows.append({"uri": None, "meta": None})  # a row without a vector stays without one
    t.bulk_insert(rows, chunk_size=16)
    t.delete({"meta.n": {"$in": [3, 4]}})  # gaps in the ids must survive the trip
    return t


def _dump(t: lookalike.Table) -> dict[int, dict]:
    out = {}
    for r in t.query(order_by="id"):
        r = dict(r)
        if r["vec"] is not None:
            r["vec"] = np.asarray(r["vec"], dtype=np.float32).tobytes()
        out[r["id"]] = r
    return out


def test_round_trip_keeps_rows_vectors_and_embedder(
    tmp_path: Path, toy: ToyEmbedder, colour_images: dict[str, Path]
) -> None:
    assert PG is not None
    src_client = lookalike.connect(tmp_path / "src.db")
    pg = lookalike.connect(PG)
    back_client = lookalike.connect(tmp_path / "back.db")
    try:
        src = _source(src_client, toy, colour_images)
        calls_before = dict(toy.calls)
        seen: list[int] = []
        mid = copy_table(src, pg, name="copy_pics_pg", batch_size=10, progress=seen.append)
        assert seen[-1] == src.rows() and len(seen) == 5
        assert toy.calls == calls_before  # nothing was re-embedded
        assert _dump(mid) == _dump(src)
        assert mid.has_vector_index()  # index=True is honoured on the destination, built after the data

        # the embedder configuration travelled: a fresh client rebuilds it and searches by words
        fresh = lookalike.connect(PG)
        reopened = fresh.open_table("copy_pics_pg")
        assert isinstance(reopened.vector_field().embed_fn, ToyEmbedder)
        assert reopened.search("yellow").limit(1).to_list()[0]["uri"] == str(colour_images["yellow"])
        fresh.close()

        back = copy_table(mid, back_client, name="copy_pics")
        assert _dump(back) == _dump(src)
        assert back.vector_field().embed_fn.config() == src.vector_field().embed_fn.config()

        # new ids on the destinations don't collide with copied ones
        new = mid.insert({"uri": str(colour_images["red"])})
        assert new["id"] > max(_dump(src))
    finally:
        pg.drop_table("copy_pics_pg", if_not_exists="skip")
        for c in (src_client, pg, back_client):
            c.close()


def test_resume_continues_after_the_copied_rows(
    tmp_path: Path, toy: ToyEmbedder, colour_images: dict[str, Path]
) -> None:
    assert PG is not None
    src_client = lookalike.connect(tmp_path / "src.db")
    pg = lookalike.connect(PG)
    try:
        src = _source(src_client, toy, colour_images)
        copy_table(src, pg, name="copy_resume")
        # more rows arrive in the source; an interrupted copy is simulated by dropping the last rows
        src.bulk_insert([{"uri": str(colour_images["blue"]), "meta": {"n": 100 + i}} for i in range(7)])
        dst = pg.open_table("copy_resume")
        top = max(_dump(dst))
        dst.delete({"id": {"$gt": top - 5}})
        copied: list[int] = []
        again = copy_table(src, pg, name="copy_resume", batch_size=4, progress=copied.append)
        assert copied[-1] == 5 + 7  # only what was missing
        assert _dump(again) == _dump(src)
        with pytest.raises(SchemaError, match="already exists"):
            copy_table(src, pg, name="copy_resume", resume=False)
    finally:
        pg.drop_table("copy_resume", if_not_exists="skip")
        src_client.close()
        pg.close()
