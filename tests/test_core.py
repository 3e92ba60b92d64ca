"""The core SDK on the embedded engine: tables, auto-embedding, search, filters, bad inputs.

What every engine must do alike lives in ``test_conformance.py``; this file keeps what is
engine-neutral (input checks, processes, the public surface) or SQLite's own."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import lookalike
from lookalike import (
    BulkInsertError,
    ConfigurationError,
    EmbeddingError,
    Field,
    FilterError,
    ImageInputError,
    SchemaError,
    TableModel,
    VectorField,
)
from tests.toy_embedder import ToyEmbedder

ROOT = Path(__file__).resolve().parents[1]


def make_items_table(
    client: lookalike.Client, toy: ToyEmbedder, name: str = "image_items"
) -> lookalike.Table:
    class ImageItem(TableModel):
        __tablename__ = name
        id: int = Field(primary_key=True)
        image_uri: str | None = Field(default=None)
        image_vec: list[float] = toy.VectorField(source_field="image_uri")

    return client.create_table(schema=ImageItem, if_exists="overwrite")


def vector_table(client: lookalike.Client, dims: int = 8, name: str = "vecs") -> lookalike.Table:
    from sqlmodel import JSON

    class Vec(TableModel):
        __tablename__ = name
        id: int = Field(primary_key=True)
        cat: int = Field(default=0)
        label: str | None = Field(default=None)
        meta: dict | None = Field(default=None, sa_type=JSON)
        vec: list[float] | None = VectorField(dimensions=dims)

    return client.create_table(schema=Vec, if_exists="overwrite")


# ---------------------------------------------------------------------- the public surface


def test_all_is_explicit_and_importable() -> None:
    assert isinstance(lookalike.__all__, list)
    assert len(set(lookalike.__all__)) == len(lookalike.__all__)
    for name in lookalike.__all__:
        assert hasattr(lookalike, name), name
    for name in ("connect", "EmbeddingFunction", "TableModel", "Field", "TiDBClient", "LookalikeError"):
        assert name in lookalike.__all__
    public = {
        n
        for n in dir(lookalike)
        if not n.startswith("_") and not isinstance(getattr(lookalike, n), type(lookalike))
    }
    assert public - set(lookalike.__all__) == set(), "public names missing from __all__"


def test_seed_snippet_with_user_defined_embedder(tmp_path: Path, colour_images: dict[str, Path]) -> None:
    """The guide's snippet, with a user-defined multimodal embedder in place of Jina."""
    from tests.toy_embedder import ToyEmbedder as MyMultimodalEmbedder

    client = lookalike.connect(tmp_path / "seed.db")
    image_embed = MyMultimodalEmbedder()

    class ImageItem(TableModel):
        __tablename__ = "image_items"
        id: int = Field(primary_key=True)
        image_uri: str = Field()
        image_vec: list[float] = image_embed.VectorField(source_field="image_uri")

    table = client.create_table(schema=ImageItem, if_exists="overwrite")
    rows = table.bulk_insert([ImageItem(image_uri=str(p)) for p in colour_images.values()])
    assert [r.id for r in rows] == list(range(1, len(colour_images) + 1))
    assert all(len(r.image_vec) == 16 for r in rows)

    by_path = table.search(str(colour_images["green"])).limit(3).to_list()
    assert by_path[0]["image_uri"] == str(colour_images["green"])
    assert by_path[0]["_distance"] == pytest.approx(0.0, abs=1e-6)
    by_pil = table.search(Image.new("RGB", (10, 10), (225, 35, 30))).limit(3).to_list()
    assert by_pil[0]["image_uri"] == str(colour_images["red"])
    by_text = table.search("orange tabby cat").limit(3).to_list()
    assert by_text[0]["image_uri"] == str(colour_images["orange"])
    assert len(by_text) == 3 and by_text[0]["_score"] >= by_text[1]["_score"] >= by_text[2]["_score"]


