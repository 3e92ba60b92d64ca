"""The same bytes give the same vector through every door (issue 9, item 13).

A file handed over as a path, ``Path``, ``file://`` URI, bytes, file object, http URL, data URI or
``Image.open`` object, uploaded to the server or fetched by its URL route, and stored by ``bulk_insert``
must embed to the same vector (cosine ≥ 0.9999); its fully decoded pixels (PIL image, numpy array) must
stay within 0.999. The pictures are JPEG, PNG and WebP at several sizes, the larger ones many times the
tiny models' 32-pixel input, so big JPEGs are decoded at reduced (DCT) scale; their heights are not
multiples of 8, so the reduced decode has a partly padded last row. Everything is real: generated
pictures with structure at every scale, the tiny CLIP and SigLIP ONNX models, a local HTTP server and
uvicorn.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageOps

pytest.importorskip("onnxruntime")
pytest.importorskip("tokenizers")
pytest.importorskip("uvicorn")

import httpx

import lookalike
from lookalike import EmbeddingFunction, Field, TableModel
from lookalike.images.decode import decode_image, draft_region, read_source
from lookalike.server import create_app
from tests.helpers.http_server import LocalHTTPServer
from tests.test_images import STORED_AS
from tests.test_server import LiveServer

FIXTURES = Path(__file__).parent / "fixtures"
MODELS = {"clip": FIXTURES / "tiny-clip", "siglip": FIXTURES / "tiny-siglip"}
FORMATS = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp"}
SIDES = (64, 300, 1000, 2000)  # the tiny models take 32 px: 2000 is over 60× their input
SAME = 0.9999  # every door that reads the file's bytes
DECODED = 0.999  # pixels decoded by the caller at full scale (no DCT-scaled decode possible)
MIME = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}


# ---------------------------------------------------------------------- pictures


def picture(width: int, height: int, seed: int = 0) -> Image.Image:
    """A deterministic picture with structure at every scale, like a photo: 1/f colour noise (the
    spectrum of natural images), hard-edged shapes and thin lines. Flat colour would hide resampling
    and geometry differences."""
    rng = np.random.default_rng(seed)
    fy, fx = np.fft.fftfreq(height)[:, None], np.fft.rfftfreq(width)[None, :]
    f = np.hypot(fx, fy)
    f[0, 0] = 1.0
    channels = []
    for _ in range(3):
        spectrum = (rng.normal(size=f.shape) + 1j * rng.normal(size=f.shape)) / f
        spectrum[0, 0] = 0
        x = np.fft.irfft2(spectrum, s=(height, width))
        channels.append((x - x.mean()) / (x.std() + 1e-9))
    img = Image.fromarray(np.clip(128 + 40 * np.stack(channels, -1), 0, 255).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(img)
    for _ in range(12):
        x0, y0 = rng.uniform(0, width), rng.uniform(0, height)
        rx, ry = rng.uniform(0.03, 0.3) * width, rng.uniform(0.03, 0.3) * height
        colour = tuple(int(v) for v in rng.integers(0, 256, 3))
        shape = draw.ellipse if rng.random() < 0.5 else draw.rectangle
        shape((x0 - rx, y0 - ry, x0 + rx, y0 + ry), fill=colour)
    for _ in range(20):
        ends = [(float(rng.uniform(0, width)), float(rng.uniform(0, height))) for _ in range(2)]
        colour = tuple(int(v) for v in rng.integers(0, 256, 3))
        draw.line(ends, fill=colour, width=max(1, width // 200))
    return img


def picture_size(side: int) -> tuple[int, int]:
    """4:3, with a height that is not a multiple of 8: a JPEG decoded at reduced scale then has a
    partly padded last row, and its rounded size no longer has the picture's aspect ratio."""
    return side, side * 3 // 4


def write_picture(folder: Path, fmt: str, side: int, seed: int) -> Path:
    path = folder / f"{fmt.lower()}-{side}{FORMATS[fmt]}"
    img = picture(*picture_size(side), seed=seed)
    options: dict[str, Any] = {"quality": 90} if fmt in ("JPEG", "WEBP") else {}
    img.save(path, fmt, **options)
    return path


