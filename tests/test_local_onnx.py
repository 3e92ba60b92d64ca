"""The local ONNX provider against tiny real CLIP/SigLIP models and their transformers reference outputs.

The fixtures (``tests/fixtures/tiny-{clip,siglip}``) are built by ``scripts/make_tiny_clip.py``: random
weights, real tokenizers, exported like Xenova's ONNX repos; ``reference.npz`` holds what transformers
(``CLIPModel``/``SiglipModel`` + the PIL image processors) computes for the same images and texts.
Every test runs with ``HF_HUB_OFFLINE=1`` and an empty ``HF_HOME``: nothing here touches the network.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("onnxruntime")
pytest.importorskip("tokenizers")

from lookalike.embeddings import EmbeddingFunction, build_from_config
from lookalike.embeddings.local_onnx import ImagePreprocessor, LocalOnnxEmbedding
from lookalike.embeddings.model_files import download_model, list_models
from lookalike.errors import ConfigurationError, ImageInputError, ModelNotFoundError

FIXTURES = Path(__file__).parent / "fixtures"
TINY_CLIP = FIXTURES / "tiny-clip"
TINY_SIGLIP = FIXTURES / "tiny-siglip"


@pytest.fixture(autouse=True)
def _offline_empty_hub(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path_factory.mktemp("hf_home")
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.delenv("HUGGINGFACE_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return home


def _reference(fixture: Path) -> dict[str, np.ndarray]:
    with np.load(fixture / "reference.npz") as data:
        return {k: data[k] for k in data.files}


def _unit(m: np.ndarray) -> np.ndarray:
    return m / np.linalg.norm(m, axis=-1, keepdims=True)


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (_unit(np.asarray(a, dtype=np.float64)) * _unit(np.asarray(b, dtype=np.float64))).sum(-1)


@pytest.fixture(scope="module")
def clip() -> LocalOnnxEmbedding:
    return LocalOnnxEmbedding(str(TINY_CLIP))


@pytest.fixture(scope="module")
def siglip() -> LocalOnnxEmbedding:
    return LocalOnnxEmbedding(str(TINY_SIGLIP))


def _copy(fixture: Path, tmp_path: Path) -> Path:
    dest = tmp_path / fixture.name
    shutil.copytree(fixture, dest)
    return dest


# ------------------------------------------------------------------------------ parity with transformers
@pytest.mark.parametrize("fixture", [TINY_CLIP, TINY_SIGLIP], ids=["clip", "siglip"])
def test_text_matches_reference(fixture: Path) -> None:
    ref = _reference(fixture)
    model = LocalOnnxEmbedding(str(fixture))
    texts = [str(t) for t in ref["texts"]]
    ids = model._text_encoder().encode(texts)["input_ids"]
    np.testing.assert_array_equal(ids, ref["input_ids"])  # tokenisation, truncation and padding
    out = model.embed_texts(texts, purpose="query")
    assert out.shape == (len(texts), model.dimensions)
    assert _cosines(out, ref["text_embeds"]).min() >= 0.9999


@pytest.mark.parametrize("fixture", [TINY_CLIP, TINY_SIGLIP], ids=["clip", "siglip"])
def test_images_match_reference(fixture: Path) -> None:
    ref = _reference(fixture)
    model = LocalOnnxEmbedding(str(fixture))
    paths = [str(fixture / "images" / str(n)) for n in ref["image_names"]]
    prepared = [model.prepare_image(p) for p in paths]
    for got, want in zip(prepared, ref["pixel_values"]):
        assert got.dtype == np.float32 and got.shape == want.shape == (3, 32, 32)
        np.testing.assert_allclose(got, want, atol=1e-5)
    # the public bulk path: thread-pool preparation, batching, checks
    vectors = np.stack(model.embed_sources(paths))  # type: ignore[arg-type]
    assert vectors.shape == (len(paths), model.dimensions)
    assert _cosines(vectors, ref["image_embeds"]).min() >= 0.9999


def test_fixture_is_discriminative() -> None:
    """The parity bounds mean something only if different inputs give clearly different vectors."""
    ref = _reference(TINY_CLIP)
    for key in ("image_embeds", "text_embeds"):
        sims = _cosines(ref[key][:, None], ref[key][None])
        assert sims[~np.eye(len(sims), dtype=bool)].max() < 0.97
    # a wrong resampling filter (bilinear for bicubic) is visible at the 1e-4 level the parity test uses
    image = Image.open(TINY_CLIP / "images" / str(ref["image_names"][3])).convert("RGB")
    config = json.loads((TINY_CLIP / "preprocessor_config.json").read_text())
    wrong = ImagePreprocessor.from_config({**config, "resample": 2})(image)
    assert np.abs(wrong - ref["pixel_values"][3]).max() > 1e-2


def test_int8_close_to_fp32() -> None:
    ref = _reference(TINY_CLIP)
    fp32 = LocalOnnxEmbedding(str(TINY_CLIP))
    int8 = LocalOnnxEmbedding(str(TINY_CLIP), precision="int8")
    texts = [str(t) for t in ref["texts"]]
    assert (
        _cosines(int8.embed_texts(texts, purpose="query"), fp32.embed_texts(texts, purpose="query")).min()
        > 0.995
    )
    pixels = list(ref["pixel_values"])
    img8, img32 = int8.embed_images(pixels, purpose="document"), fp32.embed_images(pixels, purpose="document")
    assert _cosines(img8, img32).min() > 0.995  # measured 0.9995 on this fixture
    assert not np.allclose(img8, img32, atol=1e-6)  # really a different (quantized) graph


# ------------------------------------------------------------------------------ conventions
def test_siglip_pads_to_fixed_length(siglip: LocalOnnxEmbedding) -> None:
    feeds = siglip._text_encoder().encode(["a cat", "two dogs playing in the snow at night"])
    assert feeds["input_ids"].shape == (2, 64)
    assert (feeds["input_ids"][0, 8:] == 1).all()  # "</s>" (id 1) ends the text and fills the rest
    one = siglip.embed_texts(["a cat"], purpose="query")
    two = siglip.embed_texts(["a cat", "a much longer caption " * 5], purpose="query")
    np.testing.assert_allclose(one[0], two[0], atol=1e-5)  # batch-independent: always 64 tokens


def test_siglip_canonicalizes_text(siglip: LocalOnnxEmbedding) -> None:
    a = siglip.embed_texts(["A Red CAR, parked!"], purpose="query")
    b = siglip.embed_texts(["a red car parked"], purpose="query")
    np.testing.assert_allclose(a, b, atol=1e-6)


def test_clip_truncates_long_text(clip: LocalOnnxEmbedding) -> None:
    ids = clip._text_encoder().encode(["word " * 200, "a cat"])["input_ids"]
    assert ids.shape == (2, 77)
    assert ids[0, 0] == ids[1, 0] == clip._text_encoder().tokenizer.token_to_id("<|startoftext|>")
    assert ids[0, -1] == clip._text_encoder().tokenizer.token_to_id("<|endoftext|>")


def test_vectors_are_unit_length(clip: LocalOnnxEmbedding) -> None:
    texts = clip.embed_texts(["a cat", "a dog", ""], purpose="query")
    images = clip.embed_images([clip.prepare_image(TINY_CLIP / "images" / "img0_64x48.png")], purpose="query")
    np.testing.assert_allclose(np.linalg.norm(np.vstack([texts, images]), axis=1), 1.0, atol=1e-5)


@pytest.mark.parametrize(
    ("fixture", "int_form"),
    [(TINY_CLIP, {"size": 36, "crop_size": 32}), (TINY_SIGLIP, {"size": 32})],
    ids=["clip", "siglip"],
)
def test_size_int_and_dict_forms_agree(fixture: Path, int_form: dict[str, int], tmp_path: Path) -> None:
    config = json.loads((fixture / "preprocessor_config.json").read_text())
    legacy = _copy(fixture, tmp_path)
    (legacy / "preprocessor_config.json").write_text(json.dumps({**config, **int_form}))
    new, old = LocalOnnxEmbedding(str(fixture)), LocalOnnxEmbedding(str(legacy))
    assert new.image_preprocessor() == old.image_preprocessor()
    image = fixture / "images" / "img1_40x90.png"
    np.testing.assert_array_equal(new.prepare_image(image), old.prepare_image(image))


def test_preprocessing_modes() -> None:
    clip = ImagePreprocessor.from_config({"size": {"shortest_edge": 224}, "crop_size": 224})
    assert (clip.resize_mode, clip.crop, clip.resize_shape(400, 300)) == ("shortest", (224, 224), (298, 224))
    siglip = ImagePreprocessor.from_config({"image_processor_type": "SiglipImageProcessor", "size": 256})
    assert (siglip.resize_mode, siglip.crop, siglip.mean) == ("squash", None, (0.5, 0.5, 0.5))
    assert siglip.resize_shape(400, 300) == (256, 256)
    # a crop larger than the resized picture pads with zeros, as transformers does
    small = ImagePreprocessor.from_config({"size": 8, "crop_size": 10, "do_normalize": False})
    out = small(Image.new("RGB", (8, 8), (255, 255, 255)))
    assert out.shape == (3, 10, 10) and out[:, 0, :].max() == 0 and out[:, 5, 5].min() == 1.0


def test_reduced_jpeg_decoding_only_while_resizing() -> None:
    """JPEGs may decode at reduced scale only while still ``draft_factor``× the model's input (the
    rule benchmarks/doors.py measured); a model that takes pixels unresized must get them all."""
    clip = ImagePreprocessor.from_config({"size": {"shortest_edge": 224}, "crop_size": 224})
    assert clip.draft_size == (224 * ImagePreprocessor.draft_factor,) * 2
    assert ImagePreprocessor.draft_factor >= 3  # 2× left the tiny models 0.998 from a full decode
    unresized = ImagePreprocessor.from_config({"do_resize": False, "crop_size": 224})
    assert unresized.draft_size is None


def test_pil_images_accepted_by_embed_images(clip: LocalOnnxEmbedding) -> None:
    image = Image.open(TINY_CLIP / "images" / "img2_50x50.png")
    a = clip.embed_images([image], purpose="document")
    b = clip.embed_images([clip.prepare_image(image)], purpose="document")
    np.testing.assert_allclose(a, b, atol=1e-6)


# ------------------------------------------------------------------------------ the bulk image path
class _DictCache:
    """An in-memory vector cache: the EmbeddingCache protocol the embedders use."""

    def __init__(self) -> None:
        self.vectors: dict[str, np.ndarray] = {}

    def lookup(self, hashes: list[str]) -> dict[str, np.ndarray]:
        return {h: self.vectors[h] for h in hashes if h in self.vectors}

    def remember(self, content_hash: str, vector: np.ndarray) -> None:
        self.vectors[content_hash] = vector


def _counting(model: LocalOnnxEmbedding) -> list[int]:
    """Make ``model`` record how many pictures each embed_images call gets."""
    calls: list[int] = []
    embed = model.embed_images

    def counted(images: list, *, purpose: str) -> np.ndarray:
        calls.append(len(images))
        return embed(images, purpose=purpose)

    model.embed_images = counted  # type: ignore[method-assign]  # a spy on this one object
    return calls


def test_bulk_images_keep_their_order_and_reuse_the_cache(tmp_path: Path) -> None:
    pictures = sorted(str(p) for p in (TINY_CLIP / "images").glob("*.png"))
    again = tmp_path / "again.png"  # the first picture's bytes under another name, in the same window
    again.write_bytes(Path(pictures[0]).read_bytes())
    sources = [pictures[0], str(again), "a photo of a cat", None, *pictures[1:]]
    model = LocalOnnxEmbedding(str(TINY_CLIP), batch_size=2)
    plain = model.embed_sources(sources)
    one_by_one = [model.embed_query(p) for p in pictures]
    for pos, expected in zip([0, 4, 5, 6], one_by_one):
        np.testing.assert_allclose(plain[pos], expected, atol=1e-5)
    np.testing.assert_array_equal(plain[1], plain[0])
    assert plain[3] is None and plain[2].shape == (16,)

    calls = _counting(model)
    cache, infos, progress = _DictCache(), {}, []
    first = model.embed_sources(
        sources, cache=cache, infos=infos, progress=lambda d, t: progress.append((d, t))
    )
    assert sum(calls) == 4  # the copy was not embedded again
    assert sorted(infos) == [0, 1, 4, 5, 6] and infos[0].hash == infos[1].hash and len(cache.vectors) == 4
    assert (infos[4].width, infos[4].height) == (40, 90) and progress[-1] == (6, 6)
    for got, want in zip(first, plain):
        assert (got is None and want is None) or np.allclose(got, want, atol=1e-6)

    calls.clear()
    second = model.embed_sources(sources, cache=cache, infos={})
    assert calls == []  # every picture came from the cache
    for pos in [0, 1, 4, 5, 6]:
        np.testing.assert_array_equal(second[pos], first[pos])


def test_a_bad_picture_twice_fails_at_each_place_under_its_own_name(tmp_path: Path) -> None:
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"not really a png" * 4)
    again = tmp_path / "bad-again.png"
    again.write_bytes(bad.read_bytes())
    good = str(TINY_CLIP / "images" / "img0_64x48.png")
    model = LocalOnnxEmbedding(str(TINY_CLIP), batch_size=2)
    out = model.embed_sources([str(bad), str(again), good], on_error="skip", cache=_DictCache(), infos={})
    assert isinstance(out[2], np.ndarray)
    assert isinstance(out[0], ImageInputError) and isinstance(out[1], ImageInputError)
    assert out[0] is not out[1] and (out[0].index, out[1].index) == (0, 1)
    assert str(out[0]).startswith(f"item 0 ({bad}): PNG file could not be decoded")
    assert str(out[1]).startswith(f"item 1 ({again}): PNG file could not be decoded")
    with pytest.raises(ImageInputError) as info:
        model.embed_sources([good, str(bad)], cache=_DictCache(), infos={})
    assert info.value.index == 1


# ------------------------------------------------------------------------------ lazy loading, config
def test_text_query_loads_only_text_tower() -> None:
    model = LocalOnnxEmbedding(str(TINY_CLIP))
    assert model.loaded == ()
    vector = model.embed_query("a photo of a cat")
    assert vector.shape == (16,)
    assert model.loaded == ("text",)
    model.prepare_image(TINY_CLIP / "images" / "img0_64x48.png")  # preprocessing reads only JSON
    assert model.loaded == ("text",)
    model.embed_query(str(TINY_CLIP / "images" / "img0_64x48.png"))
    assert model.loaded == ("text", "image")
    model.unload()
    assert model.loaded == ()


def test_dimensions_known_without_loading() -> None:
    assert LocalOnnxEmbedding(str(TINY_CLIP)).dimensions == 16  # config.json projection_dim
    assert LocalOnnxEmbedding(str(TINY_SIGLIP)).dimensions == 32  # siglip vision hidden_size
    default = LocalOnnxEmbedding("clip-vit-b-32")  # nothing downloaded, offline: from the alias table
    assert (default.dimensions, default.loaded) == (512, ())
    assert LocalOnnxEmbedding("Xenova/siglip-base-patch16-224").dimensions == 768


def test_config_round_trip_directory(tmp_path: Path) -> None:
    model = LocalOnnxEmbedding(str(TINY_CLIP), precision="int8")
    config = json.loads(json.dumps(model.config()))
    assert config["provider"] == "local" and config["dimensions"] == 16
    assert config["options"] == {"model": str(TINY_CLIP.resolve()), "precision": "int8"}
    rebuilt = build_from_config(config)
    assert isinstance(rebuilt, LocalOnnxEmbedding) and rebuilt.precision == "int8"
    np.testing.assert_allclose(rebuilt.embed_query("a cat"), model.embed_query("a cat"), atol=1e-6)


def test_config_of_alias_holds_no_paths() -> None:
    config = LocalOnnxEmbedding("clip-vit-b-32").config()
    assert config["options"] == {"model": "clip-vit-b-32", "precision": "fp32"}
    assert build_from_config(config).dimensions == 512


def test_embedding_function_entry_point() -> None:
    fn = EmbeddingFunction(f"local/{TINY_CLIP}")
    assert fn.provider == "local" and fn.dimensions == 16 and fn.multimodal
    assert fn.embed_query("a cat").shape == (16,)
    assert isinstance(fn.impl, LocalOnnxEmbedding)


def test_list_models_has_default() -> None:
    models = {m.alias: m for m in list_models()}
    assert models["clip-vit-b-32"].repo_id == "Xenova/clip-vit-base-patch32"
    assert models["clip-vit-b-32"].dimensions == 512
    assert {"siglip-base-224", "siglip2-base-224"} <= set(models)


def _fake_hub_cache(home: Path, repo: str, fixture: Path) -> Path:
    """Lay a fixture out the way huggingface_hub's cache stores a downloaded repo."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo_dir = home / "hub" / f"models--{repo.replace('/', '--')}"
    snapshot = repo_dir / "snapshots" / commit
    shutil.copytree(fixture, snapshot, ignore=shutil.ignore_patterns("images", "reference.npz"))
    (repo_dir / "refs").mkdir(parents=True)
    (repo_dir / "refs" / "main").write_text(commit)
    return snapshot