def test_connect_forms(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    c = lookalike.connect()
    assert (tmp_path / "lookalike.db").exists()
    c.close()
    for url in (f"sqlite:///{tmp_path / 'a.db'}", tmp_path / "b.db", str(tmp_path / "c.db"), ":memory:"):
        c = lookalike.TiDBClient.connect(url)
        assert c.list_tables() == []
        c.close()


# ---------------------------------------------------------------------- tables


def test_open_table_in_new_process(tmp_path: Path, colour_images: dict) -> None:
    db = tmp_path / "proc.db"
    client = lookalike.connect(db)
    t = make_items_table(client, ToyEmbedder())
    t.bulk_insert([{"image_uri": str(p)} for p in colour_images.values()])
    client.close()
    code = textwrap.dedent(
        f"""
        import json, lookalike
        c = lookalike.connect({str(db)!r})
        t = c.open_table("image_items")
        hits = t.search("purple").limit(2).to_list()
        spec = t.vector_columns["image_vec"]
        print(json.dumps({{"first": hits[0]["image_uri"], "model": spec.embed_fn.model_name,
                          "dims": spec.dimensions, "source": spec.source_field,
                          "cls": type(spec.embed_fn).__name__}}))
        """
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout.strip().splitlines()[-1])
    assert data == {
        "first": str(colour_images["purple"]),
        "model": "toy",
        "dims": 16,
        "source": "image_uri",
        "cls": "ToyEmbedder",
    }


def test_open_table_with_missing_provider_says_what_to_install(tmp_path: Path) -> None:
    moddir = tmp_path / "mods"
    moddir.mkdir()
    (moddir / "my_private_embedder.py").write_text(
        textwrap.dedent(
            """
            import numpy as np
            from lookalike import BaseEmbeddingFunction
            class PrivateEmbedder(BaseEmbeddingFunction):
                def __init__(self):
                    super().__init__("private", dimensions=4)
                def embed_texts(self, texts, *, purpose):
                    return np.ones((len(texts), 4))
            """
        )
    )
    db = tmp_path / "p.db"
    code = textwrap.dedent(
        f"""
        import lookalike
        from lookalike import TableModel, Field
        from my_private_embedder import PrivateEmbedder
        e = PrivateEmbedder()
        class Doc(TableModel):
            __tablename__ = "docs"
            id: int = Field(primary_key=True)
            body: str = Field()
            vec: list[float] = e.VectorField(source_field="body", source_type="text")
        t = lookalike.connect({str(db)!r}).create_table(schema=Doc)
        t.insert({{"body": "hello"}})
        """
    )
    env = {"PYTHONPATH": f"{moddir}:{ROOT}", "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    client = lookalike.connect(db)
    with pytest.raises(ConfigurationError, match="install the package that provides 'my_private_embedder'"):
        client.open_table("docs")
    # a replacement embedder makes it usable
    t = client.open_table("docs", embed_fn=ToyEmbedder(dimensions=4))
    assert t.rows() == 1


def test_open_table_whose_provider_extra_is_missing(sqlite_client: lookalike.Client) -> None:
    lookalike.register_provider(
        "fancy", "lookalike_fancy_provider_missing:Fancy", extra="fancy", package="fancy-sdk"
    )
    try:
        with pytest.raises(
            lookalike.MissingDependencyError, match=r"pip install 'lookalike\[fancy\]'"
        ) as info:
            lookalike.EmbeddingFunction("fancy/model-1")
        assert "pip install fancy-sdk" in str(info.value)
    finally:
        from lookalike.embeddings.registry import PROVIDERS

        PROVIDERS.unregister("fancy")


def test_closed_client(sqlite_client: lookalike.Client) -> None:
    t = vector_table(sqlite_client)
    sqlite_client.close()
    with pytest.raises(ConfigurationError, match="closed"):
        sqlite_client.list_tables()
    with pytest.raises(ConfigurationError, match="closed"):
        t.rows()


# ---------------------------------------------------------------------- search


def test_scores_per_metric(sqlite_client: lookalike.Client) -> None:
    t = vector_table(sqlite_client, dims=2)
    t.insert({"vec": [3.0, 4.0]})
    q = [3.0, 0.0]
    cos = t.search(q).distance_metric("cosine").to_list()[0]
    assert cos["_distance"] == pytest.approx(0.4) and cos["_score"] == pytest.approx(0.6)
    l2 = t.search(q).distance_metric("l2").to_list()[0]
    assert l2["_distance"] == pytest.approx(4.0) and l2["_score"] == pytest.approx(0.2)
    ip = t.search(q).distance_metric("inner_product").to_list()[0]
    assert ip["_distance"] == pytest.approx(-9.0) and ip["_score"] == pytest.approx(9.0)
    l1 = t.search(q).distance_metric("l1").to_list()[0]
    assert l1["_distance"] == pytest.approx(4.0) and l1["_score"] == pytest.approx(0.2)


def test_builder_is_immutable(sqlite_client: lookalike.Client) -> None:
    t = vector_table(sqlite_client, dims=2)
    t.bulk_insert([{"vec": [1.0, float(i)]} for i in range(20)])
    base = t.search([1.0, 0.0])
    five = base.limit(5)
    assert len(base.to_list()) == 10 and len(five.to_list()) == 5
    assert len(base.filter({"id": {"$lte": 3}}).to_list()) == 3 and len(base.to_list()) == 10
    rows = five.select("id").to_rows()
    assert len(rows[0]) == 3  # id, _distance, _score
    df = five.to_pandas()
    assert list(df.columns[:1]) == ["id"] and len(df) == 5
    objs = five.to_pydantic()
    assert objs[0].id == 1


def test_numpy_and_list_query_vectors(sqlite_client: lookalike.Client) -> None:
    t = vector_table(sqlite_client, dims=3)
    t.bulk_insert([{"vec": [1, 0, 0]}, {"vec": [0, 1, 0]}])
    assert t.search(np.array([0, 1, 0], dtype=np.float64)).limit(1).to_list()[0]["id"] == 2
    assert t.search(vector=[1, 0, 0]).limit(1).to_list()[0]["id"] == 1


def test_explicit_text_and_image_queries(
    sqlite_client: lookalike.Client, toy: ToyEmbedder, colour_images: dict
) -> None:
    t = make_items_table(sqlite_client, toy)
    t.bulk_insert([{"image_uri": str(p)} for p in colour_images.values()])
    png = colour_images["white"].read_bytes()
    assert t.search(image=png).limit(1).to_list()[0]["image_uri"] == str(colour_images["white"])
    assert t.search(png).limit(1).to_list()[0]["image_uri"] == str(colour_images["white"])
    assert t.search(colour_images["black"]).limit(1).to_list()[0]["image_uri"] == str(colour_images["black"])
    assert t.search(text="black").limit(1).to_list()[0]["image_uri"] == str(colour_images["black"])
    with pytest.raises(ConfigurationError, match="exactly one"):
        t.search("a", text="b")


# ---------------------------------------------------------------------- filters


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        ({"nope": 1}, "unknown column 'nope'"),
        ({"cat": {"$regex": "x"}}, r"unknown filter operator '\$regex'"),
        ({"$xor": [{"cat": 1}]}, r"unknown filter operator '\$xor'"),
        ({"cat": {"$in": 3}}, "takes a list"),
        ({"label.x": 1}, "not a JSON column"),
        ({"vec": 1}, "vector column"),
    ],
)
def test_bad_filters(sqlite_client: lookalike.Client, bad: dict, match: str) -> None:
    t = vector_table(sqlite_client, dims=2)
    with pytest.raises(FilterError, match=match):
        t.query(bad)
    with pytest.raises(FilterError, match=match):
        t.search([1.0, 0.0]).filter(bad)