CASES = [(fmt, side) for fmt in FORMATS for side in SIDES]
CASE_IDS = [f"{fmt.lower()}-{side}" for fmt, side in CASES]


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, int], Path]:
    folder = tmp_path_factory.mktemp("doors")
    return {case: write_picture(folder, *case, seed=i) for i, case in enumerate(CASES)}


@pytest.fixture(scope="module")
def web(files: dict[tuple[str, int], Path]) -> Iterator[LocalHTTPServer]:
    """Every picture served over real HTTP on 127.0.0.1, at ``/<file name>``."""
    with LocalHTTPServer() as server:
        for (fmt, _side), path in files.items():
            server.add_file("/" + path.name, path, content_type=MIME[fmt])
        yield server


@pytest.fixture(scope="module", params=["clip", "clip-int8", "siglip"])
def embed(request: pytest.FixtureRequest) -> EmbeddingFunction:
    """Both tiny models; CLIP in int8 too, whose batched runs must not change a picture's vector."""
    name, _, precision = request.param.partition("-")
    fixture = MODELS[name]
    if not (fixture / "onnx").is_dir():
        pytest.skip(f"{fixture.name} fixture not present")
    return EmbeddingFunction(f"local/{fixture}", precision=precision or "fp32")


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def cosine(a: Any, b: Any) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


# ---------------------------------------------------------------------- doors


# name -> (path, URL of the same file) -> what the caller hands to lookalike
DOORS: dict[str, Callable[[Path, str], Any]] = {
    "str path": lambda path, url: str(path),
    "Path": lambda path, url: path,
    "file URI": lambda path, url: path.as_uri(),
    "bytes": lambda path, url: path.read_bytes(),
    "file object": lambda path, url: path.open("rb"),
    "in-memory file": lambda path, url: io.BytesIO(path.read_bytes()),
    "http URL": lambda path, url: url,
    "data URI": lambda path, url: data_uri(path),
    "Image.open": lambda path, url: Image.open(path),  # not yet decoded: lookalike decodes it
}

# pixels the caller decoded at full scale
DECODED_DOORS: dict[str, Callable[[Path], Any]] = {
    "PIL image": lambda path: ImageOps.exif_transpose(Image.open(path)).convert("RGB"),
    "numpy array": lambda path: np.asarray(ImageOps.exif_transpose(Image.open(path)).convert("RGB")),
}


def data_uri(path: Path) -> str:
    fmt = Image.open(path).format or "JPEG"
    return f"data:{MIME[fmt]};base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def door_vector(embed: EmbeddingFunction, value: Any) -> np.ndarray:
    try:
        return embed.embed_query(value, source_type="image")
    finally:
        if hasattr(value, "close"):
            value.close()


@pytest.mark.parametrize(("fmt", "side"), CASES, ids=CASE_IDS)
def test_every_door_gives_the_path_vector(
    embed: EmbeddingFunction,
    files: dict[tuple[str, int], Path],
    web: LocalHTTPServer,
    fmt: str,
    side: int,
) -> None:
    path = files[fmt, side]
    reference = embed.embed_query(str(path), source_type="image")
    got = {
        name: cosine(reference, door_vector(embed, make(path, web.url("/" + path.name))))
        for name, make in DOORS.items()
    }
    assert min(got.values()) >= SAME, got


@pytest.mark.parametrize(("fmt", "side"), CASES, ids=CASE_IDS)
def test_pixels_decoded_by_the_caller_stay_close(
    embed: EmbeddingFunction, files: dict[tuple[str, int], Path], fmt: str, side: int
) -> None:
    """A picture the caller decoded at full scale cannot use the reduced JPEG decode, so it may differ
    by resampling only: never by geometry (the crop must land on the same part of the picture)."""
    path = files[fmt, side]
    reference = embed.embed_query(path, source_type="image")
    got = {name: cosine(reference, door_vector(embed, make(path))) for name, make in DECODED_DOORS.items()}
    assert min(got.values()) >= DECODED, got


# ---------------------------------------------------------------------- bulk insert, search, the server