def test_offline_model_from_hub_cache(_offline_empty_hub: Path) -> None:
    snapshot = _fake_hub_cache(_offline_empty_hub, "someone/tiny-clip", TINY_CLIP)
    model = LocalOnnxEmbedding("someone/tiny-clip")
    assert model.dimensions == 16  # read from the cached config.json, without loading anything
    ref = _reference(TINY_CLIP)
    vector = model.embed_query(str(ref["texts"][0]))
    assert _cosines(vector, ref["text_embeds"][0]) >= 0.9999
    assert download_model("someone/tiny-clip", precision="int8") == snapshot
    assert model.config()["options"] == {"model": "someone/tiny-clip", "precision": "fp32"}


# ------------------------------------------------------------------------------ bad models and options
def test_offline_and_not_cached() -> None:
    model = LocalOnnxEmbedding("clip-vit-b-32")
    with pytest.raises(ModelNotFoundError) as info:
        model.embed_query("a cat")
    message = str(info.value)
    assert "Xenova/clip-vit-base-patch32" in message and "HF_HUB_OFFLINE" in message
    assert "lookalike models download clip-vit-b-32" in message
    with pytest.raises(ModelNotFoundError, match="HF_HUB_OFFLINE"):
        download_model("siglip-base-224")


def test_unknown_model_name() -> None:
    with pytest.raises(ModelNotFoundError, match=r"unknown local model 'no-such-model'.*clip-vit-b-32"):
        LocalOnnxEmbedding("no-such-model")
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        LocalOnnxEmbedding("./no/such/dir")
    unknown_repo = LocalOnnxEmbedding("nobody/no-such-repo")  # can't be checked offline until used
    assert unknown_repo.dimensions is None
    with pytest.raises(
        ModelNotFoundError, match=r"'nobody/no-such-repo'.*not in the local Hugging Face cache"
    ):
        unknown_repo.embed_query("a cat")


