"""The image input layer: every kind of input, every bad input, fetching over real local HTTP."""

from __future__ import annotations

import base64
import io
import os
import ssl
import stat
import struct
import threading
import time
import warnings
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, features

from lookalike.errors import ImageInputError
from lookalike.images import (
    DEFAULT_MAX_PIXELS,
    HttpFetcher,
    ImageSource,
    ImageSourceError,
    check_url_allowed,
    decode_image,
    get_max_pixels,
    is_image_ref,
    is_public_address,
    load_image,
    read_source,
    set_max_pixels,
    set_pixel_limit_advice,
)
from lookalike.images.guard import AddressRefused
from tests.helpers import http_server as server_helpers
from tests.helpers.http_server import LocalHTTPServer, Response

http_server = server_helpers.http_server  # the shared fixture: a started local server per test

# -- generated pictures ------------------------------------------------------------------------------


def asymmetric(width: int = 96, height: int = 64) -> Image.Image:
    """A smooth picture that changes under every flip and rotation (JPEG-friendly: no sharp noise)."""
    y, x = np.mgrid[0:height, 0:width]
    r = (x * 255 // max(1, width - 1)).astype(np.uint8)
    g = (y * 255 // max(1, height - 1)).astype(np.uint8)
    b = np.full((height, width), 60, np.uint8)
    b[: height // 3, : width // 4] = 230  # a bright block near the top-left corner
    return Image.fromarray(np.dstack([r, g, b]))


def encode(image: Image.Image, fmt: str = "JPEG", **params: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **params)
    return buffer.getvalue()


def mean_diff(a: Image.Image, b: Image.Image) -> float:
    assert a.size == b.size, (a.size, b.size)
    return float(np.abs(np.asarray(a, np.int16) - np.asarray(b, np.int16)).mean())


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


@pytest.fixture
def jpeg() -> bytes:
    return encode(asymmetric(), quality=95)


@pytest.fixture
def fetcher() -> Iterator[HttpFetcher]:
    with HttpFetcher(timeout=2.0, retries=2, backoff=0.01) as f:
        yield f


def raises_for(ref: object, *fragments: str, **kwargs: object) -> ImageInputError:
    """Assert loading ``ref`` fails with an ImageInputError whose message has every fragment."""
    with pytest.raises(ImageInputError) as info:
        load_image(ref, **kwargs)  # type: ignore[arg-type]
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    assert info.value.item is not None
    return info.value


# -- good inputs of every kind -------------------------------------------------------------------------


def test_every_input_kind_gives_the_same_rgb_picture(
    tmp_path: Path, jpeg: bytes, http_server: LocalHTTPServer
):
    path = tmp_path / "pic.jpg"
    path.write_bytes(jpeg)
    http_server.add_bytes("/pic.jpg", jpeg, "image/jpeg")
    reference = load_image(jpeg)
    assert reference.mode == "RGB" and reference.size == (96, 64)
    with HttpFetcher() as f:
        refs = [
            path,
            str(path),
            path.as_uri(),
            "data:image/jpeg;base64," + base64.b64encode(jpeg).decode(),
            bytearray(jpeg),
            memoryview(jpeg),
            io.BytesIO(jpeg),
            http_server.url("/pic.jpg"),
        ]
        for ref in refs:
            image = load_image(ref, fetcher=f)
            assert image.mode == "RGB"
            assert np.array_equal(np.asarray(image), np.asarray(reference)), ref


def test_content_hash_is_of_the_raw_bytes_whatever_the_route(tmp_path: Path, jpeg: bytes):
    path = tmp_path / "pic.jpg"
    path.write_bytes(jpeg)
    hashes = {
        read_source(ref).content_hash
        for ref in [jpeg, path, path.as_uri(), "data:image/jpeg;base64," + base64.b64encode(jpeg).decode()]
    }
    assert len(hashes) == 1
    import hashlib

    assert hashes == {hashlib.sha256(jpeg).hexdigest()}
    assert read_source(jpeg + b"\0").content_hash not in hashes


def test_content_hash_of_in_memory_pictures_covers_mode_size_and_pixels():
    pixels = np.asarray(asymmetric())
    same = {read_source(pixels).content_hash, read_source(Image.fromarray(pixels)).content_hash}
    assert len(same) == 1
    changed = pixels.copy()
    changed[0, 0, 0] ^= 1
    assert read_source(changed).content_hash not in same
    assert read_source(Image.fromarray(pixels).convert("RGBA")).content_hash not in same


def test_numpy_arrays_rgb_and_gray():
    rgb = np.asarray(asymmetric())
    assert np.array_equal(np.asarray(load_image(rgb)), rgb)
    gray = rgb[:, :, 1].copy()
    out = np.asarray(load_image(gray))
    assert out.shape == (*gray.shape, 3)
    assert all(np.array_equal(out[:, :, c], gray) for c in range(3))
    assert np.array_equal(np.asarray(load_image(gray[:, :, None])), out)
    floats = load_image(rgb.astype(np.float32) / 255)
    assert mean_diff(floats, Image.fromarray(rgb)) < 0.01


def test_numpy_arrays_with_bad_shapes_or_types_are_refused():
    raises_for(np.zeros((3, 32, 32), np.uint8), "channels-first")
    raises_for(np.zeros((4, 4, 4, 4), np.uint8), "expected shape")
    raises_for(np.zeros((8, 8), np.int64), "unsupported pixel type")
    raises_for(np.full((8, 8), 2.0), "[0, 1]")


def test_pil_rgba_is_composited_on_white():
    rgba = Image.new("RGBA", (10, 10), (0, 0, 0, 0))
    rgba.paste((0, 0, 0, 255), (0, 0, 5, 10))  # left half opaque black, right half transparent
    half = Image.new("RGBA", (10, 10), (0, 0, 0, 128))
    out = np.asarray(load_image(rgba))
    assert (out[:, :5] == 0).all() and (out[:, 5:] == 255).all()
    assert abs(int(np.asarray(load_image(half))[0, 0, 0]) - 127) <= 1


def test_pil_image_opened_by_the_caller_is_loaded_and_turned_upright(tmp_path: Path):
    upright = asymmetric()
    stored = upright.transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "phone.jpg"
    path.write_bytes(encode(stored, quality=95, exif=exif))
    with Image.open(path) as opened:
        out = load_image(opened)
    assert out.size == upright.size and mean_diff(out, upright) < 3


def test_webp_loads():
    picture = asymmetric()
    out = load_image(encode(picture, "WEBP", lossless=True))
    assert np.array_equal(np.asarray(out), np.asarray(picture))


def test_heic_round_trip():
    pillow_heif = pytest.importorskip("pillow_heif")
    picture = asymmetric(128, 96)
    buffer = io.BytesIO()
    pillow_heif.from_pillow(picture).save(buffer, quality=95)
    out = load_image(buffer.getvalue())
    assert out.mode == "RGB" and out.size == picture.size
    assert mean_diff(out, picture) < 6


@pytest.mark.skipif(not features.check("avif"), reason="this Pillow was built without AVIF")
def test_avif_round_trip():
    picture = asymmetric(128, 96)
    out = load_image(encode(picture, "AVIF", quality=95))
    assert out.size == picture.size and mean_diff(out, picture) < 6


def test_tiff_bmp_and_gray_png_load():
    picture = asymmetric()
    for fmt in ("TIFF", "BMP", "PNG"):
        assert np.array_equal(np.asarray(load_image(encode(picture, fmt))), np.asarray(picture)), fmt
    gray = picture.convert("L")
    assert np.array_equal(np.asarray(load_image(encode(gray, "PNG")))[:, :, 0], np.asarray(gray))


def test_one_bit_image_loads_black_and_white():
    bits = Image.new("1", (16, 8), 0)
    bits.paste(1, (0, 0, 8, 8))
    out = np.asarray(load_image(encode(bits, "PNG")))
    assert (out[:, :8] == 255).all() and (out[:, 8:] == 0).all()


# -- images that need care -----------------------------------------------------------------------------


def test_sixteen_bit_png_is_scaled_not_clipped():
    ramp = np.linspace(0, 65535, 256, dtype=np.uint16)[None, :].repeat(4, axis=0)
    data = encode(Image.fromarray(ramp), "PNG")
    assert Image.open(io.BytesIO(data)).mode.startswith("I;16")
    out = np.asarray(load_image(data))[:, :, 0].astype(int)
    expected = np.rint(ramp.astype(float) / 257).astype(int)
    assert np.abs(out - expected).max() <= 1
    assert out[0, 0] == 0 and out[0, -1] == 255 and 120 <= out[0, 128] <= 135


def test_cmyk_jpeg_loads_as_rgb():
    cmyk = Image.new("CMYK", (32, 32), (0, 255, 255, 0))  # pure red in print colours
    out = load_image(encode(cmyk, quality=95))
    assert out.mode == "RGB"
    r, g, b = np.asarray(out).reshape(-1, 3).mean(axis=0)
    assert r > 240 and g < 15 and b < 15


# how a camera stores an upright picture for each EXIF orientation: the inverse of what the tag says to do
STORED_AS = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_90,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,
}


@pytest.mark.parametrize("orientation", [2, 3, 4, 5, 6, 7, 8])
def test_exif_rotated_jpeg_comes_out_upright(orientation: int):
    upright = asymmetric()
    undo = STORED_AS[orientation]
    stored = upright.transpose(undo)
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = encode(stored, quality=95, exif=exif)
    out = load_image(data)
    assert out.size == upright.size
    assert mean_diff(out, upright) < 3
    # sanity of the test itself: the EXIF spec's display transform turns the stored picture upright
    display = {6: Image.Transpose.ROTATE_270, 8: Image.Transpose.ROTATE_90}.get(orientation, undo)
    assert np.array_equal(np.asarray(stored.transpose(display)), np.asarray(upright))
    if stored.size == upright.size:
        assert mean_diff(Image.open(io.BytesIO(data)).convert("RGB"), upright) > 20  # the tag mattered


def test_animated_gif_gives_its_first_frame():
    frames = [Image.new("RGB", (20, 20), color) for color in [(255, 0, 0), (0, 255, 0), (0, 0, 255)]]
    buffer = io.BytesIO()
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:], duration=50, loop=0)
    assert Image.open(io.BytesIO(buffer.getvalue())).n_frames == 3
    out = np.asarray(load_image(buffer.getvalue()))
    assert (out == [255, 0, 0]).all()


