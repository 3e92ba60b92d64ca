"""What the routes call: one :class:`Backend` over one table, with its fetchers, caches and limits.

Each method makes the library calls for one route and shapes the answer as plain JSON data; what
only HTTP knows (a bad id, a busy server, an upload too large) is raised as
:class:`~lookalike.server.errors_http.ApiError`. The Backend knows nothing of FastAPI, so it can be
used and tested without a server.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import re
import threading
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import numpy as np
import sqlalchemy as sa

from lookalike import DuplicateGroup, Table, __version__
from lookalike._json import to_jsonable
from lookalike.errors import ConfigurationError, ImageInputError
from lookalike.examples import Example
from lookalike.filters import compile_filter
from lookalike.hybrid import HybridSearch
from lookalike.images import HttpFetcher, ImageSource, image_size, read_source, sniff_format
from lookalike.images.guard import AddressRefused
from lookalike.metadata import tag_counts
from lookalike.server.errors_http import ApiError
from lookalike.server.photos import (
    PhotoFilters,
    check_mode,
    collect,
    echo,
    pick_tag_column,
    pick_text_column,
    supported,
)
from lookalike.server.thumbnails import DEFAULT_CACHE_BYTES, LRUCache, make_thumbnail
from lookalike.text_search import TextSearch

if TYPE_CHECKING:
    from lookalike.schema import VectorSpec

__all__ = [
    "DECODE_WAIT_SECONDS",
    "DEFAULT_MAX_DECODES",
    "DEFAULT_MAX_QUERY_PIXELS",
    "MAX_EXAMPLES",
    "MAX_TAGS",
    "MAX_TEXT_CHARS",
    "MEDIA_TYPES",
    "Backend",
    "ExampleInputs",
    "media_type_of",
]

DEFAULT_MAX_QUERY_PIXELS = 50_000_000
"""Query images (uploads, URLs) whose header claims more pixels are refused before decoding (413).

A query is shrunk to the model's input (a few hundred pixels a side), so this is far above any use;
it is below the library's own cap because a full decode costs 3-7 bytes a pixel and anyone who can
reach the server chooses the picture. 50 MP still covers phone cameras' full-resolution modes.
"""
DEFAULT_MAX_DECODES = 2
"""Images decoded at once for queries and thumbnails; more requests wait their turn."""
DECODE_WAIT_SECONDS = 30.0
"""How long a request waits for a decode slot before it is answered 503."""
MAX_EXAMPLES = 16
"""Examples one multi-example search may take, positive and negative together (more: 422).

