"""Tags from the model itself: the vocabulary, its cached text vectors, and tags written at insert.

Tag *quality* can't be judged with random-weight models; these tests hold the mechanism to a
reference computed here (the vocabulary's text vectors @ each stored image vector → top k).
"""

from __future__ import annotations

import itertools
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from PIL import Image

import lookalike
from lookalike.errors import ConfigurationError, SchemaError
from lookalike.schema import Field, TableModel, TableSpec, TagsField
from lookalike.tags import builtin_vocabulary, load_vocabulary, top_tags, vocabulary_vectors
from tests.toy_embedder import COLOURS, ToyEmbedder

ROOT = Path(__file__).resolve().parents[1]
TINY_CLIP = Path(__file__).parent / "fixtures" / "tiny-clip"


@pytest.fixture(autouse=True)
def tag_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test its own tag vector cache (and nothing left in the user's)."""
    where = tmp_path / "cache"
    monkeypatch.setenv("LOOKALIKE_CACHE_DIR", str(where))
    from lookalike import tags

    monkeypatch.setattr(tags, "_MEMO", {})
    return where


def _model(embed: Any, vocabulary: Any = None, **options: Any) -> type[Any]:
    class Pics(TableModel):
        __tablename__ = "pics_tags"
        id: int | None = Field(default=None, primary_key=True)
        path: str | None = Field(default=None)
        vec: list[float] | None = embed.VectorField(source_field="path", source_type="image")
        tags: str | None = TagsField("vec", vocabulary=vocabulary, scores_field="tag_scores", **options)
        tag_scores: dict | None = Field(default=None, sa_type=sa.JSON)

    return Pics


def _reference(embed: Any, words: list[str], vectors: np.ndarray, top: int) -> list[list[tuple[str, float]]]:
    """Top-k computed independently: embed the prompted phrases, normalise, score, stable sort."""
    text = np.asarray(embed.embed_texts([f"a photo of {w}" for w in words], purpose="query"), np.float64)
    text /= np.linalg.norm(text, axis=1, keepdims=True)
    out = []
    for v in np.asarray(vectors, np.float64):
        scores = text @ (v / np.linalg.norm(v))
        order = sorted(range(len(words)), key=lambda j: (-scores[j], j))[:top]
        out.append([(words[j], float(scores[j])) for j in order])
    return out


# ---------------------------------------------------------------------- the vocabulary


def test_builtin_vocabulary_is_clean_and_shipped() -> None:
    raw = (ROOT / "lookalike" / "data" / "vocabulary.txt").read_text(encoding="utf-8").splitlines()
    assert 1000 <= len(raw) <= 1600
    assert all(line and line == line.strip().lower() and "," not in line for line in raw)
    assert len(set(raw)) == len(raw)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the shipped file needs no cleaning
        vocab = builtin_vocabulary()
    assert list(vocab.words) == raw
    for concept in ("beach", "golden retriever", "birthday cake", "snowy mountain", "receipt", "screenshot"):
        assert concept in vocab.words
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    package_data = pyproject.split("[tool.setuptools.package-data]")[1].split("\n[")[0]
    assert '"data/*.txt"' in package_data  # the wheel carries it


def test_user_vocabulary_with_duplicates_and_empty_lines_is_cleaned(tmp_path: Path) -> None:
    path = tmp_path / "words.txt"
    path.write_text("beach\n\n  Sea \nbeach\n\nsand\nSEA\n", encoding="utf-8")
    with pytest.warns(UserWarning, match=r"duplicate phrases dropped: 'beach', 'sea'") as caught:
        vocab = load_vocabulary(path)
    assert len(caught) == 1  # one warning naming every duplicate
    assert vocab.words == ("beach", "sea", "sand")
    with pytest.warns(UserWarning, match="'cat'"):
        assert load_vocabulary(["cat", "", "dog", "cat"]).words == ("cat", "dog")


@pytest.mark.parametrize(
    ("vocabulary", "message"),
    [
        ([], "has no phrases"),
        (["", "  "], "has no phrases"),
        (["red, car"], "holds a comma"),
        (["ok", 3], "must be strings"),
        ("/no/such/vocabulary.txt", "cannot read tag vocabulary"),
    ],
)
def test_bad_vocabularies(vocabulary: Any, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        load_vocabulary(vocabulary)


def test_bad_tag_fields() -> None:
    toy = ToyEmbedder()
    with pytest.raises(SchemaError, match="top must be a positive integer"):
        TagsField("vec", top=0)
    with pytest.raises(SchemaError, match="min_score"):
        TagsField("vec", min_score=2)
    with pytest.raises(SchemaError, match="prompt"):
        TagsField("vec", prompt="no placeholder")

    class NoVector(TableModel):
        __tablename__ = "novec"
        id: int | None = Field(default=None, primary_key=True)
        path: str | None = Field(default=None)
        vec: list[float] | None = toy.VectorField(source_field="path")
        tags: str | None = TagsField("path")

    with pytest.raises(SchemaError, match="'path', which is not a vector column"):
        TableSpec.from_model(NoVector)


# ---------------------------------------------------------------------- vectors and their cache


def test_vocabulary_vectors_are_cached_on_disk_per_model_and_vocabulary(tag_cache: Path) -> None:
    from lookalike import tags

    toy = ToyEmbedder()
    vocab = load_vocabulary(["red apple", "blue sky", "green field"])
    first = vocabulary_vectors(toy, vocab)
    assert toy.calls["texts"] == 3 and first.shape == (3, 16)
    assert np.allclose(np.linalg.norm(first, axis=1), 1.0)
    files = list((tag_cache / "tags").glob("*.npy"))
    assert len(files) == 1

    tags._MEMO.clear()  # a new process: read from disk, nothing embedded
    again = vocabulary_vectors(ToyEmbedder(), vocab)
    np.testing.assert_array_equal(first, again)

    other = ToyEmbedder()
    vocabulary_vectors(other, load_vocabulary(["red apple", "blue sky"]))  # another vocabulary
    assert other.calls["texts"] == 2 and len(list((tag_cache / "tags").glob("*.npy"))) == 2

    files[0].write_bytes(b"damaged")  # a damaged file is embedded again, not trusted
    tags._MEMO.clear()
    fresh = ToyEmbedder()
    np.testing.assert_allclose(vocabulary_vectors(fresh, vocab), first)
    assert fresh.calls["texts"] == 3


def test_a_text_only_model_cannot_tag() -> None:
    toy = ToyEmbedder()
    toy.multimodal = False
    with pytest.raises(ConfigurationError, match="tags need a multimodal model"):
        vocabulary_vectors(toy, load_vocabulary(["cat"]))


@settings(max_examples=60, deadline=None)
@given(
    images=arrays(np.float32, (3, 6), elements=st.floats(-1, 1, width=32)),
    vocab=arrays(np.float32, (9, 6), elements=st.sampled_from([-0.5, 0.25, 1.0])),
    top=st.integers(1, 12),
)
def test_top_tags_matches_a_reference_ranking(images: np.ndarray, vocab: np.ndarray, top: int) -> None:
    """The k best by cosine (coarse vocabulary values make ties: the earlier phrase goes first)."""
    images = images + np.float32(1e-3)  # no zero vector
    unit = (vocab / np.linalg.norm(vocab, axis=1, keepdims=True)).astype(np.float32)
    words = [f"w{j}" for j in range(9)]
    got = top_tags(images, unit, words, top)
    k = min(top, 9)
    for image, tags in zip(images, got):
        scores = unit.astype(np.float64) @ (image / np.linalg.norm(image)).astype(np.float64)
        chosen = [int(w[1:]) for w, _ in tags]
        assert len(chosen) == k == len(set(chosen))
        np.testing.assert_allclose([s for _, s in tags], scores[chosen], atol=1e-5)
        left_out = [j for j in range(9) if j not in chosen]
        assert all(scores[j] <= scores[chosen].min() + 1e-5 for j in left_out)  # none better left out
        for (a, sa_), (b, sb) in itertools.pairwise(tags):  # best first; exact ties in vocabulary order
            assert sa_ >= sb and (sa_ != sb or int(a[1:]) < int(b[1:]))
        same = [j for j in range(9) if np.array_equal(unit[j], unit[chosen[-1]])]
        assert all(j in chosen for j in same if j < chosen[-1])  # an identical earlier phrase isn't skipped


# ---------------------------------------------------------------------- tags at insert


@pytest.mark.skipif(not TINY_CLIP.is_dir(), reason="tests/fixtures/tiny-clip (the tiny ONNX model) is absent")
def test_tags_at_insert_match_the_reference_with_the_tiny_model(engine_url: str, tmp_path: Path) -> None:
    from lookalike.embeddings.local_onnx import LocalOnnxEmbedding

    embed = LocalOnnxEmbedding(str(TINY_CLIP))
    words = list(builtin_vocabulary().words[:60])
    images = []
    for i, (name, rgb) in enumerate(COLOURS.items()):
        path = tmp_path / f"{name}.png"
        Image.new("RGB", (24 + i, 20), rgb).save(path)
        images.append(str(path))
    client = lookalike.connect(engine_url)
    try:
        table = client.create_table(schema=_model(embed, words, top=4), if_exists="overwrite")
        table.bulk_insert([{"path": p} for p in images], chunk_size=3)
        rows = table.query().to_list()
        reference = _reference(embed, words, np.asarray([r["vec"] for r in rows]), top=4)
        for row, expected in zip(rows, reference):
            assert row["tags"] == ", ".join(w for w, _ in expected)
            # the scores are a mapping (PostgreSQL's JSONB keeps no key order): the text has the order
            assert set(row["tag_scores"]) == {w for w, _ in expected}
            np.testing.assert_allclose(
                [row["tag_scores"][w] for w, _ in expected], [s for _, s in expected], atol=2e-4
            )
        # another process: the tag settings come back from the stored description
        other = lookalike.connect(engine_url)
        try:
            again = other.open_table("pics_tags")
            again.insert({"path": images[0]})
            newest = max(again.query().to_list(), key=lambda r: r["id"])
            assert newest["tags"] == rows[0]["tags"]
        finally:
            other.close()
    finally:
        client.drop_table("pics_tags", if_not_exists="skip")
        client.close()


def test_min_score_given_tags_and_updates(sqlite_client: lookalike.Client, colour_images: dict) -> None:
    toy = ToyEmbedder()
    words = ["red apple", "blue sky", "green field", "zebra crossing"]
    table = sqlite_client.create_table(schema=_model(toy, words, top=3, min_score=0.9))
    red = table.insert({"path": str(colour_images["red"])})
    row = table.get(red["id"])
    assert row.tags == "red apple"  # the others score under 0.9 against a red picture
    assert set(row.tag_scores) == {"red apple"} and row.tag_scores["red apple"] > 0.99

    given = table.insert({"path": str(colour_images["blue"]), "tags": "my own words"})
    assert table.get(given["id"]).tags == "my own words"  # tags given with a row are kept

    table.update({"path": str(colour_images["green"])}, {"id": red["id"]})  # new picture, new tags
    assert table.get(red["id"]).tags == "green field"

    black = table.insert({"path": str(colour_images["black"])})
    assert table.get(black["id"]).tags is None  # nothing scores 0.9: no tags, not empty text


def test_folder_index_tags_by_default_and_can_turn_them_off(tmp_path: Path, colour_images: dict) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("red", "blue"):
        Image.open(colour_images[name]).save(folder / f"{name}.png")
    with lookalike.connect(tmp_path / "tagged.db") as client:
        lookalike.index_paths(client, [folder], model=ToyEmbedder())
        rows = client.open_table("images").query().to_list()
        assert all(r["tags"] and len(r["tags"].split(", ")) == 5 for r in rows)
        red = next(r for r in rows if r["path"].endswith("red.png"))
        assert red["tags"].startswith("red ")  # the toy maps every "red …" phrase to the red picture
    with lookalike.connect(tmp_path / "plain.db") as client:
        lookalike.index_paths(client, [folder], model=ToyEmbedder(), tags=False)
        assert "tags" not in client.open_table("images").spec.sa_table.c

    words = tmp_path / "words.txt"
    words.write_text("blue sky\nred apple\n", encoding="utf-8")
    with lookalike.connect(tmp_path / "own.db") as client:
        lookalike.index_paths(client, [folder], model=ToyEmbedder(), vocabulary=words)
        tags = {Path(r["path"]).name: r["tags"] for r in client.open_table("images").query().to_list()}
        assert tags == {"red.png": "red apple, blue sky", "blue.png": "blue sky, red apple"}
        with pytest.raises(ConfigurationError, match="tagged with another vocabulary"):
            lookalike.index_paths(client, [folder], model=ToyEmbedder(), vocabulary=["cat"])


@pytest.mark.skipif(not TINY_CLIP.is_dir(), reason="tests/fixtures/tiny-clip (the tiny ONNX model) is absent")
def test_cli_index_tags_options(tmp_path: Path, tag_cache: Path, colour_images: dict) -> None:
    """``lookalike index`` tags by default, ``--no-tags`` leaves them out, ``--vocabulary FILE``."""
    import json
    import os
    import subprocess
    import sys

    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("red", "blue", "green"):
        Image.open(colour_images[name]).save(folder / f"{name}.png")
    words = tmp_path / "words.txt"
    words.write_text("red apple\nblue sky\ngreen field\nred apple\n", encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LOOKALIKE_CACHE_DIR": str(tag_cache)}

    def index(db: str, *options: str) -> list[dict]:
        cmd = [
            sys.executable,
            "-m",
            "lookalike.cli",
            "index",
            str(folder),
            "--db",
            db,
            "-m",
            f"local/{TINY_CLIP}",
        ]
        proc = subprocess.run(
            [*cmd, *options, "--json"], cwd=tmp_path, capture_output=True, text=True, env=env
        )
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout)["added"] == 3
        with lookalike.connect(tmp_path / db) as client:
            return client.open_table("images").query().to_list()

    assert all(len(r["tags"].split(", ")) == 5 for r in index("a.db"))
    assert all("tags" not in r for r in index("b.db", "--no-tags"))
    own = index("c.db", "--vocabulary", str(words))
    assert all(sorted(r["tags"].split(", ")) == ["blue sky", "green field", "red apple"] for r in own)
