"""Telling image references from text, without touching the network or decoding anything; and the
error about one such reference."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from lookalike.errors import ImageInputError

__all__ = ["IMAGE_SUFFIXES", "URL_PREFIXES", "ImageSourceError", "is_image_ref", "is_url", "looks_like_path"]

IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".jpe", ".png", ".gif", ".webp", ".bmp", ".tif", ".tiff", ".heic", ".heif", ".avif"}
)
URL_PREFIXES = ("http://", "https://")


def is_url(value: str) -> bool:
    """True for an http(s) URL."""
    return value[:8].lower().startswith(URL_PREFIXES)


def looks_like_path(value: str) -> bool:
    """True when a string reads as a file path rather than words.

    A string with an image suffix, a leading ``/``, ``./``, ``../`` or ``~``, or a ``file://`` prefix is
    a path. Words like "orange tabby cat" are not. A string that merely exists as a file name in the
    current directory counts too, so ``search("cat.jpg")`` finds the file.
    """
    if not value or "\n" in value or len(value) > 4096:
        return False
    if value.startswith("file://"):
        return True
    if value.startswith(("/", "./", "../", "~/", ".\\", "..\\")) and " " not in value.split(os.sep)[0]:
        return True
    if Path(value).suffix.lower() in IMAGE_SUFFIXES and not is_url(value):
        return True
    try:
        return os.path.isfile(value)
    except (OSError, ValueError):
        return False


def is_image_ref(value: Any) -> bool:
    """True when ``value`` names or holds an image rather than text.

    Images: PIL images, numpy arrays, bytes, ``pathlib.Path``, http(s) URLs, ``data:image/…`` URIs,
    ``file://`` URIs and strings that look like file paths (see :func:`looks_like_path`).
    Anything else (plain strings of words) is text.
    """
    if isinstance(value, (bytes, bytearray, memoryview, os.PathLike)):
        return True
    if isinstance(value, str):
        if value.startswith("data:"):
            return value[5:11].lower() == "image/"
        if is_url(value):
            return True
        return looks_like_path(value)
    if hasattr(value, "getdata") and hasattr(value, "mode"):  # PIL.Image.Image, without importing PIL
        return True
    if hasattr(value, "read"):  # a binary file object
        return True
    shape = getattr(value, "shape", None)
    dtype = getattr(value, "dtype", None)
    if shape is not None and dtype is not None:
        # a 2-D/3-D uint8 array is a picture; a 1-D float array is a vector, handled elsewhere
        return len(shape) in (2, 3) and str(dtype) == "uint8"
    return False


class ImageSourceError(ImageInputError):
    """An :class:`~lookalike.errors.ImageInputError` about one named input (a path, a URL, a file object).

    ``subject`` names the input as the text shows it; ``detail`` says what is wrong with it, without the
    name. Standing alone the text is ``"photo.jpg: no such file"``; in bulk work, where ``index`` is set,
    the context names the item already: ``"item 3 (photo.jpg): no such file"``. A caller that shows the
    input itself (a folder report listing paths) shows ``detail`` and ``remarks``, never parsing the text.
    ``item`` defaults to the subject.
    """

    def __init__(
        self, detail: str = "", *, subject: str | None = None, item: Any = None, index: int | None = None
    ) -> None:
        super().__init__(detail, item=item if item is not None else subject, index=index)
        self.subject = subject

    def context(self) -> str:
        """The subject when standing alone, else the usual ``item N (…)`` context."""
        where = super().context()
        if self.subject is None or self.index is not None:
            return where
        return f"{self.subject}, {where}" if where else self.subject