@pytest.mark.parametrize(
    ("missing", "query"),
    [("onnx/text_model.onnx", "a cat"), ("tokenizer.json", "a cat"), ("onnx/vision_model.onnx", "image")],
)
def test_directory_missing_a_file(missing: str, query: str, tmp_path: Path) -> None:
    broken = _copy(TINY_CLIP, tmp_path)
    (broken / missing).unlink()
    model = LocalOnnxEmbedding(str(broken))
    if query == "image":
        query = str(broken / "images" / "img0_64x48.png")
    with pytest.raises(ModelNotFoundError) as info:
        model.embed_query(query)
    assert Path(missing).name in str(info.value) and str(broken) in str(info.value)
    assert "is missing" in str(info.value)


def test_no_int8_export(tmp_path: Path) -> None:
    model = LocalOnnxEmbedding(str(TINY_SIGLIP), precision="int8")
    with pytest.raises(ModelNotFoundError, match=r"text_model_quantized\.onnx.*precision='fp32'"):
        model.embed_query("a cat")


@pytest.mark.parametrize("tower", ["text", "vision"])
def test_corrupt_onnx_file(tower: str, tmp_path: Path) -> None:
    broken = _copy(TINY_CLIP, tmp_path)
    path = broken / "onnx" / f"{tower}_model.onnx"
    path.write_bytes(path.read_bytes()[:5000])  # an interrupted download
    model = LocalOnnxEmbedding(str(broken))
    query = "a cat" if tower == "text" else str(broken / "images" / "img0_64x48.png")
    with pytest.raises(ModelNotFoundError) as info:
        model.embed_query(query)
    message = str(info.value)
    assert f"{tower}_model.onnx" in message and "corrupt or incomplete" in message
    assert "Traceback" not in message and info.value.__cause__ is not None


