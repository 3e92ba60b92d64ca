"""What reading an image source tells before any decode: its content hash, pixel size and byte size.

The embedding cache keys vectors by the hash; exact duplicates share it, and the pixel size picks the
keeper of a duplicate group. Pillow is imported only when a header has to be read.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lookalike.images.decode import ImageSource

__all__ = ["SourceInfo", "source_info"]


@dataclass(frozen=True)
class SourceInfo:
    """What was read for one image source: content hash, pixel size (from the header) and byte size."""

    hash: str
    width: int | None = None
    height: int | None = None
    nbytes: int | None = None

    @property
    def pixels(self) -> int:
        """Width × height (0 when the header could not be read)."""
        return (self.width or 0) * (self.height or 0)


def source_info(source: ImageSource) -> SourceInfo:
    """Hash and header size of an :class:`~lookalike.images.ImageSource` (no full decode)."""
    width = height = None
    data = source.data
    if source.image is not None:
        width, height = source.image.size
    elif data is not None:
        try:
            from PIL import Image

            with Image.open(io.BytesIO(data)) as im:
                width, height = im.size
        except Exception:  # the decoder reports bad images later, with a proper message
            pass
    return SourceInfo(source.content_hash, width, height, len(data) if data is not None else None)
