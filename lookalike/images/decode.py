"""Reading an image input into bytes (:func:`read_source`), decoding it to clean RGB (:func:`decode_image`).

Splitting the two lets callers hash the raw bytes (embedding cache, exact duplicates) before paying for a
decode, and decode in a thread pool while another thread downloads.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import importlib
import io
import os
import re
import stat
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import unquote_to_bytes, urlsplit
from urllib.request import url2pathname

import numpy as np
from PIL import Image, ImageFile

from lookalike.errors import LookalikeError, MissingDependencyError, describe_item
from lookalike.images.fetch import HttpFetcher, default_fetcher, sniff_html
from lookalike.images.refs import ImageSourceError, is_url
from lookalike.paths import from_text

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "DraftRegion",
    "ImageSource",
    "decode_image",
    "draft_region",
    "get_max_pixels",
    "image_size",
    "load_image",
    "read_source",
    "set_max_pixels",
    "set_pixel_limit_advice",
    "sniff_format",
]

DEFAULT_MAX_PIXELS = 100_000_000
"""Images whose header claims more pixels than this are refused before decoding (about 100 MP)."""

_max_pixels = DEFAULT_MAX_PIXELS


def set_max_pixels(max_pixels: int | None) -> None:
    """Set the process-wide pixel cap used when ``max_pixels`` is not passed (``None``: the default)."""
    global _max_pixels
    if max_pixels is not None and max_pixels <= 0:
        raise ValueError("max_pixels must be a positive number of pixels")
    _max_pixels = DEFAULT_MAX_PIXELS if max_pixels is None else int(max_pixels)


_PIXEL_ADVICE = "pass max_pixels= or call lookalike.images.set_max_pixels"
_pixel_advice = _PIXEL_ADVICE


def set_pixel_limit_advice(advice: str | None) -> None:
    """How the "over the pixel limit" error tells the user to raise the limit, in the terms of the
    program they run (the CLI says ``raise it with --max-pixels N``); ``None``: the library's words."""
    global _pixel_advice
    _pixel_advice = _PIXEL_ADVICE if advice is None else advice


def get_max_pixels() -> int:
    """The process-wide pixel cap."""
    return _max_pixels


# -- sources -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImageSource:
    """One input read into memory: raw encoded ``data``, or an in-memory ``image`` (PIL or numpy given).

    ``name`` is a short printable description of the input, used in error messages.
    """

    name: str
    data: bytes | None = field(default=None, repr=False)
    image: Image.Image | None = field(default=None, repr=False)

    @cached_property
    def content_hash(self) -> str:
        """sha256 hex of the raw bytes, or of mode, size and pixels for an in-memory image."""
        digest = hashlib.sha256()
        if self.data is not None:
            digest.update(self.data)
        elif self.image is not None:
            digest.update(f"{self.image.mode}:{self.image.size[0]}x{self.image.size[1]}:".encode())
            digest.update(self.image.tobytes())
        return digest.hexdigest()


_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


def read_source(ref: Any, *, fetcher: HttpFetcher | None = None) -> ImageSource:
    """Read ``ref`` (URL, path, ``Path``, ``file://``/``data:`` URI, bytes, file object, PIL, numpy).

    Downloads URLs with ``fetcher`` (a shared default one when omitted). Decodes nothing.
    """
    if isinstance(ref, ImageSource):
        return ref
    if isinstance(ref, (bytes, bytearray, memoryview)):
        return ImageSource(name=describe_item(ref), data=bytes(ref))
    if isinstance(ref, Image.Image):
        return ImageSource(name=describe_item(ref), image=ref)
    if isinstance(ref, np.ndarray):
        return ImageSource(name=describe_item(ref), image=_array_to_image(ref, describe_item(ref)))
    if isinstance(ref, os.PathLike):
        return ImageSource(name=os.fspath(ref), data=_read_path(Path(ref), os.fspath(ref)))
    if isinstance(ref, str):
        return _read_string(ref, fetcher)
    if hasattr(ref, "read"):
        return _read_file_object(ref)
    raise ImageSourceError(
        "not an image input (expected a path, URL, bytes, file object, "
        f"PIL image or numpy array; got {type(ref).__name__})",
        subject=describe_item(ref),
    )


