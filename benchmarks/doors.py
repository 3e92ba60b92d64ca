"""Do all doors give the same vector, how far does reduced-scale JPEG decoding move it, and int8 vs fp32.

    python benchmarks/doors.py            # tiny CLIP, tiny SigLIP, and the full-size model when built
    python benchmarks/doors.py --quick    # fewer pictures and texts

The full-size model is the random-weight ViT-B/32 that ``scripts/make_tiny_clip.py --full`` (in the torch
venv) writes to ``.bench/clip-vit-b-32-random``. Prints, per model:

1. the cosine of every door's vector to the path's vector, per format and size (the server's doors
   are scored against the vector ``bulk_insert`` stored for the file, as a search sees it);
2. reduced-scale (1/2, 1/4, 1/8) vs full JPEG decoding, by how many times the model's input the reduced
   picture must still be (``ImagePreprocessor.draft_factor`` is the library's choice);
3. int8 vs fp32 vectors over generated pictures and texts, image and text towers (tiny SigLIP ships no
   int8 export: it is quantised here the way the fixture script quantises CLIP);

and the decode time of a 12 MP JPEG with and without reduced-scale decoding.
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import httpx  # noqa: E402

import lookalike  # noqa: E402
from lookalike import EmbeddingFunction, Field, TableModel  # noqa: E402
from lookalike.embeddings.local_onnx import ImagePreprocessor, LocalOnnxEmbedding  # noqa: E402
from lookalike.images import ImageSource, decode_image  # noqa: E402
from lookalike.server import create_app  # noqa: E402
from tests.helpers.http_server import LocalHTTPServer  # noqa: E402
from tests.test_doors import (  # noqa: E402
    DECODED_DOORS,
    DOORS,
    FORMATS,
    MIME,
    cosine,
    picture,
    write_picture,
)
from tests.test_server import LiveServer  # noqa: E402

MODELS = {
    "tiny-clip": ROOT / "tests" / "fixtures" / "tiny-clip",
    "tiny-siglip": ROOT / "tests" / "fixtures" / "tiny-siglip",
    "vit-b-32 (random)": ROOT / ".bench" / "clip-vit-b-32-random",
}
SIDES = (64, 300, 1000, 2000)
DRAFT_FACTORS = (1, 1.5, 2, 3, 4, 6)


def available_models() -> dict[str, Path]:
    return {name: path for name, path in MODELS.items() if (path / "onnx" / "vision_model.onnx").exists()}


# ------------------------------------------------------------------------------------- 1. doors
def door_table(model_dir: Path, folder: Path) -> None:
    embed = EmbeddingFunction(f"local/{model_dir}")
    files = {
        (fmt, side): write_picture(folder, fmt, side, seed=i)
        for i, (fmt, side) in enumerate((f, s) for f in FORMATS for s in SIDES)
    }
    cols = [f"{fmt.lower()}-{side}" for fmt, side in files]
    rows: dict[str, list[float]] = {}
    refs = {case: embed.embed_query(str(p), source_type="image") for case, p in files.items()}

    def add(name: str, fn: Callable[[tuple[str, int], Path], float]) -> None:
        rows[name] = [fn(case, path) for case, path in files.items()]

    with LocalHTTPServer() as web:
        for (fmt, _), path in files.items():
            web.add_file("/" + path.name, path, content_type=MIME[fmt])

        def via(make: Callable[[Path, str], Any]) -> Callable[[tuple[str, int], Path], float]:
            def score(case: tuple[str, int], path: Path) -> float:
                value = make(path, web.url("/" + path.name))
                try:
                    return cosine(refs[case], embed.embed_query(value, source_type="image"))
                finally:
                    if hasattr(value, "close"):
                        value.close()

            return score

        for name, make in DOORS.items():
            add(name, via(make))
        for name, decoded in DECODED_DOORS.items():
            add(name + " *", via(lambda path, _url, decoded=decoded: decoded(path)))

        class Doors(TableModel):
            __tablename__ = "doors"
            id: int = Field(primary_key=True)
            path: str = Field()
            vec: list[float] = embed.VectorField(source_field="path", source_type="image")

        client = lookalike.connect(folder / "doors.db")
        table = client.create_table(schema=Doors, if_exists="overwrite")
        table.bulk_insert([{"path": str(p)} for p in files.values()])
        stored = {row["path"]: row["vec"] for row in table.query().to_list()}
        add("bulk_insert", lambda case, path: cosine(refs[case], stored[str(path)]))
        with (
            LiveServer(create_app(table, allow_private_urls=True)) as server,
            httpx.Client(base_url=server.url, timeout=120) as api,
        ):

            def own_score(response: httpx.Response, path: Path) -> float:
                response.raise_for_status()
                hits = response.json()["results"]
                return next(1 - h["distance"] for h in hits if Path(h["name"]).name == path.name)

            limit = {"limit": len(files)}
            add(
                "server upload †",
                lambda case, path: own_score(
                    api.post(
                        "/api/search/image",
                        files={"file": (path.name, path.read_bytes(), MIME[case[0]])},
                        params=limit,
                    ),
                    path,
                ),
            )
            add(
                "server URL †",
                lambda case, path: own_score(
                    api.get("/api/search/url", params={"url": web.url("/" + path.name), **limit}), path
                ),
            )
        client.close()

    width = max(len(n) for n in rows) + 2
    print("  " + "door".ljust(width) + " ".join(c.rjust(10) for c in cols) + "        min")
    for name, values in rows.items():
        cells = " ".join(f"{v:10.6f}" for v in values)
        print("  " + name.ljust(width) + cells + f" {min(values):10.6f}")
    print("  * pixels the caller decoded at full scale (target ≥ 0.999; the others ≥ 0.9999)")
    print("  † 1 - the search distance to the file's own row, i.e. against the vector bulk_insert stored")


# ------------------------------------------------------------------------------------- 2. draft
def jpeg(width: int, height: int, seed: int, quality: int = 90) -> bytes:
    buf = io.BytesIO()
    picture(width, height, seed).save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def draft_scan(model_dir: Path, n: int, max_short: int) -> None:
    model = LocalOnnxEmbedding(str(model_dir))
    prep = model.image_preprocessor()
    side = max(prep.size)

    def vec(image: Any) -> np.ndarray:
        return model.embed_images([prep(image)], purpose="query")[0]

    rng = np.random.default_rng(5)
    found: dict[float, list[float]] = {k: [] for k in DRAFT_FACTORS}
    for i in range(n):
        short = int(rng.uniform(side * 1.2, min(side * 40, max_short)))
        long = int(short * rng.choice([1, 4 / 3, 3 / 2, 16 / 9, 2.2]))
        w, h = (long, short) if rng.random() < 0.5 else (short, long)
        data = jpeg(w, h, seed=100 + i, quality=int(rng.choice([75, 90, 95])))
        full = decode_image(ImageSource("x", data))
        reference = vec(full)
        for k in DRAFT_FACTORS:
            request = int(k * side)
            drafted = decode_image(ImageSource("x", data), draft_size=(request, request))
            if drafted.size != full.size:
                found[k].append(cosine(reference, vec(drafted)))
    print(f"  {n} JPEGs, short side {int(side * 1.2)}..{min(side * 40, max_short)} px, q 75/90/95")
    for k, values in found.items():
        mark = "  <- the library's rule" if k == ImagePreprocessor.draft_factor else ""
        if values:
            print(
                f"  draft only while ≥ {k:g}× the input ({int(k * side)} px): reduced on {len(values):3d}, "
                f"cosine to full decode min {min(values):.6f} mean {statistics.fmean(values):.6f}, "
                f"below 0.9999: {sum(v < 0.9999 for v in values)}, below 0.999: {sum(v < 0.999 for v in values)}"
                + mark
            )


# ------------------------------------------------------------------------------------- 3. int8
NOUNS = ["cat", "dog", "red car", "house", "mountain", "bicycle", "bowl of soup", "sailboat", "tree", "child"]
PLACES = ["on a beach", "in the snow", "at night", "in a kitchen", "next to a river"]


def texts(n: int) -> list[str]:
    out = [f"a photo of a {noun} {place}" for noun in NOUNS for place in PLACES]
    return out[:n]


def with_int8(model_dir: Path, scratch: Path) -> Path:
    """``model_dir`` itself when it has ``_quantized`` exports, else a copy quantised like the fixtures."""
    onnx_dir = model_dir / "onnx"
    if (onnx_dir / "vision_model_quantized.onnx").exists():
        return model_dir
    from onnxruntime.quantization import QuantType, quantize_dynamic

    copy = scratch / (model_dir.name + "-int8")
    shutil.copytree(model_dir, copy)
    for tower in ("vision_model", "text_model"):
        quantize_dynamic(
            str(copy / "onnx" / f"{tower}.onnx"),
            str(copy / "onnx" / f"{tower}_quantized.onnx"),
            weight_type=QuantType.QInt8,
        )
    return copy


def int8_vs_fp32(model_dir: Path, scratch: Path, n_images: int, n_texts: int) -> None:
    model_dir = with_int8(model_dir, scratch)
    fp32 = LocalOnnxEmbedding(str(model_dir), precision="fp32")
    int8 = LocalOnnxEmbedding(str(model_dir), precision="int8")
    rng = np.random.default_rng(7)
    pixels = [
        fp32.prepare_image(picture(int(rng.integers(200, 700)), int(rng.integers(200, 700)), seed=200 + i))
        for i in range(n_images)
    ]
    words = texts(n_texts)
    # one item per run: dynamically quantised graphs scale activations over the whole batch, so a
    # batched int8 vector also depends on its neighbours; this measures precision alone
    for what, a, b in (
        (
            "image",
            [fp32.embed_images([p], purpose="query")[0] for p in pixels],
            [int8.embed_images([p], purpose="query")[0] for p in pixels],
        ),
        (
            "text",
            [fp32.embed_texts([w], purpose="query")[0] for w in words],
            [int8.embed_texts([w], purpose="query")[0] for w in words],
        ),
    ):
        cos = [cosine(x, y) for x, y in zip(a, b)]
        print(
            f"  {what:5s} tower, {len(cos)} items: int8 vs fp32 cosine min {min(cos):.6f} mean {statistics.fmean(cos):.6f}"
        )


# ------------------------------------------------------------------------------------- 4. speed
def decode_speed(repeat: int) -> None:
    clip = ImagePreprocessor("shortest", (224, 224), (224, 224), 3, 1 / 255, (0.5,) * 3, (0.5,) * 3)
    for w, h in ((4000, 3000), (4624, 2600)):
        data = jpeg(w, h, seed=1)
        print(f"  {w}×{h} JPEG ({len(data) / 1e6:.1f} MB), 224-px CLIP preprocessing:")
        for label, draft in (
            ("full decode", None),
            ("reduced, ≥ 2× input (before)", (448, 448)),
            (f"reduced, ≥ {ImagePreprocessor.draft_factor}× input (now)", clip.draft_size),
        ):
            decode, total = [], []
            for _ in range(repeat):
                t0 = time.perf_counter()
                image = decode_image(ImageSource("x", data), draft_size=draft)
                t1 = time.perf_counter()
                clip(image)
                decode.append(t1 - t0)
                total.append(time.perf_counter() - t0)
            print(
                f"    {label:32s} decoded {image.size[0]}×{image.size[1]}: decode "
                f"{statistics.median(decode) * 1000:4.0f} ms, decode + preprocess {statistics.median(total) * 1000:4.0f} ms"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer pictures and texts")
    parser.add_argument("--only", choices=["doors", "draft", "int8", "speed"], action="append")
    args = parser.parse_args()
    parts = set(args.only or ["doors", "draft", "int8", "speed"])
    n_items = 20 if args.quick else 50
    models = available_models()
    if "vit-b-32 (random)" not in models:
        print("(no full-size model: build it with scripts/make_tiny_clip.py --full in the torch venv)")
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        for name, model_dir in models.items():
            full = "tiny" not in name
            if "doors" in parts:
                print(f"\n== {name}: cosine to the path's vector, door × format-size")
                folder = scratch / f"doors-{len(os.listdir(scratch))}"
                folder.mkdir()
                door_table(model_dir, folder)
            if "draft" in parts:
                print(f"\n== {name}: reduced-scale vs full JPEG decode")
                draft_scan(model_dir, n=(10 if args.quick else 25) if full else n_items, max_short=2600)
            if "int8" in parts:
                print(f"\n== {name}: int8 vs fp32")
                int8_vs_fp32(model_dir, scratch, n_items, n_items)
    if "speed" in parts:
        print("\n== decode time per 12 MP JPEG (median of 5)")
        decode_speed(5)


if __name__ == "__main__":
    main()