# ---------------------------------------------------------------------- bad vectors and items


def test_bulk_insert_on_error(
    sqlite_client: lookalike.Client, toy: ToyEmbedder, colour_images: dict, tmp_path: Path
) -> None:
    t = make_items_table(sqlite_client, toy)
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff not really a jpeg")
    items = [
        {"image_uri": str(colour_images["red"])},
        {"image_uri": str(bad)},
        {"image_uri": str(tmp_path / "missing.png")},
    ]
    with pytest.raises(BulkInsertError) as err:
        t.bulk_insert(items)
    # images are read and decoded in parallel: the error names whichever bad item failed first
    assert (err.value.index, "broken.jpg" if err.value.index == 1 else "missing.png") in [
        (1, "broken.jpg"),
        (2, "missing.png"),
    ]
    assert f"item {err.value.index}" in str(err.value)
    assert ("broken.jpg" if err.value.index == 1 else "missing.png") in str(err.value)
    assert t.rows() == 0  # nothing of the failing chunk
    res = t.bulk_insert(items, on_error="skip")
    assert len(res) == 1 and [f.index for f in res.failed] == [1, 2]
    assert "broken.jpg" in str(res.failed[0]) and "missing.png" in str(res.failed[1])
    assert isinstance(res.failed[0].error, ImageInputError)
    assert t.rows() == 1


