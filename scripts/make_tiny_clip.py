"""Build the tiny real CLIP/SigLIP test fixtures (and, with ``--full``, a full-size random CLIP for benchmarks).

Dev-only: needs torch, transformers, onnx, onnxruntime and sentencepiece, which the library does not::

    python3 -m venv .venv-torch
    .venv-torch/bin/pip install torch==2.13.0 transformers onnx onnxruntime sentencepiece pillow
    .venv-torch/bin/python scripts/make_tiny_clip.py            # tests/fixtures/tiny-{clip,siglip}/
    .venv-torch/bin/python scripts/make_tiny_clip.py --full     # .bench/clip-vit-b-32-random/

The tiny models have random weights (fixed seed) but real tokenizers and real transformers architectures,
exported the way Xenova's ONNX repos are (``onnx/{vision,text}_model{,_quantized}.onnx``), so the library's
pipeline is checked against the reference implementation (transformers ``CLIPModel`` + the PIL image
processors) end to end. The full-size model has the ViT-B/32 architecture (same FLOPs as the real one) and
the real CLIP BPE vocabulary, taken from the ``open-clip-torch`` wheel (``bpe_simple_vocab_16e6.txt.gz``).
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
SOT, EOT = "<|startoftext|>", "<|endoftext|>"
CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]
CLIP_SPLIT = (
    r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"""
)

TEXTS = [
    "a photo of a cat",
    "A Red CAR parked next to a tree!",
    "two dogs playing in the snow, at night",
    "",
    "an astronaut's helmet reflecting the blue sea — 1969",
    # longer than 77 tokens: checks truncation (SOT + 75 + EOT)
    " ".join(["a very long caption about a small green house on a hill"] * 12),
]


