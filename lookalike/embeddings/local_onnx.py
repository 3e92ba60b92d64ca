"""The ``local`` provider: CLIP-family models (CLIP, SigLIP, SigLIP 2) run offline with onnxruntime.

``EmbeddingFunction("local/clip-vit-b-32")`` builds a :class:`LocalOnnxEmbedding`. The text and image
towers are separate ONNX files, each loaded on first use: a text search never loads the image tower.
Tensor names, integer widths and fixed shapes are read from the graphs; tokenisation uses ``tokenizers``
with the model's ``tokenizer.json``; image preprocessing follows the model's ``preprocessor_config.json``
(the same arithmetic as transformers' PIL image processors) and runs in numpy, in worker threads.
Every vector is L2-normalised.
"""

from __future__ import annotations

import os
import re
import string
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np

from lookalike.embeddings.base import BaseEmbeddingFunction, l2_normalize
from lookalike.embeddings.model_files import (
    ModelFiles,
    ModelSource,
    Precision,
    check_precision,
    dimensions_from_config,
    read_json,
    resolve_model,
)
from lookalike.errors import (
    ConfigurationError,
    EmbeddingError,
    ImageInputError,
    MissingDependencyError,
    ModelNotFoundError,
    describe_item,
)
from lookalike.types import Purpose

__all__ = ["ImagePreprocessor", "LocalOnnxEmbedding"]

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
TEXT_INPUTS = ("input_ids", "text", "input")
IMAGE_INPUTS = ("pixel_values", "image", "input")
TEXT_OUTPUTS = ("text_embeds", "embedding", "pooler_output", "text_embeddings", "sentence_embedding")
IMAGE_OUTPUTS = ("image_embeds", "embedding", "pooler_output", "image_embeddings")
_PUNCTUATION = str.maketrans("", "", string.punctuation)


def _ort() -> Any:
    try:
        import onnxruntime
    except ImportError as exc:
        raise MissingDependencyError("the local ONNX provider", "local", package="onnxruntime") from exc
    return onnxruntime


def _first_line(exc: BaseException, limit: int = 200) -> str:
    text = str(exc).strip()
    line = text.splitlines()[0] if text else type(exc).__name__
    return line if len(line) <= limit else line[: limit - 1] + "…"


