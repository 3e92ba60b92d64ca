"""lookalike quick start on the embedded default (a SQLite file), with no model download.

It makes a folder of pictures, indexes it with a small colour-histogram embedder (a real, if simple,
image descriptor defined right here), then searches by image, by PIL picture and by words, and lists
near-duplicates. Swap ``HistogramEmbedder()`` for ``EmbeddingFunction()`` (a local CLIP model) or
``EmbeddingFunction("jina_ai/jina-embeddings-v4")`` for real semantic search.

    python examples/quickstart.py [--db quickstart.db] [--folder DIR]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

import lookalike
from lookalike import BaseEmbeddingFunction, Field, TableModel

COLOURS = {"red": (220, 40, 40), "orange": (245, 150, 30), "green": (50, 170, 70), "blue": (40, 80, 210)}


class HistogramEmbedder(BaseEmbeddingFunction):
    """A 4×4×4 RGB histogram: pictures of similar colours land close together; colour words too."""

    def __init__(self) -> None:
        super().__init__("rgb-histogram-64", dimensions=64, multimodal=True)

    def embed_images(self, images: list, *, purpose: str) -> np.ndarray:
        out = []
        for im in images:
            px = np.asarray(im.convert("RGB").resize((64, 64))) // 64
            idx = px[..., 0] * 16 + px[..., 1] * 4 + px[..., 2]
            out.append(np.bincount(idx.ravel(), minlength=64).astype(np.float32))
        return np.stack(out)

    def embed_texts(self, texts: list[str], *, purpose: str) -> np.ndarray:
        # a word names a colour: embed a swatch of it, so "orange tabby cat" finds orange pictures
        swatches = []
        for text in texts:
            rgb = next((c for w, c in COLOURS.items() if w in text.lower()), (128, 128, 128))
            swatches.append(Image.new("RGB", (8, 8), rgb))
        return self.embed_images(swatches, purpose=purpose)


def make_pictures(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, rgb in COLOURS.items():
        for k in range(3):
            im = Image.new("RGB", (320, 240), rgb)
            ImageDraw.Draw(im).ellipse((40 + 30 * k, 40, 200 + 30 * k, 200), fill=(255, 255, 255))
            p = folder / f"{name}-{k}.jpg"
            im.save(p, quality=90)
            paths.append(p)
    # a near-duplicate: a smaller, re-encoded copy
    Image.open(folder / "blue-0.jpg").resize((160, 120)).save(folder / "blue-0-small.jpg", quality=70)
    paths.append(folder / "blue-0-small.jpg")
    return paths


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", default="quickstart.db")
    parser.add_argument("--folder", default=None)
    args = parser.parse_args()
    folder = Path(args.folder or tempfile.mkdtemp(prefix="lookalike-photos-"))
    paths = make_pictures(folder)

    client = lookalike.connect(args.db)
    embed = HistogramEmbedder()

    class Photo(TableModel):
        __tablename__ = "photos"
        id: int = Field(primary_key=True)
        image_uri: str = Field()
        image_vec: list[float] = embed.VectorField(source_field="image_uri")

    table = client.create_table(schema=Photo, if_exists="overwrite")
    rows = table.bulk_insert([Photo(image_uri=str(p)) for p in paths])
    print(f"indexed {len(rows)} pictures from {folder} into {args.db}")

    print("\nsearch by image file:", paths[0].name)
    for hit in table.search(str(paths[0])).limit(3).to_list():
        print(f"  {hit['_score']:.3f}  {Path(hit['image_uri']).name}")
    print("\nsearch by PIL picture (an orange swatch):")
    for hit in table.search(Image.new("RGB", (50, 50), COLOURS["orange"])).limit(3).to_list():
        print(f"  {hit['_score']:.3f}  {Path(hit['image_uri']).name}")
    print('\nsearch by words: "green leaves"')
    for hit in table.search("green leaves").limit(3).to_list():
        print(f"  {hit['_score']:.3f}  {Path(hit['image_uri']).name}")
    if hasattr(table, "find_duplicates"):
        print("\nduplicate groups:")
        for group in table.find_duplicates():
            print("  ", group)
    client.close()


if __name__ == "__main__":
    main()