def test_palette_png_with_transparency_is_composited_on_white():
    palette_image = Image.new("P", (10, 10), 0)
    palette_image.putpalette([0, 0, 255] + [255, 0, 0] + [0] * 762)
    palette_image.paste(1, (0, 0, 10, 5))  # top half red, bottom half index 0 (transparent)
    data = encode(palette_image, "PNG", transparency=0)
    assert Image.open(io.BytesIO(data)).mode == "P"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Pillow warns when a P image with transparency is converted naively
        out = np.asarray(load_image(data))
    assert (out[:5] == [255, 0, 0]).all()
    assert (out[5:] == 255).all()


def test_jpeg_draft_decodes_smaller_and_close_to_a_full_decode():
    big = asymmetric(2400, 1800)
    data = encode(big, quality=90)
    full = load_image(data)
    drafted = load_image(data, draft_size=(224, 224))
    assert full.size == (2400, 1800)
    # DCT scaling picks the largest 1/8 step that still covers the request
    assert drafted.size == (300, 225)
    reference = full.resize(drafted.size, Image.Resampling.BICUBIC)
    assert mean_diff(drafted, reference) < 2.0
    assert load_image(encode(big, "PNG", compress_level=0), draft_size=(224, 224)).size == (2400, 1800)


def test_draft_size_follows_the_upright_picture():
    upright = asymmetric(1600, 800)  # wide; stored tall with orientation 6
    exif = Image.Exif()
    exif[0x0112] = 6
    data = encode(upright.transpose(Image.Transpose.ROTATE_90), quality=90, exif=exif)
    out = load_image(data, draft_size=(400, 200))
    assert out.size == (400, 200)