@pytest.fixture(scope="module")
def table(
    embed: EmbeddingFunction, files: dict[tuple[str, int], Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[lookalike.Table]:
    class Pictures(TableModel):
        __tablename__ = "pictures"
        id: int = Field(primary_key=True)
        path: str = Field()
        vec: list[float] = embed.VectorField(source_field="path", source_type="image")

    client = lookalike.connect(tmp_path_factory.mktemp("db") / "doors.db")
    table = client.create_table(schema=Pictures, if_exists="overwrite")
    result = table.bulk_insert([{"path": str(p)} for p in files.values()])  # on_error="raise"
    assert len(result) == len(files)
    yield table
    client.close()


def test_bulk_insert_stores_the_query_vector(
    embed: EmbeddingFunction, table: lookalike.Table, files: dict[tuple[str, int], Path]
) -> None:
    rows = {row["path"]: row for row in table.query().to_list()}
    assert len(rows) == len(files)
    for path in files.values():
        stored = rows[str(path)]["vec"]
        assert cosine(stored, embed.embed_query(path, source_type="image")) >= SAME, path.name
        hit = table.search(image=path).limit(1).to_list()[0]
        assert hit["path"] == str(path) and hit["_score"] >= SAME, (path.name, hit["_score"])


def test_server_upload_and_url_find_the_file_itself(
    table: lookalike.Table, files: dict[tuple[str, int], Path], web: LocalHTTPServer
) -> None:
    """The upload route (multipart bytes) and the URL route score each indexed file ≥ 0.9999 against
    itself: they decode exactly as indexing did."""
    app = create_app(table, allow_private_urls=True)  # the pictures are served from 127.0.0.1
    with LiveServer(app) as server, httpx.Client(base_url=server.url, timeout=60) as api:
        for (fmt, _side), path in files.items():
            upload = {"file": (path.name, path.read_bytes(), MIME[fmt])}
            for how, response in (
                ("upload", api.post("/api/search/image", files=upload, params={"limit": 1})),
                ("url", api.get("/api/search/url", params={"url": web.url("/" + path.name), "limit": 1})),
            ):
                assert response.status_code == 200, response.text
                top = response.json()["results"][0]
                assert Path(top["name"]).name == path.name, (how, path.name, top)
                assert 1 - top["distance"] >= SAME, (how, path.name, top["distance"])


# ---------------------------------------------------------------------- reduced-scale JPEG geometry


@pytest.mark.parametrize("orientation", range(1, 9))
def test_reduced_decode_covers_the_same_picture_as_a_full_decode(orientation: int) -> None:
    """For every EXIF orientation, the drafted image resized through its ``draft_region`` box matches
    the full decode resized the same way; the box's padded edge must follow the rotation."""
    upright = picture(2001, 1499, seed=3)  # 2001 / 8 and 1499 / 8 leave most of a padding pixel
    stored = upright.transpose(STORED_AS[orientation]) if orientation in STORED_AS else upright
    exif = Image.Exif()
    exif[0x0112] = orientation
    buf = io.BytesIO()
    stored.save(buf, "JPEG", quality=95, exif=exif.tobytes())
    source = read_source(buf.getvalue())
    full = decode_image(source)
    drafted = decode_image(source, draft_size=(150, 150))  # 1/8 scale
    region = draft_region(drafted)
    assert full.size == upright.size and region is not None and region.full_size == full.size
    assert draft_region(full) is None
    assert max(drafted.size) == -(-max(full.size) // 8)  # it really was decoded at 1/8 scale

    # Anchor the valid region at each of the four corners: the right anchoring leaves only the
    # DCT-scaling blur, the others shift the picture by most of a pixel, which shows at sharp edges.
    target = (250, 187)
    want = np.asarray(full.resize(target, Image.Resampling.BICUBIC), dtype=np.float64)
    (w, h), (bw, bh) = drafted.size, (full.width / 8, full.height / 8)
    errors = {}
    for box in [(0, 0, bw, bh), (w - bw, 0, w, bh), (0, h - bh, bw, h), (w - bw, h - bh, w, h)]:
        got = drafted.resize(target, Image.Resampling.BICUBIC, box=box)
        errors[box] = float(np.abs(np.asarray(got, dtype=np.float64) - want).mean())
    best, second = sorted(errors.values())[:2]
    assert errors[tuple(region.box)] == best and best < 0.5 * second, (region.box, errors)
    plain = drafted.resize(target, Image.Resampling.BICUBIC)  # no box: the padding is stretched in
    assert best < 0.5 * float(np.abs(np.asarray(plain, dtype=np.float64) - want).mean())