def _read_string(ref: str, fetcher: HttpFetcher | None) -> ImageSource:
    name = describe_item(ref)
    if ref.startswith("data:"):
        return ImageSource(name=name, data=_read_data_uri(ref, name))
    if is_url(ref):
        return ImageSource(name=name, data=(fetcher or default_fetcher()).fetch(ref))
    scheme = _SCHEME.match(ref)
    if scheme and scheme.group(1).lower() == "file":
        parts = urlsplit(ref)
        if parts.netloc not in ("", "localhost"):
            raise ImageSourceError(f"file URI names a remote host {parts.netloc!r}", subject=name)
        return ImageSource(name=name, data=_read_path(Path(url2pathname(parts.path)), name))
    if scheme:
        raise ImageSourceError(f"unsupported URL scheme {scheme.group(1)!r}", subject=name)
    if not ref.strip():
        raise ImageSourceError("empty string is not an image path or URL", subject=repr(name), item=name)
    # a folder index stores names that are not UTF-8 in an escaped text form (lookalike.paths)
    unescaped = from_text(ref)
    if unescaped != ref and not os.path.lexists(ref):
        ref = unescaped
    return ImageSource(name=name, data=_read_path(Path(ref).expanduser(), name))


def _read_data_uri(ref: str, name: str) -> bytes:
    header, comma, payload = ref.partition(",")
    if not comma:
        raise ImageSourceError("malformed data URI (no comma)", subject=name)
    params = [p.strip().lower() for p in header[5:].split(";")]
    media_type = params[0]
    if media_type and not media_type.startswith("image/") and media_type != "application/octet-stream":
        raise ImageSourceError(f"data URI holds {media_type}, not an image", subject=name)
    if "base64" in params[1:]:
        text = "".join(unquote_to_bytes(payload).decode("ascii", "replace").split())
        try:
            # browsers accept missing padding; so do we
            return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ImageSourceError("invalid base64 in data URI", subject=name) from exc
    return unquote_to_bytes(payload)


def _read_path(path: Path, name: str) -> bytes:
    try:
        info = path.stat()
        if stat.S_ISDIR(info.st_mode):
            raise ImageSourceError("is a directory, not an image file", subject=name)
        if not stat.S_ISREG(info.st_mode):
            # opening a FIFO would block until a writer shows up: refuse before open()
            raise ImageSourceError("not a regular file (a FIFO, socket or device)", subject=name)
        with path.open("rb") as handle:
            return handle.read()
    except (FileNotFoundError, NotADirectoryError) as exc:
        raise ImageSourceError("no such file", subject=name) from exc
    except IsADirectoryError as exc:
        raise ImageSourceError("is a directory, not an image file", subject=name) from exc
    except PermissionError as exc:
        raise ImageSourceError("permission denied", subject=name) from exc
    except (OSError, ValueError) as exc:  # EIO, ENAMETOOLONG, embedded NUL...
        reason = getattr(exc, "strerror", None) or str(exc)
        raise ImageSourceError(f"cannot read file: {reason}", subject=name) from exc


def _read_file_object(handle: Any) -> ImageSource:
    raw_name = getattr(handle, "name", None)
    name = raw_name if isinstance(raw_name, str) and raw_name else describe_item(handle)
    try:
        data = handle.read()
    except (OSError, ValueError) as exc:  # ValueError: read of a closed file
        raise ImageSourceError(f"cannot read file object: {exc}", subject=name) from exc
    if isinstance(data, str):
        raise ImageSourceError("file opened in text mode; open images with 'rb'", subject=name)
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise ImageSourceError(f"read() returned {type(data).__name__}, not bytes", subject=name)
    return ImageSource(name=name, data=bytes(data))