def test_corrupt_json_files(tmp_path: Path) -> None:
    broken = _copy(TINY_CLIP, tmp_path)
    (broken / "preprocessor_config.json").write_text("{not json")
    (broken / "tokenizer.json").write_text('{"version": "1.0", "model": 42}')
    model = LocalOnnxEmbedding(str(broken))
    with pytest.raises(ModelNotFoundError, match=r"preprocessor_config\.json is unreadable"):
        model.prepare_image(broken / "images" / "img0_64x48.png")
    with pytest.raises(ModelNotFoundError, match=r"tokenizer\.json is corrupt"):
        model.embed_query("a cat")
    (broken / "config.json").write_text("[]")
    with pytest.raises(ModelNotFoundError, match=r"config\.json does not hold a JSON object"):
        LocalOnnxEmbedding(str(broken))


def test_bad_options() -> None:
    with pytest.raises(ConfigurationError, match="precision"):
        LocalOnnxEmbedding(str(TINY_CLIP), precision="fp8")
    with pytest.raises(ConfigurationError, match="16-dimensional"):
        LocalOnnxEmbedding(str(TINY_CLIP), dimensions=512)
    with pytest.raises(ConfigurationError, match="api_key"):
        LocalOnnxEmbedding(str(TINY_CLIP), api_key="secret")


def test_a_missing_int8_export_says_so_in_a_field(tmp_path: Path) -> None:
    """The error for an absent int8 export carries ``precision="int8"``: callers that fall back to fp32
    (``precision="auto"``) read the field, never the message."""
    from lookalike.embeddings.model_files import ModelFiles, resolve_model

    folder = tmp_path / "clip-fp32-only"
    shutil.copytree(TINY_CLIP, folder, ignore=shutil.ignore_patterns("*_quantized.onnx"))
    files = ModelFiles(resolve_model(str(folder)))
    with pytest.raises(ModelNotFoundError, match="no int8") as caught:
        files.fetch("vision", "int8")
    assert caught.value.precision == "int8"
    assert files.fetch("vision", "fp32")["onnx"] is not None
    (folder / "onnx" / "vision_model.onnx").unlink()
    with pytest.raises(ModelNotFoundError) as missing:
        ModelFiles(resolve_model(str(folder))).fetch("vision", "fp32")  # new: found files are remembered
    assert missing.value.precision == "fp32"
