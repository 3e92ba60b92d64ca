"""The bulk-insert loop: chunks of rows → fill missing vectors → write, one transaction per chunk.

Items are consumed lazily from any iterable, so memory stays flat in the number of items.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import islice
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lookalike.table import InsertResult, OnError, Progress, Table


def _chunks(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    it = iter(items)
    while chunk := list(islice(it, size)):
        yield chunk


def run_ingest(
    table: Table,
    data: Iterable[Any],
    *,
    chunk_size: int,
    on_error: OnError,
    progress: Progress | None,
) -> InsertResult:
    """Insert ``data`` into ``table`` chunk by chunk; see :meth:`Table.bulk_insert`."""
    from lookalike.table import InsertResult

    total = len(data) if hasattr(data, "__len__") else 0  # type: ignore[arg-type]
    result = InsertResult()
    done = 0
    for chunk in _chunks(data, chunk_size):
        hook = None
        if progress is not None:
            start = done

            def hook(k: int, start: int = start) -> None:
                # items embedded so far in this chunk, reported before the chunk is written
                progress(start + k, max(total, start + k))

        inserted, failed = table._insert_chunk(chunk, done, on_error, hook)
        result.extend(inserted)
        result.failed.extend(failed)
        done += len(chunk)
        if progress is not None:
            progress(done, max(total, done))
    return result