def _array_to_image(array: np.ndarray, name: str) -> Image.Image:
    """A numpy picture as a PIL image: (H, W) gray or (H, W, 1|3|4); uint8, bool, uint16 or 0..1 floats."""
    a = array
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if a.ndim == 3 and a.shape[2] not in (3, 4):
        hint = "; it looks channels-first, transpose it to (H, W, C)" if a.shape[0] in (1, 3, 4) else ""
        raise ImageSourceError(f"expected shape (H, W), (H, W, 3) or (H, W, 4){hint}", subject=name)
    if a.ndim not in (2, 3) or a.size == 0:
        raise ImageSourceError("expected shape (H, W), (H, W, 3) or (H, W, 4)", subject=name)
    if a.dtype == np.bool_:
        a = a.astype(np.uint8) * 255
    elif a.dtype == np.uint16:
        a = ((a.astype(np.uint32) + 128) // 257).astype(np.uint8)
    elif np.issubdtype(a.dtype, np.floating):
        if not np.isfinite(a).all() or a.min() < 0 or a.max() > 1:
            raise ImageSourceError("float pictures must hold values in [0, 1]", subject=name)
        a = np.rint(a * 255).astype(np.uint8)
    elif a.dtype != np.uint8:
        raise ImageSourceError(f"unsupported pixel type {a.dtype} (use uint8)", subject=name)
    return Image.fromarray(np.ascontiguousarray(a))


# -- formats -----------------------------------------------------------------------------------------

# Formats we decode, by the name Pillow registers them under, with the plugin module to import.
_PLUGINS = {
    "JPEG": "PIL.JpegImagePlugin",
    "PNG": "PIL.PngImagePlugin",
    "GIF": "PIL.GifImagePlugin",
    "WEBP": "PIL.WebPImagePlugin",
    "BMP": "PIL.BmpImagePlugin",
    "TIFF": "PIL.TiffImagePlugin",
    "ICO": "PIL.IcoImagePlugin",
    "JPEG2000": "PIL.Jpeg2KImagePlugin",
    "AVIF": "PIL.AvifImagePlugin",
    "HEIF": "",  # registered by pillow-heif, see _ensure_heif
}
_HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"hevm", b"hevs", b"mif1", b"msf1"}
_AVIF_BRANDS = {b"avif", b"avis"}


def sniff_format(data: bytes) -> str:
    """Name the format from the first bytes: a key of the decodable formats, or ``"unknown"``, or a
    description of a known non-image format prefixed with ``"!"`` (``"!PDF document"``)."""
    if data.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "GIF"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    if data.startswith(b"BM") and len(data) >= 26:
        return "BMP"
    if data.startswith((b"II*\x00", b"MM\x00*")):
        return "TIFF"
    if data.startswith(b"\x00\x00\x01\x00"):
        return "ICO"
    if data.startswith((b"\x00\x00\x00\x0cjP  \r\n\x87\n", b"\xff\x4f\xff\x51")):
        return "JPEG2000"
    if data[4:8] == b"ftyp":
        size = struct.unpack(">I", data[:4])[0]
        major = data[8:12]
        brands = {major} | {data[i : i + 4] for i in range(16, min(size, len(data), 64) - 3, 4)}
        if major in _AVIF_BRANDS or (major == b"mif1" and brands & _AVIF_BRANDS and not brands & {b"heic"}):
            return "AVIF"
        if brands & _HEIF_BRANDS:
            return "HEIF"
        return "!video (MP4/QuickTime)"
    if data.startswith(b"%PDF"):
        return "!PDF document"
    if data.startswith((b"%!PS", b"\xc5\xd0\xd3\xc6")):
        return "!PostScript/EPS document"
    if data.startswith(b"8BPS"):
        return "!Photoshop document"
    if data.startswith(b"PK\x03\x04"):
        return "!ZIP archive"
    head = data[:1024].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if b"<svg" in head and (head.startswith((b"<svg", b"<?xml", b"<!doctype svg", b"<!--"))):
        return "!SVG drawing"
    if sniff_html(data):
        return "!HTML page"
    return "unknown"


_heif_lock = threading.Lock()


