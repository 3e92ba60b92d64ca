"""Turning anything (URL, path, bytes, file object, data URI, PIL image, numpy array) into a clean RGB image.

``load_image(ref)`` is ``decode_image(read_source(ref))``: reading gives the raw bytes and their
``content_hash`` (for caches and exact duplicates) without decoding; decoding applies the pixel cap,
JPEG draft scaling, EXIF orientation and mode conversion. Every bad input raises
:class:`~lookalike.errors.ImageInputError` naming the item.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lookalike.images.info import SourceInfo, source_info
from lookalike.images.refs import ImageSourceError, is_image_ref, is_url, looks_like_path

if TYPE_CHECKING:
    from lookalike.images.decode import (
        DEFAULT_MAX_PIXELS,
        ImageSource,
        decode_image,
        get_max_pixels,
        image_size,
        load_image,
        read_source,
        set_max_pixels,
        set_pixel_limit_advice,
        sniff_format,
    )
    from lookalike.images.fetch import DEFAULT_MAX_BYTES, HttpFetcher, default_fetcher
    from lookalike.images.guard import check_url_allowed, is_public_address

# Pillow and httpx load on first use, so `import lookalike` (and a text query) stays quick.
_LAZY = {
    "DEFAULT_MAX_PIXELS": "decode",
    "ImageSource": "decode",
    "decode_image": "decode",
    "get_max_pixels": "decode",
    "image_size": "decode",
    "load_image": "decode",
    "read_source": "decode",
    "set_max_pixels": "decode",
    "set_pixel_limit_advice": "decode",
    "sniff_format": "decode",
    "DEFAULT_MAX_BYTES": "fetch",
    "HttpFetcher": "fetch",
    "default_fetcher": "fetch",
    "check_url_allowed": "guard",
    "is_public_address": "guard",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'lookalike.images' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f"lookalike.images.{module}"), name)
    globals()[name] = value
    return value


__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_PIXELS",
    "HttpFetcher",
    "ImageSource",
    "ImageSourceError",
    "SourceInfo",
    "check_url_allowed",
    "decode_image",
    "default_fetcher",
    "get_max_pixels",
    "image_size",
    "is_image_ref",
    "is_public_address",
    "is_url",
    "load_image",
    "looks_like_path",
    "read_source",
    "set_max_pixels",
    "set_pixel_limit_advice",
    "sniff_format",
    "source_info",
]
