"""The seed's image-search snippet (pytidb's guide) runs as written against a strict Jina AI stub.

Only the import line and the client differ from the guide; the image URLs point at a local HTTP
server (the stub fetches them, as Jina does) and ``JINA_API_BASE`` points the provider at the stub.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import PIL.Image
import pytest

import lookalike
from lookalike.errors import BulkInsertError
from tests.helpers.http_server import LocalHTTPServer
from tests.stub_providers import COLOURS, StubProvider, solid_jpeg

PICTURES = ["red", "orange", "blue", "green", "purple"]


@pytest.fixture
def stub(monkeypatch: pytest.MonkeyPatch) -> Iterator[StubProvider]:
    # the guide passes api_key="..." literally; the stub accepts exactly that key
    with StubProvider("jina", valid_keys=["..."]) as server:
        monkeypatch.setenv("JINA_API_BASE", server.api_base)
        monkeypatch.delenv("JINA_API_KEY", raising=False)
        yield server


@pytest.fixture
def pictures() -> Iterator[LocalHTTPServer]:
    with LocalHTTPServer() as server:
        for name in PICTURES:
            server.add_bytes(f"/{name}.jpg", solid_jpeg(name, (320, 240)), "image/jpeg")
        server.add_bytes("/query.jpg", solid_jpeg("blue", (640, 480)), "image/jpeg")
        yield server


def test_seed_snippet_against_jina_stub(
    stub: StubProvider, pictures: LocalHTTPServer, tmp_path: Path
) -> None:
    query_path = tmp_path / "query.jpg"
    query_path.write_bytes(solid_jpeg("green", (800, 600)))
    client = lookalike.connect(tmp_path / "db.sqlite")

    # ---- the guide's code, unchanged apart from the import line and the URLs ----
    from lookalike import EmbeddingFunction, Field, TableModel

    image_embed = EmbeddingFunction(model_name="jina_ai/jina-embeddings-v4", api_key="...", multimodal=True)

    class ImageItem(TableModel):
        __tablename__ = "image_items"
        id: int = Field(primary_key=True)
        image_uri: str = Field()
        image_vec: list[float] = image_embed.VectorField(source_field="image_uri")

    table = client.create_table(schema=ImageItem, if_exists="overwrite")
    table.bulk_insert([ImageItem(image_uri=pictures.url(f"/{name}.jpg")) for name in PICTURES])
    by_url = table.search(pictures.url("/query.jpg")).limit(3).to_list()
    by_image = table.search(PIL.Image.open(query_path)).limit(3).to_list()
    by_text = table.search("orange tabby cat").limit(3).to_list()
    # ------------------------------------------------------------------------------

    assert len(by_url) == len(by_image) == len(by_text) == 3
    assert by_url[0]["image_uri"].endswith("/blue.jpg")
    assert by_image[0]["image_uri"].endswith("/green.jpg")
    assert by_text[0]["image_uri"].endswith("/orange.jpg")
    assert by_url[0]["_distance"] < 0.01 and by_image[0]["_distance"] < 0.01

    # stored items went as URLs with the passage task; queries used the query task
    tasks = {s.task for s in stub.seen if any(i.endswith(f"/{n}.jpg") for i in s.items for n in PICTURES)}
    assert tasks == {"retrieval.passage"}
    query_tasks = [s.task for s in stub.seen if s.items and s.items[0] in (pictures.url("/query.jpg"),)]
    assert query_tasks == ["retrieval.query"]
    assert any(s.items[0].startswith("b64:") and s.task == "retrieval.query" for s in stub.seen)
    assert stub.violations == []
    client.close()


def test_seed_bulk_insert_raise_writes_nothing_of_the_failing_chunk(
    stub: StubProvider, pictures: LocalHTTPServer, tmp_path: Path
) -> None:
    from lookalike import EmbeddingFunction, Field, TableModel

    stub.bad_markers.add("broken")
    client = lookalike.connect(tmp_path / "db.sqlite")
    image_embed = EmbeddingFunction(model_name="jina_ai/jina-embeddings-v4", api_key="...", multimodal=True)

    class Picture(TableModel):
        __tablename__ = "pictures_raise"
        id: int = Field(primary_key=True)
        image_uri: str = Field()
        image_vec: list[float] = image_embed.VectorField(source_field="image_uri")

    table = client.create_table(schema=Picture, if_exists="overwrite")
    uris = [pictures.url(f"/{n}.jpg") for n in PICTURES] + [pictures.url("/broken.jpg")]
    with pytest.raises(BulkInsertError) as info:
        table.bulk_insert([Picture(image_uri=u) for u in uris])
    assert "broken.jpg" in str(info.value) and info.value.index == len(PICTURES)
    assert table.query().to_list() == []  # nothing half-written
    result = table.bulk_insert([Picture(image_uri=u) for u in uris], on_error="skip")
    assert len(result) == len(PICTURES) and [f.index for f in result.failed] == [len(PICTURES)]
    assert len(table.query().to_list()) == len(PICTURES)
    assert stub.violations == []
    assert set(COLOURS) >= set(PICTURES)
    client.close()