def _ensure_heif() -> None:
    """Register pillow-heif's opener on first need, so plain installs never import it."""
    if "HEIF" in Image.OPEN:
        return
    with _heif_lock:
        if "HEIF" in Image.OPEN:
            return
        try:
            import pillow_heif
        except ImportError as exc:
            raise MissingDependencyError("HEIC images", extra="heic", package="pillow-heif") from exc
        pillow_heif.register_heif_opener()


def _open(data: bytes, fmt: str, name: str) -> Image.Image:
    """Open with exactly the plugin for ``fmt``: no guessing among Pillow's ~40 formats for untrusted bytes,
    and no global MAX_IMAGE_PIXELS warning (our own cap is checked right after)."""
    if fmt == "HEIF":
        _ensure_heif()
    elif _PLUGINS[fmt]:
        try:
            importlib.import_module(_PLUGINS[fmt])
        except ImportError as exc:
            raise ImageSourceError(f"{fmt} image, but this Pillow cannot decode {fmt}", subject=name) from exc
    if fmt not in Image.OPEN:
        raise ImageSourceError(f"{fmt} image, but this Pillow was built without {fmt} support", subject=name)
    factory, _accept = Image.OPEN[fmt]
    return factory(io.BytesIO(data), "")


def _header_size(data: bytes, fmt: str) -> tuple[int, int] | None:
    """Dimensions read straight from the header, for formats whose opener already allocates per pixel."""
    if fmt == "GIF" and len(data) >= 10:
        return struct.unpack("<HH", data[6:10])
    return None


def _check_pixels(size: tuple[int, int], limit: int, name: str) -> None:
    width, height = size
    if width * height > limit:
        err = ImageSourceError(
            f"image is {width}×{height} ({width * height / 1e6:.0f} MP), over the limit of {limit / 1e6:g} MP",
            subject=name,
        )
        err.add_remark(f"({_pixel_advice})")
        raise err


def image_size(data: bytes, *, name: str = "image") -> tuple[str, tuple[int, int]]:
    """The format and the stored ``(width, height)`` of encoded image bytes, read from the header only.

    Nothing is decoded, so a caller can refuse a picture by its pixel count before paying for it
    (the server does this for query images). Raises :class:`ImageSourceError` for bytes that are not
    a decodable image or whose header cannot be read.
    """
    fmt = sniff_format(data)
    if fmt == "unknown" or fmt.startswith("!"):
        raise ImageSourceError("not a recognised image format", subject=name)
    header = _header_size(data, fmt)
    if header is not None:
        return fmt, (int(header[0]), int(header[1]))

    def opened() -> Image.Image:
        return _open(data, fmt, name)  # lazy: Pillow reads the header, not the pixels

    width, height = _guarded(name, fmt, opened).size
    return fmt, (int(width), int(height))


_ORIENTATION = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def _orientation(im: Image.Image) -> int:
    try:
        value = im.getexif().get(0x0112, 1)
        return int(value) if value in _ORIENTATION else 1
    except Exception:  # malformed EXIF: show the picture as stored rather than fail it
        return 1


# -- decoding ----------------------------------------------------------------------------------------


