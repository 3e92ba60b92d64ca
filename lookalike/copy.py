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

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from lookalike.errors import SchemaError
from lookalike.ingest import Ingest
from lookalike.schema import TableSpec

if TYPE_CHECKING:
    from lookalike.client import Client
    from lookalike.table import Table

__all__ = ["copy_table"]


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
    dst = _destination(src_table.spec, dst_client, name or src_table.name, resume)
    # rows go through the destination's ingest pipeline: the vectors are checked against its columns,
    # never re-embedded (a row copied without a vector stays without one), and ids are kept
    ingest = Ingest(dst.spec, dst.database)
    copied = 0
    for rows in _batches(src_table, _last_key(dst) if resume else None, batch_size):
        ingest.chunk(rows, copied, "raise", embed=False)
        copied += len(rows)
        if progress is not None:
            progress(copied)
    _finish(dst)
    return dst


def _shape(desc: dict[str, Any]) -> list[tuple[Any, ...]]:
    return [(c["name"], c["type"], c.get("dimensions")) for c in desc["columns"]]


def _destination(spec: TableSpec, dst_client: Client, dst_name: str, resume: bool) -> Table:
    """The destination table: the existing one when resuming (same shape only), else a new one.

    A new table is created without its ANN indexes (building them once, after loading, is far
    cheaper than maintaining them while inserting); the flags stay on its spec for :func:`_finish`.
    """
    desc = spec.describe()
    desc["name"] = dst_name
    if dst_client.has_table(dst_name):
        if not resume:
            raise SchemaError(
                f"table {dst_name!r} already exists in the destination; pass resume=True to continue "
                "copying into it, or drop it first"
            )
        database = dst_client.database
        with database.connection(write=False) as conn:
            stored = database.engine.load_description(conn, dst_name)
        if stored is None or _shape(stored) != _shape(desc):
            raise SchemaError(
                f"table {dst_name!r} in the destination has other columns than {spec.name!r}; "
                "copy into a new name or drop it first"
            )
        return dst_client.open_table(dst_name, embed_fn=None)
    dst_spec = TableSpec.from_description(desc, {col: vec.embed_fn for col, vec in spec.vectors.items()})
    deferred = {n: v.index for n, v in dst_spec.vectors.items()}
    for vec in dst_spec.vectors.values():
        vec.index = False
    assert dst_spec.model is not None  # from_description always builds a model
    dst = dst_client.create_table(schema=dst_spec.model)
    for n, flag in deferred.items():
        dst.spec.vectors[n].index = flag
    return dst


def _last_key(dst: Table) -> Any:
    """The largest primary key already in the destination (None when it is empty)."""
    pk = dst.spec.sa_table.c[dst.primary_key]
    with dst.database.connection(write=False) as conn:
        return conn.execute(sa.select(sa.func.max(pk))).scalar()


def _batches(src: Table, last: Any, batch_size: int) -> Iterator[list[dict[str, Any]]]:
    """The source's rows after primary key ``last``, in key order, ``batch_size`` at a time."""
    pk = src.spec.sa_table.c[src.primary_key]
    while True:
        after = None if last is None else pk > last
        rows = src.query(after, order_by=src.primary_key, limit=batch_size).to_list()
        if not rows:
            return
        yield rows
        last = rows[-1][src.primary_key]


def _finish(dst: Table) -> None:
    """Build the ANN indexes the definition asks for and store the definition with their flags."""
    database = dst.database
    with database.connection(write=True) as conn:
        engine = database.engine
        for vec in dst.spec.vectors.values():
            if vec.index and not engine.has_vector_index(conn, dst.spec, vec.name):
                engine.create_vector_index(conn, dst.spec, vec.name, vec.distance_metric, vec.index_params)
        engine.save_description(conn, dst.spec)  # with the index flags as the source had them
