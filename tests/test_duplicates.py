"""Duplicates: planted exact and near copies are grouped, distinct items are not, keepers follow policy."""

from __future__ import annotations

import datetime as dt
import io
import itertools
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageEnhance

import lookalike
from lookalike import ConfigurationError, Field, TableModel, VectorField
from lookalike.duplicates import (
    EXHAUSTIVE_MAX,
    GENERIC_THRESHOLD,
    all_pairs_groups,
    default_threshold,
    diameter_groups,
    find_duplicates,
    groups_as_indices,
    knn_edges,
)
from lookalike.folders import index_paths

TINY_CLIP = Path(__file__).parent / "fixtures" / "tiny-clip"
DIMS = 32


def _vector_table(client: lookalike.Client, name: str = "vecs"):
    """A table of plain vectors (no embedder) with the columns keeper policies look at."""

    class Item(TableModel):
        __tablename__ = name
        id: int | None = Field(default=None, primary_key=True)
        label: str = Field()
        width: int | None = Field(default=None)
        height: int | None = Field(default=None)
        size: int | None = Field(default=None)
        added_at: dt.datetime | None = Field(default=None)
        vec: list[float] | None = VectorField(dimensions=DIMS)

    return client.create_table(schema=Item, if_exists="overwrite")


def _unit(rng: np.random.Generator, n: int) -> np.ndarray:
    x = rng.standard_normal((n, DIMS)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _near(v: np.ndarray, rng: np.random.Generator, distance: float) -> np.ndarray:
    """A vector at (about) ``distance`` cosine distance from ``v``."""
    noise = rng.standard_normal(v.shape).astype(np.float32)
    noise -= (noise @ v) * v
    noise /= np.linalg.norm(noise)
    angle = np.arccos(1 - distance)
    return (np.cos(angle) * v + np.sin(angle) * noise).astype(np.float32)


def _labels(groups) -> list[list[str]]:
    return sorted(sorted(row["label"] for row in g.rows) for g in groups)


def test_planted_near_and_exact_duplicates_are_grouped(sqlite_client: lookalike.Client) -> None:
    rng = np.random.default_rng(0)
    table = _vector_table(sqlite_client)
    base = _unit(rng, 20)  # random 32-d unit vectors sit ~1.0 apart: all distinct
    rows = [{"label": f"img{i}", "vec": base[i].tolist()} for i in range(20)]
    rows.append({"label": "img3-copy", "vec": base[3].tolist()})  # identical vector
    rows.append({"label": "img5-near", "vec": _near(base[5], rng, 0.01).tolist()})
    rows.append({"label": "img7-far", "vec": _near(base[7], rng, 0.2).tolist()})  # similar, not a copy
    table.bulk_insert(rows)

    groups = find_duplicates(table, threshold=0.03)
    assert _labels(groups) == [["img3", "img3-copy"], ["img5", "img5-near"]]
    exact = next(g for g in groups if "img3" in [r["label"] for r in g.rows])
    assert exact.exact and exact.max_distance < 1e-6
    near = next(g for g in groups if not g.exact)
    assert near.max_distance == pytest.approx(0.01, abs=2e-3)
    assert near.distances is not None and near.distances[0][1] == pytest.approx(near.max_distance)
    # groups are reported exact-first; nothing was deleted
    assert groups[0].exact and table.rows() == 23
    # the Table method delegates to the same call
    assert _labels(table.find_duplicates(threshold=0.03)) == _labels(groups)


def test_threshold_zero_finds_identical_vectors_only(sqlite_client: lookalike.Client) -> None:
    rng = np.random.default_rng(1)
    table = _vector_table(sqlite_client)
    v = _unit(rng, 2)
    table.bulk_insert(
        [
            {"label": "a", "vec": v[0].tolist()},
            {"label": "a2", "vec": v[0].tolist()},
            {"label": "b", "vec": v[1].tolist()},
            {"label": "b-near", "vec": _near(v[1], rng, 0.005).tolist()},
        ]
    )
    assert _labels(find_duplicates(table, threshold=0)) == [["a", "a2"]]


def _chain(rng: np.random.Generator, n: int, step: float) -> list[np.ndarray]:
    """``n`` unit vectors along a great circle, each ``step`` cosine distance from the next."""
    a = _unit(rng, 1)[0]
    direction = _near(a, rng, 1.0)  # a unit vector orthogonal to a
    angle = np.arccos(1 - step)
    return [(np.cos(i * angle) * a + np.sin(i * angle) * direction).astype(np.float32) for i in range(n)]


def test_a_chain_of_near_copies_is_not_one_group(sqlite_client: lookalike.Client) -> None:
    """30 images each 0.02 from the next (a burst drifting): single linkage made one 30-image group
    whose ends are ~1.9 apart; groups must instead keep every pair within the threshold."""
    rng = np.random.default_rng(2)
    table = _vector_table(sqlite_client)
    chain = _chain(rng, 30, 0.02)  # 0.2 rad a step: 30 steps stay short of coming round the circle
    table.bulk_insert([{"label": f"c{i:02d}", "vec": v.tolist()} for i, v in enumerate(chain)])
    groups = find_duplicates(table, threshold=0.03)
    x = np.stack(chain)
    position = {row["label"]: int(row["label"][1:]) for g in groups for row in g.rows}
    seen: set[str] = set()
    for g in groups:
        members = [position[row["label"]] for row in g.rows]
        sub = x[members]
        farthest = float((1 - sub @ sub.T).max())
        assert farthest <= 0.03 + 1e-6  # every pair within the threshold
        assert g.diameter == pytest.approx(farthest, abs=1e-5)
        assert len(g) == 2  # neighbours two steps apart are ~0.08 apart: only pairs qualify
        assert g.kind == "same picture" and g.labels[0] == "keeper"
        assert "vectors only" in g.details[1]  # no file to look at: said so
        labels = {row["label"] for row in g.rows}
        assert not seen & labels  # nobody in two groups
        seen |= labels
    # greedy seeds still pair up almost everything: nobody left out next to another left-out item
    grouped = sorted(position.values())
    left = sorted(set(range(30)) - set(grouped))
    assert all(b - a > 1 for a, b in itertools.pairwise(left))
    assert len(groups) >= 10


def test_diameter_groups_split_a_chain_that_components_join() -> None:
    """The reference connected components chain the whole line; diameter groups do not."""
    x = np.stack(_chain(np.random.default_rng(7), 30, 0.02))
    assert all_pairs_groups(x, 0.03) == [list(range(30))]
    groups = diameter_groups(x, 0.03)
    assert groups and all(len(g) == 2 and g[1] - g[0] == 1 for g in groups)


try:
    from hypothesis import given, settings
    from hypothesis import strategies as st
except ImportError:  # the property test needs Hypothesis (a dev dependency)
    given = None


if given is not None:

    @st.composite
    def _clouds(draw: st.DrawFn) -> tuple[np.ndarray, float]:
        """A few tight clusters of random vectors (so groups form and compete) and a threshold."""
        seed = draw(st.integers(0, 2**32 - 1))
        n = draw(st.integers(2, 40))
        centres = draw(st.integers(1, 5))
        spread = draw(st.floats(0.005, 0.1))
        threshold = draw(st.floats(0.0, 0.1))
        rng = np.random.default_rng(seed)
        base = _unit(rng, centres)
        x = np.stack(
            [_near(base[int(rng.integers(centres))], rng, float(rng.uniform(0, spread))) for _ in range(n)]
        )
        return x, threshold

    @settings(max_examples=150, deadline=None)
    @given(_clouds())
    def test_groups_never_exceed_the_threshold_property(cloud: tuple[np.ndarray, float]) -> None:
        """Whatever the vectors: every group's diameter is within the threshold, nobody is in two
        groups, and no two left-out vectors are within the threshold of each other (maximality; the
        kNN graph is exhaustive here, k >= n)."""
        x, threshold = cloud
        groups = diameter_groups(x, threshold, k=len(x), exhaustive=True)
        u = x / np.linalg.norm(x, axis=1, keepdims=True)
        dist = 1.0 - u.astype(np.float64) @ u.T.astype(np.float64)
        t = max(threshold, 1e-6)
        members = [i for g in groups for i in g]
        assert len(members) == len(set(members))
        for g in groups:
            assert len(g) >= 2
            assert dist[np.ix_(g, g)].max() <= t + 1e-5
        left = sorted(set(range(len(x))) - set(members))
        if len(left) > 1:
            sub = dist[np.ix_(left, left)]
            np.fill_diagonal(sub, np.inf)
            assert sub.min() > t - 1e-5


def test_keeper_policies(sqlite_client: lookalike.Client) -> None:
    rng = np.random.default_rng(3)
    table = _vector_table(sqlite_client)
    v = _unit(rng, 1)[0]
    t0 = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
    table.bulk_insert(
        [
            {
                "label": "small-old",
                "width": 640,
                "height": 480,
                "size": 90_000,
                "added_at": t0,
                "vec": v.tolist(),
            },
            {
                "label": "big",
                "width": 4000,
                "height": 3000,
                "size": 3_000_000,
                "added_at": t0 + dt.timedelta(days=2),
                "vec": _near(v, rng, 0.002).tolist(),
            },
            {
                "label": "tiny-new",
                "width": 320,
                "height": 240,
                "size": 20_000,
                "added_at": t0 + dt.timedelta(days=5),
                "vec": _near(v, rng, 0.002).tolist(),
            },
        ]
    )

    def keeper_label(policy) -> str:
        (group,) = find_duplicates(table, threshold=0.03, keeper=policy)
        assert group.ids[0] == group.keeper  # the keeper is listed first
        return group.rows[0]["label"]

    assert keeper_label("largest") == "big"
    assert keeper_label("oldest") == "small-old"
    assert keeper_label("newest") == "tiny-new"
    assert keeper_label("smallest_file") == "tiny-new"
    assert keeper_label("largest_file") == "big"
    assert keeper_label(lambda rows: next(r["id"] for r in rows if r["label"] == "small-old")) == "small-old"
    with pytest.raises(ConfigurationError, match="keeper"):
        find_duplicates(table, keeper="prettiest")
    with pytest.raises(ConfigurationError, match="threshold"):
        find_duplicates(table, threshold=-1)


def _clustered(n: int, seed: int, planted: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = _unit(rng, max(1, n // 40))
    x = centres[rng.integers(0, len(centres), n)] + 0.5 * rng.standard_normal((n, DIMS)).astype(
        np.float32
    ) / np.sqrt(DIMS)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    src = rng.choice(n - planted, planted, replace=False)
    for j, s in enumerate(src):
        x[n - planted + j] = _near(x[s], rng, float(rng.uniform(0.0005, 0.01)))
    return x


def test_results_equal_an_all_pairs_reference(sqlite_client: lookalike.Client) -> None:
    x = _clustered(3000, seed=4, planted=60)
    table = _vector_table(sqlite_client)
    table.bulk_insert([{"label": str(i), "vec": v.tolist()} for i, v in enumerate(x)], chunk_size=1000)
    groups = find_duplicates(table, threshold=0.02)
    found = sorted(sorted(int(r["label"]) for r in g.rows) for g in groups)
    assert found == all_pairs_groups(x, 0.02)
    assert len(found) >= 55  # the planted pairs (a few may chain into one group)


def test_cell_probing_matches_all_pairs_on_planted_duplicates() -> None:
    """Above EXHAUSTIVE_MAX the kNN graph probes cells; planted near-copies are all still found."""
    n = EXHAUSTIVE_MAX + 2000
    x = _clustered(n, seed=5, planted=300)
    r, c, d = knn_edges(x, 0.02)
    assert (d <= 0.02).all() and (r < c).all()
    assert groups_as_indices(zip(r.tolist(), c.tolist()), n) == all_pairs_groups(x, 0.02)
    r2, c2, _ = knn_edges(x, 0.02, exhaustive=True)
    assert groups_as_indices(zip(r2.tolist(), c2.tolist()), n) == all_pairs_groups(x, 0.02)


def test_default_thresholds() -> None:
    assert default_threshold("local/clip-vit-b-32") <= 0.05
    assert default_threshold("some/unknown-model") == GENERIC_THRESHOLD
    assert default_threshold(None) == GENERIC_THRESHOLD


# ---------------------------------------------------------------------- real images, real (tiny) model


def _scene(rng: np.random.Generator, size: int = 160) -> Image.Image:
    im = Image.new("RGB", (size, size), tuple(int(v) for v in rng.integers(0, 255, 3)))
    draw = ImageDraw.Draw(im)
    for _ in range(10):
        x0, y0 = (int(v) for v in rng.integers(0, size, 2))
        x1, y1 = x0 + int(rng.integers(10, size // 2)), y0 + int(rng.integers(10, size // 2))
        colour = tuple(int(v) for v in rng.integers(0, 255, 3))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)((x0, y0, x1, y1), fill=colour)
    return im


@pytest.mark.skipif(not TINY_CLIP.is_dir(), reason="tests/fixtures/tiny-clip (the tiny ONNX model) is absent")
def test_generated_copies_are_grouped_with_the_tiny_model(tmp_path: Path) -> None:
    rng = np.random.default_rng(6)
    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(8):
        _scene(rng).save(folder / f"scene{i}.png")
    src = Image.open(folder / "scene0.png")
    src.resize((80, 80), Image.BILINEAR).save(folder / "scene0-small.png")  # resized
    buf = io.BytesIO()
    Image.open(folder / "scene1.png").save(buf, "JPEG", quality=80)
    (folder / "scene1-reencoded.jpg").write_bytes(buf.getvalue())  # re-encoded
    # lightly cropped (the tiny model is crop-sensitive: 4 px already moves it ~0.09)
    Image.open(folder / "scene2.png").crop((2, 2, 158, 158)).save(folder / "scene2-crop.png")
    ImageEnhance.Brightness(Image.open(folder / "scene3.png")).enhance(1.08).save(
        folder / "scene3-bright.png"
    )
    shutil.copy(folder / "scene4.png", folder / "scene4-copy.png")  # byte-identical

    client = lookalike.connect(tmp_path / "photos.db")
    report = index_paths(client, [folder], model=f"local/{TINY_CLIP}")
    assert report.added == 13 and not report.failures
    groups = client.open_table("images").find_duplicates()
    names = sorted(sorted(Path(r["path"]).stem for r in g.rows) for g in groups)
    assert names == [
        ["scene0", "scene0-small"],
        ["scene1", "scene1-reencoded"],
        ["scene2", "scene2-crop"],
        ["scene3", "scene3-bright"],
        ["scene4", "scene4-copy"],
    ]
    by_first = {Path(g.rows[0]["path"]).stem: g for g in groups}
    assert by_first["scene0"].keeper == by_first["scene0"].ids[0]  # "largest": the 160 px original
    exact = [g for g in groups if g.exact]
    assert [sorted(Path(r["path"]).stem for r in g.rows) for g in exact] == [["scene4", "scene4-copy"]]
    client.close()