def decode_image(
    source: ImageSource | Any,
    *,
    draft_size: tuple[int, int] | None = None,
    max_pixels: int | None = None,
) -> Image.Image:
    """Decode a source to a fully loaded RGB image, upright per EXIF, first frame of an animation.

    ``draft_size`` lets JPEGs decode at a reduced scale (1/2, 1/4, 1/8) that is still at least that size,
    which is several times faster for big photos (:func:`draft_region` then tells where the picture
    lies in the result, to resize it as a full decode would be); ``max_pixels`` refuses images whose
    header claims more pixels (default: :func:`get_max_pixels`). In-memory images are only converted,
    except those straight from ``Image.open``, which get the cap, draft and EXIF orientation too.
    """
    if not isinstance(source, ImageSource):
        source = read_source(source)
    name = source.name
    limit = max_pixels if max_pixels is not None else _max_pixels
    image = source.image
    if image is not None:
        # A picture opened by the caller (Image.open) still carries its EXIF orientation and is maybe
        # not loaded yet; anything else (arrays, edited images) is taken as already upright.
        from_file = isinstance(image, ImageFile.ImageFile)
        return _guarded(
            name, image.format or "image", lambda: _finish(image, name, limit, draft_size, from_file)
        )
    data = source.data or b""
    if not data:
        raise ImageSourceError("empty (0 bytes), not an image", subject=name)
    fmt = sniff_format(data)
    if fmt.startswith("!"):
        raise ImageSourceError(f"unsupported format ({fmt[1:]}), not an image", subject=name)
    if fmt == "unknown":
        # Name the format, never the content: the bytes may be any file an indexed path now points to.
        raise ImageSourceError("not a recognised image format", subject=name)
    header = _header_size(data, fmt)
    if header is not None:
        _check_pixels(header, limit, name)
    return _guarded(name, fmt, lambda: _finish(_open(data, fmt, name), name, limit, draft_size, True))


def _finish(
    im: Image.Image, name: str, limit: int, draft_size: tuple[int, int] | None, from_file: bool
) -> Image.Image:
    """Cap, draft, load, convert to RGB and turn upright an opened (maybe not yet decoded) image."""
    if not from_file:
        return _to_rgb(im, name)
    _check_pixels(im.size, limit, name)
    orientation = _orientation(im)
    full_size = im.size
    box: tuple[float, float, float, float] | None = None
    if draft_size is not None and im.format in ("JPEG", "MPO"):
        width, height = draft_size
        # the draft size is for the upright picture; the stored one is turned for orientations 5..8
        drafted = im.draft(None, (height, width) if orientation >= 5 else (width, height))
        if drafted is not None and im.size != full_size:
            box = drafted[1]
    im.load()
    rgb = _to_rgb(im, name)
    method = _ORIENTATION.get(orientation)
    if method is not None:
        rgb = rgb.transpose(method)
    if box is not None:
        upright = (full_size[1], full_size[0]) if orientation >= 5 else full_size
        _mark_draft(rgb, DraftRegion(_transpose_box(box, im.size, method), upright))
    return rgb


# -- reduced-scale JPEG decoding -----------------------------------------------------------------------

_DRAFT_KEY = "lookalike.draft"


class DraftRegion(NamedTuple):
    """Where the whole picture lies in an image decoded at reduced JPEG scale.

    A JPEG decoded at 1/2, 1/4 or 1/8 scale has its size rounded up, so its last row or column is partly
    padding: ``box`` (left, upper, right, lower, in the decoded image's pixels, possibly fractional) is
    the region that maps exactly onto the picture, and ``full_size`` is the picture's upright size at
    full scale. Resizing with ``box=`` and shape computed from ``full_size`` samples the same geometry
    as a full decode would, which keeps vectors from both within rounding of each other.
    """

    box: tuple[float, float, float, float]
    full_size: tuple[int, int]


def draft_region(image: Image.Image) -> DraftRegion | None:
    """The :class:`DraftRegion` of an image :func:`decode_image` decoded at reduced scale, else ``None``."""
    region = image.info.get(_DRAFT_KEY)
    # edits (resize, crop, paste) keep ``info`` but change the pixels: trust the mark only while the
    # size still matches the one it was made for
    if isinstance(region, tuple) and len(region) == 3 and region[2] == image.size:
        return DraftRegion(region[0], region[1])
    return None


def _mark_draft(image: Image.Image, region: DraftRegion) -> None:
    image.info[_DRAFT_KEY] = (region.box, region.full_size, image.size)