# -- bad inputs ----------------------------------------------------------------------------------------


def test_truncated_jpeg(jpeg: bytes):
    raises_for(jpeg[: len(jpeg) // 2], "<", "bytes>", "truncated")


def test_zero_byte_file(tmp_path: Path):
    path = tmp_path / "empty.jpg"
    path.touch()
    raises_for(path, str(path), "empty (0 bytes)")


def test_html_served_as_image_jpeg(http_server: LocalHTTPServer, fetcher: HttpFetcher):
    page = b"<!DOCTYPE html>\n<html><head><title>Not found</title></head><body>gone</body></html>"
    http_server.add_bytes("/photo.jpg", page, "image/jpeg")
    url = http_server.url("/photo.jpg")
    error = raises_for(url, url, "served as image/jpeg", "HTML page, not an image", fetcher=fetcher)
    assert error.item == url


def test_html_content_type_is_refused_before_the_body(http_server: LocalHTTPServer, fetcher: HttpFetcher):
    http_server.add_bytes("/login", b"<html>sign in</html>", "text/html; charset=utf-8")
    raises_for(http_server.url("/login"), "served as text/html: not an image", fetcher=fetcher)


def test_html_bytes_are_not_an_image():
    raises_for(b"  <html><body>hi</body></html>", "unsupported format (HTML page)")


def _png_claiming(width: int, height: int) -> bytes:
    """A tiny valid-looking PNG whose header claims ``width`` x ``height`` (a decompression bomb)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\0" * 64)
    return (
        b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")
    )


def _jpeg_claiming(width: int, height: int) -> bytes:
    """A small real JPEG with its SOF dimensions rewritten."""
    data = bytearray(encode(Image.new("RGB", (16, 16), (9, 9, 9))))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def _gif_claiming(width: int, height: int) -> bytes:
    data = bytearray(encode(Image.new("P", (4, 4), 0), "GIF"))
    data[6:10] = struct.pack("<HH", width, height)
    return bytes(data)


@pytest.mark.parametrize("make", [_png_claiming, _jpeg_claiming, _gif_claiming])
def test_decompression_bomb_is_refused_by_its_header(make):
    data = make(50000, 50000)
    assert len(data) < 2000
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no DecompressionBombWarning (or any other) may leak out
        error = raises_for(data, "50000×50000", "2500 MP", "over the limit of 100 MP")
    assert time.perf_counter() - started < 0.5
    assert not isinstance(error.__cause__, Image.DecompressionBombError)


def test_pixel_cap_is_configurable_per_call_and_per_process(jpeg: bytes):
    assert get_max_pixels() == DEFAULT_MAX_PIXELS == 100_000_000
    error = raises_for(jpeg, "96×64", "over the limit", max_pixels=1000)
    # the advice is a remark the program can word in its own terms; the detail stays the same
    assert error.remarks == ["(pass max_pixels= or call lookalike.images.set_max_pixels)"]
    assert error.detail == "image is 96×64 (0 MP), over the limit of 0.001 MP"
    set_pixel_limit_advice("raise it with --max-pixels N")
    try:
        worded = raises_for(jpeg, "over the limit", max_pixels=1000)
        assert str(worded).endswith("over the limit of 0.001 MP (raise it with --max-pixels N)")
    finally:
        set_pixel_limit_advice(None)
    set_max_pixels(1000)
    try:
        raises_for(jpeg, "over the limit of 0.001 MP")
        assert load_image(jpeg, max_pixels=10_000).size == (96, 64)
    finally:
        set_max_pixels(None)
    assert get_max_pixels() == DEFAULT_MAX_PIXELS
    # above Pillow's own MAX_IMAGE_PIXELS bomb limit, our cap decides and Pillow stays quiet
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        raises_for(_png_claiming(20000, 10000), "over the limit of 150 MP", max_pixels=150_000_000)


@pytest.mark.parametrize(
    ("data", "what"),
    [
        (b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>', "SVG"),
        (b"<svg xmlns='http://www.w3.org/2000/svg'><rect width='5' height='5'/></svg>", "SVG"),
        (b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\n", "PDF"),
    ],
)
def test_svg_and_pdf_are_unsupported(data: bytes, what: str):
    raises_for(data, f"unsupported format ({what}", "not an image")


def test_unknown_bytes_are_not_an_image():
    raises_for(b"just some words, not a picture", "not a recognised image format")


def test_missing_path():
    raises_for("./missing.jpg", "./missing.jpg: no such file")
    raises_for(Path("/nonexistent/dir/x.png"), "/nonexistent/dir/x.png: no such file")


def test_an_error_about_a_file_keeps_what_went_wrong_apart_from_the_name():
    # callers that show the path themselves (a folder report) read `detail`, never parse the text
    error = raises_for("./missing.jpg", "./missing.jpg: no such file")
    assert isinstance(error, ImageSourceError)
    assert (error.detail, error.subject, error.item) == ("no such file", "./missing.jpg", "./missing.jpg")
    # in bulk work the index context names the item; the name is not said twice
    error.with_context(index=3)
    assert str(error) == "item 3 (./missing.jpg): no such file"
    empty = raises_for("", "'': empty string is not an image path or URL")
    assert isinstance(empty, ImageSourceError) and empty.detail == "empty string is not an image path or URL"


def test_directory(tmp_path: Path):
    raises_for(str(tmp_path), f"{tmp_path}: is a directory, not an image file")


def test_fifo_is_refused_without_blocking(tmp_path: Path):
    fifo = tmp_path / "pipe.jpg"
    os.mkfifo(fifo)
    raises_for(fifo, "not a regular file")


@pytest.mark.skipif(not Path("/proc/self/mem").exists(), reason="needs Linux /proc")
def test_file_whose_read_fails_even_as_root():
    # /proc/self/mem is a regular file for stat(); reading at offset 0 fails with EIO for every user
    raises_for("/proc/self/mem", "/proc/self/mem: cannot read file", "Input/output error")


def test_unreadable_file(tmp_path: Path, jpeg: bytes):
    path = tmp_path / "secret.jpg"
    path.write_bytes(jpeg)
    path.chmod(0)
    if os.geteuid() != 0:
        raises_for(path, f"{path}: permission denied")
        return
    # root reads mode-000 files; prove the real failure in a forked child that dropped to "nobody"
    tmp_path.chmod(0o755)
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: never return into pytest
        code = 3
        try:
            os.close(read_end)
            os.setgid(65534)
            os.setuid(65534)
            try:
                load_image(path)
                message = "loaded"
            except ImageInputError as exc:
                message = str(exc)
            os.write(write_end, message.encode())
            code = 0
        finally:
            os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        message = pipe.read().decode()
    _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        pytest.skip("cannot drop privileges to uid 65534 here")
    assert message == f"{path}: permission denied"


def test_file_object_in_text_mode(tmp_path: Path):
    path = tmp_path / "t.jpg"
    path.write_text("hello")
    with path.open() as handle:
        raises_for(handle, str(path), "text mode")


def test_bad_data_uris():
    raises_for("data:image/png;base64,!!!not base64!!!", "invalid base64")
    raises_for("data:text/html,<b>hi</b>", "data URI holds text/html")
    raises_for("data:image/png;base64", "malformed data URI")


def test_unsupported_scheme_and_non_image_objects():
    raises_for("s3://bucket/cat.jpg", "unsupported URL scheme 's3'")
    raises_for("file://example.com/cat.jpg", "remote host")
    raises_for(42, "not an image input", "int")
    raises_for("http://[zz/x.jpg", "http://[zz/x.jpg: malformed URL")


# -- URLs ------------------------------------------------------------------------------------------------


def test_url_404_is_not_retried(http_server: LocalHTTPServer, fetcher: HttpFetcher):
    url = http_server.url("/gone.jpg")
    raises_for(url, f"{url}: server answered 404 Not Found", fetcher=fetcher)
    assert http_server.count("/gone.jpg") == 1


def test_url_that_never_answers_times_out_quickly(http_server: LocalHTTPServer):
    http_server.add_hang("/slow.jpg")
    url = http_server.url("/slow.jpg")
    started = time.perf_counter()
    with HttpFetcher(timeout=0.3, retries=1, backoff=0.01) as f:
        raises_for(url, url, "timed out", fetcher=f)
    assert time.perf_counter() - started < 3
    assert http_server.count("/slow.jpg") == 2  # one retry


def test_trickling_server_hits_the_deadline(http_server: LocalHTTPServer):
    chunks = [b"\xff\xd8\xff\xe0"] + [b"\0" * 10] * 100
    http_server.add_response("/drip.jpg", Response(200, iter(chunks), "image/jpeg", chunk_delay=0.05))
    with HttpFetcher(timeout=1.0, deadline=0.3, retries=0) as f:
        raises_for(http_server.url("/drip.jpg"), "took longer than 0.3 s", fetcher=f)


def test_redirect_loop(http_server: LocalHTTPServer, fetcher: HttpFetcher):
    http_server.add_redirect("/a.jpg", "/b.jpg")
    http_server.add_redirect("/b.jpg", http_server.url("/a.jpg"))
    url = http_server.url("/a.jpg")
    raises_for(url, f"{url}: redirect loop", fetcher=fetcher)
    assert http_server.count() == 2


def test_too_many_redirects_and_a_good_redirect(http_server: LocalHTTPServer, jpeg: bytes):
    for i in range(4):
        http_server.add_redirect(f"/hop{i}", f"/hop{i + 1}", status=307 if i % 2 else 301)
    http_server.add_bytes("/hop4", jpeg, "image/jpeg")
    with HttpFetcher(max_redirects=4) as f:
        assert load_image(http_server.url("/hop0"), fetcher=f).size == (96, 64)
    with HttpFetcher(max_redirects=3) as f:
        raises_for(http_server.url("/hop0"), "too many redirects (more than 3)", fetcher=f)


@pytest.mark.parametrize("send_length", [True, False])
def test_url_larger_than_the_cap(http_server: LocalHTTPServer, send_length: bool):
    http_server.add_large("/huge.jpg", 5_000_000, send_length=send_length)
    url = http_server.url("/huge.jpg")
    started = time.perf_counter()
    with HttpFetcher(max_bytes=200_000, retries=0) as f:
        error = raises_for(url, url, "too large", fetcher=f)
    assert time.perf_counter() - started < 2
    if send_length:
        assert "5 MB; the limit is 0 MB" not in str(error)  # sizes are printed readably
        assert "(5 MB; the limit is 200000 bytes)" in str(error)
    else:
        assert "over the 200000 bytes limit" in str(error)


def test_429_then_200_honours_retry_after(http_server: LocalHTTPServer, jpeg: bytes):
    http_server.add_sequence(
        "/busy.jpg",
        [Response(429, b"slow down", "text/plain", {"Retry-After": "1"}), Response(200, jpeg, "image/jpeg")],
    )
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        time.sleep(seconds)

    with HttpFetcher(retries=2, sleep=sleep) as f:
        assert load_image(http_server.url("/busy.jpg"), fetcher=f).size == (96, 64)
    first, second = http_server.requests_to("/busy.jpg")
    assert slept == [1.0]
    assert second.time - first.time >= 0.95


def test_retry_after_beyond_the_cap_fails_at_once(http_server: LocalHTTPServer):
    http_server.add_status("/later.jpg", 503, headers={"Retry-After": "3600"})
    started = time.perf_counter()
    with HttpFetcher(retries=3, max_retry_after=5) as f:
        raises_for(http_server.url("/later.jpg"), "503 Service Unavailable", "retry after 3600 s", fetcher=f)
    assert time.perf_counter() - started < 1
    assert http_server.count() == 1


def test_5xx_is_retried_with_backoff_then_reported(http_server: LocalHTTPServer, jpeg: bytes):
    http_server.add_sequence("/flaky.jpg", [Response(502), Response(500), Response(200, jpeg, "image/jpeg")])
    slept: list[float] = []
    with HttpFetcher(retries=3, backoff=0.2, sleep=slept.append) as f:
        assert load_image(http_server.url("/flaky.jpg"), fetcher=f).size == (96, 64)
    assert len(slept) == 2 and 0.1 <= slept[0] <= 0.2 and 0.2 <= slept[1] <= 0.4  # exponential, jittered
    http_server.add_status("/down.jpg", 500)
    with HttpFetcher(retries=2, sleep=lambda _s: None) as f:
        raises_for(http_server.url("/down.jpg"), "server answered 500 Internal Server Error", fetcher=f)
    assert http_server.count("/down.jpg") == 3


def test_connection_refused_is_reported(fetcher: HttpFetcher):
    server = LocalHTTPServer()
    url = server.url("/x.jpg")
    server.stop()  # the port is now closed
    raises_for(url, url, "connection failed", fetcher=fetcher)


def test_user_agent_is_sent(http_server: LocalHTTPServer, jpeg: bytes):
    http_server.add_bytes("/ua.jpg", jpeg, "image/jpeg")
    with HttpFetcher() as f:
        f.fetch(http_server.url("/ua.jpg"))
    with HttpFetcher(user_agent="custom-agent/1") as f:
        f.fetch(http_server.url("/ua.jpg"))
    agents = [r.headers["user-agent"] for r in http_server.requests_to("/ua.jpg")]
    assert agents[0].startswith("lookalike/") and "image search" in agents[0]
    assert agents[1] == "custom-agent/1"


def test_one_fetcher_shared_by_threads(http_server: LocalHTTPServer, jpeg: bytes):
    for i in range(16):
        http_server.add_bytes(f"/{i}.jpg", jpeg + bytes([i]), "image/jpeg")
    results: dict[int, bytes] = {}
    with HttpFetcher() as f:

        def work(i: int) -> None:
            results[i] = f.fetch(http_server.url(f"/{i}.jpg"))

        threads = [threading.Thread(target=work, args=(i,)) for i in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert all(results[i] == jpeg + bytes([i]) for i in range(16))


# -- SSRF guard ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "224.0.0.1",
        "240.0.0.1",
        "255.255.255.255",
        "::1",
        "::",
        "fc00::1",
        "fd12:3456::1",
        "fe80::1",
        "ff02::1",
        "::ffff:127.0.0.1",
        "::ffff:169.254.169.254",
        "2002:7f00:1::1",  # 6to4 wrapping 127.0.0.1
    ],
)
def test_guard_refuses_non_public_addresses(address: str):
    assert not is_public_address(address)
    host = f"[{address}]" if ":" in address else address
    with pytest.raises(AddressRefused, match="private or local address"):
        check_url_allowed(f"http://{host}/latest/meta-data/")


def test_guard_allows_public_and_uses_the_injected_resolver():
    assert is_public_address("93.184.216.34") and is_public_address("2606:4700:4700::1111")
    table = {"public.test": ["93.184.216.34"], "sneaky.test": ["93.184.216.34", "10.0.0.5"]}
    resolve = lambda host, port: table[host]  # noqa: E731
    check_url_allowed("https://public.test/cat.jpg", resolve=resolve)
    with pytest.raises(AddressRefused, match=r"sneaky.test.*10\.0\.0\.5"):
        check_url_allowed("https://sneaky.test/cat.jpg", resolve=resolve)
    check_url_allowed("http://10.0.0.5/cat.jpg", allowed_hosts={"10.0.0.5"})
    with pytest.raises(ImageInputError, match="only http and https"):
        check_url_allowed("ftp://public.test/cat.jpg", resolve=resolve)


def test_ssrf_private_urls_are_refused_without_connecting(http_server: LocalHTTPServer, jpeg: bytes):
    http_server.add_bytes("/inside.jpg", jpeg, "image/jpeg")
    with HttpFetcher(allow_private=False, retries=0) as f:
        for url in [
            http_server.url("/inside.jpg"),
            f"http://localhost:{http_server.port}/inside.jpg",
            "http://169.254.169.254/latest/meta-data/",
        ]:
            assert isinstance(raises_for(url, url, "refused", fetcher=f), AddressRefused)
    assert http_server.count() == 0
    with HttpFetcher(allow_private=True) as f:  # the library default: local files servers are fine
        assert load_image(http_server.url("/inside.jpg"), fetcher=f).size == (96, 64)


def test_ssrf_redirect_to_a_private_address_is_refused(http_server: LocalHTTPServer, jpeg: bytes):
    http_server.add_bytes("/metadata", jpeg, "image/jpeg")
    http_server.add_redirect("/innocent.jpg", http_server.url("/metadata"))
    # "localhost" stands in for an allowed public host: the first hop passes, the redirect must not
    with HttpFetcher(allow_private=False, allowed_hosts={"localhost"}, retries=0) as f:
        url = f"http://localhost:{http_server.port}/innocent.jpg"
        error = raises_for(url, f"{url}: redirect to", "private or local address (127.0.0.1)", fetcher=f)
        assert isinstance(error, AddressRefused) and error.detail.startswith("redirect to http://")
    assert http_server.count("/innocent.jpg") == 1
    assert http_server.count("/metadata") == 0


def test_ssrf_dns_rebinding_sends_nothing_to_the_private_address(http_server: LocalHTTPServer, jpeg: bytes):
    # DNS rebinding: the name answers a public address to the guard's lookup, then loopback. The
    # connection must go to an address that was vetted, so the private server gets no request at all.
    http_server.add_bytes("/pic.jpg", jpeg, "image/jpeg")
    answers = iter([["93.184.216.34"]])

    def rebinding(host: str, port: int) -> list[str]:
        return next(answers, ["127.0.0.1"])

    with HttpFetcher(allow_private=False, resolve=rebinding, retries=0) as f:
        url = f"http://localhost:{http_server.port}/pic.jpg"
        error = raises_for(url, url, "refused", "private or local address (127.0.0.1)", fetcher=f)
        assert isinstance(error, AddressRefused) and str(error).startswith(f"{url}: refused: host ")
    assert http_server.count() == 0


def test_ssrf_a_connection_that_lands_on_a_private_address_is_refused(
    http_server: LocalHTTPServer, jpeg: bytes
):
    # A caller's own transport connects by itself (here: system DNS, so loopback) after the guard's
    # resolver said "public": the peer check behind it refuses the answer, as an address refusal.
    import httpx

    http_server.add_bytes("/pic.jpg", jpeg, "image/jpeg")
    public = lambda host, port: ["93.184.216.34"]  # noqa: E731
    with HttpFetcher(allow_private=False, resolve=public, transport=httpx.HTTPTransport(), retries=0) as f:
        url = f"http://localhost:{http_server.port}/pic.jpg"
        error = raises_for(url, f"{url}: refused: connected to private address 127.0.0.1", fetcher=f)
    assert isinstance(error, AddressRefused) and error.subject == url


def test_fetch_connects_to_the_address_the_resolver_gave(http_server: LocalHTTPServer, jpeg: bytes):
    # "pinned.test" exists only in this resolver: reaching the server proves the connection used it
    http_server.add_bytes("/pic.jpg", jpeg, "image/jpeg")
    url = f"http://pinned.test:{http_server.port}/pic.jpg"
    resolve = {"pinned.test": ["127.0.0.1"]}.__getitem__
    with HttpFetcher(allow_private=True, resolve=lambda h, p: resolve(h), retries=0) as f:
        assert load_image(url, fetcher=f).size == (96, 64)
    with HttpFetcher(
        allow_private=False, allowed_hosts={"pinned.test"}, resolve=lambda h, p: resolve(h)
    ) as f:
        assert load_image(url, fetcher=f).size == (96, 64)
    assert [r.headers["host"] for r in http_server.requests_to("/pic.jpg")] == [
        f"pinned.test:{http_server.port}"
    ] * 2


def _https_server(cert_host: str) -> tuple[LocalHTTPServer, ssl.SSLContext]:
    """A local HTTPS server whose certificate names ``cert_host``, and a context trusting its CA."""
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    server = LocalHTTPServer()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(cert_host).configure_cert(server_context)
    server._httpd.socket = server_context.wrap_socket(server._httpd.socket, server_side=True)
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    return server, client_context


@pytest.mark.parametrize("cert_host", ["images.test", "other.test"])
def test_https_to_a_pinned_address_verifies_the_certificate_for_the_url_host(jpeg: bytes, cert_host: str):
    server, trust = _https_server(cert_host)
    with (
        server,
        HttpFetcher(
            allow_private=False,
            allowed_hosts={"images.test"},
            resolve=lambda host, port: ["127.0.0.1"],
            verify=trust,
            retries=0,
        ) as f,
    ):
        server.add_bytes("/pic.jpg", jpeg, "image/jpeg")
        url = f"https://images.test:{server.port}/pic.jpg"
        if cert_host == "images.test":  # connected to 127.0.0.1, verified as images.test (SNI, Host)
            assert load_image(url, fetcher=f).size == (96, 64)
            assert server.requests_to("/pic.jpg")[0].headers["host"] == f"images.test:{server.port}"
        else:  # a certificate for another name is refused, though the address is the one asked for
            raises_for(url, "certificate", fetcher=f)
            assert server.count() == 0


# -- read_source / decode_image split, refs --------------------------------------------------------------


def test_read_then_decode_equals_load(jpeg: bytes):
    source = read_source(jpeg)
    assert isinstance(source, ImageSource) and source.data == jpeg and source.image is None
    assert source.name == f"<{len(jpeg)} bytes>"
    assert np.array_equal(np.asarray(decode_image(source)), np.asarray(load_image(jpeg)))
    assert read_source(source) is source


def test_is_image_ref_semantics_are_kept(tmp_path: Path):
    assert is_image_ref("https://example.com/a.jpg")
    assert is_image_ref(b"\xff\xd8") and is_image_ref(tmp_path) and is_image_ref("./cat.jpg")
    assert is_image_ref("data:image/png;base64,AAAA") and not is_image_ref("data:text/plain,hi")
    assert not is_image_ref("an orange tabby cat")
    assert is_image_ref(np.zeros((4, 4, 3), np.uint8)) and not is_image_ref(np.zeros(512, np.float32))


# -- the test server helper itself ---------------------------------------------------------------------


def test_helper_server_routes_methods_and_recording(http_server: LocalHTTPServer):
    import httpx

    @http_server.route("/v1/echo", methods=["POST"])
    def echo(request):
        return {"got": request.json(), "auth": request.headers.get("authorization")}

    http_server.route("/files/", lambda request: request.path.encode(), prefix=True)
    with httpx.Client(base_url=http_server.base_url) as client:
        reply = client.post("/v1/echo", json={"x": 1}, headers={"Authorization": "Bearer k"})
        assert reply.json() == {"got": {"x": 1}, "auth": "Bearer k"}
        assert client.get("/v1/echo").status_code == 405
        assert client.get("/files/a/b.png").content == b"/files/a/b.png"
        assert client.get("/nothing").status_code == 404
        streamed = Response(200, iter([b"ab", b"cd"]), "text/plain", chunked=True)
        http_server.add_response("/stream", streamed)
        assert client.get("/stream").content == b"abcd"
        http_server.route("/boom", lambda request: 1 / 0)
        assert client.get("/boom").status_code == 500
    assert isinstance(http_server.errors[0], ZeroDivisionError)
    assert http_server.count("/v1/echo", method="POST") == 1 and http_server.count("/v1/echo") == 2
    first = http_server.requests_to("/v1/echo")[0]
    assert first.method == "POST" and first.json() == {"x": 1}


def test_stat_helper_modes_are_what_the_loader_checks(tmp_path: Path):
    # guards against a platform where mkfifo makes something stat() reports as regular
    fifo = tmp_path / "p"
    os.mkfifo(fifo)
    assert not stat.S_ISREG(os.stat(fifo).st_mode)


def test_closed_fetcher_says_so(http_server: LocalHTTPServer):
    from lookalike.errors import ConfigurationError

    fetcher = HttpFetcher()
    fetcher.close()
    with pytest.raises(ConfigurationError, match="closed"):
        fetcher.fetch(http_server.url("/x.jpg"))
    assert http_server.count() == 0


# -- error messages ------------------------------------------------------------------------------------


def test_error_messages_name_the_format_never_the_files_bytes(tmp_path: Path):
    # An indexed picture swapped for a link to a secret file: the message reaches web clients.
    secret = tmp_path / "passwd"
    secret.write_bytes(b"root:x:0:0:root:/root:/bin/bash\n")
    link = tmp_path / "photo.jpg"
    link.symlink_to(secret)
    error = raises_for(link, "photo.jpg", "not a recognised image format")
    assert "root:x" not in str(error)
    # Pillow quotes chunk bytes in its own messages ("broken PNG file (chunk b'...')")
    ihdr = png_chunk(b"IHDR", struct.pack(">IIBBBBB", 4, 4, 8, 2, 0, 0, 0))
    png = (
        b"\x89PNG\r\n\x1a\n"
        + ihdr
        + struct.pack(">I", 40)
        + b"ro\x00t"
        + b":x:0:0:root:/root:/bin/bash\n" * 2
    )
    error = raises_for(png, "PNG file could not be decoded")
    assert ":x:0" not in str(error) and "b'" not in str(error)