Each one is an embedding (an image is a decode too), so the cap bounds the work one request buys.
"""
MAX_TEXT_CHARS = 1000
"""The longest words a query may hold (as ``/api/search?q=``)."""
MAX_TAGS = 500
"""The most tag facets ``/api/tags`` lists."""
_INT64 = (-(2**63), 2**63 - 1)  # what an integer primary key can hold, in every engine
_INT_ID = re.compile(r"-?[0-9]+")

MEDIA_TYPES = {
    "JPEG": "image/jpeg",
    "PNG": "image/png",
    "GIF": "image/gif",
    "WEBP": "image/webp",
    "BMP": "image/bmp",
    "TIFF": "image/tiff",
    "ICO": "image/x-icon",
    "JPEG2000": "image/jp2",
    "AVIF": "image/avif",
    "HEIF": "image/heic",
}
"""The ``Content-Type`` of each image format :func:`~lookalike.images.sniff_format` names."""

# Column names that hold an image reference, tried in order when no vector column names its source.
_IMAGE_COLUMN_NAMES = (
    "path",
    "image_path",
    "image",
    "image_uri",
    "image_url",
    "uri",
    "url",
    "file",
    "filename",
)
_PRIVATE_URL_HINT = (
    ". This server does not fetch private or local addresses; start it with "
    "lookalike serve --allow-private-urls (allow_private_urls=True in Python) to allow them"
)


@dataclass
class ExampleInputs:
    """One side (positive or negative) of a multi-example search, as the client sent it."""

    ids: list[str] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    images: list[tuple[bytes, str | None]] = field(default_factory=list)  # (data, file name)

    def __len__(self) -> int:
        return len(self.ids) + len(self.texts) + len(self.images)


class Backend:
    """What the routes share: the table, its columns, the fetchers and the caches.

    URLs sent by clients are fetched by ``fetcher`` (by default an :class:`HttpFetcher` whose SSRF
    guard refuses private addresses unless ``allow_private_urls``); indexed items that are URLs by
    ``item_fetcher``. At most ``max_decodes`` images decode at once.
    """

    def __init__(
        self,
        table: Table,
        *,
        token: str | None = None,
        allow_private_urls: bool = False,
        max_upload_bytes: int,
        fetcher: HttpFetcher | None = None,
        item_fetcher: HttpFetcher | None = None,
        thumbnail_cache_bytes: int = DEFAULT_CACHE_BYTES,
        max_query_pixels: int = DEFAULT_MAX_QUERY_PIXELS,
        max_decodes: int = DEFAULT_MAX_DECODES,
    ) -> None:
        if max_upload_bytes <= 0:
            raise ConfigurationError(f"max_upload_bytes must be positive, got {max_upload_bytes!r}")
        if max_query_pixels <= 0 or max_decodes <= 0:
            raise ConfigurationError("max_query_pixels and max_decodes must be positive")
        self.table = table
        self.max_query_pixels = max_query_pixels
        # Decoding is where memory goes (a 50 MP picture is 150 MB as RGB): bound how many run at once.
        self.decode_slots = threading.BoundedSemaphore(max_decodes)
        self.decode_wait = DECODE_WAIT_SECONDS
        self.token = token
        self.max_upload_bytes = max_upload_bytes
        self.vec = _pick_vector_column(table)
        self.pk = table.primary_key
        self.pk_is_int = _is_integer(table.spec.sa_table.c[self.pk])
        self.columns = [c for c in table.spec.sa_table.columns.keys() if c not in table.spec.vectors]
        self.image_column = _pick_image_column(table, self.vec.source_field)
        self.text_column = pick_text_column(table)  # what mode=hybrid|fulltext searches
        self.tag_column = pick_tag_column(table)
        # URLs from web clients go through the SSRF guard; indexed items were put there by the owner.
        self.fetcher = fetcher or HttpFetcher(
            allow_private=allow_private_urls, max_bytes=max_upload_bytes, retries=1, deadline=30.0
        )
        self.item_fetcher = item_fetcher or HttpFetcher(retries=1, deadline=30.0)
        self.thumbnails = LRUCache(thumbnail_cache_bytes, weigh=len)
        self.query_vectors = LRUCache(256)  # paging through one query embeds it once
        self.duplicate_scans = LRUCache(4)

    # -------------------------------------------------------------- the index
    def stats(self) -> dict[str, Any]:
        """How many items the table holds, its columns, model and metric."""
        embed_fn = self.vec.embed_fn
        return {
            "table": self.table.name,
            "rows": self.table.rows(),
            "primary_key": self.pk,
            "columns": self.columns,
            "vector_column": self.vec.name,
            "dimensions": self.vec.dimensions,
            "metric": self.vec.distance_metric,
            "model": embed_fn.model_name if embed_fn is not None else None,
            "multimodal": embed_fn is not None and bool(embed_fn.multimodal),
            "engine": self.table.client.engine.name,
            "image_column": self.image_column,
            "fulltext_column": self.text_column,
            "tag_column": self.tag_column,
            "photo_filters": supported(self.table, self.tag_column),
            "duplicates_available": True,  # the page reads it; every table can be scanned for duplicates
            "thumbnails": self.thumbnails.stats(),
            "token_required": self.token is not None,
            "version": __version__,
        }

    # -------------------------------------------------------------- ids and rows
    def parse_id(self, raw: str) -> Any:
        """The id in the key column's type: 400 when it is not an integer, 404 when no row can have it."""
        if self.pk_is_int:
            # int() would also take "1_0", " 7" and other scripts' digits; ids are written in ASCII.
            if not _INT_ID.fullmatch(raw):
                raise ApiError(400, "bad_id", f"item ids are integers, got {raw[:40]!r}")
            value = int(raw)
            if not _INT64[0] <= value <= _INT64[1]:
                # The database cannot even compare with it (OverflowError), and no row can hold it.
                raise ApiError(404, "not_found", f"no item with id {raw[:40]} in table {self.table.name!r}")
            return value
        return raw

    def row(self, item_id: Any, *, with_vector: bool = False) -> dict[str, Any]:
        """The item's columns (and its vector with ``with_vector``); 404 for an unknown id."""
        columns = [*self.columns, self.vec.name] if with_vector else self.columns
        rows = self.table.query({self.pk: item_id}, limit=1, columns=columns).to_list()
        if not rows:
            raise ApiError(404, "not_found", f"no item with id {item_id!r} in table {self.table.name!r}")
        return rows[0]

    def hit(self, row: Mapping[str, Any]) -> dict[str, Any]:
        """A row as one result: id, display name, score/distance, columns and its image URLs."""
        item_id = row[self.pk]
        ref = quote(str(item_id), safe="")
        distance = row.get("_distance")
        score = row.get("_score")
        source = row.get(self.image_column) if self.image_column else None
        return {
            "id": to_jsonable(item_id),
            "name": _display_name(source, item_id),
            "score": None if score is None else float(score),
            "distance": None if distance is None else float(distance),
            "metadata": {k: to_jsonable(v) for k, v in row.items() if not k.startswith("_")},
            "thumbnail_url": f"/api/items/{ref}/thumbnail",
            "image_url": f"/api/items/{ref}/image",
        }

    def items_page(self, offset: int, limit: int, *, filters: PhotoFilters | None = None) -> dict[str, Any]:
        """One page of the table's items in id order (those the photo ``filters`` keep)."""
        where = self.where(filters)
        if filters is not None and filters.near is not None:
            # The filter is the circle's bounding box: which items lie in the circle is known only
            # once the box's positions are trimmed, so the page is cut from all of them.
            located = self.table.query(where, order_by=self.pk, columns=[self.pk, "gps_lat", "gps_lon"])
            ids = [r[self.pk] for r in filters.trim(located.to_list())]
            total, wanted = len(ids), ids[offset : offset + limit + 1]
            picked = {self.pk: {"$in": wanted}}
            rows = (
                self.table.query(picked, order_by=self.pk, columns=self.columns).to_list() if wanted else []
            )
        else:
            rows = self.table.query(
                where, order_by=self.pk, limit=limit + 1, offset=offset, columns=self.columns
            ).to_list()
            total = self.table.rows() if where is None else self.count(where)
        return {
            "total": total,
            "offset": offset,
            "limit": limit,
            "has_more": len(rows) > limit,
            "results": [self.hit(r) for r in rows[:limit]],
        }

    def count(self, where: Any) -> int:
        """How many rows match a dict filter."""
        t = self.table.spec.sa_table
        query = sa.select(sa.func.count()).select_from(t)
        condition = compile_filter(where, t)
        if condition is not None:
            query = query.where(condition)
        with self.table.database.connection(write=False) as conn:
            return int(conn.execute(query).scalar() or 0)

    # -------------------------------------------------------------- filters and tags
    def where(self, filters: PhotoFilters | None) -> dict[str, Any] | None:
        """The dict filter for a request's photo filters (422 for a bad value or a missing column)."""
        return None if filters is None else filters.where(self.table, self.tag_column)

    def tags_page(self, limit: int) -> dict[str, Any]:
        """The ``limit`` most frequent tags with their counts (none on a table without tags)."""
        if self.tag_column is None:
            return {"column": None, "tags": []}
        counts = tag_counts(self.table, limit, column=self.tag_column)
        return {"column": self.tag_column, "tags": [{"tag": t, "count": n} for t, n in counts.items()]}

    # -------------------------------------------------------------- searching
    def search_page(
        self,
        vector: np.ndarray,
        offset: int,
        limit: int,
        query: dict[str, Any],
        exclude: Any = None,
        exclude_all: Collection[Any] = (),
        *,
        filters: PhotoFilters | None = None,
    ) -> dict[str, Any]:
        """One page of nearest rows; ``exclude`` drops the query item itself from "more like this",
        ``exclude_all`` the items given as examples; ``filters`` keeps only the pictures they match."""
        left_out = set(exclude_all) | ({exclude} if exclude is not None else set())
        where = self.where(filters)
        search = self.table.search(vector=vector).vector_column(self.vec.name)
        if where is not None:
            search = search.filter(where)
        return self.page_of(lambda n: search.limit(n).to_list(), offset, limit, query, left_out, filters)

    def page_of(
        self,
        fetch: Callable[[int], list[dict[str, Any]]],
        offset: int,
        limit: int,
        query: dict[str, Any],
        left_out: Collection[Any],
        filters: PhotoFilters | None,
    ) -> dict[str, Any]:
        """One page of a ranked search: ``fetch(n)`` runs it for its best ``n`` rows, of which those
        in ``left_out`` and (with ``near``) those outside the circle are dropped."""

        def keep(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
            rows = filters.trim(rows) if filters is not None else rows
            return [r for r in rows if r[self.pk] not in left_out]

        want = offset + limit + 1  # one more than the page tells whether there are more
        found = collect(fetch, keep, want, start=want + len(left_out))
        return {
            "query": echo(query, filters),
            "offset": offset,
            "limit": limit,
            "has_more": len(found) > offset + limit,
            "results": [self.hit(r) for r in found[offset : offset + limit]],
        }

    def query_vector(self, key: tuple[str, str], make: Callable[[], np.ndarray]) -> np.ndarray:
        """The embedded query, reused when the same query pages on (``make()`` embeds it)."""
        vector = self.query_vectors.get(key)
        if vector is None:
            vector = make()
            self.query_vectors.put(key, vector)
        return vector

    def embed(self, **query: Any) -> np.ndarray:
        """The query vector for ``text=`` or ``image=``, by the searched column's embedder."""
        return self.table.search(**query).vector_column(self.vec.name).query_vector()

    def similar_page(
        self, item_id: Any, offset: int, limit: int, *, filters: PhotoFilters | None = None
    ) -> dict[str, Any]:
        """More like this: the items nearest to an indexed item, the item itself left out."""
        self.where(filters)  # a bad filter is told before the item is looked up
        row, vector = self.item_vector(item_id)
        query = {"kind": "item", "id": to_jsonable(item_id), "item": self.hit(row)}
        return self.search_page(vector, offset, limit, query, exclude=item_id, filters=filters)

    def text_page(
        self,
        q: str,
        offset: int,
        limit: int,
        *,
        mode: str = "vector",
        filters: PhotoFilters | None = None,
    ) -> dict[str, Any]:
        """Search by words ("a red bicycle"): by their vector (``mode="vector"``), by vector and
        full-text search fused (``"hybrid"``) or by full-text search alone (``"fulltext"``)."""
        text = q.strip()
        if not text:
            raise ApiError(400, "bad_request", "the query is empty")
        check_mode(mode, self.table, self.text_column)
        where = self.where(filters)  # a bad filter is told before the query is embedded
        if mode == "vector":
            vector = self.query_vector(("text", text), lambda: self.embed(text=text))
            return self.search_page(vector, offset, limit, {"kind": "text", "q": text}, filters=filters)
        search: HybridSearch | TextSearch
        if mode == "fulltext":
            search = self.table.search(text, search_type="fulltext")
        else:
            vector = self.query_vector(("text", text), lambda: self.embed(text=text))
            search = self.table.search(text, search_type="hybrid", vector=vector).vector_column(self.vec.name)
        search = search.text_column(str(self.text_column))
        if where is not None:
            search = search.filter(where)
        query = {"kind": "text", "q": text, "mode": mode}
        return self.page_of(lambda n: search.limit(n).to_list(), offset, limit, query, (), filters)

    def check_example_count(self, count: int) -> None:
        """422 ``too_many_examples`` over :data:`MAX_EXAMPLES` (called before any upload is read)."""
        if count > MAX_EXAMPLES:
            raise ApiError(
                422,
                "too_many_examples",
                f"{count} examples given; a search takes at most {MAX_EXAMPLES} (positive and negative "
                "together): select fewer",
            )

    def examples_page(
        self,
        positive: ExampleInputs,
        negative: ExampleInputs,
        offset: int,
        limit: int,
        include_examples: bool = False,
        *,
        filters: PhotoFilters | None = None,
    ) -> dict[str, Any]:
        """Search with several examples: items of the table (their stored vectors), words and
        uploaded pictures, "like these, not like those" (see :mod:`lookalike.examples`).

        Items given as examples are left out of the results unless ``include_examples``.
        """
        self.check_example_count(len(positive) + len(negative))
        if not len(positive):
            raise ApiError(
                400,
                "bad_request",
                "give at least one positive example (positive_id, positive_text or positive_image); "
                "negative examples alone are not a query",
            )
        self.where(filters)  # a bad filter is told before any example is embedded
        pos, pos_query, pos_ids = self.example_vectors(positive)
        neg, neg_query, neg_ids = self.example_vectors(negative)
        # the library combines them (weights, normalisation, examples that cancel out: 400)
        search = self.table.search(positive=pos, negative=neg).vector_column(self.vec.name)
        vector = search.query_vector()
        query = {"kind": "examples", "positive": pos_query, "negative": neg_query}
        left_out = () if include_examples else pos_ids + neg_ids
        return self.search_page(vector, offset, limit, query, exclude_all=left_out, filters=filters)

    def example_vectors(self, inputs: ExampleInputs) -> tuple[list[Example], list[dict[str, Any]], list[Any]]:
        """Each example of one side as a vector, how the server understood it, and the item ids."""
        vectors: list[Example] = []
        described: list[dict[str, Any]] = []
        ids = [self.parse_id(raw) for raw in inputs.ids]
        for item_id in ids:
            _, vector = self.item_vector(item_id)
            vectors.append(Example(vector, kind="vector"))
            described.append({"kind": "item", "id": to_jsonable(item_id)})
        for raw in inputs.texts:
            text = raw.strip()
            if not text or len(text) > MAX_TEXT_CHARS:
                raise ApiError(
                    400, "bad_request", f"a text example must hold 1 to {MAX_TEXT_CHARS} characters"
                )
            vector = self.query_vector(("text", text), functools.partial(self.embed, text=text))
            vectors.append(Example(vector, kind="vector"))
            described.append({"kind": "text", "q": text})
        for data, filename in inputs.images:
            vector, about = self.upload_vector(data, filename)
            vectors.append(Example(vector, kind="vector"))
            described.append({"kind": "image", **about})
        return vectors, described, ids

    def upload_page(
        self,
        data: bytes,
        filename: str | None,
        offset: int,
        limit: int,
        *,
        filters: PhotoFilters | None = None,
    ) -> dict[str, Any]:
        """Search with uploaded image bytes (413 over ``max_upload_bytes``)."""
        self.where(filters)  # a bad filter is told before the upload is decoded
        vector, described = self.upload_vector(data, filename)
        return self.search_page(vector, offset, limit, {"kind": "image", **described}, filters=filters)

    def upload_vector(self, data: bytes, filename: str | None) -> tuple[np.ndarray, dict[str, Any]]:
        """An uploaded picture's vector (checked, decoded in a slot, cached) and its name and hash."""
        if len(data) > self.max_upload_bytes:
            raise ApiError(413, "too_large", f"upload too large: the limit is {self.max_upload_bytes} bytes")
        name = os.path.basename(filename or "") or "upload"
        key = ("image", hashlib.sha256(data).hexdigest())

        def make() -> np.ndarray:
            with self.decoding():
                return self.embed(image=self.decode_query_image(data, f"upload {name!r}"))

        return self.query_vector(key, make), {"name": name, "sha256": key[1]}

    def url_page(
        self, url: str, offset: int, limit: int, *, filters: PhotoFilters | None = None
    ) -> dict[str, Any]:
        """Search with the picture at an http(s) URL, fetched through the SSRF guard."""
        url = url.strip()
        if not url.lower().startswith(("http://", "https://")):
            raise ApiError(400, "bad_url", f"{url!r}: only http and https URLs can be searched")
        self.where(filters)  # a bad filter is told before anything is fetched

        def make() -> np.ndarray:
            data = self.fetch_query_url(url)
            with self.decoding():
                return self.embed(image=self.decode_query_image(data, url))

        vector = self.query_vector(("url", url), make)
        return self.search_page(vector, offset, limit, {"kind": "url", "url": url}, filters=filters)

    def fetch_query_url(self, url: str) -> bytes:
        """The body at a client's URL; 400 ``url_refused`` (saying how to allow private addresses)
        or ``fetch_failed``."""
        try:
            return self.fetcher.fetch(url)
        except AddressRefused as exc:
            # The library's message names no CLI flag; here the flag is the way out.
            raise ApiError(400, "url_refused", str(exc) + _PRIVATE_URL_HINT) from exc
        except ImageInputError as exc:
            raise ApiError(400, "fetch_failed", str(exc)) from exc

    def item_vector(self, item_id: Any) -> tuple[dict[str, Any], np.ndarray]:
        """The item's columns and its vector (400 when it has none)."""
        row = self.row(item_id, with_vector=True)
        value = row.pop(self.vec.name)
        if value is None:
            raise ApiError(
                400, "no_vector", f"item {item_id!r} has no vector (its image could not be embedded)"
            )
        return row, np.asarray(value, dtype=np.float32)

    # -------------------------------------------------------------- images
    @contextlib.contextmanager
    def decoding(self) -> Iterator[None]:
        """Hold one of the decode slots while decoding (503 when none frees up in time)."""
        if not self.decode_slots.acquire(timeout=self.decode_wait):
            raise ApiError(503, "busy", "the server is decoding other images; try again shortly")
        try:
            yield
        finally:
            self.decode_slots.release()

    def image_ref(self, item_id: Any) -> Any:
        """What the item's image column holds (a path, URL, bytes...); 404 when there is none."""
        if self.image_column is None:
            raise ApiError(404, "no_image", f"table {self.table.name!r} has no image column")
        value = self.row(item_id).get(self.image_column)
        if value is None or (isinstance(value, str) and not value.strip()):
            raise ApiError(404, "no_image", f"item {item_id!r} has no image")
        return value

    def item_source(self, item_id: Any, ref: Any) -> ImageSource:
        """The bytes of an indexed item's image (read from the table's value, never a client's path)."""
        try:
            return read_source(ref, fetcher=self.item_fetcher)
        except ImageInputError as exc:
            raise ApiError(
                404, "image_unavailable", f"the image of item {item_id!r} is unavailable: {exc}"
            ) from exc

    def image_file(self, item_id: Any) -> bytes:
        """The encoded bytes of an indexed item's image (415 when the table holds no file for it)."""
        data = self.item_source(item_id, self.image_ref(item_id)).data
        if data is None:
            raise ApiError(415, "not_an_image", "this item's image is not stored as a file")
        return data

    def thumbnail(self, item_id: Any, size: int) -> bytes:
        """A JPEG thumbnail of an indexed item, made once and then served from the bounded cache."""
        ref = self.image_ref(item_id)
        key = (item_id, str(ref), size)  # a re-indexed item with a new file gets a new thumbnail
        data = self.thumbnails.get(key)
        if data is None:
            source = self.item_source(item_id, ref)
            with self.decoding():
                data = make_thumbnail(source, size)
            self.thumbnails.put(key, data)
        return data

    def decode_query_image(self, data: bytes, name: str) -> bytes:
        """Check uploaded or downloaded bytes (415 when they are not a picture at all, 413 when their
        header claims more than ``max_query_pixels``) and return them.

        The embedder decodes them itself, exactly as it decodes a path to the same file when indexing
        (JPEG draft scale included), so an upload of an indexed file finds that file at distance 0.
        """
        if not data:
            raise ApiError(400, "empty_image", f"{name}: empty (0 bytes), not an image")
        fmt = sniff_format(data)
        if fmt == "unknown" or fmt.startswith("!"):
            what = "an unrecognised format" if fmt == "unknown" else fmt[1:]
            raise ApiError(
                415,
                "not_an_image",
                f"{name} is not an image ({what}); send a JPEG, PNG, GIF, WebP, BMP, TIFF, AVIF or HEIC picture",
            )
        # Judged from the header, before anything is decoded: a 100 KB PNG can claim 100 MP. Refusing
        # (rather than decoding smaller) keeps the bytes the embedder sees the uploaded ones.
        _, (width, height) = image_size(data, name=name)
        if width * height > self.max_query_pixels:
            raise ApiError(
                413,
                "too_many_pixels",
                f"{name} is {width}×{height} ({width * height / 1e6:.0f} MP); query images may have at "
                f"most {self.max_query_pixels / 1e6:g} MP, send a smaller copy",
            )
        return data

    # -------------------------------------------------------------- duplicates
    def duplicates_page(
        self, threshold: float | None, exact: bool, similar: bool, offset: int, limit: int
    ) -> dict[str, Any]:
        """One page of the table's duplicate groups, each shaped by :meth:`group_json`."""
        groups = self.duplicate_groups(threshold, exact, similar)
        return {
            "threshold": threshold,
            "exact": exact,
            "similar": similar,
            "total_groups": len(groups),
            "offset": offset,
            "limit": limit,
            "has_more": len(groups) > offset + limit,
            "groups": [self.group_json(g) for g in groups[offset : offset + limit]],
        }

    def duplicate_groups(
        self, threshold: float | None, exact: bool, similar: bool = False
    ) -> list[DuplicateGroup]:
        """The table's duplicate groups (with ``similar`` shots too); a scan is reused until the row
        count changes."""
        key = (threshold, exact, similar, self.table.rows())
        groups = self.duplicate_scans.get(key)
        if groups is None:
            groups = list(
                self.table.find_duplicates(threshold=threshold, exact=exact, limit=None, similar=similar)
            )
            self.duplicate_scans.put(key, groups)
        return groups

    def group_json(self, group: DuplicateGroup) -> dict[str, Any]:
        """A duplicate group (keeper first) as JSON, members as hits with their match to the keeper."""
        members = []
        for item_id, row, distance, match, detail in zip(
            group.ids, group.rows, group.keeper_distances, group.labels, group.details
        ):
            hit = self.hit({**row, self.pk: item_id, "_distance": distance})
            hit["keeper"] = item_id == group.keeper
            hit["match"] = match
            hit["detail"] = detail
            members.append(hit)
        return {
            "keeper": to_jsonable(group.keeper),
            "size": len(members),
            "exact": bool(group.exact),
            "kind": group.kind,
            "diameter": round(float(group.diameter), 6),
            "reason": group.reason,
            "members": members,
        }


def media_type_of(data: bytes) -> str | None:
    """The ``Content-Type`` of encoded image bytes, or None when they are not a known image format."""
    return MEDIA_TYPES.get(sniff_format(data))


def _pick_vector_column(table: Table) -> VectorSpec:
    vectors = list(table.vector_columns.values())
    if not vectors:
        raise ConfigurationError(f"table {table.name!r} has no vector column: there is nothing to search")
    # several vector columns: search the one filled from images by a multimodal model
    for vec in vectors:
        if vec.embed_fn is not None and vec.embed_fn.multimodal and vec.source_field:
            return vec
    return vectors[0]


def _pick_image_column(table: Table, source_field: str | None) -> str | None:
    names = table.spec.sa_table.columns.keys()
    if source_field and source_field in names:
        return source_field
    return next((n for n in _IMAGE_COLUMN_NAMES if n in names), None)


def _is_integer(column: sa.Column[Any]) -> bool:
    try:
        return issubclass(column.type.python_type, int)
    except NotImplementedError:  # types without a Python equivalent (vectors, JSON) are not integers
        return False


def _display_name(source: Any, item_id: Any) -> str:
    if isinstance(source, str) and source and not source.startswith("data:"):
        tail = source.rstrip("/").split("?", 1)[0].replace("\\", "/").rsplit("/", 1)[-1]
        if tail:
            return tail
    return f"#{item_id}"