def default_threads() -> int:
    """CPU threads one onnxruntime session uses: the CPUs this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows
        return max(1, os.cpu_count() or 1)


# ----------------------------------------------------------------------------------------- images
@dataclass(frozen=True)
class ImagePreprocessor:
    """Resize, crop, rescale and normalise a picture the way the model was trained.

    Mirrors transformers' PIL image processors: ``shortest`` resizes the shortest edge to ``size``
    (CLIP), ``squash`` resizes to exactly ``size`` (SigLIP); then an optional center crop (zero-padded
    when the crop is larger than the picture), ``* rescale``, ``(x - mean) / std``, CHW float32.
    """

    resize_mode: str | None  # "shortest", "squash" or None
    size: tuple[int, int]  # (S, S) for "shortest" (S is the short edge), (height, width) for "squash"
    crop: tuple[int, int] | None
    resample: int
    rescale: float | None
    mean: tuple[float, float, float] | None
    std: tuple[float, float, float] | None

    @classmethod
    def from_config(
        cls, config: dict[str, Any], *, where: str = "preprocessor_config.json"
    ) -> ImagePreprocessor:
        """Read a ``preprocessor_config.json`` (both the int and the dict forms of ``size``/``crop_size``)."""
        kind = str(config.get("image_processor_type") or config.get("feature_extractor_type") or "")
        siglip = "siglip" in kind.lower()
        try:
            do_resize = bool(config.get("do_resize", True))
            size = config.get("size", 224)
            if isinstance(size, dict) and "shortest_edge" in size:
                mode, dims = "shortest", (int(size["shortest_edge"]),) * 2
            elif isinstance(size, dict) and "height" in size and "width" in size:
                mode, dims = "squash", (int(size["height"]), int(size["width"]))
            elif isinstance(size, (int, float)):
                # transformers reads an int as the short edge for CLIP, a square for SigLIP
                mode, dims = ("squash" if siglip else "shortest"), (int(size),) * 2
            elif isinstance(size, (list, tuple)) and len(size) == 2:
                mode, dims = "squash", (int(size[0]), int(size[1]))
            else:
                raise ValueError(f"unsupported size {size!r}")
            crop: tuple[int, int] | None = None
            if config.get("do_center_crop", not siglip):
                crop_size = config.get("crop_size", dims[0])
                if isinstance(crop_size, dict):
                    crop = (int(crop_size["height"]), int(crop_size["width"]))
                else:
                    crop = (int(crop_size), int(crop_size))
            rescale = float(config.get("rescale_factor", 1 / 255)) if config.get("do_rescale", True) else None
            mean = std = None
            if config.get("do_normalize", True):
                default_mean, default_std = ((0.5,) * 3, (0.5,) * 3) if siglip else (CLIP_MEAN, CLIP_STD)
                mean = _triple(config.get("image_mean", default_mean))
                std = _triple(config.get("image_std", default_std))
            resample = int(config.get("resample", 3))
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelNotFoundError(
                f"{where}: cannot understand the preprocessing settings ({exc})"
            ) from exc
        if min(dims) <= 0 or (crop is not None and min(crop) <= 0) or not 0 <= resample <= 5:
            raise ModelNotFoundError(f"{where}: invalid size, crop_size or resample value")
        return cls(mode if do_resize else None, dims, crop, resample, rescale, mean, std)

    draft_factor: ClassVar[int] = 3
    """JPEGs are decoded at reduced scale only while still this many times the model's input size."""

    @property
    def draft_size(self) -> tuple[int, int] | None:
        """Size JPEGs may be decoded at (DCT scaling, 1/2 to 1/8), or ``None`` when they must not be.

        Measured with ``benchmarks/doors.py`` (reduced vs full decode, same resize geometry): a random
        ViT-B/32 stays ≥ 0.99999 cosine from 1.5× its input up, the 32-pixel test models only reach
        ≥ 0.9995 from 3× (below that they drop to 0.998). 3× keeps 12 MP 4:3 photos at 1/4 scale.
        Without a resize the model sees the picture's own pixels, so nothing may be drafted.
        """
        if self.resize_mode is None:
            return None
        side = self.draft_factor * max(self.size)
        return side, side

    def resize_shape(self, width: int, height: int) -> tuple[int, int]:
        """(width, height) after resizing a ``width`` x ``height`` picture."""
        if self.resize_mode == "squash":
            return self.size[1], self.size[0]
        short, long = (width, height) if width <= height else (height, width)
        new_short, new_long = self.size[0], int(self.size[0] * long / short)  # transformers truncates too
        return (new_short, new_long) if width <= height else (new_long, new_short)

    def __call__(self, image: Any) -> np.ndarray:
        """RGB PIL image → ``(3, H, W)`` float32 array."""
        if self.resize_mode is not None:
            from lookalike.images.decode import draft_region

            region = draft_region(image)
            if region is None:
                image = image.resize(self.resize_shape(*image.size), resample=self.resample)
            else:
                # decoded at reduced JPEG scale: size and sample as if from the full-size picture, so
                # the crop lands on the same pixels as a full decode's
                shape = self.resize_shape(*region.full_size)
                image = image.resize(shape, resample=self.resample, box=region.box)
        pixels = np.asarray(image, dtype=np.uint8)
        if self.crop is not None:
            pixels = _center_crop(pixels, self.crop)
        arr = pixels.astype(np.float32)
        if self.rescale is not None:
            arr *= np.float32(self.rescale)
        if self.mean is not None and self.std is not None:
            arr -= np.asarray(self.mean, dtype=np.float32)
            arr /= np.asarray(self.std, dtype=np.float32)
        return np.ascontiguousarray(arr.transpose(2, 0, 1))


def _triple(value: Any) -> tuple[float, float, float]:
    if isinstance(value, (int, float)):
        return (float(value),) * 3
    values = [float(v) for v in value]
    if len(values) != 3:
        raise ValueError(f"expected 3 values, got {len(values)}")
    return values[0], values[1], values[2]


