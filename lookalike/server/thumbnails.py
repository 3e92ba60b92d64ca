"""Thumbnails of indexed items, kept in a bounded in-memory LRU cache.

A grid of 100 results asks for 100 thumbnails at once; decoding a 12 MP photo costs ~50 ms even with
JPEG draft scaling, so each thumbnail is made once and kept (about 10 KB each: 64 MB hold ~6,000).
"""

from __future__ import annotations

import io
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

from PIL import Image

from lookalike.images import ImageSource, decode_image

THUMBNAIL_SIZES = (128, 256, 512)
"""The sizes a client may ask for; a fixed set keeps the cache from being filled with one item."""

DEFAULT_CACHE_BYTES = 64 * 1024 * 1024


def make_thumbnail(source: ImageSource, size: int, *, quality: int = 82) -> bytes:
    """A JPEG no larger than ``size`` × ``size`` (aspect kept), decoded at reduced scale when possible."""
    image = decode_image(source, draft_size=(size, size))
    image.thumbnail((size, size), Image.Resampling.LANCZOS, reducing_gap=2.0)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=quality, optimize=True, progressive=False)
    return out.getvalue()


class LRUCache:
    """A thread-safe LRU map bounded by the total weight of its values (``weigh(value)``, default 1 each).

    Thumbnails are weighed by their byte length; query vectors and duplicate scans count one each.
    """

    def __init__(self, max_weight: int, weigh: Callable[[Any], int] = lambda _value: 1) -> None:
        self.max_weight = max_weight
        self._weigh = weigh
        self._items: OrderedDict[Hashable, tuple[Any, int]] = OrderedDict()
        self._weight = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: Hashable) -> Any:
        """The cached value (marked recently used), or None."""
        with self._lock:
            entry = self._items.get(key)
            if entry is None:
                self.misses += 1
                return None
            self._items.move_to_end(key)
            self.hits += 1
            return entry[0]

    def put(self, key: Hashable, value: Any) -> None:
        """Store ``value``, evicting the least recently used entries to stay under ``max_weight``."""
        weight = self._weigh(value)
        if weight > self.max_weight:
            return
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._weight -= old[1]
            self._items[key] = (value, weight)
            self._weight += weight
            while self._weight > self.max_weight:
                _, (_, evicted) = self._items.popitem(last=False)
                self._weight -= evicted

    def clear(self) -> None:
        """Drop every entry."""
        with self._lock:
            self._items.clear()
            self._weight = 0

    def stats(self) -> dict[str, int]:
        """Entries, weight held (bytes, for thumbnails), the bound, hits and misses."""
        with self._lock:
            return {
                "entries": len(self._items),
                "bytes": self._weight,
                "max_bytes": self.max_weight,
                "hits": self.hits,
                "misses": self.misses,
            }