def _transpose_box(
    box: tuple[float, float, float, float], size: tuple[int, int], method: Image.Transpose | None
) -> tuple[float, float, float, float]:
    """``box`` (anchored at the origin, as Pillow's draft gives it) after ``method`` turns a
    ``size`` picture: the partial padding row/column moves with the edge it belongs to."""
    _, _, bw, bh = box
    w, h = size
    T = Image.Transpose
    return {
        None: (0.0, 0.0, bw, bh),
        T.FLIP_LEFT_RIGHT: (w - bw, 0.0, float(w), bh),
        T.FLIP_TOP_BOTTOM: (0.0, h - bh, bw, float(h)),
        T.ROTATE_180: (w - bw, h - bh, float(w), float(h)),
        T.ROTATE_90: (0.0, w - bw, bh, float(w)),
        T.ROTATE_270: (h - bh, 0.0, float(h), bw),
        T.TRANSPOSE: (0.0, 0.0, bh, bw),
        T.TRANSVERSE: (h - bh, w - bw, float(h), float(w)),
    }[method]


def _guarded(name: str, fmt: str, work: Callable[[], Image.Image]) -> Image.Image:
    """Run ``work``, translating Pillow's many ways of failing into one :class:`ImageSourceError`."""
    try:
        return work()
    except LookalikeError:
        raise
    except Image.DecompressionBombError as exc:
        raise ImageSourceError(f"image too large to decode safely: {exc}", subject=name) from exc
    except (OSError, EOFError) as exc:
        text = _without_bytes(str(exc))
        reason = "truncated image data" if "truncat" in text.lower() else f"corrupt image data ({text})"
        raise ImageSourceError(f"{fmt} file could not be decoded: {reason}", subject=name) from exc
    except MemoryError as exc:
        raise ImageSourceError("not enough memory to decode this image", subject=name) from exc
    except Exception as exc:  # SyntaxError, struct.error, ValueError...: Pillow's ways of saying "corrupt"
        reason = _without_bytes(f"{type(exc).__name__}: {exc}")
        raise ImageSourceError(f"{fmt} file could not be decoded: {reason}", subject=name) from exc


# b'...' or b"..." as repr() writes bytes; Pillow quotes file bytes this way (chunk ids, markers).
_BYTES_LITERAL = re.compile(r"b'(?:[^'\\]|\\.)*'|b\"(?:[^\"\\]|\\.)*\"")


def _without_bytes(text: str) -> str:
    """Pillow's message with quoted file bytes left out: messages reach web clients and logs."""
    return _BYTES_LITERAL.sub("<bytes>", text)


def _to_rgb(im: Image.Image, name: str) -> Image.Image:
    """Any Pillow mode to RGB: alpha composited on white, 16-bit scaled down, CMYK/1-bit/palette converted."""
    mode = im.mode
    if mode == "RGB":
        return im
    if mode.startswith("I") or mode == "F":
        return Image.fromarray(_scale_to_uint8(np.asarray(im), mode)).convert("RGB")
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in im.info:
        rgba = im.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    try:
        return im.convert("RGB")
    except ValueError as exc:  # e.g. LAB, which Pillow cannot convert without a colour profile
        raise ImageSourceError(f"cannot convert {mode} image to RGB", subject=name) from exc


def _scale_to_uint8(a: np.ndarray, mode: str) -> np.ndarray:
    if mode == "F":
        a = a.astype(np.float64)
        finite = a[np.isfinite(a)]
        scale = 255.0 if finite.size and finite.max() <= 1.0 else 1.0
        return np.clip(np.nan_to_num(a) * scale, 0, 255).round().astype(np.uint8)
    a = a.astype(np.int64)
    # 16-bit modes always span 0..65535; a 32-bit "I" image is read as 16-bit when it exceeds 8-bit range
    if mode.startswith("I;16") or (a.size and a.max() > 255):
        return ((np.clip(a, 0, 65535) + 128) // 257).astype(np.uint8)
    return np.clip(a, 0, 255).astype(np.uint8)


def load_image(
    ref: Any,
    *,
    draft_size: tuple[int, int] | None = None,
    max_pixels: int | None = None,
    fetcher: HttpFetcher | None = None,
) -> Image.Image:
    """Turn any image input into a fully loaded, upright RGB PIL image (see :func:`decode_image`)."""
    return decode_image(read_source(ref, fetcher=fetcher), draft_size=draft_size, max_pixels=max_pixels)