def test_bulk_insert_chunks_commit_separately(sqlite_client: lookalike.Client) -> None:
    t = vector_table(sqlite_client, dims=2)
    items = [{"vec": [1.0, 0.0]}] * 5 + [{"vec": [1.0]}]
    with pytest.raises(BulkInsertError, match="item 5"):
        t.bulk_insert(items, chunk_size=2)
    assert t.rows() == 4  # two full chunks landed, the failing chunk did not
    seen: list[tuple[int, int]] = []
    t.bulk_insert([{"vec": [0.0, 1.0]}] * 5, chunk_size=2, progress=lambda d, n: seen.append((d, n)))
    assert seen == [(2, 5), (4, 5), (5, 5)]


def test_unknown_column_in_insert(sqlite_client: lookalike.Client) -> None:
    t = vector_table(sqlite_client, dims=2)
    with pytest.raises(SchemaError, match="unknown column 'colour'"):
        t.insert({"colour": "red"})
    with pytest.raises(SchemaError, match="unknown column 'colour'"):
        t.update({"colour": "red"}, {"id": 1})


def test_missing_image_path_is_an_error_not_text(
    sqlite_client: lookalike.Client, toy: ToyEmbedder, colour_images: dict
) -> None:
    t = make_items_table(sqlite_client, toy)
    t.insert({"image_uri": str(colour_images["red"])})
    with pytest.raises(ImageInputError, match=r"nothere\.jpg"):
        t.search("./photos/nothere.jpg").to_list()
    with pytest.raises(ImageInputError):
        t.search(image="orange tabby cat").to_list()


def test_text_only_model_refuses_images(sqlite_client: lookalike.Client) -> None:
    class TextOnly(ToyEmbedder):
        def __init__(self) -> None:
            super().__init__()
            self.multimodal = False

    e = TextOnly()

    class Doc(TableModel):
        __tablename__ = "docs"
        id: int = Field(primary_key=True)
        body: str = Field()
        vec: list[float] = e.VectorField(source_field="body")

    t = sqlite_client.create_table(schema=Doc)
    with pytest.raises(EmbeddingError, match="text-only"):
        t.search(Image.new("RGB", (4, 4))).to_list()


def test_schema_errors() -> None:
    with pytest.raises(SchemaError, match="positive integer"):
        VectorField(dimensions=0)
    with pytest.raises(SchemaError, match="produces 16"):
        VectorField(dimensions=8, embed_fn=ToyEmbedder())
    with pytest.raises(ConfigurationError, match="unknown distance metric"):
        VectorField(dimensions=8, distance_metric="hamming")
    with pytest.raises(ConfigurationError, match="unknown embedding model"):
        lookalike.EmbeddingFunction("nope/x")


# ---------------------------------------------------------------------- sessions and concurrency


def test_sqlite_ids_count_up_from_one_and_reuse_rolled_back_ones(sqlite_client: lookalike.Client) -> None:
    """SQLite gives a new row max(id) + 1: a fresh table counts 1, 2, 3, ..., a row saved without an id
    gets the next one, and the ids a rolled-back session took are handed out again (a server engine's
    sequence skips them). The conformance suite checks search finds such a reused id's new row."""
    t = vector_table(sqlite_client, dims=2)
    rows = t.bulk_insert([{"vec": [1.0, float(i)]} for i in range(10)])
    assert [r["id"] for r in rows] == list(range(1, 11))
    assert t.save({"label": "fresh", "vec": [1.0, 0.0]})["id"] == 11
    with pytest.raises(RuntimeError), sqlite_client.session():
        t.insert({"vec": [0.0, 1.0]})
        t.bulk_insert([{"vec": [0.0, 1.0]}] * 3)
        raise RuntimeError("boom")
    assert t.insert({"vec": [0.0, 1.0]})["id"] == 12


def test_raw_sql_raises(sqlite_client: lookalike.Client) -> None:
    vector_table(sqlite_client, dims=2)
    assert sqlite_client.execute("INSERT INTO vecs(cat) VALUES (:c)", {"c": 5}) == 1
    assert sqlite_client.query("SELECT count(*) AS n FROM vecs").scalar() == 1
    assert sqlite_client.query("SELECT cat FROM vecs").one() == {"cat": 5}
    with pytest.raises(lookalike.EngineError, match="no such table"):
        sqlite_client.execute("UPDATE missing SET x = 1")
    with pytest.raises(lookalike.EngineError):
        sqlite_client.query("SELEC nonsense")


