"""The guide's snippet on the local ONNX provider (tiny real CLIP), image URLs served locally."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

import lookalike
from lookalike import EmbeddingFunction, Field, TableModel
from tests.helpers.http_server import LocalHTTPServer

TINY = Path(__file__).parent / "fixtures" / "tiny-clip"


def picture(seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    arr = (rng.random((48, 64, 3)) * 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def test_seed_snippet_with_local_model(tmp_path: Path) -> None:
    pictures = {f"/image{i}.png": picture(i) for i in range(1, 6)}
    with LocalHTTPServer() as server:
        for path, data in pictures.items():
            server.add_bytes(path, data, content_type="image/png")
        client = lookalike.connect(tmp_path / "seed.db")
        image_embed = EmbeddingFunction(model_name=f"local/{TINY}", multimodal=True)

        class ImageItem(TableModel):
            __tablename__ = "image_items"
            id: int = Field(primary_key=True)
            image_uri: str = Field()
            image_vec: list[float] = image_embed.VectorField(source_field="image_uri")

        table = client.create_table(schema=ImageItem, if_exists="overwrite")
        table.bulk_insert([ImageItem(image_uri=server.url(p)) for p in pictures])
        assert table.rows() == 5

        by_url = table.search(server.url("/image3.png")).limit(3).to_list()
        assert by_url[0]["image_uri"] == server.url("/image3.png")
        assert by_url[0]["_distance"] < 1e-5
        by_pil = table.search(Image.open(io.BytesIO(pictures["/image4.png"]))).limit(3).to_list()
        assert by_pil[0]["image_uri"] == server.url("/image4.png")
        by_text = table.search("orange tabby cat").limit(3).to_list()
        assert len(by_text) == 3 and by_text[0]["_score"] >= by_text[-1]["_score"]
        # the text query matches what the model itself says is nearest
        q = image_embed.embed_query("orange tabby cat")
        rows = table.query(order_by="id").to_list()
        sims = [float(np.dot(q, r["image_vec"])) for r in rows]
        assert by_text[0]["id"] == rows[int(np.argmax(sims))]["id"]
        # a new process-like reopen rebuilds the local embedder from the stored configuration
        again = lookalike.connect(tmp_path / "seed.db").open_table("image_items")
        assert again.search(server.url("/image2.png")).limit(1).to_list()[0]["image_uri"] == server.url(
            "/image2.png"
        )