def _center_crop(pixels: np.ndarray, crop: tuple[int, int]) -> np.ndarray:
    """transformers' ``center_crop``: floor offsets, zero padding when the picture is smaller."""
    height, width = pixels.shape[:2]
    ch, cw = crop
    if ch > height or cw > width:
        new_h, new_w = max(ch, height), max(cw, width)
        padded = np.zeros((new_h, new_w, pixels.shape[2]), dtype=pixels.dtype)
        top_pad, left_pad = -(-(new_h - height) // 2), -(-(new_w - width) // 2)  # ceil
        padded[top_pad : top_pad + height, left_pad : left_pad + width] = pixels
        top = (height - ch) // 2 + top_pad
        left = (width - cw) // 2 + left_pad
        return padded[top : top + ch, left : left + cw]
    top, left = (height - ch) // 2, (width - cw) // 2
    return pixels[top : top + ch, left : left + cw]


# ----------------------------------------------------------------------------------------- sessions
class _Tower:
    """One ONNX graph with its input/output names resolved by name."""

    def __init__(
        self,
        source: ModelSource,
        path: Path,
        *,
        what: str,
        input_names: Sequence[str],
        output_names: Sequence[str],
        threads: int | None,
        providers: Sequence[str] | None,
    ) -> None:
        ort = _ort()
        self.label = f"{source.label}: the {what} model ({path.name})"
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or default_threads()
        options.inter_op_num_threads = 1  # CLIP graphs are sequential; more threads only contend
        options.log_severity_level = 3  # quantized graphs warn about unused initializers otherwise
        # Bulk work decodes images in threads while the model runs; spinning worker threads would take
        # those cores (on 2 busy cores, spinning off gave 20 vs 17 img/s int8 and 8.6 vs 6.4 fp32).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self.session = ort.InferenceSession(
                str(path), sess_options=options, providers=list(providers or ["CPUExecutionProvider"])
            )
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidProtobuf/... types
            raise ModelNotFoundError(
                f"{source.label}: cannot load {path.name} ({_first_line(exc)}); the file is corrupt or "
                f"incomplete: delete {path} and download the model again"
            ) from exc
        inputs = {i.name: i for i in self.session.get_inputs()}
        outputs = {o.name: o for o in self.session.get_outputs()}
        found = next((inputs[n] for n in input_names if n in inputs), None)
        if found is None and len(inputs) == 1:
            found = next(iter(inputs.values()))
        if found is None:
            raise ModelNotFoundError(
                f"{self.label} has inputs {sorted(inputs)}; expected one of {list(input_names)}"
            )
        self.input: Any = found  # onnxruntime's NodeArg: .name, .shape, .type
        self.output_name = next((n for n in output_names if n in outputs), None)
        if self.output_name is None and len(outputs) == 1:
            self.output_name = next(iter(outputs))
        if self.output_name is None:
            raise ModelNotFoundError(
                f"{self.label} has outputs {sorted(outputs)}; expected one of {list(output_names)}"
            )
        self.inputs = inputs
        shape = list(self.input.shape)
        # immich-style exports fix the batch at 1; run those one item at a time
        self.fixed_batch = shape[0] if shape and isinstance(shape[0], int) else None

    def dim(self, axis: int) -> int | None:
        """The input's size along ``axis`` when the graph fixes it."""
        shape = list(self.input.shape)
        return shape[axis] if len(shape) > axis and isinstance(shape[axis], int) else None

    def run(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        """Run the graph; return the L2-normalised ``(N, d)`` embeddings."""
        n = next(iter(feeds.values())).shape[0]
        try:
            if self.fixed_batch is not None and n != self.fixed_batch:
                parts = [
                    self.session.run([self.output_name], {k: v[i : i + 1] for k, v in feeds.items()})[0]
                    for i in range(n)
                ]
                out = np.concatenate(parts, axis=0)
            else:
                out = self.session.run([self.output_name], feeds)[0]
        except Exception as exc:
            raise EmbeddingError(f"{self.label} failed on a batch of {n}: {_first_line(exc)}") from exc
        out = np.asarray(out, dtype=np.float32).reshape(n, -1)
        return l2_normalize(out)


class _TextEncoder:
    """Tokeniser + text graph, with the family's padding and truncation conventions."""

    def __init__(self, files: ModelFiles, precision: Precision, threads: int | None, providers: Any) -> None:
        found = files.fetch("text", precision)
        source = files.source
        # int8 exports are dynamically quantised: activations are scaled by the maximum over the whole
        # input tensor, so in a batch one item's vector depends on the others (cosine 0.9993 on the tiny
        # model, 0.9998 on ViT-B/32). One item per run keeps every vector the same through every door,
        # and costs little: 37 vs 36 ms per image for ViT-B/32 on 2 cores.
        self.one_at_a_time = precision == "int8"
        try:
            from tokenizers import Tokenizer
        except ImportError as exc:
            raise MissingDependencyError("the local ONNX provider", "local", package="tokenizers") from exc
        tok_path = found["tokenizer.json"]
        assert tok_path is not None
        try:
            self.tokenizer = Tokenizer.from_file(str(tok_path))
        except Exception as exc:
            raise ModelNotFoundError(
                f"{source.label}: tokenizer.json is corrupt or not a tokenizers file ({_first_line(exc)})"
            ) from exc
        tok_cfg = self._json(found.get("tokenizer_config.json"), source)
        special = self._json(found.get("special_tokens_map.json"), source)
        config = self._json(found.get("config.json"), source)
        onnx_path = found["onnx"]
        assert onnx_path is not None
        self.tower = _Tower(
            source, onnx_path, what="text", input_names=TEXT_INPUTS, output_names=TEXT_OUTPUTS,
            threads=threads, providers=providers,
        )  # fmt: skip
        model_type = str(config.get("model_type", ""))
        tok_class = str(tok_cfg.get("tokenizer_class", ""))
        self.siglip_canonical = tok_class.startswith("Siglip") and not tok_class.startswith("Siglip2")
        # SiglipTokenizer lowercases unless told not to; Siglip2's Gemma tokenizer was trained lowercased
        lower_default = self.siglip_canonical or model_type == "siglip2"
        self.lowercase = bool(tok_cfg.get("do_lower_case", lower_default))
        # SigLIP pools the last position, so it must see exactly the padding it was trained with;
        # graphs with a fixed sequence length (OpenCLIP/immich exports) need it too.
        fixed = self.tower.dim(1)
        self.max_length = fixed or _max_length(tok_cfg, config)
        self.fixed_length = (
            fixed is not None or model_type.startswith("siglip") or "siglip" in tok_class.lower()
        )
        pad_token = _token(tok_cfg.get("pad_token")) or _token(special.get("pad_token"))
        pad_token = pad_token or _token(tok_cfg.get("eos_token")) or _token(special.get("eos_token"))
        pad_id = self.tokenizer.token_to_id(pad_token) if pad_token else None
        if pad_id is None:
            pad_id = int(
                config.get("pad_token_id") or (config.get("text_config") or {}).get("pad_token_id") or 0
            )
            pad_token = self.tokenizer.id_to_token(pad_id) or ""
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(max_length=self.max_length)
        self.tokenizer.enable_padding(
            pad_id=pad_id, pad_token=pad_token, length=self.max_length if self.fixed_length else None
        )
        dtype = str(self.tower.input.type)
        self.dtype = np.int32 if "int32" in dtype else np.int64
        self.with_mask = "attention_mask" in self.tower.inputs

    @staticmethod
    def _json(path: Path | None, source: ModelSource) -> dict[str, Any]:
        return read_json(path, source) if path is not None else {}

    def clean(self, text: str) -> str:
        if self.lowercase:
            text = text.lower()
        if self.siglip_canonical:  # transformers' SiglipTokenizer.canonicalize_text
            text = re.sub(r"\s+", " ", text.translate(_PUNCTUATION)).strip()
        return text

    def encode(self, texts: list[str]) -> dict[str, np.ndarray]:
        encodings = self.tokenizer.encode_batch([self.clean(t) for t in texts])
        feeds = {self.tower.input.name: np.array([e.ids for e in encodings], dtype=self.dtype)}
        if self.with_mask:
            feeds["attention_mask"] = np.array([e.attention_mask for e in encodings], dtype=self.dtype)
        return feeds

    def embed(self, texts: list[str]) -> np.ndarray:
        if self.one_at_a_time and len(texts) > 1:
            return np.concatenate([self.tower.run(self.encode([t])) for t in texts])
        return self.tower.run(self.encode(texts))


def _token(value: Any) -> str | None:
    if isinstance(value, dict):
        value = value.get("content")
    return value if isinstance(value, str) and value else None


def _max_length(tok_cfg: dict[str, Any], config: dict[str, Any]) -> int:
    value = tok_cfg.get("model_max_length")
    if isinstance(value, (int, float)) and 0 < value <= 100_000:  # unset shows up as 1e30
        return int(value)
    text_config = config.get("text_config") or {}
    return int(text_config.get("max_position_embeddings") or 77)


class _ImageEncoder:
    def __init__(self, files: ModelFiles, precision: Precision, threads: int | None, providers: Any) -> None:
        found = files.fetch("vision", precision)
        onnx_path = found["onnx"]
        assert onnx_path is not None
        self.tower = _Tower(
            files.source, onnx_path, what="image", input_names=IMAGE_INPUTS, output_names=IMAGE_OUTPUTS,
            threads=threads, providers=providers,
        )  # fmt: skip
        self.dtype = np.float16 if "float16" in str(self.tower.input.type) else np.float32
        self.one_at_a_time = precision == "int8"

    def embed(self, pixels: np.ndarray) -> np.ndarray:
        pixels = pixels.astype(self.dtype, copy=False)
        if self.one_at_a_time and len(pixels) > 1:
            # see _TextEncoder.one_at_a_time: a picture's vector must not depend on its batch
            return np.concatenate([self.tower.run({self.tower.input.name: p[None]}) for p in pixels])
        return self.tower.run({self.tower.input.name: pixels})


# ----------------------------------------------------------------------------------------- provider
class LocalOnnxEmbedding(BaseEmbeddingFunction):
    """CLIP-family model run locally with onnxruntime (``local/<model>``).

    ``model`` is a short alias (see :func:`lookalike.embeddings.model_files.list_models`; default
    ``clip-vit-b-32``), a Hugging Face repo id with ONNX exports, or a local directory. Files are
    downloaded on first use (never at construction); ``precision="int8"`` uses the ``_quantized`` exports.
    """

    provider: ClassVar[str] = "local"
    batch_size: int = 32

    def __init__(
        self,
        model: str = "clip-vit-b-32",
        *,
        dimensions: int | None = None,
        multimodal: bool = True,
        precision: str = "fp32",
        cache_dir: str | os.PathLike[str] | None = None,
        revision: str | None = None,
        threads: int | None = None,
        providers: Sequence[str] | None = None,
        batch_size: int | None = None,
        **options: Any,
    ) -> None:
        if options:
            raise ConfigurationError(
                f"local model {model!r}: unknown option(s) {', '.join(sorted(options))}; local models take "
                "dimensions, multimodal, precision, cache_dir, revision, threads, providers, batch_size"
            )
        if threads is not None and (not isinstance(threads, int) or threads <= 0):
            raise ConfigurationError(f"threads must be a positive integer, got {threads!r}")
        self.precision: Precision = check_precision(precision)
        self._source = resolve_model(model, revision=revision, cache_dir=cache_dir)
        self._files = ModelFiles(self._source)
        self._cache_dir = None if cache_dir is None else str(cache_dir)
        self._revision = revision
        self._threads = threads
        self._providers = list(providers) if providers else None
        known = self._known_dimensions()
        if dimensions is not None and known is not None and dimensions != known:
            raise ConfigurationError(
                f"{self._source.label} gives {known}-dimensional vectors; dimensions={dimensions} "
                "cannot be honoured (CLIP-family vectors cannot be shortened)"
            )
        super().__init__(model, dimensions=dimensions or known, multimodal=multimodal, batch_size=batch_size)
        self._lock = threading.Lock()  # guards the ONNX sessions
        self._prep_lock = threading.Lock()  # the preprocessor must not wait for a session to load
        self._text: _TextEncoder | None = None
        self._image: _ImageEncoder | None = None
        self._preprocessor: ImagePreprocessor | None = None

    def _known_dimensions(self) -> int | None:
        if self._source.known is not None:
            return self._source.known.dimensions
        config = self._files.cached_config()  # a local file or the hub cache; never the network
        return dimensions_from_config(config) if config else None

    # ------------------------------------------------------------------ loading
    @property
    def source(self) -> ModelSource:
        """Where the model's files come from."""
        return self._source

    @property
    def loaded(self) -> tuple[str, ...]:
        """Which towers are loaded now: ``()``, ``("text",)``, ``("image",)`` or both."""
        return tuple(n for n, t in (("text", self._text), ("image", self._image)) if t is not None)

    def _text_encoder(self) -> _TextEncoder:
        with self._lock:
            if self._text is None:
                self._text = _TextEncoder(self._files, self.precision, self._threads, self._providers)
            return self._text

    def _image_encoder(self) -> _ImageEncoder:
        with self._lock:
            if self._image is None:
                self._image = _ImageEncoder(self._files, self.precision, self._threads, self._providers)
            return self._image

    def image_preprocessor(self) -> ImagePreprocessor:
        """The model's image preprocessing (reads ``preprocessor_config.json``; loads no ONNX graph)."""
        with self._prep_lock:
            if self._preprocessor is None:
                path = self._files.get("preprocessor_config.json")
                assert path is not None
                config = read_json(path, self._source)
                self._preprocessor = ImagePreprocessor.from_config(
                    config, where=f"{self._source.label}: preprocessor_config.json"
                )
            return self._preprocessor

    def ensure_ready(self, kind: Literal["text", "image"] = "image") -> None:
        """Download (if needed) and load the text or image tower now."""
        if kind == "text":
            self._text_encoder()
        else:
            self.image_preprocessor()
            self._image_encoder()

    def unload(self) -> None:
        """Release the ONNX sessions (they load again on the next call)."""
        with self._lock:
            self._text = self._image = None

    # ------------------------------------------------------------------ hooks
    def embed_texts(self, texts: list[str], *, purpose: Purpose) -> np.ndarray:
        """Tokenise (truncating at the model's maximum length) and embed; rows are unit vectors."""
        return self._text_encoder().embed(list(texts))

    def prepare_image(self, ref: Any) -> np.ndarray:
        """Load, resize, crop and normalise one picture: a ``(3, H, W)`` float32 array (thread-safe)."""
        from lookalike.images import load_image

        prep = self.image_preprocessor()
        image = load_image(ref, draft_size=prep.draft_size)
        return prep(image)

    def embed_images(self, images: list[Any], *, purpose: Purpose) -> np.ndarray:
        """Embed prepared images (``(3, H, W)`` arrays from :meth:`prepare_image`, or PIL images)."""
        if not images:
            return np.zeros((0, self.dimensions or 0), dtype=np.float32)
        arrays = [self._as_pixels(img) for img in images]
        shapes = {a.shape for a in arrays}
        if len(shapes) != 1:
            raise ImageInputError(
                f"{self._source.label}: prepared images have different shapes {sorted(shapes)}; "
                "prepare them with prepare_image()"
            )
        return self._image_encoder().embed(np.stack(arrays))

    def _as_pixels(self, image: Any) -> np.ndarray:
        if isinstance(image, np.ndarray):
            if image.ndim != 3 or image.shape[0] != 3:
                raise ImageInputError(
                    f"expected a prepared (3, H, W) image array, got shape {image.shape}", item=image
                )
            return image
        if hasattr(image, "convert") and hasattr(image, "size"):  # a PIL image handed in directly
            return self.image_preprocessor()(image.convert("RGB"))
        raise ImageInputError(
            f"cannot embed {describe_item(image)}: pass it through prepare_image() first", item=image
        )

    def config_options(self) -> dict[str, Any]:
        """What rebuilds this model elsewhere: the name (a directory as an absolute path) and settings."""
        model = str(self._source.directory) if self._source.directory is not None else self.model_name
        options: dict[str, Any] = {"model": model, "precision": self.precision}
        if not self.multimodal:
            options["multimodal"] = False
        for key, value in (
            ("cache_dir", self._cache_dir),
            ("revision", self._revision),
            ("threads", self._threads),
            ("providers", self._providers),
        ):
            if value is not None:
                options[key] = value
        return options