WRITER = textwrap.dedent(
    """
    import sys, numpy as np, lookalike
    c = lookalike.connect(sys.argv[1])
    t = c.open_table("vecs")
    rng = np.random.default_rng(int(sys.argv[2]))
    for i in range(int(sys.argv[3])):
        t.bulk_insert([{"cat": 1, "vec": rng.standard_normal(8)} for _ in range(20)])
    t.update({"vec": np.full(8, 5.0)}, {"id": 1})
    t.delete({"id": 2})
    print("ok")
    """
)


def test_other_process_writes_while_we_search(tmp_path: Path) -> None:
    db = tmp_path / "shared.db"
    client = lookalike.connect(db)
    t = vector_table(client)
    t.bulk_insert([{"vec": np.ones(8) * (i + 1)} for i in range(50)])
    assert len(t.search(np.ones(8)).limit(100).to_list()) == 50
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(db), str(k), "25"],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for k in range(2)
    ]
    searches = 0
    while any(p.poll() is None for p in procs):
        rows = t.search(np.ones(8)).filter({"cat": {"$gte": 0}}).limit(5).to_list()
        assert len(rows) == 5
        t.insert({"vec": np.ones(8)})  # and we write too
        searches += 1
    for p in procs:
        _, err = p.communicate()
        assert p.returncode == 0, err
        assert "locked" not in err
    assert searches > 0
    total = t.rows()
    got = t.search(np.ones(8)).limit(total + 10).to_list()
    assert len(got) == total  # the matrix followed every writer
    ref = {r["id"] for r in t.query(columns=["id"])}
    assert {r["id"] for r in got} == ref
    updated = t.search(np.full(8, 5.0)).distance_metric("l2").limit(1).to_list()[0]
    assert updated["id"] == 1 and updated["_distance"] == pytest.approx(0.0, abs=1e-5)
    assert 2 not in {r["id"] for r in got}


def test_reused_rowid_after_delete_is_seen(sqlite_client: lookalike.Client) -> None:
    t = vector_table(sqlite_client, dims=2)
    t.bulk_insert([{"vec": [1.0, 0.0]}, {"vec": [0.0, 1.0]}])
    assert len(t.search([1.0, 0.0]).to_list()) == 2
    t.delete({"id": 2})
    other = lookalike.connect(sqlite_client.engine.path)
    other.open_table("vecs").insert({"vec": [0.5, 0.5]})  # SQLite reuses rowid 2
    hits = t.search([0.5, 0.5]).to_list()
    assert hits[0]["id"] == 2 and hits[0]["_distance"] == pytest.approx(0, abs=1e-6)
    assert len(hits) == 2
    other.close()


def test_embedding_cache_reuses_vectors_by_content(
    sqlite_client: lookalike.Client, toy: ToyEmbedder, colour_images: dict, tmp_path: Path
) -> None:
    t = make_items_table(sqlite_client, toy)
    t.bulk_insert([{"image_uri": str(p)} for p in colour_images.values()])
    assert toy.calls["images"] == len(colour_images)
    renamed = tmp_path / "renamed-red.png"
    renamed.write_bytes(colour_images["red"].read_bytes())
    dup_in_chunk = [
        {"image_uri": str(renamed)},
        {"image_uri": str(colour_images["blue"])},
        {"image_uri": str(renamed)},
    ]
    rows = t.bulk_insert(dup_in_chunk)
    assert toy.calls["images"] == len(colour_images)  # same bytes under new names: no inference
    info = t.source_info()
    assert info[str(rows[0]["id"])].hash == info["1"].hash  # rows 1 and the renamed copy share a hash
    assert (
        info["1"].width == 32
        and info["1"].height == 24
        and info["1"].nbytes == colour_images["red"].stat().st_size
    )
    # a new embedder (another model key) does not reuse the first one's vectors
    other = ToyEmbedder()
    other.model_name = "toy-2"
    t2 = make_items_table(sqlite_client, other, name="other_items")
    t2.insert({"image_uri": str(colour_images["red"])})
    assert other.calls["images"] == 1
