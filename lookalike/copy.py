"""``copy_table``: move a table to another engine (embedded → PostgreSQL or TiDB, and back) as it is.

Rows, ids and vectors are copied verbatim (nothing is re-embedded) together with the table definition
and each vector column's embedder configuration, so ``open_table`` on the destination rebuilds the
same embedder. The copy runs in primary-key order, one transaction per batch, and is resumable: with
``resume=True`` an interrupted copy continues after the largest primary key already in the
destination. Rows added to the source later with larger keys are picked up by the next call; rows
changed or inserted below that key after they were copied are not (copy again into a fresh table).
ANN indexes asked for by the definition (``VectorField(index=True)``) are built once, after the data.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import sqlalchemy as sa

from lookalike.errors import SchemaError
from lookalike.schema import TableSpec

if TYPE_CHECKING:
    from lookalike.client import Client
    from lookalike.table import Table

__all__ = ["copy_table"]


def _shape(desc: dict[str, Any]) -> list[tuple[Any, ...]]:
    return [(c["name"], c["type"], c.get("dimensions")) for c in desc["columns"]]


def copy_table(
    src_table: Table,
    dst_client: Client,
    *,
    name: str | None = None,
    batch_size: int = 1000,
    resume: bool = True,
    progress: Callable[[int], None] | None = None,
) -> Table:
    """Copy ``src_table`` (rows, vectors, embedder configuration) into ``dst_client`` as ``name``.

    Returns the destination table. ``resume=True`` continues a copy into an existing destination
    table of the same shape; ``resume=False`` refuses an existing one. ``progress(rows_copied)`` is
    called after each batch.
    """
    if batch_size <= 0:
        raise SchemaError(f"batch_size must be positive, got {batch_size!r}")
    spec = src_table.spec
    dst_name = name or spec.name
    desc = spec.describe()
    desc["name"] = dst_name
    embedders = {col: vec.embed_fn for col, vec in spec.vectors.items()}
    pk = spec.primary_key

    if dst_client.has_table(dst_name):
        if not resume:
            raise SchemaError(
                f"table {dst_name!r} already exists in the destination; pass resume=True to continue "
                "copying into it, or drop it first"
            )
        with dst_client._conn(write=False) as conn:
            stored = dst_client.engine.load_description(conn, dst_name)
        if stored is None or _shape(stored) != _shape(desc):
            raise SchemaError(
                f"table {dst_name!r} in the destination has other columns than {spec.name!r}; "
                "copy into a new name or drop it first"
            )
        dst = dst_client.open_table(dst_name, embed_fn=None)
        # the destination's description may have been written by another process: use ours for types
        dst_spec = dst.spec
    else:
        dst_spec = TableSpec.from_description(desc, embedders)
        deferred = {n: v.index for n, v in dst_spec.vectors.items()}
        for vec in dst_spec.vectors.values():
            vec.index = False  # build indexes once, after loading: far cheaper than while inserting
        assert dst_spec.model is not None
        dst = dst_client.create_table(schema=dst_spec.model)
        dst_spec = dst.spec
        for n, flag in deferred.items():
            dst_spec.vectors[n].index = flag

    src_pk = spec.sa_table.c[pk]
    last: Any = None
    if resume:
        with dst_client._conn(write=False) as conn:
            last = conn.execute(sa.select(sa.func.max(dst_spec.sa_table.c[pk]))).scalar()
    copied = 0
    while True:
        stmt = sa.select(spec.sa_table).order_by(src_pk).limit(batch_size)
        if last is not None:
            stmt = stmt.where(src_pk > last)
        with src_table.client._conn(write=False) as conn:
            rows = [dict(r._mapping) for r in conn.execute(stmt)]
        if not rows:
            break
        for row in rows:
            for col in dst_spec.vectors:
                if row.get(col) is not None:
                    row[col] = np.asarray(row[col], dtype=np.float32)
        with dst_client._conn(write=True) as conn:
            dst_client.engine.insert_rows(conn, dst_spec, rows)
        last = rows[-1][pk]
        copied += len(rows)
        if progress is not None:
            progress(copied)

    with dst_client._conn(write=True) as conn:
        engine = dst_client.engine
        for vec in dst_spec.vectors.values():
            if vec.index and not engine.has_vector_index(conn, dst_spec, vec.name):
                engine.create_vector_index(conn, dst_spec, vec.name, vec.distance_metric, vec.index_params)
        engine.save_description(conn, dst_spec)  # with the index flags as the source had them
    return dst