# ------------------------------------------------------------------------------------------- tokenizers
def bytes_to_unicode() -> dict[int, str]:
    """CLIP/GPT-2's reversible byte → printable character map (same order as openai/CLIP)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    bs += list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


def clip_tokenizer_json(merges: list[tuple[str, str]]) -> str:
    """A tokenizer.json in the layout of openai/clip-vit-base-patch32's, built from BPE merges.

    The vocabulary is built exactly like openai/CLIP's ``SimpleTokenizer``: 256 byte symbols, the same with
    ``</w>``, one entry per merge, then ``<|startoftext|>`` and ``<|endoftext|>`` (the two highest ids).
    """
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, normalizers, pre_tokenizers, processors
    from tokenizers.models import BPE

    symbols = list(bytes_to_unicode().values())
    vocab_list = symbols + [s + "</w>" for s in symbols] + ["".join(m) for m in merges] + [SOT, EOT]
    vocab: dict[str, int] = {}
    for token in vocab_list:
        vocab.setdefault(token, len(vocab))
    tok = Tokenizer(
        BPE(
            vocab=vocab,
            merges=merges,
            unk_token=EOT,
            end_of_word_suffix="</w>",
            continuing_subword_prefix="",
            fuse_unk=False,
        )
    )
    tok.normalizer = normalizers.Sequence(
        [normalizers.NFC(), normalizers.Replace(Regex(r"\s+"), " "), normalizers.Lowercase()]
    )
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(CLIP_SPLIT), behavior="removed", invert=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens([AddedToken(SOT, normalized=True), AddedToken(EOT, normalized=True)])
    tok.post_processor = processors.RobertaProcessing(
        (EOT, vocab[EOT]), (SOT, vocab[SOT]), trim_offsets=False, add_prefix_space=False
    )
    return tok.to_str(pretty=False)


def training_corpus(seed: int = 0) -> list[str]:
    """Deterministic English-like captions to train the tiny BPE on."""
    rng = np.random.default_rng(seed)
    adjectives = "red green blue yellow small large old new happy dark bright wooden shiny furry tiny".split()
    nouns = (
        "cat dog car tree house boat bird horse flower mountain river city street beach phone chair "
        "table book cup pizza person child woman man astronaut helmet sea snow night sky cloud hill"
    ).split()
    verbs = "sitting running playing standing sleeping flying parked reflecting eating looking".split()
    places = "on the grass|in the snow|at night|next to a tree|by the sea|in a room|on a hill".split("|")
    # pseudo-words made of syllables give the trainer enough variety for a ~1.5k vocabulary
    syllables = "ka lo mi ne ru sa to vi be da fe gu hi jo ku la ma no pe qui re si tu va we xo yu ze".split()
    nouns += ["".join(rng.choice(syllables, int(rng.integers(2, 4)))) for _ in range(600)]
    lines = []
    for _ in range(6000):
        a, b = rng.choice(adjectives, 2)
        n1, n2 = rng.choice(nouns, 2)
        lines.append(
            f"a photo of a {a} {n1} {rng.choice(verbs)} {rng.choice(places)} with {b} {n2}s, "
            f"{rng.integers(1, 2000)} it's {rng.choice(['great', 'nice', 'odd'])}!"
        )
    return lines


def train_tiny_clip_merges(vocab_size: int) -> list[tuple[str, str]]:
    from tokenizers import Regex, Tokenizer, normalizers, pre_tokenizers, trainers
    from tokenizers.models import BPE

    tok = Tokenizer(BPE(end_of_word_suffix="</w>", continuing_subword_prefix=""))
    tok.normalizer = normalizers.Sequence(
        [normalizers.NFC(), normalizers.Replace(Regex(r"\s+"), " "), normalizers.Lowercase()]
    )
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(CLIP_SPLIT), behavior="removed", invert=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        end_of_word_suffix="</w>",
        show_progress=False,
    )
    tok.train_from_iterator(training_corpus(), trainer=trainer)
    raw = json.loads(tok.to_str())["model"]["merges"]
    return [tuple(m.split(" ", 1)) if isinstance(m, str) else (m[0], m[1]) for m in raw]


def real_clip_merges() -> list[tuple[str, str]]:
    """The real CLIP merges (49152 - 256 - 2 of them), from the open-clip-torch wheel on PyPI."""
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "open-clip-torch", "-d", tmp, "-q"],
            check=True,
        )
        wheel = next(Path(tmp).glob("open_clip_torch-*.whl"))
        with zipfile.ZipFile(wheel) as zf:
            data = gzip.decompress(zf.read("open_clip/bpe_simple_vocab_16e6.txt.gz")).decode("utf-8")
    lines = data.split("\n")[1 : 49152 - 256 - 2 + 1]
    return [tuple(line.split()) for line in lines]  # type: ignore[misc]


def write_clip_tokenizer_files(out: Path, merges: list[tuple[str, str]], max_length: int = 77) -> None:
    (out / "tokenizer.json").write_text(clip_tokenizer_json(merges))
    tok = json.loads((out / "tokenizer.json").read_text())
    (out / "vocab.json").write_text(json.dumps(tok["model"]["vocab"], ensure_ascii=False))
    (out / "merges.txt").write_text("#version: 0.2\n" + "\n".join(" ".join(m) for m in merges) + "\n")
    special = {"bos_token": SOT, "eos_token": EOT, "pad_token": EOT, "unk_token": EOT}
    (out / "special_tokens_map.json").write_text(json.dumps(special, indent=2))
    config = {
        **special,
        "tokenizer_class": "CLIPTokenizer",
        "model_max_length": max_length,
        "do_lower_case": True,
        "clean_up_tokenization_spaces": False,
        "model_input_names": ["input_ids", "attention_mask"],
    }
    (out / "tokenizer_config.json").write_text(json.dumps(config, indent=2))


# ------------------------------------------------------------------------------------------- images
def make_images(out: Path) -> list[str]:
    """A few small deterministic test pictures, one square and several non-square."""
    rng = np.random.default_rng(1)
    names = []
    for i, (w, h) in enumerate([(64, 48), (40, 90), (50, 50), (123, 77)]):
        yy, xx = np.mgrid[0:h, 0:w]
        base = np.stack(
            [
                127 + 120 * np.sin(xx / (3 + i) + i),
                127 + 120 * np.cos(yy / (4 + i)),
                (xx * 255 // max(1, w - 1) + yy * 3 * i) % 256,
            ],
            axis=-1,
        )
        base += rng.normal(0, 12, base.shape)
        img = Image.fromarray(np.clip(base, 0, 255).astype(np.uint8), "RGB")
        draw = ImageDraw.Draw(img)
        for _ in range(3):
            x0, y0 = int(rng.integers(0, w - 8)), int(rng.integers(0, h - 8))
            color = tuple(int(c) for c in rng.integers(0, 256, 3))
            draw.ellipse(
                (x0, y0, x0 + int(rng.integers(6, w // 2 + 8)), y0 + int(rng.integers(6, h // 2 + 8))),
                fill=color,
            )
        name = f"img{i}_{w}x{h}.png"
        img.save(out / "images" / name, optimize=True)
        names.append(name)
    return names


# ------------------------------------------------------------------------------------------- models
def sharpen_init(model: torch.nn.Module, seed: int) -> None:
    """Re-initialise with larger weights so different inputs give clearly different embeddings.

    transformers' default init (std 0.02) makes a tiny random model map every input to nearly the same
    vector, which would let a wrong preprocessing step pass a cosine test.
    """
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name:
                p.copy_(torch.ones_like(p) if name.endswith("weight") else torch.zeros_like(p))
                p.add_(torch.randn(p.shape, generator=gen) * 0.1)
            elif p.ndim >= 2:
                fan_in = math.prod(p.shape[1:]) if "embedding" not in name else 1
                p.copy_(torch.randn(p.shape, generator=gen) * (1.5 / math.sqrt(fan_in)))
            else:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.5)


class _Vision(torch.nn.Module):
    def __init__(self, model: Any, kind: str) -> None:
        super().__init__()
        self.model, self.kind = model, kind

    def forward(self, pixel_values: torch.Tensor) -> Any:
        if self.kind == "clip":
            return self.model.visual_projection(
                self.model.vision_model(pixel_values=pixel_values).pooler_output
            )
        out = self.model.vision_model(pixel_values=pixel_values)
        return out.last_hidden_state, out.pooler_output


class _Text(torch.nn.Module):
    def __init__(self, model: Any, kind: str) -> None:
        super().__init__()
        self.model, self.kind = model, kind

    def forward(self, input_ids: torch.Tensor) -> Any:
        if self.kind == "clip":
            return self.model.text_projection(self.model.text_model(input_ids=input_ids).pooler_output)
        out = self.model.text_model(input_ids=input_ids)
        return out.last_hidden_state, out.pooler_output


def export_towers(model: Any, kind: str, out: Path, image_size: int, seq_len: int, quantize: bool) -> None:
    onnx_dir = out / "onnx"
    onnx_dir.mkdir(parents=True, exist_ok=True)
    # Xenova's CLIP exports name the outputs image_embeds/text_embeds; SigLIP exports keep both
    # last_hidden_state and pooler_output (the library must pick pooler_output by name).
    v_out = ["image_embeds"] if kind == "clip" else ["last_hidden_state", "pooler_output"]
    t_out = ["text_embeds"] if kind == "clip" else ["last_hidden_state", "pooler_output"]
    pv = torch.randn(2, 3, image_size, image_size)
    ids = torch.randint(0, 100, (2, seq_len))
    ids[:, -1] = model.config.text_config.eos_token_id
    for name, wrapper, args, in_name, outs, axes in [
        ("vision_model", _Vision(model, kind), (pv,), "pixel_values", v_out, {0: "batch_size"}),
        (
            "text_model",
            _Text(model, kind),
            (ids,),
            "input_ids",
            t_out,
            {0: "batch_size", 1: "sequence_length"},
        ),
    ]:
        dyn = {in_name: axes, **{o: {0: "batch_size"} for o in outs}}
        path = onnx_dir / f"{name}.onnx"
        torch.onnx.export(
            wrapper.eval(),
            args,
            str(path),
            input_names=[in_name],
            output_names=outs,
            dynamic_axes=dyn,
            opset_version=17,
            dynamo=False,
        )
        if quantize:
            from onnxruntime.quantization import QuantType, quantize_dynamic

            quantize_dynamic(str(path), str(onnx_dir / f"{name}_quantized.onnx"), weight_type=QuantType.QInt8)


def cos(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=-1, keepdims=True)
    b = b / np.linalg.norm(b, axis=-1, keepdims=True)
    return (a * b).sum(-1)


def build_tiny_clip(out: Path) -> None:
    from transformers import CLIPConfig, CLIPImageProcessorPil, CLIPModel, CLIPTokenizer

    if out.exists():
        shutil.rmtree(out)
    (out / "images").mkdir(parents=True)
    merges = train_tiny_clip_merges(vocab_size=1400)
    write_clip_tokenizer_files(out, merges)
    tokenizer = CLIPTokenizer.from_pretrained(str(out))
    vocab_size = len(tokenizer)
    sot, eot = tokenizer.convert_tokens_to_ids([SOT, EOT])
    assert (sot, eot) == (vocab_size - 2, vocab_size - 1), (sot, eot, vocab_size)

    config = CLIPConfig(
        text_config=dict(
            vocab_size=vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
            num_attention_heads=4, max_position_embeddings=77, bos_token_id=sot, eos_token_id=eot,
            pad_token_id=eot,
        ),
        vision_config=dict(
            hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
            image_size=32, patch_size=8,
        ),
        projection_dim=16,
    )  # fmt: skip
    torch.manual_seed(0)
    model = CLIPModel(config).eval()
    model.config._attn_implementation = "eager"
    sharpen_init(model, seed=0)
    config.save_pretrained(str(out))
    # size != crop_size on purpose, so both the resize and the crop step matter in the parity test.
    prep = {
        "crop_size": {"height": 32, "width": 32},
        "do_center_crop": True,
        "do_convert_rgb": True,
        "do_normalize": True,
        "do_rescale": True,
        "do_resize": True,
        "image_mean": CLIP_MEAN,
        "image_processor_type": "CLIPImageProcessor",
        "image_std": CLIP_STD,
        "processor_class": "CLIPProcessor",
        "resample": 3,
        "rescale_factor": 1 / 255,
        "size": {"shortest_edge": 36},
    }
    (out / "preprocessor_config.json").write_text(json.dumps(prep, indent=2))
    export_towers(model, "clip", out, image_size=32, seq_len=9, quantize=True)

    names = make_images(out)
    processor = CLIPImageProcessorPil(
        **{k: v for k, v in prep.items() if k not in ("image_processor_type", "processor_class")}
    )
    images = [Image.open(out / "images" / n).convert("RGB") for n in names]
    pixel_values = processor(images=images, return_tensors="pt")["pixel_values"]
    enc = tokenizer(TEXTS, padding=True, truncation=True, max_length=77, return_tensors="pt")
    with torch.no_grad():
        image_embeds = model.get_image_features(pixel_values=pixel_values).pooler_output.numpy()
        text_embeds = model.get_text_features(**enc).pooler_output.numpy()
    report_spread("tiny-clip", image_embeds, text_embeds)
    np.savez_compressed(
        out / "reference.npz",
        image_names=np.array(names),
        pixel_values=pixel_values.numpy(),
        image_embeds=image_embeds,
        texts=np.array(TEXTS),
        input_ids=enc["input_ids"].numpy(),
        attention_mask=enc["attention_mask"].numpy(),
        text_embeds=text_embeds,
    )
    check_onnx_matches(out, pixel_values.numpy(), image_embeds, enc["input_ids"].numpy(), text_embeds)
    print("tiny-clip tokenizer: vocab", vocab_size, "| ids of text 1:", enc["input_ids"][1].tolist()[:12])


def report_spread(
    name: str, image_embeds: np.ndarray, text_embeds: np.ndarray, text_bound: float = 0.97
) -> None:
    for what, e, bound in (("image", image_embeds, 0.97), ("text", text_embeds, text_bound)):
        c = cos(e[:, None], e[None])
        off = c[~np.eye(len(c), dtype=bool)]
        print(f"{name}: max off-diagonal {what} cosine {off.max():.4f}")
        assert off.max() < bound, f"{name}: {what} embeddings are too similar for a meaningful test"


def check_onnx_matches(
    out: Path, pv: np.ndarray, img_ref: np.ndarray, ids: np.ndarray, txt_ref: np.ndarray
) -> None:
    import onnxruntime as ort

    for suffix in ("", "_quantized"):
        v = ort.InferenceSession(str(out / "onnx" / f"vision_model{suffix}.onnx"))
        t = ort.InferenceSession(str(out / "onnx" / f"text_model{suffix}.onnx"))
        vo = v.run(None, {"pixel_values": pv})[-1]
        to = t.run(None, {"input_ids": ids.astype(np.int64)})[-1]
        print(
            f"{out.name} onnx{suffix or ' fp32'}: min cos image {cos(vo, img_ref).min():.6f} text {cos(to, txt_ref).min():.6f}"
        )


# ------------------------------------------------------------------------------------------- SigLIP
def build_tiny_siglip(out: Path) -> None:
    import sentencepiece as spm
    from tokenizers import Tokenizer, decoders, normalizers, pre_tokenizers, processors
    from tokenizers.models import Unigram
    from transformers import SiglipConfig, SiglipImageProcessorPil, SiglipModel, SiglipTokenizer

    if out.exists():
        shutil.rmtree(out)
    (out / "images").mkdir(parents=True)
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "corpus.txt"
        corpus.write_text("\n".join(line.lower() for line in training_corpus(1)))
        # SigLIP's own spm model: unigram, pad=0 </s>=1 unk=2, no dummy prefix (like google/siglip-*).
        spm.SentencePieceTrainer.train(
            input=str(corpus), model_prefix=str(Path(tmp) / "spiece"), vocab_size=600, model_type="unigram",
            pad_id=0, eos_id=1, unk_id=2, bos_id=-1, pad_piece="<pad>", eos_piece="</s>", unk_piece="<unk>",
            add_dummy_prefix=False, character_coverage=1.0,
        )  # fmt: skip
        shutil.copy(Path(tmp) / "spiece.model", out / "spiece.model")
    slow = SiglipTokenizer(vocab_file=str(out / "spiece.model"), model_max_length=64)
    # tokenizer.json as the HF/Xenova SigLIP repos ship it: the spm unigram model with a Metaspace
    # pre-tokenizer and "$A </s>"; lowercasing and punctuation removal stay in Python (SiglipTokenizer
    # does them in canonicalize_text, so the library must too).
    sp = spm.SentencePieceProcessor(model_file=str(out / "spiece.model"))
    vocab = [(sp.id_to_piece(i), sp.get_score(i)) for i in range(sp.get_piece_size())]
    tok = Tokenizer(Unigram(vocab, unk_id=2, byte_fallback=False))
    tok.normalizer = normalizers.Sequence([normalizers.Replace(" {2,}", " ")])
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    tok.save(str(out / "tokenizer.json"))
    special = {"eos_token": "</s>", "pad_token": "</s>", "unk_token": "<unk>"}
    (out / "special_tokens_map.json").write_text(json.dumps(special, indent=2))
    tcfg = {**special, "tokenizer_class": "SiglipTokenizer", "model_max_length": 64, "do_lower_case": True,
            "model_input_names": ["input_ids"]}  # fmt: skip
    (out / "tokenizer_config.json").write_text(json.dumps(tcfg, indent=2))

    config = SiglipConfig(
        text_config=dict(
            vocab_size=sp.get_piece_size(), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
            num_attention_heads=4, max_position_embeddings=64, pad_token_id=1, eos_token_id=1, bos_token_id=1,
        ),
        vision_config=dict(
            hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
            image_size=32, patch_size=8,
        ),
    )  # fmt: skip
    torch.manual_seed(1)
    model = SiglipModel(config).eval()
    model.config._attn_implementation = "eager"
    sharpen_init(model, seed=1)
    config.save_pretrained(str(out))
    # SigLIP squashes to height x width (no crop); the tests also try the legacy int form.
    prep = {
        "do_normalize": True, "do_rescale": True, "do_resize": True, "image_mean": [0.5, 0.5, 0.5],
        "image_processor_type": "SiglipImageProcessor", "image_std": [0.5, 0.5, 0.5],
        "processor_class": "SiglipProcessor", "resample": 3, "rescale_factor": 1 / 255,
        "size": {"height": 32, "width": 32},
    }  # fmt: skip
    (out / "preprocessor_config.json").write_text(json.dumps(prep, indent=2))
    export_towers(model, "siglip", out, image_size=32, seq_len=64, quantize=False)

    names = make_images(out)
    processor = SiglipImageProcessorPil(
        **{k: v for k, v in prep.items() if k not in ("image_processor_type", "processor_class")}
    )
    images = [Image.open(out / "images" / n).convert("RGB") for n in names]
    pixel_values = processor(images=images, return_tensors="pt")["pixel_values"]
    enc = slow(TEXTS, padding="max_length", truncation=True, max_length=64, return_tensors="pt")
    fast_ids = []
    for text in TEXTS:
        ids = tok.encode(slow.canonicalize_text(text)).ids
        fast_ids.append([*ids[:63], 1] if len(ids) > 64 else ids)
    for i, (a, b) in enumerate(zip(enc["input_ids"].tolist(), fast_ids)):
        a = a[: a.index(1) + 1] if 1 in a else a
        print(f"siglip text {i}: slow {len(a)} tokens, tokenizer.json {len(b)} tokens, equal={a == b}")
    with torch.no_grad():
        image_embeds = model.get_image_features(pixel_values=pixel_values).pooler_output.numpy()
        text_embeds = model.get_text_features(input_ids=enc["input_ids"]).pooler_output.numpy()
        # SigLIP pools the last position, so padding to the batch's longest item instead of 64 must
        # change the vectors; otherwise the fixture could not catch that mistake.
        short = [
            model.get_text_features(input_ids=torch.tensor([ids])).pooler_output.numpy()[0]
            for ids in fast_ids
        ]
    print(
        f"tiny-siglip: cos(unpadded, padded to 64) per text: {np.round(cos(np.array(short), text_embeds), 4)}"
    )
    # short SigLIP texts are mostly the same padding tokens, hence the looser text bound
    report_spread("tiny-siglip", image_embeds, text_embeds, text_bound=0.995)
    np.savez_compressed(
        out / "reference.npz",
        image_names=np.array(names),
        pixel_values=pixel_values.numpy(),
        image_embeds=image_embeds,
        texts=np.array(TEXTS),
        input_ids=enc["input_ids"].numpy(),
        text_embeds=text_embeds,
    )
    import onnxruntime as ort

    v = ort.InferenceSession(str(out / "onnx" / "vision_model.onnx"))
    t = ort.InferenceSession(str(out / "onnx" / "text_model.onnx"))
    vo = v.run(["pooler_output"], {"pixel_values": pixel_values.numpy()})[0]
    to = t.run(["pooler_output"], {"input_ids": enc["input_ids"].numpy()})[0]
    print(
        f"tiny-siglip onnx: min cos image {cos(vo, image_embeds).min():.6f} text {cos(to, text_embeds).min():.6f}"
    )


# ------------------------------------------------------------------------------------------- full size
def build_full(out: Path) -> None:
    """ViT-B/32-architecture CLIP with random weights, real CLIP tokenizer, fp32 + int8 ONNX."""
    from transformers import CLIPConfig, CLIPModel, CLIPTokenizer

    out.mkdir(parents=True, exist_ok=True)
    write_clip_tokenizer_files(out, real_clip_merges())
    tokenizer = CLIPTokenizer.from_pretrained(str(out))
    assert len(tokenizer) == 49408, len(tokenizer)
    # openai/clip-vit-base-patch32 gives 49406 320 1125 539 320 2368 49407
    print("full tokenizer:", tokenizer("a photo of a cat")["input_ids"])
    config = CLIPConfig(projection_dim=512)  # the defaults are ViT-B/32
    config.text_config.eos_token_id = 49407
    config.text_config.bos_token_id = 49406
    torch.manual_seed(0)
    model = CLIPModel(config).eval()
    model.config._attn_implementation = "eager"
    config.save_pretrained(str(out))
    # the legacy int form of size/crop_size, as in Xenova/clip-vit-base-patch32
    prep = {
        "crop_size": 224, "do_center_crop": True, "do_normalize": True, "do_resize": True,
        "feature_extractor_type": "CLIPFeatureExtractor", "image_mean": CLIP_MEAN, "image_std": CLIP_STD,
        "resample": 3, "size": 224,
    }  # fmt: skip
    (out / "preprocessor_config.json").write_text(json.dumps(prep, indent=2))
    export_towers(model, "clip", out, image_size=224, seq_len=16, quantize=True)
    for f in sorted((out / "onnx").iterdir()):
        print(f"{f.name}: {f.stat().st_size / 2**20:.0f} MiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--full", action="store_true", help="build the full-size random ViT-B/32 CLIP")
    parser.add_argument("--out", type=Path, default=None, help="output directory (with --full)")
    parser.add_argument("--no-siglip", action="store_true", help="skip the tiny SigLIP fixture")
    args = parser.parse_args()
    if args.full:
        build_full(args.out or ROOT / ".bench" / "clip-vit-b-32-random")
        return
    build_tiny_clip(FIXTURES / "tiny-clip")
    if not args.no_siglip:
        build_tiny_siglip(FIXTURES / "tiny-siglip")


if __name__ == "__main__":
    main()
